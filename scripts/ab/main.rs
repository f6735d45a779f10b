//! A/B of two builds of memlink-shm in one process (built and run by
//! `scripts/ab-inproc.sh`; not part of the crate).
//!
//! `base` is the crate at a commit, `work` the working tree. Each case is a
//! 64-byte echo between two threads pinned to CPU 0 and CPU 1. A round runs
//! CHUNK round trips of every case in turn, so that a move of the vCPUs by
//! the host, which changes every figure 2-4x, hits all cases alike. Cases
//! come in two loops: back to back, and with a clock read per round trip as
//! `compare` and `p2` time them (the gap it leaves changes the results).
//!
//! Printed: each case's median time per round trip and median ratio to the
//! floor of the same round, then work/base per round (median and quartiles):
//! the A/B figure.

use std::hint::{black_box, spin_loop};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One side of a case: runs the given number of round trips.
type Side = Box<dyn FnMut(u64) + Send>;

/// A case: the side that starts each round trip, and the echo.
type Case = (Side, Side);

/// Builds a case, with or without a clock read per round trip.
type MakeCase = fn(bool) -> Case;

fn pin(cpu: usize) {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    if rustix::thread::sched_setaffinity(None, &set).is_err() {
        eprintln!("warning: could not pin to CPU {cpu}");
    }
}

/// Times `f` like `compare` does one round trip (the clock read is the point).
#[inline(always)]
fn clocked(clock: bool, f: impl FnOnce()) {
    if clock {
        let t0 = Instant::now();
        f();
        black_box(t0.elapsed());
    } else {
        f();
    }
}

fn floor(clock: bool) -> Case {
    #[repr(align(128))]
    struct Line(AtomicU64);
    let line = Arc::new(Line(AtomicU64::new(0)));
    let peer = line.clone();
    let (mut sent, mut seen) = (0u64, 0u64);
    let drive = move |k: u64| {
        for _ in 0..k {
            sent += 2;
            clocked(clock, || {
                line.0.store(sent - 1, Ordering::Release);
                while line.0.load(Ordering::Acquire) != sent {
                    spin_loop();
                }
            });
        }
    };
    let echo = move |k: u64| {
        for _ in 0..k {
            seen += 2;
            while peer.0.load(Ordering::Acquire) != seen - 1 {
                spin_loop();
            }
            peer.0.store(seen, Ordering::Release);
        }
    };
    (Box::new(drive), Box::new(echo))
}

fn rtrb(clock: bool) -> Case {
    let (mut to_tx, mut to_rx) = rtrb::RingBuffer::<[u8; 64]>::new(1024);
    let (mut back_tx, mut back_rx) = rtrb::RingBuffer::<[u8; 64]>::new(1024);
    let drive = move |k: u64| {
        for _ in 0..k {
            clocked(clock, || {
                while to_tx.push([7; 64]).is_err() {}
                while back_rx.pop().is_err() {
                    spin_loop();
                }
            });
        }
    };
    let echo = move |k: u64| {
        for _ in 0..k {
            let m = loop {
                match to_rx.pop() {
                    Ok(m) => break m,
                    Err(_) => spin_loop(),
                }
            };
            while back_tx.push(m).is_err() {}
        }
    };
    (Box::new(drive), Box::new(echo))
}

