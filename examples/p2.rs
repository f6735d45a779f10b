//! p2: ping-pong between a daemon and a client in two real processes.
//!
//! ```text
//! cargo run --release --example p2                    # both sides: starts the client as a child
//! cargo run --release --example p2 -- daemon [NAME]   # terminal 1
//! cargo run --release --example p2 -- client [NAME]   # terminal 2
//! ```
//! Option `--quick` runs fewer iterations (a smoke test).
//!
//! The client drives: it measures the physical floors (a bare cache-line
//! ping-pong and a bare futex ping-pong between the same two processes)
//! before and after, round trips for 0/64/1024/4096-byte payloads in
//! busy-poll, spin-then-park and park-always modes, and one-way streaming,
//! then prints the tables. Each busy-poll and spin row also measures the
//! cache-line floor in chunks alternating with its own round trips and is
//! compared with that, so that a move of the vCPUs hits both alike.

#[path = "support/mod.rs"]
mod support;

use std::hint::spin_loop;
use std::process::Command;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use memlink_shm::testkit::DEFAULT_SPIN;
use memlink_shm::{Client, ClientId, Daemon, Error, Fill, Priority};
use support::{histogram, ns, pin_to_cpu, rate, secs, FloorLine};

const SIZES: [usize; 4] = [0, 64, 1024, 4096];
const DEFAULT_NAME: &str = "memlink-p2";
const SEGMENT_SIZE: usize = 8 << 20;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Poll without ever sleeping.
    Busy,
    /// `wait`: spin for the given time, then sleep on the futex.
    Wait(Duration),
}

impl Mode {
    fn label(self) -> String {
        match self {
            Mode::Busy => "busy-poll".into(),
            Mode::Wait(d) if d.is_zero() => "park (futex each time)".into(),
            Mode::Wait(d) => format!("spin {} us, then park", d.as_micros()),
        }
    }

    fn command(self) -> String {
        match self {
            Mode::Busy => "MODE busy".into(),
            Mode::Wait(d) => format!("MODE wait {}", d.as_nanos()),
        }
    }
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let pos: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .map(String::as_str)
        .collect();
    match pos.first().copied() {
        None => both_sides(quick),
        Some("daemon") => {
            let name = pos.get(1).copied().unwrap_or(DEFAULT_NAME);
            let mut daemon = create(name)?;
            println!(
                "p2 daemon: serving segment {name:?}; now run `cargo run --release --example p2 -- client {name}`"
            );
            pin_to_cpu(0);
            serve(&mut daemon)
        }
        Some("client") => {
            let name = pos.get(1).copied().unwrap_or(DEFAULT_NAME);
            pin_to_cpu(1);
            drive(&mut connect(name)?, quick)
        }
        Some(other) => {
            eprintln!("usage: p2 [daemon|client] [NAME] [--quick]   (unknown argument {other:?})");
            std::process::exit(2);
        }
    }
}

fn create(name: &str) -> Result<Daemon> {
    Ok(Daemon::builder(name).size(SEGMENT_SIZE).max_clients(1).create()?)
}

/// Connects, giving a daemon started at the same moment a few seconds.
fn connect(name: &str) -> Result<Client> {
    Ok(Client::builder(name).wait(Duration::from_secs(10)).connect()?)
}

