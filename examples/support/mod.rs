//! Helpers shared by the examples: the physical floor (a bare cache-line
//! ping-pong between two processes), CPU pinning, histogram printing.
#![allow(dead_code)]

use std::hint::spin_loop;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use memlink_shm::testkit::{futex_wait, futex_wake, remove_segment, SharedPage};

/// A histogram of nanoseconds, 1 ns to 100 s, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("histogram bounds")
}

/// Pins the calling thread to `cpu` if the machine has it; returns whether it did.
///
/// (Not checked against `available_parallelism`: that honours the caller's
/// affinity mask, which a pinned parent passes on to its threads and
/// children. The kernel refuses a CPU that does not exist.)
#[cfg(target_os = "linux")]
pub fn pin_to_cpu(cpu: usize) -> bool {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    rustix::thread::sched_setaffinity(None, &set).is_ok()
}

/// Pinning is implemented on Linux only; elsewhere the scheduler places threads.
#[cfg(not(target_os = "linux"))]
pub fn pin_to_cpu(_cpu: usize) -> bool {
    false
}

/// One 64-bit word in a shared page of its own, for the floor measurement.
pub struct FloorLine {
    page: SharedPage,
}

impl FloorLine {
    /// Creates the page `name` (removing a stale one first).
    pub fn create(name: &str) -> FloorLine {
        let _ = remove_segment(name);
        FloorLine {
            page: SharedPage::create(name).expect("create floor page"),
        }
    }

    /// Maps the existing page `name`.
    pub fn open(name: &str) -> FloorLine {
        FloorLine {
            page: SharedPage::open(name).expect("open floor page"),
        }
    }

    /// Removes the page's name.
    pub fn remove(&self) {
        let _ = self.page.remove();
    }

    fn word(&self) -> &AtomicU64 {
        self.page.word64(0)
    }

    fn word32(&self) -> &AtomicU32 {
        // On its own line, away from `word`.
        self.page.word32(128)
    }

    /// Initiator of the blocking floor: a bare futex wait/wake ping-pong,
    /// `warmup + n` round trips, the last `n` recorded (ns).
    pub fn initiate_futex(&self, warmup: u32, n: u32) -> Histogram<u64> {
        let w = self.word32();
        let mut h = histogram();
        for i in 0..warmup + n {
            let t0 = Instant::now();
            w.store(2 * i + 1, Ordering::SeqCst);
            futex_wake(w, 1);
            while w.load(Ordering::SeqCst) != 2 * i + 2 {
                futex_wait(w, 2 * i + 1, None);
            }
            if i >= warmup {
                h.saturating_record(t0.elapsed().as_nanos() as u64);
            }
        }
        h
    }

    /// Responder of the blocking floor.
    pub fn respond_futex(&self, total: u32) {
        let w = self.word32();
        for i in 0..total {
            while w.load(Ordering::SeqCst) != 2 * i + 1 {
                futex_wait(w, 2 * i, None);
            }
            w.store(2 * i + 2, Ordering::SeqCst);
            futex_wake(w, 1);
        }
    }

    /// Initiator: `warmup + n` round trips, the last `n` recorded (ns).
    pub fn initiate(&self, warmup: u64, n: u64) -> Histogram<u64> {
        let w = self.word();
        let mut h = histogram();
        for i in 0..warmup + n {
            let t0 = Instant::now();
            w.store(2 * i + 1, Ordering::Release);
            while w.load(Ordering::Acquire) != 2 * i + 2 {
                spin_loop();
            }
            if i >= warmup {
                h.saturating_record(t0.elapsed().as_nanos() as u64);
            }
        }
        h
    }

    /// Responder: answers `total` round trips.
    pub fn respond(&self, total: u64) {
        let w = self.word();
        for i in 0..total {
            while w.load(Ordering::Acquire) != 2 * i + 1 {
                spin_loop();
            }
            w.store(2 * i + 2, Ordering::Release);
        }
    }
}

/// Formats nanoseconds for a table.
pub fn ns(v: u64) -> String {
    if v >= 10_000 {
        format!("{:.1} us", v as f64 / 1000.0)
    } else {
        format!("{v} ns")
    }
}

/// Formats a rate.
pub fn rate(per_sec: f64) -> String {
    if per_sec >= 1e6 {
        format!("{:.2} M", per_sec / 1e6)
    } else {
        format!("{:.0} k", per_sec / 1e3)
    }
}

/// Time since `t0` in seconds, never zero.
pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64().max(1e-9)
}
