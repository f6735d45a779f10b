//! inproc: clock-free round trips between two threads of one process.
//!
//! ```text
//! cargo run --release --example inproc [-- ROUND_TRIPS]
//! ```
//!
//! Times ROUND_TRIPS 64-byte round trips (default 300 000) as a whole, with
//! no clock read per round trip, for: a bare cache-line ping-pong (the
//! floor), this crate's ring (`RingBuffer`), the `rtrb` crate, and the
//! transport (daemon and client in two threads). The threads are pinned to
//! CPU 0 and CPU 1. Prints the mean per round trip and its ratio to the
//! floor, three times, since the host may move the vCPUs in between.
//!
//! `compare` and `p2` time every round trip, for percentiles; that adds one
//! clock read to every figure, the floor's included, which this example
//! leaves out. Its ratios are therefore the stricter ones.

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

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .map_or(300_000, |s| s.parse().expect("ROUND_TRIPS is a number"));
    println!("inproc: {n} round trips of {PAYLOAD} B per case, two threads pinned to CPU 0 and 1, mean per round trip");
    for run in 1..=3 {
        let floor = floor(n);
        println!("run {run}: cache-line floor {floor:6.1} ns");
        for (name, ns) in [
            ("memlink ring", ring(n)),
            ("rtrb", rtrb(n)),
            ("memlink transport", transport(n)),
        ] {
            println!("       {name:<17} {ns:6.1} ns  {:5.2}x floor", ns / floor);
        }
    }
}

/// Runs `echo` on CPU 1 and `drive` on CPU 0, which times its `n` round
/// trips (after any handshake); returns ns per round trip.
fn timed<E: FnOnce() + Send + 'static>(n: u64, echo: E, drive: impl FnOnce() -> Duration) -> f64 {
    let echo = thread::spawn(move || {
        pin_to_cpu(1);
        echo();
    });
    pin_to_cpu(0);
    let elapsed = drive();
    echo.join().expect("echo thread");
    elapsed.as_nanos() as f64 / n as f64
}

fn floor(n: u64) -> f64 {
    #[repr(align(128))]
    struct Line(AtomicU64);
    let line = Arc::new(Line(AtomicU64::new(0)));
    let peer = line.clone();
    let echo = move || {
        for i in 0..n {
            while peer.0.load(Ordering::Acquire) != 2 * i + 1 {
                spin_loop();
            }
            peer.0.store(2 * i + 2, Ordering::Release);
        }
    };
    timed(n, echo, || {
        let t0 = Instant::now();
        for i in 0..n {
            line.0.store(2 * i + 1, Ordering::Release);
            while line.0.load(Ordering::Acquire) != 2 * i + 2 {
                spin_loop();
            }
        }
        t0.elapsed()
    })
}

fn ring(n: u64) -> f64 {
    let (mut to_tx, mut to_rx) = RingBuffer::new(64).expect("ring").split();
    let (mut back_tx, mut back_rx) = RingBuffer::new(64).expect("ring").split();
    let echo = move || {
        for _ in 0..n {
            while to_rx
                .read_with(|p, b| back_tx.write(p, b).expect("echo"))
                .expect("read")
                .is_none()
            {
                spin_loop();
            }
        }
    };
    timed(n, echo, || {
        let t0 = Instant::now();
        for _ in 0..n {
            to_tx.write(Priority::High, &[7; PAYLOAD]).expect("write");
            while back_rx.read_with(|_, b| black_box(b.len())).expect("read").is_none() {
                spin_loop();
            }
        }
        t0.elapsed()
    })
}

fn rtrb(n: u64) -> f64 {
    let (mut to_tx, mut to_rx) = rtrb::RingBuffer::<[u8; PAYLOAD]>::new(1024);
    let (mut back_tx, mut back_rx) = rtrb::RingBuffer::<[u8; PAYLOAD]>::new(1024);
    let echo = move || {
        for _ in 0..n {
            let m = loop {
                match to_rx.pop() {
                    Ok(m) => break m,
                    Err(_) => spin_loop(),
                }
            };
            while back_tx.push(m).is_err() {}
        }
    };
    timed(n, echo, || {
        let t0 = Instant::now();
        for _ in 0..n {
            while to_tx.push([7; PAYLOAD]).is_err() {}
            while back_rx.pop().is_err() {
                spin_loop();
            }
        }
        t0.elapsed()
    })
}

fn transport(n: u64) -> f64 {
    let name = format!("memlink-inproc-{}", std::process::id());
    let d = NrelayShmTransport::builder(&name)
        .size(16 << 20)
        .max_clients(1)
        .create()
        .expect("create the segment");
    let peer = name.clone();
    let echo = move || {
        let c = NrelayShmTransport::connect(&peer, 1).expect("connect");
        c.send(Priority::High, b"hello").expect("hello");
        for _ in 0..n {
            while c
                .read_with(|p, b| c.write(p, b).expect("echo"))
                .expect("read")
                .is_none()
            {
                spin_loop();
            }
        }
    };
    timed(n, echo, || {
        let (id, _, hello) = d
            .recv_from(Some(Duration::from_secs(10)))
            .expect("the client says hello");
        assert_eq!(hello, b"hello");
        let t0 = Instant::now();
        for _ in 0..n {
            d.write_to(id, Priority::High, &[7; PAYLOAD]).expect("write");
            while d.read_with(|_, b| black_box(b.len())).expect("read").is_none() {
                spin_loop();
            }
        }
        t0.elapsed()
    })
}
