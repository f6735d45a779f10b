//! compare: this library side by side with Unix sockets, TCP loopback, pipes
//! and an in-process ring (rtrb), against the physical floors, in one run.
//!
//! ```text
//! cargo run --release --example compare                 # full run (~1 min)
//! cargo run --release --example compare -- --quick     # a tenth of the iterations
//! cargo run --release --example compare -- --json       # one JSON object on stdout
//! cargo run --release --example compare -- --svg out.svg  # also plot the latency distributions
//! cargo run --release --example compare -- --only memlink --only rtrb  # some cases (and the floors)
//! ```
//!
//! Every case runs between two processes pinned to CPU 0 and CPU 1 (rtrb:
//! two threads pinned the same way). The cache-line floor is measured
//! before and after each case; a case during which it moved by more than
//! 25 % (the host moved the vCPUs) is flagged, since its ratios are then
//! approximate. Last, a 64 B busy-poll round trip through a daemon with no
//! other client and through one with 255 idle clients, in alternating
//! chunks: their ratio says whether the daemon's cost follows its active
//! clients or its connected ones. The headline case, the 64 B busy-poll round trip, also
//! measures the floor in chunks alternating with its own, between the same
//! two processes, and is compared with that: a move of the vCPUs then hits
//! both alike.
// Exercises the 0.1.3 layer, including its deprecated 0.2 additions.
#![allow(deprecated)]

#[path = "../support/mod.rs"]
mod support;

mod async_cases;
mod typed_cases;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
#[cfg(unix)]
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_cases::Waiting;
use hdrhistogram::Histogram;
use memlink_shm::priority::Priority;
use memlink_shm::testkit::DEFAULT_SPIN;
use memlink_shm::transport::{ClientId, NrelayShmTransport, ShmError, ShmTransport};
use memlink_shm::{Client, Daemon};
use support::{histogram, ns, pin_to_cpu, rate, secs, FloorLine};

const PAYLOAD: usize = 64;
const BIG: usize = 4096;

/// What was measured for one case.
struct Row {
    transport: String,
    workload: String,
    kind: Kind,
    hist: Option<Histogram<u64>>,
    per_sec: f64,
    bytes: usize,
    floor_before: u64,
    floor_after: u64,
    /// The cache-line floor measured in chunks alternating with the case's,
    /// between the same two processes (see `memlink_rtt_paired`).
    paired_floor: Option<Histogram<u64>>,
}

/// What a case measured: round trips (if any), rate, message size, and a
/// floor measured interleaved with it (if it did).
type Measured = (Option<Histogram<u64>>, f64, usize, Option<Histogram<u64>>);

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// Busy-poll round trip: compared with the cache-line floor.
    SpinLatency,
    /// Sleeping round trip: compared with the futex floor.
    ParkLatency,
    /// Kernel transport round trip.
    KernelLatency,
    /// One-way stream.
    Stream,
    /// Kernel transport one-way stream.
    KernelStream,
}

struct Opts {
    quick: bool,
    json: bool,
    svg: Option<String>,
    /// Run only the cases whose "transport: workload" contains one of these.
    only: Vec<String>,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("peer") {
        pin_to_cpu(1);
        peer(&args[1..]);
        return;
    }
    let opts = Opts {
        quick: args.iter().any(|a| a == "--quick"),
        json: args.iter().any(|a| a == "--json"),
        svg: args
            .iter()
            .position(|a| a == "--svg")
            .and_then(|i| args.get(i + 1).cloned()),
        only: args
            .windows(2)
            .filter(|w| w[0] == "--only")
            .map(|w| w[1].clone())
            .collect(),
    };
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get()); // before pinning narrows it
    pin_to_cpu(0);
    let rows = run_all(&opts);
    if opts.json {
        print_json(&rows);
    } else {
        print_table(&rows, cpus);
    }
    if let Some(path) = &opts.svg {
        std::fs::write(path, svg(&rows)).expect("write the SVG plot");
        eprintln!("latency plot written to {path}");
    }
}

// ---------------------------------------------------------------------------
// Driver
// ---------------------------------------------------------------------------

fn spawn_peer(args: &[&str], piped: bool) -> Child {
    let exe = std::env::current_exe().expect("own path");
    let mut cmd = Command::new(exe);
    cmd.arg("peer").args(args);
    if piped {
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    }
    cmd.spawn().expect("start the peer process")
}

fn cache_floor(n: u64) -> Histogram<u64> {
    let name = format!("memlink-compare-floor-{}", std::process::id());
    let line = FloorLine::create(&name);
    let mut child = spawn_peer(&["floor", &name, &(n + n / 10).to_string()], false);
    let h = line.initiate(n / 10, n);
    child.wait().expect("floor peer");
    line.remove();
    h
}

fn futex_floor(n: u32) -> Histogram<u64> {
    let name = format!("memlink-compare-futex-{}", std::process::id());
    let line = FloorLine::create(&name);
    let mut child = spawn_peer(&["futex", &name, &(n + n / 10).to_string()], false);
    let h = line.initiate_futex(n / 10, n);
    child.wait().expect("futex floor peer");
    line.remove();
    h
}

