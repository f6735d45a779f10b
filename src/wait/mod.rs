//! Wait/wake on a word in shared memory: an event count over the OS futex.
//!
//! A waiter first spins for a bounded time (no syscall, lowest latency), then
//! registers in [`EventWord::waiters`] and sleeps in the kernel on
//! [`EventWord::seq`]. A notifier makes a syscall only when a waiter is
//! registered, so a busy pair of processes never enters the kernel and an idle
//! one burns no CPU.
//!
//! # Why no wake-up is lost
//!
//! Waiter W: `waiters += 1` (SeqCst), `s = seq` (SeqCst), fence(SeqCst),
//! check the condition, `futex_wait(seq, s)`.
//! Notifier N: publish (Release store), fence(SeqCst), read `waiters`, and if
//! non-zero: `seq += 1` (SeqCst), `futex_wake(seq)`.
//!
//! The two fences are ordered in the single total order of SeqCst operations.
//! If N's fence comes first, W's check, which follows W's fence, sees what N
//! published, and W does not sleep. If W's fence comes first, N's read of
//! `waiters`, which follows N's fence, sees W's registration, so N bumps `seq`
//! and wakes. That bump follows W's read of `s` in the SeqCst order, so either
//! the kernel finds `seq != s` when W calls `futex_wait` and returns at once,
//! or W is already asleep and the wake reaches it.
//!
//! On Linux N's fence is only a compiler fence, and W's is followed by a
//! `membarrier` call that fences every CPU running N's process at some
//! point of N's program, which stands in for N's fence in the argument
//! above (`barrier.rs`).
//!
//! # Async tasks
//!
//! A task waits the same way, through [`park::TaskPark`]: it registers,
//! notes `seq`, fences and looks, then hands its waker to a watcher thread
//! that sleeps in the OS on `seq` for it (`watcher.rs`). To a notifier a
//! parked task is one more registered waiter.

mod barrier;
#[cfg(all(test, loom))]
mod loom_models;
mod park;
#[cfg(not(loom))]
mod watcher;

pub(crate) use barrier::register as register_barriers;
pub(crate) use park::{blocked, Block, Park};
#[cfg(not(loom))]
pub(crate) use park::{Parking, TaskPark};

use std::time::{Duration, Instant};

#[cfg(not(loom))]
use crate::platform::{futex_wait, futex_wake};
use crate::segment::layout::EventWord;
use crate::sync::{spin_loop, AtomicU64, Ordering};
#[cfg(loom)]
use loom_futex::{futex_wait, futex_wake};

/// A bit a waiter holds set in a word of shared memory for as long as it is
/// registered on an event word (not while it spins), so that a notifier of
/// many events can look at the registered waiters only (the daemon's
/// sleeper bits, see `crate::doorbell`). It is set before the registration,
/// so it is seen whenever the registration would be (see the module docs).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mark<'a> {
    /// The word holding the bit.
    pub(crate) word: &'a AtomicU64,
    /// The bit.
    pub(crate) bit: u64,
}

impl Mark<'_> {
    /// Sets the bit (a load alone if it is set already).
    #[inline]
    pub(crate) fn set(self) {
        if self.word.load(Ordering::Relaxed) & self.bit == 0 {
            self.word.fetch_or(self.bit, Ordering::SeqCst);
        }
    }

    /// Clears the bit.
    #[inline]
    pub(crate) fn clear(self) {
        self.word.fetch_and(!self.bit, Ordering::Relaxed);
    }
}

/// Default time a waiter spins before it sleeps in the kernel.
pub(crate) const DEFAULT_SPIN: Duration = Duration::from_micros(50);

impl EventWord {
    /// Wakes every registered waiter. Call it after publishing what they wait
    /// for. Costs a fence and one load when nobody sleeps; returns whether a
    /// wake syscall was made.
    #[inline]
    pub(crate) fn notify(&self) -> bool {
        // SYNC POINT: pairs with the fence in `wait_marked` (see module docs;
        // asymmetric where the kernel allows, see `barrier`).
        barrier::notifier_fence();
        self.notify_fenced()
    }

