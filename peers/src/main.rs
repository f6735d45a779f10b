//! memlink-shm and iceoryx2 side by side, between the same two processes,
//! in one run:
//!
//! - 64 B busy-poll ping-pong: chunks of 2000 round trips alternate between
//!   the two libraries, so a move of the vCPUs by the host hits both alike;
//! - one-way 64 B stream with no loss (iceoryx2: a subscriber buffer and
//!   `RetryUntilDelivered`; memlink: blocking `send`), messages per second,
//!   the two in five alternating rounds;
//! - a serde value's round trip (an id, a timestamp, a 32-byte string):
//!   memlink typed messages against Servo's ipc-channel and tokio's
//!   `UnixStream` with the same encoding (`serde_cases.rs`).
//!
//! ```text
//! cd peers && cargo run --release               # full run
//! cd peers && cargo run --release -- --quick    # a tenth of the iterations
//! ```
//!
//! The measuring process is pinned to CPU 0, the peer to CPU 1.

mod serde_cases;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::port::update_connections::UpdateConnections;
use iceoryx2::prelude::*;
use memlink_shm::{Client, ClientId, Daemon, Error, Priority};

const PAYLOAD: usize = 64;
type Msg = [u8; PAYLOAD];
const CHUNK: u64 = 2_000;
const STEP: Duration = Duration::from_secs(60);
/// First byte of the iceoryx2 sample that returns the echo peer to memlink.
const SWITCH_BACK: u8 = 0xFF;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("peer") {
        pin_to_cpu(1);
        return peer(&args[1..]);
    }
    let quick = args.iter().any(|a| a == "--quick");
    let scale = if quick { 10 } else { 1 };
    pin_to_cpu(0);
    let tag = format!("memlink-peers-{}", std::process::id());

    let (mem, ice) = ping_pong(&tag, 200_000 / scale)?;
    let (mem_stream, ice_stream) = streams(&tag, 5_000_000 / scale)?;

    println!(
        "memlink-shm vs iceoryx2 {}: two processes pinned to CPU 0 and 1\n",
        iceoryx2_version()
    );
    println!(
        "{:<12} {:<30} {:>9} {:>9} {:>9} {:>12}",
        "library", "workload", "p50", "p99", "p99.9", "msgs/s"
    );
    for (name, h) in [("memlink", &mem), ("iceoryx2", &ice)] {
        println!(
            "{:<12} {:<30} {:>9} {:>9} {:>9} {:>12}",
            name,
            "ping-pong 64 B, busy-poll",
            ns(h.value_at_quantile(0.5)),
            ns(h.value_at_quantile(0.99)),
            ns(h.value_at_quantile(0.999)),
            rate(1e9 / h.mean())
        );
    }
    for (name, r) in [("memlink", mem_stream), ("iceoryx2", ice_stream)] {
        println!(
            "{:<12} {:<30} {:>9} {:>9} {:>9} {:>12}",
            name,
            "one-way 64 B, no loss",
            "-",
            "-",
            "-",
            rate(r)
        );
    }
    let serde_n = 20_000 / scale;
    let serde_rows = [
        ("memlink", serde_cases::memlink(&tag, serde_n)?),
        ("ipc-channel", serde_cases::ipc_channel(serde_n)?),
        ("tokio unix", serde_cases::tokio_unix(&tag, serde_n)?),
    ];
    for (name, h) in &serde_rows {
        println!(
            "{:<12} {:<30} {:>9} {:>9} {:>9} {:>12}",
            name,
            "serde round trip, 3-field struct",
            ns(h.value_at_quantile(0.5)),
            ns(h.value_at_quantile(0.99)),
            ns(h.value_at_quantile(0.999)),
            rate(1e9 / h.mean())
        );
    }
    let p50 = |i: usize| serde_rows[i].1.value_at_quantile(0.5) as f64;
    let rtt = mem.value_at_quantile(0.5) as f64 / ice.value_at_quantile(0.5) as f64;
    println!(
        "\nround trip, memlink / iceoryx2 (p50, chunks of {CHUNK} alternating): {rtt:.2}x\n\
         one-way stream, memlink / iceoryx2 ({ROUNDS} rounds alternating): {:.1}x\n\
         serde round trip, memlink faster than ipc-channel: {:.1}x (goal >= 20x), than tokio UnixStream + postcard: {:.1}x",
        mem_stream / ice_stream,
        p50(1) / p50(0),
        p50(2) / p50(0)
    );
    Ok(())
}