fn run_all(o: &Opts) -> Vec<Row> {
    let scale = if o.quick { 10 } else { 1 };
    let spin_n = 200_000 / scale;
    let kernel_n = 20_000 / scale;
    let stream_small = 5_000_000 / scale;
    let stream_big = 500_000 / scale;
    let kernel_stream_small = 1_000_000 / scale;
    let kernel_stream_big = 100_000 / scale;
    let floor_n = 20_000 / scale;

    // The simple loops and rtrb, measured together in alternating rounds
    // when the first of their rows runs.
    let simple = std::cell::OnceCell::new();
    let simple = |k: usize| simple.get_or_init(|| simple_loops(stream_small))[k];

    type Case<'a> = (&'a str, &'a str, Kind, Box<dyn Fn() -> Measured + 'a>);
    let cases: Vec<Case> = vec![
        (
            "cache-line floor",
            "round trip 8 B",
            Kind::SpinLatency,
            Box::new(|| rtt(cache_floor(spin_n))),
        ),
        (
            "futex floor",
            "round trip 4 B",
            Kind::ParkLatency,
            Box::new(|| rtt(futex_floor(kernel_n as u32))),
        ),
        (
            "memlink busy-poll",
            "round trip 64 B",
            Kind::SpinLatency,
            Box::new(|| paired(memlink_rtt_paired(spin_n))),
        ),
        (
            "memlink spin 50us+park",
            "round trip 64 B",
            Kind::SpinLatency,
            Box::new(|| rtt(memlink_rtt(Mode::Spin, spin_n))),
        ),
        (
            "memlink park",
            "round trip 64 B",
            Kind::ParkLatency,
            Box::new(|| rtt(memlink_rtt(Mode::Park, kernel_n))),
        ),
        (
            "memlink sync, park",
            "round trip 64 B",
            Kind::ParkLatency,
            Box::new(|| rtt(async_cases::memlink_rtt(Waiting::SyncPark, kernel_n))),
        ),
        (
            "memlink async, park",
            "round trip 64 B",
            Kind::ParkLatency,
            Box::new(|| rtt(async_cases::memlink_rtt(Waiting::AsyncPark, kernel_n))),
        ),
        (
            "memlink async, spin 50us",
            "round trip 64 B",
            Kind::SpinLatency,
            Box::new(|| rtt(async_cases::memlink_rtt(Waiting::AsyncSpin, spin_n))),
        ),
        (
            "rtrb (in-process)",
            "round trip 64 B",
            Kind::SpinLatency,
            Box::new(|| rtt(rtrb_rtt(spin_n))),
        ),
        (
            "unix socket",
            "round trip 64 B",
            Kind::KernelLatency,
            Box::new(|| rtt(kernel_rtt(Kernel::Unix, kernel_n))),
        ),
        #[cfg(unix)]
        (
            "tokio UnixStream",
            "round trip 64 B",
            Kind::KernelLatency,
            Box::new(|| rtt(async_cases::tokio_unix_rtt(kernel_n))),
        ),
        (
            "tcp loopback",
            "round trip 64 B",
            Kind::KernelLatency,
            Box::new(|| rtt(kernel_rtt(Kernel::Tcp, kernel_n))),
        ),
        (
            "pipe",
            "round trip 64 B",
            Kind::KernelLatency,
            Box::new(|| rtt(kernel_rtt(Kernel::Pipe, kernel_n))),
        ),
        (
            "memlink",
            "stream 64 B",
            Kind::Stream,
            Box::new(|| stream(memlink_stream(PAYLOAD, stream_small, false), PAYLOAD)),
        ),
        (
            "memlink batched",
            "stream 64 B",
            Kind::Stream,
            Box::new(|| stream(memlink_stream(PAYLOAD, stream_small, true), PAYLOAD)),
        ),
        (
            "memlink send/recv",
            "stream 64 B",
            Kind::Stream,
            Box::new(|| stream(simple(0), PAYLOAD)),
        ),
        (
            "memlink async send/recv",
            "stream 64 B",
            Kind::Stream,
            Box::new(|| stream(async_cases::memlink_stream(stream_small), PAYLOAD)),
        ),
        (
            "memlink 0.1.3 write/read",
            "stream 64 B",
            Kind::Stream,
            Box::new(|| stream(simple(1), PAYLOAD)),
        ),
        (
            "rtrb (in-process)",
            "stream 64 B",
            Kind::Stream,
            Box::new(|| stream(simple(2), PAYLOAD)),
        ),
        (
            "unix socket",
            "stream 64 B",
            Kind::KernelStream,
            Box::new(|| stream(kernel_stream(Kernel::Unix, PAYLOAD, kernel_stream_small), PAYLOAD)),
        ),
        (
            "tcp loopback",
            "stream 64 B",
            Kind::KernelStream,
            Box::new(|| stream(kernel_stream(Kernel::Tcp, PAYLOAD, kernel_stream_small), PAYLOAD)),
        ),
        (
            "pipe",
            "stream 64 B",
            Kind::KernelStream,
            Box::new(|| stream(kernel_stream(Kernel::Pipe, PAYLOAD, kernel_stream_small), PAYLOAD)),
        ),
        (
            "memlink batched",
            "stream 4 KiB",
            Kind::Stream,
            Box::new(|| stream(memlink_stream(BIG, stream_big, true), BIG)),
        ),
        (
            "unix socket",
            "stream 4 KiB",
            Kind::KernelStream,
            Box::new(|| stream(kernel_stream(Kernel::Unix, BIG, kernel_stream_big), BIG)),
        ),
        (
            "tcp loopback",
            "stream 4 KiB",
            Kind::KernelStream,
            Box::new(|| stream(kernel_stream(Kernel::Tcp, BIG, kernel_stream_big), BIG)),
        ),
        (
            "pipe",
            "stream 4 KiB",
            Kind::KernelStream,
            Box::new(|| stream(kernel_stream(Kernel::Pipe, BIG, kernel_stream_big), BIG)),
        ),
    ];
    // Unix sockets exist only on Unix.
    let cases: Vec<_> = cases
        .into_iter()
        .filter(|c| cfg!(unix) || c.0 != "unix socket")
        .filter(|c| {
            let label = format!("{}: {}", c.0, c.1);
            o.only.is_empty() || c.0.ends_with("floor") || o.only.iter().any(|p| label.contains(p.as_str()))
        })
        .collect();
    // The futex floor only if a park case needs it.
    let parks = cases.iter().any(|c| c.2 == Kind::ParkLatency && c.0 != "futex floor");
    let cases: Vec<_> = cases.into_iter().filter(|c| parks || c.0 != "futex floor").collect();
    let total = cases.len();
    let mut rows = Vec::new();
    for (i, (transport, workload, kind, run)) in cases.into_iter().enumerate() {
        eprint!("\r[{:>2}/{total}] {transport}: {workload} ...{:20}", i + 1, "");
        let before = cache_floor(floor_n).value_at_quantile(0.5);
        let (hist, per_sec, bytes, paired_floor) = run();
        let after = cache_floor(floor_n).value_at_quantile(0.5);
        rows.push(Row {
            transport: transport.into(),
            workload: workload.into(),
            kind,
            hist,
            per_sec,
            bytes,
            floor_before: before,
            floor_after: after,
            paired_floor,
        });
    }
    // Cases that measure several rows at once, in alternating chunks between
    // the same two processes: (label for --only, run) -> named histograms.
    type Grouped<'a> = (&'a str, Box<dyn Fn() -> Vec<(&'static str, Histogram<u64>)> + 'a>);
    let grouped: [Grouped; 2] = [
        (
            "memlink busy-poll: round trip 64 B, 255 idle clients",
            Box::new(|| {
                let (none, idle) = memlink_idle_paired(spin_n);
                vec![("memlink, 0 idle clients", none), ("memlink, 255 idle clients", idle)]
            }),
        ),
        (
            "memlink typed, call, pipelined calls: round trip 64 B",
            Box::new(|| typed_cases::measure(kernel_n).rows().into()),
        ),
    ];
    for (label, run) in grouped {
        if !(o.only.is_empty() || o.only.iter().any(|p| label.contains(p.as_str()))) {
            continue;
        }
        eprint!("\r[+] {label} ...{:20}", "");
        let before = cache_floor(floor_n).value_at_quantile(0.5);
        let measured = run();
        let after = cache_floor(floor_n).value_at_quantile(0.5);
        for (transport, h) in measured {
            rows.push(Row {
                transport: transport.into(),
                workload: "round trip 64 B".into(),
                kind: Kind::SpinLatency,
                per_sec: 1e9 / h.mean(),
                hist: Some(h),
                bytes: 0,
                floor_before: before,
                floor_after: after,
                paired_floor: None,
            });
        }
    }
    eprintln!("\r{:70}", "");
    rows
}