    /// [`EventWord::notify`] for a caller that has issued a `SeqCst` fence
    /// since it published (as ringing the doorbell does): one load when
    /// nobody sleeps.
    #[inline]
    pub(crate) fn notify_fenced(&self) -> bool {
        if self.waiters.load(Ordering::Relaxed) == 0 {
            return false;
        }
        self.wake_all();
        true
    }

    /// [`EventWord::notify`] for several events with one fence; returns how
    /// many needed a wake syscall.
    pub(crate) fn notify_each<'a>(events: impl IntoIterator<Item = &'a EventWord>) -> usize {
        // SYNC POINT: as in `notify`, one fence covers every load below.
        barrier::notifier_fence();
        let mut woke = 0;
        for e in events {
            if e.waiters.load(Ordering::Relaxed) != 0 {
                e.wake_all();
                woke += 1;
            }
        }
        woke
    }

    #[cold]
    fn wake_all(&self) {
        self.seq.fetch_add(1, Ordering::SeqCst);
        self.wakeups.fetch_add(1, Ordering::Relaxed);
        // Everyone registered; where the OS counts wake-ups (Windows), that many.
        futex_wake(&self.seq, self.waiters.load(Ordering::Relaxed).max(1));
    }

    /// A registered waiter's step before it checks its condition: reads
    /// `seq` (to sleep on) and fences. A wake-up that follows this step
    /// moves `seq` past the value returned (see the module docs). The flag
    /// is false if a notifier may have gone unfenced (see `barrier`): then
    /// the waiter sleeps in short slices ([`barrier::slice`]).
    #[inline]
    pub(crate) fn seen(&self) -> (u32, bool) {
        let seen = self.seq.load(Ordering::SeqCst);
        // SYNC POINT: pairs with the fence in `notify` (see module docs).
        let fenced = barrier::waiter_fence();
        (seen, fenced)
    }

    /// [`EventWord::wait_marked`] with no tick and no mark, for the tests.
    #[cfg(test)]
    pub(crate) fn wait_until(&self, ready: impl FnMut() -> bool, spin: Duration, deadline: Option<Instant>) -> bool {
        self.wait_marked(ready, spin, deadline, None, None)
    }

    /// Blocks until `ready()` returns true (then returns true) or `deadline`
    /// passes (then returns false). Spins for up to `spin` first, then
    /// registers as a waiter, holding `mark` set while registered, and
    /// sleeps.
    ///
    /// `ready` must observe state that notifiers publish *before* calling
    /// [`EventWord::notify`]. With a `tick`, a sleep never lasts longer than
    /// that, so `ready` also sees events that no notifier announces (a peer
    /// dying); that costs one wake-up per tick while waiting.
    pub(crate) fn wait_marked(
        &self,
        mut ready: impl FnMut() -> bool,
        spin: Duration,
        deadline: Option<Instant>,
        tick: Option<Duration>,
        mark: Option<Mark<'_>>,
    ) -> bool {
        if spin_until(&mut ready, spin, deadline) {
            return true;
        }
        if let Some(mark) = mark {
            mark.set();
        }
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let woke = loop {
            let (seen, fenced) = self.seen();
            if ready() {
                break true;
            }
            let tick = barrier::slice(fenced, tick);
            let timeout = match deadline {
                None => tick,
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(tick.map_or(left, |t| t.min(left))),
                    _ => break false,
                },
            };
            futex_wait(&self.seq, seen, timeout);
        };
        self.waiters.fetch_sub(1, Ordering::Relaxed);
        if let Some(mark) = mark {
            mark.clear();
        }
        woke
    }
}

/// Polls `ready` with `spin_loop` hints for up to `budget` (and never past
/// `deadline`). Returns true as soon as `ready` does.
#[inline]
pub(crate) fn spin_until(ready: &mut impl FnMut() -> bool, budget: Duration, deadline: Option<Instant>) -> bool {
    if ready() {
        return true;
    }
    if budget.is_zero() {
        return false;
    }
    let start = Instant::now();
    let limit = match deadline {
        Some(d) => d.min(start + budget),
        None => start + budget,
    };
    loop {
        // Read the clock only every 64 polls: it costs more than a poll.
        for _ in 0..64 {
            spin_loop();
            if ready() {
                return true;
            }
        }
        if Instant::now() >= limit {
            return false;
        }
    }
}

