//! What waking "every client" costs when many clients are connected: the
//! 0.1.3 API's round trip (`write_to` + `signal()` on the daemon, as the old
//! README writes it) through two daemons alive at once, one with no other
//! client and one with 255 idle clients connected, answered by one echo
//! process serving both. Round trips alternate between the two daemons in
//! chunks of 1000, so a move of the vCPUs hits both alike; the ratio of
//! their medians is the figure.
//!
//! `signal()` wakes the clients that sleep (their bits in the segment's
//! sleeper word), so the idle clients cost it one load per 64 slots.
//!
//! ```sh
//! cargo run --release --example wake_fanout            # 5 rounds of 2 x 1000 round trips
//! cargo run --release --example wake_fanout -- --quick # 2 rounds
//! ```
#![allow(deprecated)]

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use memlink_shm::transport::{ClientId, NrelayShmTransport, ShmError, ShmTransport};
use memlink_shm::Priority;

const CHUNK: usize = 1000;
const IDLE: usize = 255;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("echo") {
        echo(&args[1..]);
        return;
    }
    let rounds = if args.iter().any(|a| a == "--quick") { 2 } else { 5 };
    let pid = std::process::id();
    let names = [
        format!("memlink-fanout-none-{pid}"),
        format!("memlink-fanout-many-{pid}"),
    ];
    let daemons = names.each_ref().map(|n| {
        NrelayShmTransport::builder(n)
            .size(40 << 20)
            .max_clients(IDLE as u32 + 1)
            .max_message_size(256)
            .create()
            .expect("create daemon")
    });
    let idle: Vec<_> = (0..IDLE)
        .map(|_| NrelayShmTransport::connect(&names[1], 1).expect("connect an idle client"))
        .collect();
    let mut echo = Echo(
        Command::new(std::env::current_exe().expect("own path"))
            .args(["echo", &names[0], &names[1]])
            .spawn()
            .expect("spawn the echo process"),
    );
    let peers = [echo_client(&daemons[0], 0), echo_client(&daemons[1], IDLE)];
    let mut medians = [Vec::new(), Vec::new()];
    for _ in 0..rounds {
        for (k, daemon) in daemons.iter().enumerate() {
            medians[k].push(chunk_median(daemon, peers[k]));
        }
    }
    for (d, &p) in daemons.iter().zip(&peers) {
        let _ = d.send_to(p, Priority::Critical, b"stop");
    }
    let _ = echo.0.wait();
    drop(idle);
    println!("wake_fanout: 0.1.3 round trip (write_to + signal, then recv_from), 64 B, chunks of {CHUNK}");
    println!("round  p50 with no idle client  p50 with {IDLE} idle clients  ratio");
    let mut ratios = Vec::new();
    for (r, (&none, &many)) in medians[0].iter().zip(&medians[1]).enumerate() {
        let ratio = many.as_secs_f64() / none.as_secs_f64();
        ratios.push(ratio);
        println!("{r:>5}  {:>22?}  {:>26?}  {ratio:.2}x", none, many);
    }
    ratios.sort_by(f64::total_cmp);
    println!("median ratio: {:.2}x (goal: at most 1.20x)", ratios[ratios.len() / 2]);
}

/// The echo process's client of a daemon: the last one to connect.
fn echo_client(daemon: &NrelayShmTransport, others: usize) -> ClientId {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let ids = daemon.clients();
        if ids.len() > others {
            return *ids.iter().max_by_key(|id| id.slot()).expect("a client");
        }
        assert!(Instant::now() < until, "the echo process did not connect");
        std::thread::yield_now();
    }
}

/// The median of one chunk of round trips to `peer`.
fn chunk_median(daemon: &NrelayShmTransport, peer: ClientId) -> Duration {
    let msg = [7u8; 64];
    let mut times = Vec::with_capacity(CHUNK);
    for _ in 0..CHUNK {
        let start = Instant::now();
        daemon.write_to(peer, Priority::High, &msg).expect("write_to");
        daemon.signal();
        let (from, _, reply) = daemon.recv_from(Some(Duration::from_secs(10))).expect("reply");
        assert_eq!((from, reply.len()), (peer, msg.len()));
        times.push(start.elapsed());
    }
    times.sort();
    times[CHUNK / 2]
}

/// Answers each message of either daemon with a copy, polling both
/// (one busy thread, as a latency-minded echo would), until both said "stop".
fn echo(names: &[String]) {
    let clients: Vec<_> = names
        .iter()
        .map(|n| NrelayShmTransport::connect(n, 1).expect("echo connect"))
        .collect();
    let mut open = clients.len();
    let until = Instant::now() + Duration::from_secs(600);
    while open > 0 && Instant::now() < until {
        for c in &clients {
            match c.read() {
                Ok((_, m)) if m == b"stop" => open -= 1,
                Ok((p, m)) => c.send(p, &m).expect("echo send"),
                Err(ShmError::Empty) => std::hint::spin_loop(),
                Err(ShmError::Disconnected) => return,
                Err(e) => panic!("echo: {e}"),
            }
        }
    }
}

/// Kills the echo process if the measurement panics.
struct Echo(Child);

impl Drop for Echo {
    fn drop(&mut self) {
        if !matches!(self.0.try_wait(), Ok(Some(_))) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