/// The typed API's ratios to its baselines, from the rows measured.
fn typed_ratios(rows: &[Row]) -> Vec<(&'static str, &'static str, f64)> {
    typed_cases::ratios(|t| {
        rows.iter()
            .find(|r| r.transport == t)?
            .hist
            .as_ref()
            .map(|h| h.value_at_quantile(0.5) as f64)
    })
}

/// The p50 round trip with 255 idle clients connected over the same with
/// none, if both were measured.
fn idle_ratio(rows: &[Row]) -> Option<f64> {
    let p50 = |t: &str| {
        rows.iter()
            .find(|r| r.transport == t)
            .and_then(|r| r.hist.as_ref())
            .map(|h| h.value_at_quantile(0.5) as f64)
    };
    Some(p50("memlink, 255 idle clients")? / p50("memlink, 0 idle clients")?)
}

fn rtt(h: Histogram<u64>) -> Measured {
    let per_sec = 1e9 / h.mean();
    (Some(h), per_sec, 0, None)
}

/// Round trips and the floor measured interleaved with them.
fn paired((h, floor): (Histogram<u64>, Histogram<u64>)) -> Measured {
    let per_sec = 1e9 / h.mean();
    (Some(h), per_sec, 0, Some(floor))
}

fn stream(per_sec: f64, size: usize) -> Measured {
    (None, per_sec, size, None)
}

// ---------------------------------------------------------------------------
// memlink
// ---------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Mode {
    Busy,
    Spin,
    Park,
}

fn memlink_daemon(tag: &str) -> (String, NrelayShmTransport) {
    let name = format!("memlink-compare-{tag}-{}", std::process::id());
    let t = NrelayShmTransport::builder(&name)
        .size(16 << 20)
        .max_clients(1)
        .create()
        .expect("create the segment");
    (name, t)
}

fn await_client(d: &NrelayShmTransport) -> memlink_shm::transport::ClientId {
    let (from, _, hello) = d.recv_from(Some(Duration::from_secs(30))).expect("the peer says hello");
    assert_eq!(hello, b"hello");
    from
}

/// Round trips of the floor and of the case per chunk in `memlink_rtt_paired`.
const CHUNK: u64 = 2_000;

fn memlink_rtt(mode: Mode, n: u64) -> Histogram<u64> {
    let (name, d) = memlink_daemon("rtt");
    let m = match mode {
        Mode::Busy => "busy",
        Mode::Spin => "spin",
        Mode::Park => "park",
    };
    let mut child = spawn_peer(&["memlink-echo", &name, m], false);
    let to = await_client(&d);
    d.set_spin(match mode {
        Mode::Park => Duration::ZERO,
        _ => DEFAULT_SPIN,
    });
    let mut h = histogram();
    let warm = n / 10;
    for i in 0..warm + n {
        let t = memlink_round_trip(&d, to, mode);
        if i >= warm {
            h.saturating_record(t);
        }
    }
    d.send_to(to, Priority::Critical, b"quit").expect("quit");
    child.wait().expect("peer exit");
    drop(d);
    let _ = name;
    h
}

/// One timed 64 B round trip through the daemon (ns).
fn memlink_round_trip(d: &NrelayShmTransport, to: ClientId, mode: Mode) -> u64 {
    let t0 = Instant::now();
    d.write_to(to, Priority::High, &[7u8; PAYLOAD]).expect("write");
    match mode {
        Mode::Busy => loop {
            if d.read_with(|_, b| b.len()).expect("read").is_some() {
                break;
            }
            std::hint::spin_loop();
        },
        Mode::Spin | Mode::Park => {
            d.signal();
            loop {
                if d.read_with(|_, b| b.len()).expect("read").is_some() {
                    break;
                }
                d.wait(None).expect("wait");
            }
        }
    }
    t0.elapsed().as_nanos() as u64
}

