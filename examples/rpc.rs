//! A typed key-value service: the daemon answers `KvRequest` calls from
//! several client processes, each of which stores keys with pipelined calls
//! (many in flight, replies matched by call id), then reads them back with
//! one call at a time and checks every answer. Requests and responses are
//! serde enums encoded with postcard straight into the ring.
//!
//! This program creates the daemon, starts itself again once per client, and
//! exits when they are all done.
//!
//! ```sh
//! cargo run --release --features serde --example rpc               # 3 clients, 20000 keys each
//! cargo run --release --features serde --example rpc -- 8 100000
//! ```

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use memlink_shm::typed::{Caller, Incoming, Postcard, Request, Typed};
use memlink_shm::{Client, Daemon, Error, Priority};
use serde::{Deserialize, Serialize};

/// What a client asks.
#[derive(Serialize, Deserialize, Debug)]
enum KvRequest {
    Put { key: String, value: Vec<u8> },
    Get { key: String },
    Delete { key: String },
    Len,
}

/// What the daemon answers.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum KvResponse {
    Stored { replaced: bool },
    Value(Option<Vec<u8>>),
    Deleted(bool),
    Len(u64),
}

impl Typed for KvRequest {
    const NAME: &'static str = "kv.Request/1";
    type Encoding = Postcard;
}
impl Typed for KvResponse {
    const NAME: &'static str = "kv.Response/1";
    type Encoding = Postcard;
}
impl Request for KvRequest {
    type Response = KvResponse;
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--client") {
        return client(&args[1], args[2].parse()?);
    }
    let clients: u32 = args.first().map_or(Ok(3), |s| s.parse())?;
    let keys: u64 = args.get(1).map_or(Ok(20_000), |s| s.parse())?;
    let name = format!("memlink-rpc-{}", std::process::id());
    let mut daemon = Daemon::builder(&name).max_clients(clients.max(1)).create()?;
    println!("daemon: serving {name}, starting {clients} client processes");
    let exe = std::env::current_exe()?;
    let children = (0..clients)
        .map(|_| {
            std::process::Command::new(&exe)
                .args(["--client", &name, &keys.to_string()])
                .spawn()
        })
        .collect::<Result<Vec<_>, _>>()?;

    let (mut store, mut served, mut seen) = (HashMap::<String, Vec<u8>>::new(), 0u64, HashSet::new());
    loop {
        // A bounded wait, so that the loop notices when everyone has left.
        let (request, responder) = match daemon.recv_call_timeout::<KvRequest>(Duration::from_millis(100)) {
            Ok(Incoming::Call(request, responder)) => (request, responder),
            Ok(Incoming::Message(m)) => {
                eprintln!("daemon: ignoring a one-way message from {}", m.client());
                continue;
            }
            Err(Error::Timeout) if !seen.is_empty() && daemon.control().client_count() == 0 => break,
            Err(Error::Timeout | Error::Type(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        seen.insert(responder.client());
        let response = match request {
            KvRequest::Put { key, value } => KvResponse::Stored {
                replaced: store.insert(key, value).is_some(),
            },
            KvRequest::Get { key } => KvResponse::Value(store.get(&key).cloned()),
            KvRequest::Delete { key } => KvResponse::Deleted(store.remove(&key).is_some()),
            KvRequest::Len => KvResponse::Len(store.len() as u64),
        };
        match responder.send(&mut daemon, &response) {
            // A client that left before its answer is not an error of the service.
            Ok(()) | Err(Error::UnknownClient(_)) => served += 1,
            Err(e) => return Err(e.into()),
        }
    }
    let failed = children
        .into_iter()
        .map(|mut c| c.wait())
        .filter(|s| !matches!(s, Ok(s) if s.success()))
        .count();
    println!(
        "daemon: answered {served} calls from {} client processes; {} keys left in the store",
        seen.len(),
        store.len()
    );
    if failed > 0 {
        return Err(format!("{failed} client processes failed").into());
    }
    Ok(())
}

/// A client process: stores `n` keys with up to 32 calls in flight, reads
/// each back with one call at a time, deletes them, and checks every answer.
fn client(name: &str, n: u64) -> Result<(), Box<dyn std::error::Error>> {
    const WINDOW: usize = 32;
    let timeout = Duration::from_secs(10);
    let mut caller = Caller::new(Client::connect(name)?);
    let me = caller.client().control().id();
    let key = |i: u64| format!("{me}/key-{i}");
    let value = |i: u64| (i * 7).to_le_bytes().repeat(1 + (i % 4) as usize);

    let start = Instant::now();
    let mut in_flight = VecDeque::new();
    for i in 0..n {
        let put = KvRequest::Put {
            key: key(i),
            value: value(i),
        };
        in_flight.push_back(caller.start(Priority::High, &put)?);
        if in_flight.len() == WINDOW || i + 1 == n {
            while let Some(pending) = in_flight.pop_front() {
                let stored = caller.finish(pending, timeout)?;
                if stored != (KvResponse::Stored { replaced: false }) {
                    return Err(format!("put: {stored:?}").into());
                }
            }
        }
    }
    let pipelined = start.elapsed();

    let start = Instant::now();
    for i in 0..n {
        let got = caller.call(Priority::High, &KvRequest::Get { key: key(i) }, timeout)?;
        if got != KvResponse::Value(Some(value(i))) {
            return Err(format!("get {i}: {got:?}").into());
        }
    }
    let one_by_one = start.elapsed();
    for i in 0..n {
        let deleted = caller.call(Priority::Low, &KvRequest::Delete { key: key(i) }, timeout)?;
        if deleted != KvResponse::Deleted(true) {
            return Err(format!("delete {i}: {deleted:?}").into());
        }
    }
    let len = caller.call(Priority::Critical, &KvRequest::Len, timeout)?;
    println!(
        "client {me}: {n} puts pipelined in {pipelined:.1?} ({:.0} calls/s), {n} gets one at a time in \
         {one_by_one:.1?} ({:.1} us per call), all checked; store now {len:?}",
        n as f64 / pipelined.as_secs_f64(),
        one_by_one.as_secs_f64() * 1e6 / n as f64,
    );
    Ok(())
}
