//! inproc: clock-free round trips between two threads of one process, the
//! cases interleaved so that a move of the vCPUs hits all of them alike.
//!
//! ```text
//! cargo run --release --example inproc [-- CHUNK ROUNDS]
//! ```
//!
//! Four cases: a bare cache-line ping-pong (the floor), this crate's ring
//! (`RingBuffer`), the `rtrb` crate, and the transport (daemon and client in
//! two threads), each a 64-byte echo between threads pinned to CPU 0 and
//! CPU 1. A round runs CHUNK round trips (default 2000) of each case in
//! turn and times each chunk as a whole, with no clock read per round trip;
//! ROUNDS rounds (default 500) follow one another. Printed per case: the
//! median time per round trip, and the median over rounds of its ratio to
//! the floor of the same round, with the quartiles of that ratio.
//!
//! The host may move the vCPUs near or far apart at any time, which changes
//! every figure 2-4x. Runs measured one after the other then compare
//! different placements; chunks a fraction of a millisecond apart do not,
//! which makes these ratios the ones to use for an A/B of two builds.
//!
//! `compare` and `p2` time every round trip, for percentiles; that adds a
//! clock read to every figure, the floor's included, which this example
//! leaves out. Its ratios are therefore the stricter ones.
// Exercises the 0.1.3 layer, including its deprecated 0.2 additions.
#![allow(deprecated)]

#[path = "support/mod.rs"]
mod support;

use std::hint::{black_box, spin_loop};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use memlink_shm::buffer::RingBuffer;
use memlink_shm::priority::Priority;
use memlink_shm::transport::{NrelayShmTransport, ShmTransport};
use support::pin_to_cpu;

const PAYLOAD: usize = 64;

/// One side of a case: runs the given number of round trips.
type Side = Box<dyn FnMut(u64) + Send>;

/// A case: its name, the side that starts each round trip, the echo.
type Case = (&'static str, Side, Side);

fn main() {
    let arg = |i: usize, default: u64| {
        std::env::args()
            .nth(i)
            .map_or(default, |s| s.parse().expect("CHUNK and ROUNDS are numbers"))
    };
    let (chunk, rounds) = (arg(1, 2_000).max(1), arg(2, 500).max(1) as usize);
    println!(
        "inproc: {PAYLOAD} B round trips between two threads pinned to CPU 0 and 1; \
         {rounds} rounds of {chunk} per case, cases interleaved"
    );
    let cases = vec![floor(), ring(), rtrb(), transport()];
    let per_rt = run(chunk, rounds, cases);
    println!(
        "\n{:<18} {:>12} {:>14} {:>16}",
        "case", "median", "vs floor", "(quartiles)"
    );
    for (name, ns) in &per_rt {
        let ratios: Vec<f64> = ns.iter().zip(&per_rt[0].1).map(|(v, f)| v / f).collect();
        let (q1, med, q3) = quartiles(ratios);
        println!(
            "{name:<18} {:>9.1} ns {med:>13.2}x {:>16}",
            quartiles(ns.clone()).1,
            format!("{q1:.2}-{q3:.2}x")
        );
    }
}

/// Runs `rounds` rounds of `chunk` round trips of every case; returns each
/// case's name and its time per round trip in every round (ns).
fn run(chunk: u64, rounds: usize, cases: Vec<Case>) -> Vec<(&'static str, Vec<f64>)> {
    let n = cases.len();
    let mut names = Vec::with_capacity(n);
    let mut drivers = Vec::with_capacity(n);
    let mut echoes = Vec::with_capacity(n);
    for (name, drive, echo) in cases {
        names.push(name);
        drivers.push(drive);
        echoes.push(echo);
    }
    let echo = thread::spawn(move || {
        pin_to_cpu(1);
        for _ in 0..rounds {
            for e in echoes.iter_mut() {
                e(chunk);
            }
        }
    });
    pin_to_cpu(0);
    let mut times = vec![Vec::with_capacity(rounds); n];
    for _ in 0..rounds {
        for (d, t) in drivers.iter_mut().zip(&mut times) {
            let t0 = Instant::now();
            d(chunk);
            t.push(t0.elapsed().as_nanos() as f64 / chunk as f64);
        }
    }
    echo.join().expect("echo thread");
    names.into_iter().zip(times).collect()
}

/// First quartile, median, third quartile.
fn quartiles(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |q: usize| v[(v.len() - 1) * q / 4];
    (at(1), at(2), at(3))
}

fn floor() -> Case {
    #[repr(align(128))]
    struct Line(AtomicU64);
    let line = Arc::new(Line(AtomicU64::new(0)));
    let peer = line.clone();
    let (mut sent, mut seen) = (0u64, 0u64);
    let drive = move |k: u64| {
        for _ in 0..k {
            sent += 2;
            line.0.store(sent - 1, Ordering::Release);
            while line.0.load(Ordering::Acquire) != sent {
                spin_loop();
            }
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
    ("cache-line floor", Box::new(drive), Box::new(echo))
}

fn ring() -> Case {
    let (mut to_tx, mut to_rx) = RingBuffer::new(64).expect("ring").split();
    let (mut back_tx, mut back_rx) = RingBuffer::new(64).expect("ring").split();
    let drive = move |k: u64| {
        for _ in 0..k {
            to_tx.write(Priority::High, &[7; PAYLOAD]).expect("write");
            while back_rx.read_with(|_, b| black_box(b.len())).expect("read").is_none() {
                spin_loop();
            }
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
    ("memlink ring", Box::new(drive), Box::new(echo))
}

fn rtrb() -> Case {
    let (mut to_tx, mut to_rx) = rtrb::RingBuffer::<[u8; PAYLOAD]>::new(1024);
    let (mut back_tx, mut back_rx) = rtrb::RingBuffer::<[u8; PAYLOAD]>::new(1024);
    let drive = move |k: u64| {
        for _ in 0..k {
            while to_tx.push([7; PAYLOAD]).is_err() {}
            while back_rx.pop().is_err() {
                spin_loop();
            }
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
    ("rtrb", Box::new(drive), Box::new(echo))
}

fn transport() -> Case {
    let name = format!("memlink-inproc-{}", std::process::id());
    let d = NrelayShmTransport::builder(&name)
        .size(16 << 20)
        .max_clients(1)
        .create()
        .expect("create the segment");
    let c = NrelayShmTransport::connect(&name, 1).expect("connect");
    c.send(Priority::High, b"hello").expect("hello");
    let (id, _, hello) = d
        .recv_from(Some(Duration::from_secs(10)))
        .expect("the client says hello");
    assert_eq!(hello, b"hello");
    let drive = move |k: u64| {
        for _ in 0..k {
            d.write_to(id, Priority::High, &[7; PAYLOAD]).expect("write");
            while d.read_with(|_, b| black_box(b.len())).expect("read").is_none() {
                spin_loop();
            }
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
    ("memlink transport", Box::new(drive), Box::new(echo))
}