/// Busy-poll round trips, alternating in chunks of [`CHUNK`] with bare
/// cache-line round trips between the same two processes: when the host
/// moves the vCPUs, both histograms see it alike. Returns (case, floor).
fn memlink_rtt_paired(n: u64) -> (Histogram<u64>, Histogram<u64>) {
    let (name, d) = memlink_daemon("rtt");
    let floor_name = format!("memlink-compare-pair-{}", std::process::id());
    let line = FloorLine::create(&floor_name);
    let mut child = spawn_peer(&["memlink-echo", &name, "busy", &floor_name], false);
    let to = await_client(&d);
    let (mut h, mut floor) = (histogram(), histogram());
    let chunks = n.div_ceil(CHUNK) + 1; // the first pair warms up
    for c in 0..chunks {
        for _ in 0..CHUNK {
            let t = memlink_round_trip(&d, to, Mode::Busy);
            if c > 0 {
                h.saturating_record(t);
            }
        }
        d.write_to(to, Priority::Critical, b"floor").expect("floor request");
        let f = line.initiate(0, CHUNK);
        if c > 0 {
            floor.add(&f).expect("same histogram bounds");
        }
    }
    d.send_to(to, Priority::Critical, b"quit").expect("quit");
    child.wait().expect("peer exit");
    line.remove();
    (h, floor)
}

/// 64 B busy-poll round trips through a daemon with no other client and
/// through one with 255 idle clients connected, alternating in chunks of
/// [`CHUNK`] between the same two processes (both daemons here, both echo
/// clients and the idle ones in the peer). Returns (none, idle).
fn memlink_idle_paired(n: u64) -> (Histogram<u64>, Histogram<u64>) {
    let pid = std::process::id();
    let names = [
        format!("memlink-compare-idle0-{pid}"),
        format!("memlink-compare-idle255-{pid}"),
    ];
    let create = |name: &str| {
        Daemon::builder(name)
            .size(16 << 20)
            .max_clients(256)
            .max_message_size(256)
            .create()
            .expect("create the segment")
    };
    let mut daemons = [create(&names[0]), create(&names[1])];
    let mut child = spawn_peer(&["idle-echo", &names[0], &names[1], "255"], false);
    let step = Duration::from_secs(60);
    let ids = [0, 1].map(|k| daemons[k].recv_timeout(step).expect("the peer says hello").client());
    assert_eq!(
        daemons[1].control().client_count(),
        256,
        "the idle clients are connected"
    );
    let mut hists = [histogram(), histogram()];
    let chunks = n.div_ceil(CHUNK) + 1; // the first pair warms up
    for c in 0..chunks {
        for k in 0..2 {
            for _ in 0..CHUNK {
                let t = daemon_round_trip(&mut daemons[k], ids[k]);
                if c > 0 {
                    hists[k].saturating_record(t);
                }
            }
        }
    }
    for k in 0..2 {
        daemons[k].send_to(ids[k], Priority::Critical, b"quit").expect("quit");
    }
    child.wait().expect("peer exit");
    let [none, idle] = hists;
    (none, idle)
}

/// One timed 64 B busy-poll round trip from a daemon to client `to` (ns).
fn daemon_round_trip(d: &mut Daemon, to: memlink_shm::ClientId) -> u64 {
    let t0 = Instant::now();
    d.send_to(to, Priority::High, &[7u8; PAYLOAD]).expect("send_to");
    loop {
        match d.receiver().try_recv_with(|_, _, b| b.len()) {
            Ok(_) => break,
            Err(memlink_shm::Error::Empty) => std::hint::spin_loop(),
            Err(e) => panic!("round trip: {e}"),
        }
    }
    t0.elapsed().as_nanos() as u64
}

/// The simple loop, client -> daemon: the peer sends one 64 B message per
/// call (`send`, or the 0.1.3 layer's `write`), this process receives one
/// owned message per call (`recv`, or `read`). Messages per second.
fn memlink_simple_stream(n: u64, old_api: bool) -> f64 {
    let name = format!("memlink-compare-simple-{}", std::process::id());
    let step = Duration::from_secs(60);
    let api = if old_api { "old" } else { "new" };
    let elapsed = if old_api {
        let (name, d) = memlink_daemon("simple");
        let mut child = spawn_peer(&["memlink-source", &name, api, &n.to_string()], false);
        let from = await_client(&d);
        let t0 = Instant::now();
        d.send_to(from, Priority::High, b"go").expect("go");
        let mut sum = 0u64;
        let mut got = 0;
        while got < n {
            match d.read() {
                Ok((_, m)) => {
                    sum += u64::from(m[0]);
                    got += 1;
                }
                Err(ShmError::Empty) => std::hint::spin_loop(),
                Err(e) => panic!("read: {e}"),
            }
        }
        std::hint::black_box(sum);
        let elapsed = t0.elapsed();
        child.wait().expect("peer exit");
        elapsed
    } else {
        let mut d = Daemon::builder(&name)
            .size(16 << 20)
            .max_clients(1)
            .create()
            .expect("create the segment");
        let mut child = spawn_peer(&["memlink-source", &name, api, &n.to_string()], false);
        let from = d.recv_timeout(step).expect("the peer says hello").client();
        let t0 = Instant::now();
        d.send_to(from, Priority::High, b"go").expect("go");
        let mut sum = 0u64;
        for _ in 0..n {
            let m = d.recv_timeout(step).expect("a message");
            sum += u64::from(m.payload()[0]);
        }
        std::hint::black_box(sum);
        let elapsed = t0.elapsed();
        child.wait().expect("peer exit");
        elapsed
    };
    n as f64 / secs(elapsed)
}