/// The futex under loom: a mutex and a condvar, with the kernel's guarantee
/// that checking the word and going to sleep are atomic with respect to a
/// wake. Timeouts are not modelled (the models wait without one).
#[cfg(loom)]
mod loom_futex {
    use std::time::Duration;

    use loom::sync::{Condvar, Mutex};

    use crate::sync::{AtomicU32, Ordering};

    loom::lazy_static! {
        static ref FUTEX: (Mutex<()>, Condvar) = (Mutex::new(()), Condvar::new());
    }

    pub(super) fn futex_wait(word: &AtomicU32, expected: u32, _timeout: Option<Duration>) {
        let (lock, cv) = &*FUTEX;
        let held = lock.lock().unwrap();
        if word.load(Ordering::SeqCst) == expected {
            drop(cv.wait(held).unwrap());
        }
    }

    pub(super) fn futex_wake(_word: &AtomicU32, _count: u32) -> usize {
        let (lock, cv) = &*FUTEX;
        let _held = lock.lock().unwrap();
        cv.notify_all();
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU64};
    use std::sync::Arc;

    fn event() -> Arc<EventWord> {
        // SAFETY: EventWord is plain atomics and padding; all-zero is its initial state.
        Arc::new(unsafe { std::mem::zeroed() })
    }

    #[test]
    fn notify_without_waiters_makes_no_syscall() {
        let e = event();
        assert!(!e.notify());
        assert_eq!(e.wakeups.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn wait_times_out_when_nothing_happens() {
        let e = event();
        let t0 = Instant::now();
        assert!(!e.wait_until(|| false, Duration::ZERO, Some(t0 + Duration::from_millis(20))));
        assert!(t0.elapsed() >= Duration::from_millis(20));
        assert_eq!(e.waiters.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn sleeping_waiter_is_woken_by_notify() {
        let e = event();
        let flag = Arc::new(AtomicBool::new(false));
        let (e2, f2) = (Arc::clone(&e), Arc::clone(&flag));
        let t = std::thread::spawn(move || {
            e2.wait_until(
                || f2.load(Ordering::Acquire),
                Duration::ZERO,
                Some(Instant::now() + Duration::from_secs(30)),
            )
        });
        // Wait (bounded) until the thread is registered, so the wake path is the one tested.
        let until = Instant::now() + Duration::from_secs(30);
        while e.waiters.load(Ordering::Relaxed) == 0 && Instant::now() < until {
            std::thread::yield_now();
        }
        flag.store(true, Ordering::Release);
        assert!(e.notify(), "a registered waiter must get a syscall");
        assert!(t.join().unwrap());
    }

    #[test]
    fn ping_pong_loses_no_wake_ups() {
        // Two threads hand a counter back and forth 2,000 times with pure
        // parking (no spin): a lost wake-up would hang until the deadline.
        let e = [event(), event()];
        let n = Arc::new(AtomicU64::new(0));
        let (e2, n2) = (e.clone(), Arc::clone(&n));
        let deadline = Some(Instant::now() + Duration::from_secs(60));
        let t = std::thread::spawn(move || {
            for i in 0..2000u64 {
                assert!(e2[1].wait_until(|| n2.load(Ordering::Acquire) == 2 * i + 1, Duration::ZERO, deadline));
                n2.store(2 * i + 2, Ordering::Release);
                e2[0].notify();
            }
        });
        for i in 0..2000u64 {
            n.store(2 * i + 1, Ordering::Release);
            e[1].notify();
            assert!(e[0].wait_until(|| n.load(Ordering::Acquire) == 2 * i + 2, Duration::ZERO, deadline));
        }
        t.join().unwrap();
    }
}
