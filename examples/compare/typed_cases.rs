//! The typed cases of `compare`: a 64 B plain-data value against the same
//! 64 bytes, a call against a hand-written send + receive, and 8 pipelined
//! calls against 8 sequential ones. The three kinds of round trip run in
//! alternating chunks between the same two processes (a daemon in the peer
//! that echoes messages and answers calls), so that a move of the vCPUs hits
//! them alike; their ratios are the figures.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use memlink_shm::typed::{Caller, Incoming, Plain, Request, Typed};
use memlink_shm::{Client, Daemon, Error, Priority};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::support::histogram;
use super::{spawn_peer, CHUNK, PAYLOAD};

/// The 64-byte plain-data value.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Clone, Copy)]
#[repr(C)]
pub struct Value64([u8; PAYLOAD]);

impl Typed for Value64 {
    const NAME: &'static str = "compare.Value64";
    type Encoding = Plain;
}

impl Request for Value64 {
    type Response = Value64;
}

/// What the typed cases measured, each a round-trip histogram (pipelined:
/// per batch of 8 calls).
pub struct Measured {
    pub bytes: Histogram<u64>,
    pub typed: Histogram<u64>,
    pub call: Histogram<u64>,
    pub sequential8: Histogram<u64>,
    pub pipelined8: Histogram<u64>,
}

/// Runs the five kinds in alternating chunks; `n` round trips of each.
pub fn measure(n: u64) -> Measured {
    let name = format!("memlink-compare-typed-{}", std::process::id());
    let mut child = spawn_peer(&["typed-daemon", &name], true);
    let out = child.stdout.take().expect("piped stdout");
    let mut ready = String::new();
    BufReader::new(out)
        .read_line(&mut ready)
        .expect("the peer's readiness line");
    assert_eq!(ready.trim(), "ready", "the typed peer did not start");
    let mut caller = Caller::new(Client::connect(&name).expect("connect"));
    let v = Value64([7u8; PAYLOAD]);
    let step = Duration::from_secs(60);
    let mut m = Measured {
        bytes: histogram(),
        typed: histogram(),
        call: histogram(),
        sequential8: histogram(),
        pipelined8: histogram(),
    };
    let chunks = n.div_ceil(CHUNK) + 1; // the first round warms up
    for c in 0..chunks {
        let keep = c > 0;
        let time = |h: &mut Histogram<u64>, caller: &mut Caller, f: &dyn Fn(&mut Caller)| {
            for _ in 0..CHUNK {
                let t0 = Instant::now();
                f(caller);
                if keep {
                    h.saturating_record(t0.elapsed().as_nanos() as u64);
                }
            }
        };
        time(&mut m.bytes, &mut caller, &|caller| {
            let client = caller.client();
            client.send(Priority::High, &v.0).expect("send");
            client.receiver().recv_with(|_, b| b.len()).expect("echo");
        });
        time(&mut m.typed, &mut caller, &|caller| {
            let client = caller.client();
            client.send(Priority::High, &v).expect("send");
            client.recv().expect("echo").decode::<Value64>().expect("a Value64");
        });
        time(&mut m.call, &mut caller, &|caller| {
            caller.call(Priority::High, &v, step).expect("call");
        });
        let per8 = |h: &mut Histogram<u64>, caller: &mut Caller, pipelined: bool| {
            for _ in 0..CHUNK / 8 {
                let t0 = Instant::now();
                if pipelined {
                    let calls: Vec<_> = (0..8)
                        .map(|_| caller.start(Priority::High, &v).expect("start"))
                        .collect();
                    for pending in calls {
                        caller.finish(pending, step).expect("finish");
                    }
                } else {
                    for _ in 0..8 {
                        caller.call(Priority::High, &v, step).expect("call");
                    }
                }
                if keep {
                    h.saturating_record(t0.elapsed().as_nanos() as u64);
                }
            }
        };
        per8(&mut m.sequential8, &mut caller, false);
        per8(&mut m.pipelined8, &mut caller, true);
    }
    caller.client().send(Priority::Critical, b"quit").expect("quit");
    child.wait().expect("peer exit");
    m
}

/// The peer roles of these cases; false if `a` is none of them.
pub fn peer(a: &[&str]) -> bool {
    let ["typed-daemon", name] = a else { return false };
    let mut daemon = Daemon::builder(name)
        .size(16 << 20)
        .max_clients(1)
        .create()
        .expect("create the segment");
    println!("ready");
    loop {
        match daemon.recv_call::<Value64>() {
            Ok(Incoming::Call(request, responder)) => responder.send(&mut daemon, &request).expect("reply"),
            Ok(Incoming::Message(m)) if m.priority() == Priority::Critical => return true,
            // Bytes and typed one-way values alike go back as they came.
            Ok(Incoming::Message(m)) => daemon.send_to(m.client(), m.priority(), m.payload()).expect("echo"),
            Err(Error::Disconnected) => return true,
            Err(e) => panic!("typed daemon: {e}"),
        }
    }
}

/// The rows' transport names, in the order of [`Measured`]'s fields.
pub const ROWS: [&str; 5] = [
    "memlink bytes, paired",
    "memlink typed 64 B",
    "memlink call",
    "memlink 8 calls, seq.",
    "memlink 8 calls, pipel.",
];

impl Measured {
    /// The histograms with their rows' names.
    pub fn rows(self) -> [(&'static str, Histogram<u64>); 5] {
        let [a, b, c, d, e] = ROWS;
        [
            (a, self.bytes),
            (b, self.typed),
            (c, self.call),
            (d, self.sequential8),
            (e, self.pipelined8),
        ]
    }
}

/// The typed API's ratios, p50 to p50, from the rows measured in this run:
/// (label, goal, value).
pub fn ratios(p50: impl Fn(&str) -> Option<f64>) -> Vec<(&'static str, &'static str, f64)> {
    let [bytes, typed, call, sequential, pipelined] = ROWS;
    [
        ("typed 64 B plain round trip / bytes", "<= 1.1x", typed, bytes),
        ("call round trip / send + recv", "<= 1.2x", call, bytes),
        ("8 pipelined calls / 8 sequential", "report", pipelined, sequential),
    ]
    .into_iter()
    .filter_map(|(label, goal, a, b)| Some((label, goal, p50(a)? / p50(b)?)))
    .collect()
}