/// One-way stream daemon -> client; returns messages per second.
fn memlink_stream(size: usize, n: u64, batched: bool) -> f64 {
    let (name, d) = memlink_daemon("stream");
    let mut child = spawn_peer(&["memlink-sink", &name, &n.to_string()], false);
    let to = await_client(&d);
    let payload = vec![9u8; size];
    let t0 = Instant::now();
    let mut sent = 0u64;
    while sent < n {
        if batched {
            let want = (n - sent).min(64);
            let wrote = d
                .write_to_batch(to, |b| {
                    let mut k = 0;
                    while k < want && b.write(Priority::High, &payload).is_ok() {
                        k += 1;
                    }
                    k
                })
                .expect("batch");
            if wrote == 0 {
                std::hint::spin_loop();
            }
            sent += wrote;
        } else {
            match d.write_to(to, Priority::High, &payload) {
                Ok(()) => sent += 1,
                Err(ShmError::BufferFull) => std::hint::spin_loop(),
                Err(e) => panic!("stream write: {e}"),
            }
        }
    }
    let (_, _, done) = d.recv_from(Some(Duration::from_secs(60))).expect("the sink reports");
    let elapsed = t0.elapsed();
    assert_eq!(done, n.to_le_bytes());
    child.wait().expect("peer exit");
    n as f64 / secs(elapsed)
}

// ---------------------------------------------------------------------------
// rtrb, in process
// ---------------------------------------------------------------------------

fn rtrb_rtt(n: u64) -> Histogram<u64> {
    let (mut to_tx, mut to_rx) = rtrb::RingBuffer::<[u8; PAYLOAD]>::new(1024);
    let (mut back_tx, mut back_rx) = rtrb::RingBuffer::<[u8; PAYLOAD]>::new(1024);
    let warm = n / 10;
    let echo = std::thread::spawn(move || {
        pin_to_cpu(1);
        for _ in 0..warm + n {
            let m = loop {
                if let Ok(m) = to_rx.pop() {
                    break m;
                }
                std::hint::spin_loop();
            };
            while back_tx.push(m).is_err() {}
        }
    });
    let mut h = histogram();
    for i in 0..warm + n {
        let t0 = Instant::now();
        while to_tx.push([7; PAYLOAD]).is_err() {}
        while back_rx.pop().is_err() {
            std::hint::spin_loop();
        }
        if i >= warm {
            h.saturating_record(t0.elapsed().as_nanos() as u64);
        }
    }
    echo.join().unwrap();
    h
}

/// Rounds in which the simple loops and rtrb alternate.
const ROUNDS: u64 = 5;

/// The simple loop through the new API and the 0.1.3 one, and the in-process
/// rtrb stream, `n` messages each in [`ROUNDS`] alternating rounds, so that
/// a move of the vCPUs by the host during the run hits all three alike:
/// messages per second of each over all its rounds.
fn simple_loops(n: u64) -> [f64; 3] {
    let per_round = n / ROUNDS;
    let mut secs = [0.0; 3];
    for _ in 0..ROUNDS {
        secs[0] += per_round as f64 / memlink_simple_stream(per_round, false);
        secs[1] += per_round as f64 / memlink_simple_stream(per_round, true);
        secs[2] += per_round as f64 / rtrb_stream(per_round);
    }
    secs.map(|s| (per_round * ROUNDS) as f64 / s)
}

fn rtrb_stream(n: u64) -> f64 {
    let (mut tx, mut rx) = rtrb::RingBuffer::<[u8; PAYLOAD]>::new(1 << 16);
    let t0 = Instant::now();
    let sink = std::thread::spawn(move || {
        pin_to_cpu(1);
        let mut got = 0u64;
        let mut buf = [0u8; PAYLOAD];
        while got < n {
            match rx.pop() {
                Ok(m) => {
                    buf = m;
                    got += 1;
                }
                Err(_) => std::hint::spin_loop(),
            }
        }
        std::hint::black_box(buf);
    });
    let payload = [9u8; PAYLOAD];
    for _ in 0..n {
        while tx.push(payload).is_err() {
            std::hint::spin_loop();
        }
    }
    sink.join().unwrap();
    n as f64 / secs(t0.elapsed())
}

// ---------------------------------------------------------------------------
// Kernel transports
// ---------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Kernel {
    Unix,
    Tcp,
    Pipe,
}

/// A connected byte stream to the peer (and the peer process).
fn kernel_connect(k: Kernel, args: &[&str]) -> (Box<dyn Read>, Box<dyn Write>, Child) {
    match k {
        #[cfg(not(unix))]
        Kernel::Unix => unreachable!("unix-socket cases are filtered out off Unix"),
        #[cfg(unix)]
        Kernel::Unix => {
            let path = std::env::temp_dir().join(format!("memlink-compare-{}.sock", std::process::id()));
            let _ = std::fs::remove_file(&path);
            let listener = UnixListener::bind(&path).expect("bind the unix socket");
            let mut a = vec!["unix-echo", path.to_str().unwrap()];
            a.extend_from_slice(args);
            let child = spawn_peer(&a, false);
            let (s, _) = listener.accept().expect("accept");
            let _ = std::fs::remove_file(&path);
            (Box::new(s.try_clone().unwrap()), Box::new(s), child)
        }
        Kernel::Tcp => {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
            let port = listener.local_addr().unwrap().port().to_string();
            let mut a = vec!["tcp-echo", port.as_str()];
            a.extend_from_slice(args);
            let child = spawn_peer(&a, false);
            let (s, _) = listener.accept().expect("accept");
            s.set_nodelay(true).unwrap();
            (Box::new(s.try_clone().unwrap()), Box::new(s), child)
        }
        Kernel::Pipe => {
            let mut a = vec!["pipe-echo"];
            a.extend_from_slice(args);
            let mut child = spawn_peer(&a, true);
            let r = child.stdout.take().unwrap();
            let w = child.stdin.take().unwrap();
            (Box::new(r), Box::new(w), child)
        }
    }
}

fn kernel_rtt(k: Kernel, n: u64) -> Histogram<u64> {
    let (mut r, mut w, mut child) = kernel_connect(k, &["rtt", &PAYLOAD.to_string()]);
    let mut buf = [7u8; PAYLOAD];
    let mut h = histogram();
    let warm = n / 10;
    for i in 0..warm + n {
        let t0 = Instant::now();
        w.write_all(&buf).expect("send");
        r.read_exact(&mut buf).expect("receive");
        if i >= warm {
            h.saturating_record(t0.elapsed().as_nanos() as u64);
        }
    }
    // Both halves: a cloned socket stays open (no EOF for the peer) while either lives.
    drop((r, w));
    child.wait().expect("peer exit");
    h
}

