//! `memlink bench`: 64 B round trips (busy-poll, and parking at once) and
//! a one-way 64 B stream between this process and a child process it
//! starts, through a fresh segment. The `p2` example's headline figures,
//! in one command, without pinning or floors (run `p2` and `compare` for
//! those).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use memlink_shm::{Client, Daemon, Priority};

use crate::failure::Failure;

const PAYLOAD: [u8; 64] = [7; 64];
const STEP: Duration = Duration::from_secs(30);
/// The library's default spin before parking.
const SPIN: Duration = Duration::from_micros(50);

pub fn run(quick: bool) -> Result<(), Failure> {
    let scale = if quick { 10 } else { 1 };
    let name = format!("memlink-bench-{}", std::process::id());
    let mut daemon = Daemon::builder(&name)
        .size(4 << 20)
        .max_clients(1)
        .create()
        .map_err(|e| Failure::io("cannot create the bench segment", e))?;
    let exe = std::env::current_exe().map_err(|e| Failure::io("cannot find this program", e))?;
    let mut child = Command::new(exe)
        .args(["bench-client", &name])
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| Failure::io("cannot start the client process", e))?;
    let result = measure(&mut daemon, scale);
    // The client leaves when the daemon shuts down.
    drop(daemon);
    let _ = child.wait();
    let (busy, park, per_s) = result.map_err(|e| Failure::io("bench", e))?;
    println!(
        "memlink bench: daemon pid {}, client pid {}, 64 B messages",
        std::process::id(),
        child.id()
    );
    println!("{:<28} {:>10} {:>10} {:>10}", "round trip", "p50", "p99", "per second");
    for (label, mut t) in [("busy-poll", busy), ("park (no spin)", park)] {
        t.sort_unstable();
        let q = |x: f64| t[((t.len() - 1) as f64 * x) as usize];
        let mean = t.iter().sum::<u64>() as f64 / t.len() as f64;
        println!(
            "{label:<28} {:>10} {:>10} {:>10.0}",
            ns(q(0.5)),
            ns(q(0.99)),
            1e9 / mean
        );
    }
    println!("{:<28} {:>32.0}", "one-way stream, msgs/s", per_s);
    Ok(())
}

/// Round-trip times (ns) busy-polling and parking, and the stream rate.
fn measure(d: &mut Daemon, scale: u64) -> Result<(Vec<u64>, Vec<u64>, f64), memlink_shm::Error> {
    let client = d.recv_timeout(STEP)?.client();
    let mut busy = Vec::new();
    for _ in 0..100_000 / scale {
        let t0 = Instant::now();
        d.try_send_to(client, Priority::High, &PAYLOAD)?;
        loop {
            match d.try_recv() {
                Ok(_) => break,
                Err(memlink_shm::Error::Empty) => std::hint::spin_loop(),
                Err(e) => return Err(e),
            }
        }
        busy.push(t0.elapsed().as_nanos() as u64);
    }
    d.set_spin(Duration::ZERO);
    d.send_to(client, Priority::Critical, b"park")?;
    let mut park = Vec::new();
    for _ in 0..5_000 / scale {
        let t0 = Instant::now();
        d.send_to(client, Priority::High, &PAYLOAD)?;
        d.recv_timeout(STEP)?;
        park.push(t0.elapsed().as_nanos() as u64);
    }
    let n = 2_000_000 / scale;
    d.set_spin(SPIN);
    d.send_to(client, Priority::Critical, &n.to_le_bytes())?;
    let t0 = Instant::now();
    let mut got = 0;
    while got < n {
        match d.receiver().try_recv_batch(256, |_, _, _| {}) {
            Ok(k) => got += k as u64,
            Err(memlink_shm::Error::Empty) => {
                d.recv_timeout(STEP)?;
                got += 1;
            }
            Err(e) => return Err(e),
        }
    }
    let per_s = n as f64 / t0.elapsed().as_secs_f64();
    Ok((busy, park, per_s))
}

/// The client process: echoes busy-polling, then parking, then streams.
pub fn client(name: &str) -> Result<(), Failure> {
    let fail = |e: memlink_shm::Error| Failure::io("bench client", e);
    let mut c = Client::connect(name).map_err(|e| Failure::open(name, e))?;
    c.send(Priority::High, b"hello").map_err(fail)?;
    // Busy-poll echo until the daemon says "park".
    loop {
        match c.try_recv() {
            Ok(m) if m.priority() == Priority::Critical => break,
            Ok(m) => c.try_send(Priority::High, m.payload()).map_err(fail)?,
            Err(memlink_shm::Error::Empty) => std::hint::spin_loop(),
            Err(e) => return Err(fail(e)),
        }
    }
    c.set_spin(Duration::ZERO);
    let n = loop {
        let m = c.recv_timeout(STEP).map_err(fail)?;
        if m.priority() == Priority::Critical {
            break u64::from_le_bytes(m.payload().try_into().unwrap_or_default());
        }
        c.send(Priority::High, m.payload()).map_err(fail)?;
    };
    for _ in 0..n {
        c.send(Priority::High, &PAYLOAD).map_err(fail)?;
    }
    // Stay until the daemon has read everything and shuts down.
    while c.recv_timeout(STEP).is_ok() {}
    Ok(())
}

fn ns(v: u64) -> String {
    if v < 10_000 {
        format!("{v} ns")
    } else {
        format!("{:.1} us", v as f64 / 1e3)
    }
}