/// The ring and transport cases of one build of the crate.
macro_rules! build_cases {
    ($krate:ident, $ring:ident, $transport:ident) => {
        fn $ring(clock: bool) -> Case {
            use $krate::buffer::RingBuffer;
            use $krate::priority::Priority;
            let (mut to_tx, mut to_rx) = RingBuffer::new(64).expect("ring").split();
            let (mut back_tx, mut back_rx) = RingBuffer::new(64).expect("ring").split();
            let drive = move |k: u64| {
                for _ in 0..k {
                    clocked(clock, || {
                        to_tx.write(Priority::High, &[7; 64]).expect("write");
                        while back_rx
                            .read_with(|_, b| black_box(b.len()))
                            .expect("read")
                            .is_none()
                        {
                            spin_loop();
                        }
                    });
                }
            };
            let echo = move |k: u64| {
                for _ in 0..k {
                    while to_rx
                        .read_with(|p, b| back_tx.write(p, b).expect("echo"))
                        .expect("read")
                        .is_none()
                    {
                        spin_loop();
                    }
                }
            };
            (Box::new(drive), Box::new(echo))
        }

        fn $transport(clock: bool) -> Case {
            use $krate::priority::Priority;
            use $krate::transport::{NrelayShmTransport, ShmTransport};
            let name = format!(
                "memlink-ab-{}-{}-{}",
                stringify!($krate),
                clock as u8,
                std::process::id()
            );
            let d = NrelayShmTransport::builder(&name)
                .size(16 << 20)
                .max_clients(1)
                .create()
                .expect("create the segment");
            let c = NrelayShmTransport::connect(&name, 1).expect("connect");
            c.send(Priority::High, b"hello").expect("hello");
            let (id, _, _) = d.recv_from(Some(Duration::from_secs(10))).expect("hello");
            let drive = move |k: u64| {
                for _ in 0..k {
                    clocked(clock, || {
                        d.write_to(id, Priority::High, &[7; 64]).expect("write");
                        while d.read_with(|_, b| black_box(b.len())).expect("read").is_none() {
                            spin_loop();
                        }
                    });
                }
            };
            let echo = move |k: u64| {
                for _ in 0..k {
                    while c
                        .read_with(|p, b| c.write(p, b).expect("echo"))
                        .expect("read")
                        .is_none()
                    {
                        spin_loop();
                    }
                }
            };
            (Box::new(drive), Box::new(echo))
        }
    };
}

build_cases!(base, base_ring, base_transport);
build_cases!(work, work_ring, work_transport);

fn quartiles(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |q: usize| v[(v.len() - 1) * q / 4];
    (at(1), at(2), at(3))
}

fn main() {
    let arg = |i: usize, default: u64| {
        std::env::args()
            .nth(i)
            .map_or(default, |s| s.parse().expect("CHUNK and ROUNDS are numbers"))
    };
    let (chunk, rounds) = (arg(1, 2_000).max(1), arg(2, 150).max(1) as usize);
    let mut names = Vec::new();
    let (mut drivers, mut echoes) = (Vec::new(), Vec::new());
    for clock in [false, true] {
        let loop_name = if clock { "clocked" } else { "back-to-back" };
        let cases: [(&str, MakeCase); 6] = [
            ("floor", floor),
            ("rtrb", rtrb),
            ("base ring", base_ring),
            ("work ring", work_ring),
            ("base transport", base_transport),
            ("work transport", work_transport),
        ];
        for (name, make) in cases {
            let (d, e) = make(clock);
            names.push(format!("{loop_name:<13} {name}"));
            drivers.push(d);
            echoes.push(e);
        }
    }
    let echo = std::thread::spawn(move || {
        pin(1);
        for _ in 0..rounds {
            for e in echoes.iter_mut() {
                e(chunk);
            }
        }
    });
    pin(0);
    let mut times = vec![Vec::with_capacity(rounds); drivers.len()];
    for _ in 0..rounds {
        for (d, t) in drivers.iter_mut().zip(&mut times) {
            let t0 = Instant::now();
            d(chunk);
            t.push(t0.elapsed().as_nanos() as f64 / chunk as f64);
        }
    }
    echo.join().expect("echo thread");

    println!("{rounds} rounds of {chunk} round trips per case, cases interleaved\n");
    println!("{:<30} {:>10} {:>9}", "case", "median", "vs floor");
    for (i, name) in names.iter().enumerate() {
        let floor = &times[i / 6 * 6];
        let ratio: Vec<f64> = times[i].iter().zip(floor).map(|(v, f)| v / f).collect();
        println!(
            "{name:<30} {:>7.1} ns {:>8.2}x",
            quartiles(times[i].clone()).1,
            quartiles(ratio).1
        );
    }
    println!("\nwork / base, per round (below 1: the working tree is faster)");
    for (i, name) in names.iter().enumerate().filter(|(_, n)| n.contains("work")) {
        let ratio: Vec<f64> = times[i].iter().zip(&times[i - 1]).map(|(w, b)| w / b).collect();
        let (q1, med, q3) = quartiles(ratio);
        println!(
            "{:<30} {med:>6.3} (quartiles {q1:.3}-{q3:.3})",
            name.replace("work ", "")
        );
    }
}