fn kernel_stream(k: Kernel, size: usize, n: u64) -> f64 {
    let (mut r, mut w, mut child) = kernel_connect(k, &["stream", &size.to_string(), &n.to_string()]);
    let payload = vec![9u8; size];
    let t0 = Instant::now();
    for _ in 0..n {
        w.write_all(&payload).expect("send");
    }
    w.flush().expect("flush");
    let mut done = [0u8; 8];
    r.read_exact(&mut done).expect("the sink reports");
    let elapsed = t0.elapsed();
    assert_eq!(u64::from_le_bytes(done), n);
    drop((r, w));
    child.wait().expect("peer exit");
    n as f64 / secs(elapsed)
}

// ---------------------------------------------------------------------------
// Peer process
// ---------------------------------------------------------------------------

fn peer(args: &[String]) {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    match a.as_slice() {
        ["floor", name, n] => FloorLine::open(name).respond(n.parse().unwrap()),
        ["futex", name, n] => FloorLine::open(name).respond_futex(n.parse().unwrap()),
        ["memlink-echo", name, mode, floor @ ..] => {
            // With a floor segment: a Critical "floor" asks for CHUNK bare
            // cache-line round trips on it, answered before echoing on.
            let line = floor.first().map(|f| FloorLine::open(f));
            let c = NrelayShmTransport::connect(name, 1).expect("connect");
            if *mode == "park" {
                c.set_spin(Duration::ZERO);
            }
            c.send(Priority::High, b"hello").unwrap();
            let busy = *mode == "busy";
            loop {
                let got = c.read_with(|p, b| {
                    if p == Priority::Critical {
                        if let (Some(line), b"floor") = (&line, b) {
                            line.respond(CHUNK);
                            return true;
                        }
                        return false;
                    }
                    c.write(Priority::High, b).expect("echo");
                    true
                });
                match got {
                    Ok(Some(true)) => {
                        if !busy {
                            c.signal();
                        }
                    }
                    Ok(Some(false)) | Err(_) => return,
                    Ok(None) if busy => std::hint::spin_loop(),
                    Ok(None) => {
                        if c.wait(None).is_err() {
                            return;
                        }
                    }
                }
            }
        }
        ["idle-echo", none, busy, n] => {
            // Idle clients first, so the daemon counts them before the hello.
            let idle: Vec<Client> = (0..n.parse::<usize>().unwrap())
                .map(|_| Client::connect(busy).expect("connect an idle client"))
                .collect();
            let mut echo = [
                Client::connect(none).expect("connect"),
                Client::connect(busy).expect("connect"),
            ];
            for c in &mut echo {
                c.send(Priority::High, b"hello").unwrap();
            }
            let mut buf = [0u8; PAYLOAD];
            let mut open = 2;
            while open > 0 {
                for c in &mut echo {
                    match c.receiver().try_recv_with(|p, b| {
                        buf[..b.len()].copy_from_slice(b);
                        (p, b.len())
                    }) {
                        Ok((Priority::Critical, _)) => open -= 1,
                        Ok((_, len)) => c.send(Priority::High, &buf[..len]).expect("echo"),
                        Err(memlink_shm::Error::Empty) => std::hint::spin_loop(),
                        Err(_) => return,
                    }
                }
            }
            drop(idle);
        }
        ["memlink-source", name, api, n] => {
            let n: u64 = n.parse().unwrap();
            let step = Duration::from_secs(60);
            let msg = [5u8; PAYLOAD];
            if *api == "old" {
                let c = NrelayShmTransport::connect(name, 1).expect("connect");
                c.send(Priority::High, b"hello").unwrap();
                c.recv(Some(step)).expect("go");
                let mut sent = 0;
                while sent < n {
                    match c.write(Priority::High, &msg) {
                        Ok(()) => sent += 1,
                        Err(ShmError::BufferFull) => std::hint::spin_loop(),
                        Err(e) => panic!("write: {e}"),
                    }
                }
            } else {
                let mut c = Client::connect(name).expect("connect");
                c.send(Priority::High, b"hello").unwrap();
                c.recv_timeout(step).expect("go");
                for _ in 0..n {
                    c.send(Priority::High, &msg).expect("send");
                }
            }
        }
        ["memlink-sink", name, n] => {
            let n: u64 = n.parse().unwrap();
            let c = NrelayShmTransport::connect(name, 1).expect("connect");
            c.send(Priority::High, b"hello").unwrap();
            let mut got = 0u64;
            let mut sink = [0u8; BIG];
            while got < n {
                let k = c
                    .read_batch_with(256, |_, b| sink[..b.len()].copy_from_slice(b))
                    .expect("read");
                if k == 0 {
                    std::hint::spin_loop();
                }
                got += k as u64;
            }
            std::hint::black_box(&sink);
            c.send(Priority::High, &got.to_le_bytes()).unwrap();
        }
        #[cfg(unix)]
        ["unix-echo", path, rest @ ..] => {
            let s = UnixStream::connect(path).expect("connect");
            byte_peer(s.try_clone().unwrap(), s, rest);
        }
        ["tcp-echo", port, rest @ ..] => {
            let s = TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).expect("connect");
            s.set_nodelay(true).unwrap();
            byte_peer(s.try_clone().unwrap(), s, rest);
        }
        ["pipe-echo", rest @ ..] => byte_peer(std::io::stdin().lock(), std::io::stdout().lock(), rest),
        _ if async_cases::peer(&a) => {}
        _ if typed_cases::peer(&a) => {}
        _ => panic!("unknown peer role {a:?}"),
    }
}

