//! Cross-process benches: the bench binary starts itself again as the peer.
//!
//! - `round_trip/{0,64,1024,4096}`: daemon writes, client echoes (busy-poll).
//! - `spsc_stream/{64,256,1024}`: one client streams to the daemon.
//! - `producers_64B/{1,4,8}`: that many client processes stream into one daemon.
//!
//! The daemon runs on CPU 0, every peer on CPU 1: on a two-core machine the
//! producers of `producers_64B/4` and `/8` share one core.
// Exercises the 0.1.3 layer, including its deprecated 0.2 additions.
#![allow(deprecated)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use memlink_shm::priority::Priority;
use memlink_shm::transport::{ClientId, NrelayShmTransport, ShmTransport};

const ROLE: &str = "MEMLINK_BENCH_ROLE";

/// Pins the calling thread to one CPU (daemon: 0, peers: 1), if it exists.
fn pin(cpu: usize) {
    #[cfg(target_os = "linux")]
    {
        let mut set = rustix::thread::CpuSet::new();
        set.set(cpu);
        let _ = rustix::thread::sched_setaffinity(None, &set);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cpu; // the scheduler places threads
}

fn spawn(role: &str, name: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .env(ROLE, format!("{role} {name}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start the peer")
}

fn daemon(tag: &str, clients: u32) -> (String, NrelayShmTransport) {
    let name = format!("memlink-bench-{tag}-{}", std::process::id());
    let d = NrelayShmTransport::builder(&name)
        .size(clients as usize * (4 << 20))
        .max_clients(clients)
        .create()
        .expect("create");
    (name, d)
}

fn hello(d: &NrelayShmTransport) -> ClientId {
    let (from, _, m) = d.recv_from(Some(Duration::from_secs(30))).expect("hello");
    assert_eq!(m, b"hello");
    from
}

fn round_trip(c: &mut Criterion) {
    let mut g = c.benchmark_group("round_trip");
    let (name, d) = daemon("rtt", 1);
    let mut child = spawn("echo", &name);
    let to = hello(&d);
    for size in [0usize, 64, 1024, 4096] {
        let payload = vec![3u8; size];
        g.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
            b.iter(|| {
                d.write_to(to, Priority::High, &payload).unwrap();
                while d.read_with(|_, m| m.len()).unwrap().is_none() {
                    std::hint::spin_loop();
                }
            })
        });
    }
    g.finish();
    d.send_to(to, Priority::Critical, b"quit").unwrap();
    child.wait().unwrap();
}

/// Streams `iters` messages from `producers` client processes into the
/// daemon and returns the time until the daemon has read them all.
fn stream_into_daemon(d: &NrelayShmTransport, clients: &[ClientId], size: usize, iters: u64) -> Duration {
    let each = iters.div_ceil(clients.len() as u64);
    let t0 = Instant::now();
    for &c in clients {
        d.send_to(c, Priority::Critical, format!("go {each} {size}").as_bytes())
            .unwrap();
    }
    let total = each * clients.len() as u64;
    let mut got = 0;
    while got < total {
        let n = d.read_batch_with(1024, |_, m| {
            std::hint::black_box(m);
        });
        match n {
            Ok(0) => std::hint::spin_loop(),
            Ok(n) => got += n as u64,
            Err(e) => panic!("{e}"),
        }
    }
    t0.elapsed()
}

fn spsc_stream(c: &mut Criterion) {
    let mut g = c.benchmark_group("spsc_stream");
    let (name, d) = daemon("spsc", 1);
    let mut child = spawn("producer", &name);
    let clients = [hello(&d)];
    for size in [64usize, 256, 1024] {
        g.throughput(Throughput::Elements(1));
        g.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, &size| {
            b.iter_custom(|iters| stream_into_daemon(&d, &clients, size, iters))
        });
    }
    g.finish();
    d.send_to(clients[0], Priority::Critical, b"quit").unwrap();
    child.wait().unwrap();
}

fn producers(c: &mut Criterion) {
    let mut g = c.benchmark_group("producers_64B");
    for n in [1u32, 4, 8] {
        let (name, d) = daemon(&format!("mpsc{n}"), n);
        let mut kids: Vec<Child> = (0..n).map(|_| spawn("producer", &name)).collect();
        let clients: Vec<ClientId> = (0..n).map(|_| hello(&d)).collect();
        g.throughput(Throughput::Elements(1));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter_custom(|iters| stream_into_daemon(&d, &clients, 64, iters))
        });
        for &c in &clients {
            d.send_to(c, Priority::Critical, b"quit").unwrap();
        }
        for k in &mut kids {
            k.wait().unwrap();
        }
    }
    g.finish();
}

/// The peer: echoes, or produces on command.
fn peer(role: &str, name: &str) {
    pin(1);
    let c = NrelayShmTransport::connect(name, 1).expect("connect");
    c.send(Priority::High, b"hello").unwrap();
    let payload = vec![5u8; 4096];
    loop {
        let mut cmd = None;
        let got = c.read_with(|p, m| {
            if p == Priority::Critical {
                cmd = Some(String::from_utf8_lossy(m).into_owned());
            } else {
                c.write(Priority::High, m).unwrap();
            }
        });
        match got {
            Ok(Some(())) => {}
            // Producers share one core: one that has done its part parks (after
            // the default spin) so that the others keep the core; the echo polls.
            Ok(None) if role == "producer" => {
                let _ = c.wait(Some(Duration::from_millis(100)));
                continue;
            }
            Ok(None) => {
                std::hint::spin_loop();
                continue;
            }
            Err(_) => return,
        }
        let Some(cmd) = cmd else { continue };
        let words: Vec<&str> = cmd.split_whitespace().collect();
        match words.as_slice() {
            ["quit"] => return,
            ["go", n, size] if role == "producer" => {
                let (mut left, size): (u64, usize) = (n.parse().unwrap(), size.parse().unwrap());
                while left > 0 {
                    let k = c
                        .write_batch(|b| {
                            let mut k = 0;
                            while k < left.min(64) && b.write(Priority::High, &payload[..size]).is_ok() {
                                k += 1;
                            }
                            k
                        })
                        .unwrap();
                    if k == 0 {
                        // Full: sleep until the daemon frees room (spinning would take
                        // the CPU the daemon needs when producers outnumber cores).
                        c.write_timeout(Priority::High, &payload[..size], Some(Duration::from_secs(10)))
                            .unwrap();
                        left -= 1;
                    }
                    left -= k;
                }
            }
            _ => panic!("unknown command {cmd}"),
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = round_trip, spsc_stream, producers
}

fn main() {
    if let Ok(role) = std::env::var(ROLE) {
        let (role, name) = role.split_once(' ').expect("role and name");
        return peer(role, name);
    }
    // The daemon side on CPU 0; every peer pins itself to CPU 1 (with more
    // peers than cores, producers share CPU 1). Pinned after the peers start
    // would be too late for them, so they pin themselves.
    pin(0);
    benches();
    criterion::Criterion::default().configure_from_args().final_summary();
}