fn both_sides(quick: bool) -> Result<()> {
    let name = format!("memlink-p2-{}", std::process::id());
    let mut daemon = create(&name)?;
    let exe = std::env::current_exe().expect("own path");
    let mut cmd = Command::new(exe);
    cmd.args(["client", &name]);
    if quick {
        cmd.arg("--quick");
    }
    let mut child = cmd.spawn().expect("start the client process");
    pin_to_cpu(0);
    let served = serve(&mut daemon);
    let status = child.wait().expect("wait for the client");
    served?;
    if !status.success() {
        eprintln!("p2: the client process failed ({status})");
        std::process::exit(1);
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Daemon: echo High messages, count stream messages, obey Critical commands.
// ---------------------------------------------------------------------------

/// What the daemon does after handling a Critical command.
enum Action {
    None,
    Reply(ClientId, String),
    Floor(ClientId, String, u64),
    FutexFloor(ClientId, String, u32),
    Quit,
}

fn serve(d: &mut Daemon) -> Result<()> {
    let mut mode = Mode::Busy;
    let mut stream_left = 0u64;
    let mut sink = vec![0u8; 4096];
    loop {
        let mut cmd = Action::None;
        let got = {
            // Split, so that an echo is written from the request ring straight
            // into the reply ring (zero-copy) while the request is read.
            let (rx, tx) = d.split();
            let waiting = mode != Mode::Busy;
            let handle = |from: ClientId, p: Priority, b: &[u8]| -> std::result::Result<(), Error> {
                if p == Priority::Critical {
                    cmd = parse_command(from, b, &mut mode, &mut stream_left);
                    return Ok(());
                }
                if stream_left > 0 {
                    sink[..b.len()].copy_from_slice(b); // consume the payload for real
                    std::hint::black_box(&sink);
                    stream_left -= 1;
                    if stream_left == 0 {
                        cmd = Action::Reply(from, "DONE".into());
                    }
                    return Ok(());
                }
                match mode {
                    Mode::Busy => loop {
                        match tx.try_send_to(from, Priority::High, b) {
                            Err(Error::Full) => spin_loop(),
                            other => return other,
                        }
                    },
                    Mode::Wait(_) => tx.send_to(from, Priority::High, b),
                }
            };
            if waiting {
                rx.recv_timeout_with(Duration::from_secs(1), handle)
            } else {
                rx.try_recv_with(handle)
            }
        };
        match got {
            Ok(r) => r?,
            Err(Error::Empty) => spin_loop(),
            // Waiting with no client left: the client process is gone.
            Err(Error::Timeout) if d.control().client_count() == 0 => return Ok(()),
            Err(Error::Timeout) => {}
            Err(e) => return Err(e.into()),
        }
        match cmd {
            Action::None => {}
            Action::Reply(to, text) => d.send_to(to, Priority::Critical, text.as_bytes())?,
            Action::Floor(to, name, total) => {
                let line = FloorLine::open(&name);
                d.send_to(to, Priority::Critical, b"OK")?;
                line.respond(total);
            }
            Action::FutexFloor(to, name, total) => {
                let line = FloorLine::open(&name);
                d.send_to(to, Priority::Critical, b"OK")?;
                line.respond_futex(total);
            }
            Action::Quit => return Ok(()),
        }
        if let Mode::Wait(spin) = mode {
            d.set_spin(spin);
        }
    }
}

fn parse_command(from: ClientId, b: &[u8], mode: &mut Mode, stream_left: &mut u64) -> Action {
    let text = String::from_utf8_lossy(b);
    let words: Vec<&str> = text.split_whitespace().collect();
    let ok = || Action::Reply(from, "OK".into());
    match words.as_slice() {
        ["MODE", "busy"] => {
            *mode = Mode::Busy;
            ok()
        }
        ["MODE", "wait", spin] => {
            *mode = Mode::Wait(Duration::from_nanos(spin.parse().unwrap_or(0)));
            ok()
        }
        ["STREAM", n] => {
            *stream_left = n.parse().unwrap_or(0);
            ok()
        }
        ["FLOOR", name, n] => Action::Floor(from, name.to_string(), n.parse().unwrap_or(0)),
        ["FUTEXFLOOR", name, n] => Action::FutexFloor(from, name.to_string(), n.parse().unwrap_or(0)),
        ["QUIT"] => Action::Quit,
        _ => Action::Reply(from, format!("ERR unknown command {text:?}")),
    }
}

// ---------------------------------------------------------------------------
// Client: measure and print.
// ---------------------------------------------------------------------------

/// Sends a command and waits for the daemon's reply.
fn command(c: &mut Client, text: &str) -> Result<String> {
    c.send(Priority::Critical, text.as_bytes())?;
    let reply = c.recv_timeout(Duration::from_secs(30))?;
    let p = reply.priority();
    assert_eq!(
        p,
        Priority::Critical,
        "unexpected {p} message while waiting for a command reply"
    );
    Ok(String::from_utf8_lossy(reply.payload()).into_owned())
}

fn floor(t: &mut Client, warmup: u64, n: u64) -> Result<Histogram<u64>> {
    let name = format!("memlink-p2-floor-{}", std::process::id());
    let line = FloorLine::create(&name);
    let reply = command(t, &format!("FLOOR {name} {}", warmup + n))?;
    assert_eq!(reply, "OK");
    let h = line.initiate(warmup, n);
    line.remove();
    Ok(h)
}

/// Round trips per chunk in `ping_pong_paired`.
const CHUNK: u64 = 2_000;

/// `ping_pong` in chunks of [`CHUNK`], each followed by as many bare
/// cache-line round trips on `line` between the same two processes, so that
/// a move of the vCPUs during the row hits the row and its floor alike.
/// Returns (round trips, floor).
fn ping_pong_paired(
    t: &mut Client,
    mode: Mode,
    size: usize,
    (warmup, n): (u64, u64),
    (line, name): (&FloorLine, &str),
) -> Result<(Histogram<u64>, Histogram<u64>)> {
    let mut h = ping_pong(t, mode, size, warmup, 0)?;
    let mut floor = histogram();
    let mut done = 0;
    while done < n {
        let k = (n - done).min(CHUNK);
        h.add(ping_pong(t, mode, size, 0, k)?).expect("same histogram bounds");
        assert_eq!(command(t, &format!("FLOOR {name} {k}"))?, "OK");
        floor.add(line.initiate(0, k)).expect("same histogram bounds");
        done += k;
    }
    Ok((h, floor))
}

fn futex_floor(t: &mut Client, warmup: u32, n: u32) -> Result<Histogram<u64>> {
    let name = format!("memlink-p2-futex-{}", std::process::id());
    let line = FloorLine::create(&name);
    let reply = command(t, &format!("FUTEXFLOOR {name} {}", warmup + n))?;
    assert_eq!(reply, "OK");
    let h = line.initiate_futex(warmup, n);
    line.remove();
    Ok(h)
}

/// Round trips of `size`-byte messages; returns the histogram (ns).
fn ping_pong(c: &mut Client, mode: Mode, size: usize, warmup: u64, n: u64) -> Result<Histogram<u64>> {
    let payload = vec![0xA5u8; size];
    let mut h = histogram();
    for i in 0..warmup + n {
        let t0 = Instant::now();
        let fill = |b: &mut [u8]| {
            b.copy_from_slice(&payload);
            if size >= 8 {
                b[..8].copy_from_slice(&i.to_le_bytes());
            }
        };
        let echoed = match mode {
            Mode::Busy => {
                c.try_send(Priority::High, Fill::new(size, fill))?;
                loop {
                    match c.receiver().try_recv_with(|_, b| seq_of(b)) {
                        Ok(seq) => break seq,
                        Err(Error::Empty) => spin_loop(),
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            Mode::Wait(_) => {
                c.send(Priority::High, Fill::new(size, fill))?;
                c.receiver().recv_with(|_, b| seq_of(b))?
            }
        };
        if size >= 8 {
            assert_eq!(echoed, i, "echo out of order");
        }
        if i >= warmup {
            h.saturating_record(t0.elapsed().as_nanos() as u64);
        }
    }
    Ok(h)
}

fn seq_of(b: &[u8]) -> u64 {
    b.get(..8).map_or(0, |s| u64::from_le_bytes(s.try_into().unwrap()))
}

/// One-way stream of `n` messages of `size` bytes, one `send` per message;
/// returns messages per second.
fn stream(c: &mut Client, mode: Mode, size: usize, n: u64) -> Result<f64> {
    let payload = vec![0x5Au8; size];
    assert_eq!(command(c, &format!("STREAM {n}"))?, "OK");
    let t0 = Instant::now();
    for _ in 0..n {
        match mode {
            Mode::Busy => loop {
                match c.try_send(Priority::High, &payload) {
                    Err(Error::Full) => spin_loop(),
                    other => break other?,
                }
            },
            Mode::Wait(_) => c.send(Priority::High, &payload)?,
        }
    }
    let done = c.recv_timeout(Duration::from_secs(60))?;
    assert_eq!(done.payload(), b"DONE");
    Ok(n as f64 / secs(t0.elapsed()))
}

fn drive(t: &mut Client, quick: bool) -> Result<()> {
    let scale = if quick { 10 } else { 1 };
    let (warm, busy_n, park_n) = (20_000 / scale, 200_000 / scale, 20_000 / scale);
    let pid = std::process::id();
    println!(
        "memlink-shm p2: ping-pong between two processes (client pid {pid}, daemon pinned to CPU 0, client to CPU 1)\n"
    );

    command(t, &Mode::Busy.command())?;
    let floor_before = floor(t, warm, busy_n)?;
    let futex_before = futex_floor(t, (warm / 10) as u32, park_n as u32)?;

    let modes = [Mode::Busy, Mode::Wait(DEFAULT_SPIN), Mode::Wait(Duration::ZERO)];
    let line_name = format!("memlink-p2-pair-{pid}");
    let line = FloorLine::create(&line_name);
    let mut rows = Vec::new();
    for mode in modes {
        command(t, &mode.command())?;
        if let Mode::Wait(spin) = mode {
            t.set_spin(spin);
        }
        for size in SIZES {
            // Park rows compare with the futex floor, the others with a
            // cache-line floor measured in chunks between their own.
            let (h, floor) = if mode == Mode::Wait(Duration::ZERO) {
                (ping_pong(t, mode, size, warm, park_n)?, None)
            } else {
                let (h, f) = ping_pong_paired(t, mode, size, (warm, busy_n), (&line, &line_name))?;
                (h, Some(f))
            };
            rows.push((mode, size, h, floor));
        }
    }
    line.remove();

    let mut streams = Vec::new();
    for mode in [Mode::Busy, Mode::Wait(DEFAULT_SPIN)] {
        command(t, &mode.command())?;
        if let Mode::Wait(spin) = mode {
            t.set_spin(spin);
        }
        for size in SIZES {
            let bytes_budget = (2u64 << 30) / scale;
            let n = (4_000_000 / scale).min(bytes_budget / (size as u64 + 8));
            streams.push((mode, size, stream(t, mode, size, n)?));
        }
    }

    command(t, &Mode::Busy.command())?;
    let futex_after = futex_floor(t, (warm / 10) as u32, park_n as u32)?;
    let floor_after = floor(t, warm, busy_n)?;
    t.send(Priority::Critical, b"QUIT")?;

    let (fb, fa) = (floor_before.value_at_quantile(0.5), floor_after.value_at_quantile(0.5));
    let (xb, xa) = (futex_before.value_at_quantile(0.5), futex_after.value_at_quantile(0.5));
    let futex_p50 = (xb + xa) as f64 / 2.0;
    println!(
        "floor, busy: bare cache-line round trip between the two processes: p50 {} before, {} after",
        ns(fb),
        ns(fa)
    );
    println!(
        "floor, park: bare futex wait/wake round trip between them:         p50 {} before, {} after",
        ns(xb),
        ns(xa)
    );
    // The busy and spin rows carry their own interleaved floor; only the park
    // rows depend on floors measured at the ends of the run.
    if (xb as f64 - xa as f64).abs() / futex_p50 > 0.25 {
        println!(
            "WARNING: the futex floor moved by more than 25 % during the run; the park rows' ratios are approximate"
        );
    }
    println!(
        "(ratios: busy-poll and spin rows against the cache-line floor measured in chunks of {CHUNK} round trips\n\
         alternating with the row's own, shown as \"floor\"; park rows against the futex floor before and after)"
    );
    println!();
    println!(
        "{:<26} {:>7} {:>9} {:>9} {:>9} {:>13} {:>9} {:>9}",
        "round trip", "payload", "p50", "p99", "p99.9", "round trips/s", "floor", "vs floor"
    );
    for (mode, size, h, paired) in &rows {
        let p50 = h.value_at_quantile(0.5);
        let floor = paired.as_ref().map_or(futex_p50, |f| f.value_at_quantile(0.5) as f64);
        println!(
            "{:<26} {:>5} B {:>9} {:>9} {:>9} {:>13} {:>9} {:>8.2}x",
            mode.label(),
            size,
            ns(p50),
            ns(h.value_at_quantile(0.99)),
            ns(h.value_at_quantile(0.999)),
            rate(1e9 / h.mean()),
            ns(floor as u64),
            p50 as f64 / floor
        );
    }
    println!();
    println!(
        "{:<26} {:>7} {:>12} {:>10}",
        "one-way stream", "payload", "messages/s", "MB/s"
    );
    for (mode, size, per_sec) in &streams {
        println!(
            "{:<26} {:>5} B {:>12} {:>10.0}",
            mode.label(),
            size,
            rate(*per_sec),
            per_sec * *size as f64 / 1e6
        );
    }
    let stats = t.control().stats();
    println!(
        "\nwake-up syscalls: {} to the daemon, {} to this client",
        stats.daemon_wakeups, stats.client_wakeups
    );
    Ok(())
}