fn byte_peer(mut r: impl Read, mut w: impl Write, args: &[&str]) {
    match args {
        ["rtt", size] => {
            let mut buf = vec![0u8; size.parse().unwrap()];
            while r.read_exact(&mut buf).is_ok() {
                w.write_all(&buf).expect("echo");
                w.flush().expect("flush");
            }
        }
        ["stream", size, n] => {
            let size: usize = size.parse().unwrap();
            let n: u64 = n.parse().unwrap();
            let mut buf = vec![0u8; size * 64];
            let cap = buf.len() as u64;
            let mut left = size as u64 * n;
            while left > 0 {
                let k = r.read(&mut buf[..left.min(cap) as usize]).expect("read");
                assert!(k > 0, "stream ended early");
                left -= k as u64;
            }
            w.write_all(&n.to_le_bytes()).expect("report");
            w.flush().expect("flush");
        }
        _ => panic!("unknown byte peer {args:?}"),
    }
}

// ---------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------

fn floor_moved(r: &Row) -> bool {
    let (b, a) = (r.floor_before as f64, r.floor_after as f64);
    (b - a).abs() / ((b + a) / 2.0).max(1.0) > 0.25
}

/// Ratios: (to the floor of its kind, to the best kernel transport).
fn ratios(rows: &[Row], r: &Row) -> (Option<f64>, Option<f64>) {
    let p50 = |r: &Row| r.hist.as_ref().map(|h| h.value_at_quantile(0.5) as f64);
    let find = |t: &str, w: &str| rows.iter().find(|x| x.transport == t && x.workload.starts_with(w));
    let best_kernel_latency = rows
        .iter()
        .filter(|x| x.kind == Kind::KernelLatency)
        .filter_map(p50)
        .fold(f64::INFINITY, f64::min);
    // Ratios to the kernel transports only where one was measured (see `--only`).
    let to_kernel = |v: f64| best_kernel_latency.is_finite().then(|| v / best_kernel_latency);
    match r.kind {
        Kind::SpinLatency => {
            // The floor measured interleaved with the case if it was, else
            // the one measured around this very case.
            let floor = r
                .paired_floor
                .as_ref()
                .map_or((r.floor_before + r.floor_after) as f64 / 2.0, |f| {
                    f.value_at_quantile(0.5) as f64
                });
            (p50(r).map(|v| v / floor), p50(r).and_then(to_kernel))
        }
        Kind::ParkLatency => {
            let floor = find("futex floor", "round trip").and_then(p50);
            (p50(r).zip(floor).map(|(v, f)| v / f), p50(r).and_then(to_kernel))
        }
        Kind::KernelLatency => (None, p50(r).and_then(to_kernel)),
        Kind::Stream | Kind::KernelStream => {
            let size = &r.workload[r.workload.find(' ').unwrap_or(0)..];
            let best_kernel = rows
                .iter()
                .filter(|x| x.kind == Kind::KernelStream && x.workload.ends_with(size))
                .map(|x| x.per_sec)
                .fold(0.0, f64::max);
            // Streams: against the in-process ring's rate (where measured).
            let rtrb = find("rtrb (in-process)", &r.workload).map(|x| x.per_sec);
            (
                rtrb.map(|v| r.per_sec / v),
                (best_kernel > 0.0).then(|| r.per_sec / best_kernel),
            )
        }
    }
}

fn print_table(rows: &[Row], cpus: usize) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l[l.find(':').map_or(0, |i| i + 2)..].to_owned())
        })
        .unwrap_or_default();
    println!("memlink-shm compare: {cpus} CPUs ({cpu}), two processes pinned to CPU 0 and 1\n");
    println!(
        "{:<24} {:<16} {:>9} {:>9} {:>9} {:>10} {:>9} {:>10} {:>11}",
        "transport", "workload", "p50", "p99", "p99.9", "msgs/s", "MB/s", "vs floor", "vs kernel"
    );
    for r in rows {
        let (f, k) = ratios(rows, r);
        let q = |x: f64| r.hist.as_ref().map_or("-".into(), |h| ns(h.value_at_quantile(x)));
        let x = |v: Option<f64>| v.map_or("-".into(), ratio);
        println!(
            "{:<24} {:<16} {:>9} {:>9} {:>9} {:>10} {:>9} {:>10} {:>11}{}",
            r.transport,
            r.workload,
            q(0.5),
            q(0.99),
            q(0.999),
            rate(r.per_sec),
            if r.bytes > 0 {
                format!("{:.0}", r.per_sec * r.bytes as f64 / 1e6)
            } else {
                "-".into()
            },
            x(f),
            x(k),
            match &r.paired_floor {
                Some(f) => format!("  (floor interleaved: {})", ns(f.value_at_quantile(0.5))),
                None if floor_moved(r) => "  (floor moved)".into(),
                None => String::new(),
            }
        );
    }
    if let Some(r) = idle_ratio(rows) {
        println!(
            "\n255 idle clients connected / none: {} (p50 round trip, in chunks of {CHUNK} alternating between the two daemons)",
            ratio(r)
        );
    }
    let asynch = async_ratios(rows);
    if !asynch.is_empty() {
        println!("\nasync API (tokio current-thread runtimes in both processes), same run:");
        for (label, goal, v) in asynch {
            println!("  {label:<42} {:>8}  (goal {goal})", ratio(v));
        }
    }
    let typed = typed_ratios(rows);
    if !typed.is_empty() {
        println!(
            "\ntyped API (the five memlink rows above in alternating chunks of {CHUNK}; 8 calls: per batch), same run:"
        );
        for (label, goal, v) in typed {
            println!("  {label:<42} {:>8}  (goal {goal})", ratio(v));
        }
    }
    println!(
        "\nvs floor: round trips against the cache-line floor measured around the same case (park: the futex floor),\n\
         or, where marked, in chunks of {CHUNK} round trips alternating with the case's between the same processes;\n\
         streams against the in-process rtrb rate (send/recv, 0.1.3 write/read and rtrb in {ROUNDS} alternating rounds).\n\
         vs kernel: against the best of unix socket, tcp and pipe."
    );
}

