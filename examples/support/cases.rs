//! Round-trip cases shared by the in-process harnesses (`examples/inproc.rs`
//! and `scripts/ab/main.rs`): a 64-byte echo between two threads, as a pair
//! of sides that each run a given number of round trips. Every case can read
//! the clock once per round trip, as `compare` and `p2` time them, or not.

use std::hint::{black_box, spin_loop};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// One side of a case: runs the given number of round trips.
pub type Side = Box<dyn FnMut(u64) + Send>;

/// A case: the side that starts each round trip, and the echo.
pub type Case = (Side, Side);

/// Builds a case, with or without a clock read per round trip.
pub type MakeCase = fn(bool) -> Case;

/// Times `f` like `compare` does one round trip (the clock read is the point).
#[inline(always)]
pub fn clocked(clock: bool, f: impl FnOnce()) {
    if clock {
        let t0 = Instant::now();
        f();
        black_box(t0.elapsed());
    } else {
        f();
    }
}

/// A bare cache-line ping-pong: the floor of any shared-memory transport.
pub fn floor(clock: bool) -> Case {
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

/// The `rtrb` crate's ring, one per direction.
pub fn rtrb(clock: bool) -> Case {
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

/// Defines `$ring` and `$transport`, the ring (`RingBuffer`, one per
/// direction) and transport (daemon and client) cases of the crate
/// `$krate`. The caller declares this file as `#[macro_use] mod cases`.
macro_rules! build_cases {
    ($krate:ident, $ring:ident, $transport:ident) => {
        fn $ring(clock: bool) -> $crate::cases::Case {
            use $krate::buffer::RingBuffer;
            use $krate::priority::Priority;
            let (mut to_tx, mut to_rx) = RingBuffer::new(64).expect("ring").split();
            let (mut back_tx, mut back_rx) = RingBuffer::new(64).expect("ring").split();
            let drive = move |k: u64| {
                for _ in 0..k {
                    $crate::cases::clocked(clock, || {
                        to_tx.write(Priority::High, &[7; 64]).expect("write");
                        while back_rx
                            .read_with(|_, b| std::hint::black_box(b.len()))
                            .expect("read")
                            .is_none()
                        {
                            std::hint::spin_loop();
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
                        std::hint::spin_loop();
                    }
                }
            };
            (
                Box::new(drive) as $crate::cases::Side,
                Box::new(echo) as $crate::cases::Side,
            )
        }

        fn $transport(clock: bool) -> $crate::cases::Case {
            use $krate::priority::Priority;
            use $krate::transport::{NrelayShmTransport, ShmTransport};
            let name = format!(
                "memlink-cases-{}-{}-{}",
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
            let (id, _, _) = d
                .recv_from(Some(std::time::Duration::from_secs(10)))
                .expect("hello");
            let drive = move |k: u64| {
                for _ in 0..k {
                    $crate::cases::clocked(clock, || {
                        d.write_to(id, Priority::High, &[7; 64]).expect("write");
                        while d
                            .read_with(|_, b| std::hint::black_box(b.len()))
                            .expect("read")
                            .is_none()
                        {
                            std::hint::spin_loop();
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
                        std::hint::spin_loop();
                    }
                }
            };
            (
                Box::new(drive) as $crate::cases::Side,
                Box::new(echo) as $crate::cases::Side,
            )
        }
    };
}