fn iceoryx2_version() -> &'static str {
    "0.10"
}

/// A peer process; killed and reaped if dropped before it ended.
struct Peer(Child);

impl Peer {
    /// Waits for the peer to end.
    fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        self.0.wait()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn spawn_peer(args: &[&str]) -> Peer {
    let exe = std::env::current_exe().expect("own path");
    Peer(
        Command::new(exe)
            .arg("peer")
            .args(args)
            .spawn()
            .expect("start the peer"),
    )
}

fn node() -> Result<Node<ipc::Service>, Box<dyn std::error::Error>> {
    set_log_level(LogLevel::Error);
    Ok(NodeBuilder::new().create::<ipc::Service>()?)
}

fn service_name(tag: &str, what: &str) -> Result<ServiceName, Box<dyn std::error::Error>> {
    Ok(format!("{tag}/{what}").as_str().try_into()?)
}

type Service = iceoryx2::service::port_factory::publish_subscribe::PortFactory<ipc::Service, Msg, ()>;

/// The 64 B publish-subscribe service `what` of this run: created by the
/// measuring process, opened by the peer. A `stream` service holds up to 256
/// samples per subscriber and never overwrites one.
fn service(
    node: &Node<ipc::Service>,
    tag: &str,
    what: &str,
    create: bool,
) -> Result<Service, Box<dyn std::error::Error>> {
    let name = service_name(tag, what)?;
    let builder = node.service_builder(&name).publish_subscribe::<Msg>();
    let builder = if what == "stream" {
        builder.enable_safe_overflow(false).subscriber_max_buffer_size(256)
    } else {
        builder
    };
    Ok(if create { builder.create()? } else { builder.open()? })
}

/// Ping-pong through both libraries between this process and one echo
/// peer, in alternating chunks. Returns (memlink, iceoryx2).
fn ping_pong(tag: &str, n: u64) -> Result<(Histogram<u64>, Histogram<u64>), Box<dyn std::error::Error>> {
    let node = node()?;
    let (ping, pong) = (service(&node, tag, "ping", true)?, service(&node, tag, "pong", true)?);
    let ice_tx = ping.publisher_builder().create()?;
    let ice_rx = pong.subscriber_builder().create()?;
    let mut daemon = Daemon::builder(tag).max_clients(1).create()?;
    let mut child = spawn_peer(&["echo", tag]);
    let client = daemon.recv_timeout(STEP)?.client();
    // The peer says hello on memlink once its iceoryx2 ports exist.
    let until = Instant::now() + STEP;
    while ping.dynamic_config().number_of_subscribers() == 0 || pong.dynamic_config().number_of_publishers() == 0 {
        assert!(Instant::now() < until, "the peer's iceoryx2 ports did not appear");
        std::thread::yield_now();
    }
    let (mut mem, mut ice) = (histogram(), histogram());
    let chunks = n.div_ceil(CHUNK) + 1; // the first pair warms up
    for c in 0..chunks {
        for _ in 0..CHUNK {
            let t = memlink_round_trip(&mut daemon, client);
            if c > 0 {
                mem.saturating_record(t);
            }
        }
        // The peer serves one library at a time, so neither pays for
        // polling the other: switch it to iceoryx2, then back.
        daemon.send_to(client, Priority::Critical, b"iceoryx2")?;
        for _ in 0..CHUNK {
            let t = iceoryx2_round_trip(&ice_tx, &ice_rx)?;
            if c > 0 {
                ice.saturating_record(t);
            }
        }
        ice_tx.send_copy([SWITCH_BACK; PAYLOAD])?;
    }
    daemon.send_to(client, Priority::Critical, b"quit")?;
    child.wait()?;
    Ok((mem, ice))
}

fn memlink_round_trip(daemon: &mut Daemon, client: ClientId) -> u64 {
    let t0 = Instant::now();
    daemon
        .send_to(client, Priority::High, &[7u8; PAYLOAD])
        .expect("send_to");
    loop {
        match daemon.receiver().try_recv_with(|_, _, b| b.len()) {
            Ok(_) => break,
            Err(Error::Empty) => std::hint::spin_loop(),
            Err(e) => panic!("memlink round trip: {e}"),
        }
    }
    t0.elapsed().as_nanos() as u64
}

fn iceoryx2_round_trip(
    tx: &Publisher<ipc::Service, Msg, ()>,
    rx: &Subscriber<ipc::Service, Msg, ()>,
) -> Result<u64, Box<dyn std::error::Error>> {
    let t0 = Instant::now();
    tx.send_copy([7u8; PAYLOAD])?;
    loop {
        if let Some(sample) = rx.receive()? {
            std::hint::black_box(sample.payload()[0]);
            break;
        }
        std::hint::spin_loop();
    }
    Ok(t0.elapsed().as_nanos() as u64)
}

/// Rounds in which the two one-way streams alternate.
const ROUNDS: u32 = 5;

/// Both one-way streams of `n` messages each, in [`ROUNDS`] alternating
/// rounds of `n / ROUNDS`, so that a move of the vCPUs by the host during the
/// run hits both alike: messages per second of each over all its rounds.
fn streams(tag: &str, n: u64) -> Result<(f64, f64), Box<dyn std::error::Error>> {
    let per_round = n / u64::from(ROUNDS);
    let (mut mem, mut ice) = (0.0, 0.0);
    for _ in 0..ROUNDS {
        mem += per_round as f64 / memlink_stream(tag, per_round)?;
        ice += per_round as f64 / iceoryx2_stream(tag, per_round)?;
    }
    let total = (per_round * u64::from(ROUNDS)) as f64;
    Ok((total / mem, total / ice))
}

/// `n` messages of 64 B from this process to a sink peer, each `send`
/// waiting for room (nothing is lost); messages per second, until the sink
/// has read them all.
fn memlink_stream(tag: &str, n: u64) -> Result<f64, Box<dyn std::error::Error>> {
    let name = format!("{tag}-stream");
    let mut daemon = Daemon::builder(&name).max_clients(1).size(4 << 20).create()?;
    let mut child = spawn_peer(&["memlink-sink", &name, &n.to_string()]);
    let client = daemon.recv_timeout(STEP)?.client();
    let t0 = Instant::now();
    for _ in 0..n {
        daemon.send_to(client, Priority::High, &[9u8; PAYLOAD])?;
    }
    let done = daemon.recv_timeout(STEP)?;
    let elapsed = t0.elapsed();
    assert_eq!(done.payload(), n.to_le_bytes());
    child.wait()?;
    Ok(n as f64 / elapsed.as_secs_f64())
}

/// The same through iceoryx2: a subscriber buffer of 256 samples and
/// `RetryUntilDelivered`, so nothing is dropped. (The sink says when it is
/// ready and how many it read over memlink: an iceoryx2 sample dies with its
/// publisher's process.)
fn iceoryx2_stream(tag: &str, n: u64) -> Result<f64, Box<dyn std::error::Error>> {
    let node = node()?;
    let stream = service(&node, tag, "stream", true)?;
    let tx = stream
        .publisher_builder()
        .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
        .create()?;
    let report = format!("{tag}-report");
    let mut daemon = Daemon::builder(&report).max_clients(1).create()?;
    let mut child = spawn_peer(&["iceoryx2-sink", tag, &report, &n.to_string()]);
    daemon.recv_timeout(STEP)?; // subscribed
    tx.update_connections()?;
    let t0 = Instant::now();
    for _ in 0..n {
        tx.send_copy([9u8; PAYLOAD])?;
    }
    let done = daemon.recv_timeout(STEP)?;
    let elapsed = t0.elapsed();
    assert_eq!(done.payload(), n.to_le_bytes());
    child.wait()?;
    Ok(n as f64 / elapsed.as_secs_f64())
}

fn peer(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    if let Some(done) = serde_cases::peer(&a) {
        return done;
    }
    match a.as_slice() {
        ["echo", tag] => {
            let node = node()?;
            let (ping, pong) = (service(&node, tag, "ping", false)?, service(&node, tag, "pong", false)?);
            let ice_rx = ping.subscriber_builder().create()?;
            let ice_tx = pong.publisher_builder().create()?;
            let mut client = Client::connect(tag)?;
            client.send(Priority::High, b"hello")?;
            let mut buf = [0u8; PAYLOAD];
            loop {
                // memlink until told to serve iceoryx2 ...
                match client.receiver().try_recv_with(|p, b| {
                    buf[..b.len()].copy_from_slice(b);
                    (p, b.len())
                }) {
                    Ok((Priority::Critical, len)) if &buf[..len] == b"iceoryx2" => loop {
                        // ... then iceoryx2 until told to switch back.
                        match ice_rx.receive()? {
                            Some(sample) if sample[0] == SWITCH_BACK => break,
                            Some(sample) => {
                                ice_tx.send_copy(*sample)?;
                            }
                            None => std::hint::spin_loop(),
                        }
                    },
                    Ok((Priority::Critical, _)) => return Ok(()),
                    Ok((_, len)) => client.send(Priority::High, &buf[..len])?,
                    Err(Error::Empty) => std::hint::spin_loop(),
                    Err(e) => return Err(e.into()),
                }
            }
        }
        ["memlink-sink", name, n] => {
            let n: u64 = n.parse()?;
            let mut client = Client::connect(name)?;
            client.send(Priority::High, b"hello")?;
            let mut sum = 0u64;
            for _ in 0..n {
                sum += client.receiver().recv_with(|_, b| u64::from(b[0]))?;
            }
            std::hint::black_box(sum);
            client.send(Priority::High, &n.to_le_bytes())?;
            Ok(())
        }
        ["iceoryx2-sink", tag, report, n] => {
            let n: u64 = n.parse()?;
            let node = node()?;
            let stream = service(&node, tag, "stream", false)?;
            let rx = stream.subscriber_builder().buffer_size(256).create()?;
            let mut client = Client::connect(report)?;
            client.send(Priority::High, b"subscribed")?;
            let (mut got, mut sum) = (0u64, 0u64);
            let mut last = Instant::now();
            while got < n {
                match rx.receive()? {
                    Some(s) => {
                        sum += u64::from(s[0]);
                        got += 1;
                        last = Instant::now();
                    }
                    None if last.elapsed() > STEP => return Err(format!("iceoryx2 sink: {got} of {n} arrived").into()),
                    None => std::hint::spin_loop(),
                }
            }
            std::hint::black_box(sum);
            client.send(Priority::High, &got.to_le_bytes())?;
            Ok(())
        }
        _ => Err(format!("unknown peer role {a:?}").into()),
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds")
}

fn ns(v: u64) -> String {
    if v < 10_000 {
        format!("{v} ns")
    } else {
        format!("{:.1} us", v as f64 / 1000.0)
    }
}

fn rate(per_sec: f64) -> String {
    if per_sec >= 1e6 {
        format!("{:.2} M", per_sec / 1e6)
    } else {
        format!("{:.0} k", per_sec / 1e3)
    }
}

#[cfg(target_os = "linux")]
fn pin_to_cpu(cpu: usize) -> bool {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    rustix::thread::sched_setaffinity(None, &set).is_ok()
}

#[cfg(not(target_os = "linux"))]
fn pin_to_cpu(_cpu: usize) -> bool {
    false
}