/// The async API's ratios to its baselines, from the rows measured.
fn async_ratios(rows: &[Row]) -> Vec<(&'static str, &'static str, f64)> {
    let find = |t: &str, w: &str| rows.iter().find(|r| r.transport == t && r.workload == w);
    async_cases::ratios(
        |t| {
            find(t, "round trip 64 B")?
                .hist
                .as_ref()
                .map(|h| h.value_at_quantile(0.5) as f64)
        },
        |t| find(t, "stream 64 B").map(|r| r.per_sec),
    )
}

/// A ratio with enough digits to mean something however small it is.
fn ratio(v: f64) -> String {
    if v >= 0.1 {
        format!("{v:.2}x")
    } else {
        format!("{v:.4}x")
    }
}

fn print_json(rows: &[Row]) {
    let mut out = String::from("{\"rows\":[");
    for (i, r) in rows.iter().enumerate() {
        let (f, k) = ratios(rows, r);
        let q = |x: f64| {
            r.hist
                .as_ref()
                .map_or("null".into(), |h| h.value_at_quantile(x).to_string())
        };
        let o = |v: Option<f64>| v.map_or("null".into(), |v| format!("{v:.4}"));
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            "{{\"transport\":\"{}\",\"workload\":\"{}\",\"p50_ns\":{},\"p99_ns\":{},\"p999_ns\":{},\"msgs_per_sec\":{:.0},\"mb_per_sec\":{:.1},\"vs_floor\":{},\"vs_best_kernel\":{},\"floor_before_ns\":{},\"floor_after_ns\":{},\"floor_moved\":{},\"floor_interleaved_ns\":{}}}",
            r.transport,
            r.workload,
            q(0.5),
            q(0.99),
            q(0.999),
            r.per_sec,
            r.per_sec * r.bytes as f64 / 1e6,
            o(f),
            o(k),
            r.floor_before,
            r.floor_after,
            floor_moved(r),
            r.paired_floor
                .as_ref()
                .map_or("null".into(), |f| f.value_at_quantile(0.5).to_string())
        ));
    }
    let asynch: Vec<String> = async_ratios(rows)
        .into_iter()
        .map(|(label, goal, v)| format!("{{\"ratio\":\"{label}\",\"goal\":\"{goal}\",\"value\":{v:.4}}}"))
        .collect();
    let typed: Vec<String> = typed_ratios(rows)
        .into_iter()
        .map(|(label, goal, v)| format!("{{\"ratio\":\"{label}\",\"goal\":\"{goal}\",\"value\":{v:.4}}}"))
        .collect();
    out.push_str(&format!(
        "],\"idle_ratio\":{},\"async_ratios\":[{}],\"typed_ratios\":[{}]}}",
        idle_ratio(rows).map_or("null".into(), |r| format!("{r:.4}")),
        asynch.join(","),
        typed.join(",")
    ));
    println!("{out}");
}

/// Latency distributions of the round-trip cases: time on a log axis,
/// percentile on the usual HdrHistogram axis (90, 99, 99.9, 99.99 % equally
/// spaced), so that the tails are visible.
fn svg(rows: &[Row]) -> String {
    let (w, h, left, right, bottom, top) = (1100.0, 520.0, 70.0, 330.0, 50.0, 20.0);
    let lat: Vec<&Row> = rows.iter().filter(|r| r.hist.is_some()).collect();
    let (lo, hi) = (10f64.ln(), 1e6f64.ln()); // 10 ns .. 1 ms
    let x = |v: f64| left + (v.clamp(10.0, 1e6).ln() - lo) / (hi - lo) * (w - left - right);
    let nines = |q: f64| (1.0 / (1.0 - q.min(0.9999))).log10(); // 0 .. 4
    let y = |q: f64| (h - bottom) - nines(q) / 4.0 * (h - bottom - top);
    let colors = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    ];
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    s.push_str(&format!(r#"<rect width="{w}" height="{h}" fill="white"/>"#));
    for (t, label) in [
        (10.0, "10 ns"),
        (100.0, "100 ns"),
        (1e3, "1 us"),
        (1e4, "10 us"),
        (1e5, "100 us"),
        (1e6, "1 ms"),
    ] {
        s.push_str(&format!(
            r##"<line x1="{0}" y1="{top}" x2="{0}" y2="{1}" stroke="#ddd"/><text x="{0}" y="{2}" text-anchor="middle">{label}</text>"##,
            x(t),
            h - bottom,
            h - bottom + 18.0
        ));
    }
    for (q, label) in [
        (0.0, "0 %"),
        (0.9, "90 %"),
        (0.99, "99 %"),
        (0.999, "99.9 %"),
        (0.9999, "99.99 %"),
    ] {
        s.push_str(&format!(
            r##"<line x1="{left}" y1="{0}" x2="{1}" y2="{0}" stroke="#eee"/><text x="{2}" y="{3}" text-anchor="end">{label}</text>"##,
            y(q),
            w - right,
            left - 6.0,
            y(q) + 4.0
        ));
    }
    for (i, r) in lat.iter().enumerate() {
        let hist = r.hist.as_ref().unwrap();
        let mut pts = String::new();
        for v in hist.iter_quantiles(5) {
            let q = v.quantile_iterated_to();
            if q > 0.9999 {
                break;
            }
            pts.push_str(&format!("{:.1},{:.1} ", x(v.value_iterated_to() as f64), y(q)));
        }
        let c = colors[i % colors.len()];
        s.push_str(&format!(
            r#"<polyline fill="none" stroke="{c}" stroke-width="1.5" points="{pts}"/>"#
        ));
        s.push_str(&format!(
            r#"<text x="{}" y="{}" fill="{c}">{} ({})</text>"#,
            w - right + 15.0,
            top + 20.0 + 18.0 * i as f64,
            r.transport,
            r.workload
        ));
    }
    s.push_str(&format!(
        r#"<text x="{}" y="{}" text-anchor="middle">round-trip time (log scale)</text>"#,
        (left + w - right) / 2.0,
        h - 8.0
    ));
    s.push_str(r#"<text x="16" y="260" transform="rotate(-90 16 260)" text-anchor="middle">percentile</text></svg>"#);
    s
}
