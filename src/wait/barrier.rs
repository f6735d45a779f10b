//! The fences of the event count's protocol, asymmetric where the kernel
//! allows (Linux: `membarrier(2)`).
//!
//! The protocol (see `crate::wait`) needs a full fence on each side: the
//! notifier's between publishing and reading `waiters`, the waiter's between
//! registering and checking its condition. A notifier runs on every message;
//! a waiter only before it sleeps. So where the kernel offers global
//! expedited barriers, a process registers for them when it opens a segment,
//! its notifiers keep only a compiler fence, and a waiter, after its own
//! fence, has the kernel run a full barrier on every CPU that runs a thread
//! of a registered process. Each notifier is then fenced at some point of
//! its program: before its publish (then its read of `waiters` sees the
//! waiter) or after it (then the waiter sees what it published), which is
//! what its own fence gave. A process that cannot register keeps real
//! fences; a waiter whose barrier call fails while light notifiers may exist
//! sleeps in short slices instead, so a wake it misses costs a slice.
//!
//! The cost moves to the sleeper: one system call (and an interrupt on the
//! other busy CPUs) per sleep, next to the futex call it makes anyway. The
//! fence it saves per message waited for the cache line the reader polls.

use std::sync::atomic::{compiler_fence, AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use crate::sync::fence;

/// Whether this process is registered: its notifiers need no fence.
static LIGHT: AtomicBool = AtomicBool::new(false);

/// Whether any process here may be light (the kernel offers the barriers).
static EXIST: OnceLock<bool> = OnceLock::new();

/// Longest sleep of a waiter whose barrier failed while light notifiers may
/// exist.
pub(crate) const UNFENCED_SLICE: Duration = Duration::from_millis(1);

/// Registers this process (idempotent): called whenever it maps a segment,
/// so a forked child, whose old endpoints are inert, registers again before
/// it can use new ones. Under loom and Miri nothing is light.
pub(crate) fn register() {
    if cfg!(any(loom, miri)) {
        return;
    }
    LIGHT.store(crate::platform::register_for_barriers(), Ordering::Relaxed);
}

/// The notifier's fence, between its publish and its read of `waiters`.
#[inline(always)]
pub(crate) fn notifier_fence() {
    if LIGHT.load(Ordering::Relaxed) {
        compiler_fence(Ordering::SeqCst);
    } else {
        fence(Ordering::SeqCst);
    }
}

/// The waiter's fence, between registering and checking its condition.
/// False if a light notifier may have gone unfenced: then the caller sleeps
/// no longer than [`UNFENCED_SLICE`] at a time.
pub(crate) fn waiter_fence() -> bool {
    fence(Ordering::SeqCst);
    if cfg!(any(loom, miri)) {
        return true;
    }
    crate::platform::barrier_registered() || !*EXIST.get_or_init(crate::platform::barriers_exist)
}

/// How long a waiter may sleep at a time, given what [`waiter_fence`] said.
pub(crate) fn slice(fenced: bool, tick: Option<Duration>) -> Option<Duration> {
    if fenced {
        tick
    } else {
        Some(tick.map_or(UNFENCED_SLICE, |t| t.min(UNFENCED_SLICE)))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_registered_process_notifies_light_and_its_waiters_are_fenced() {
        register();
        let light = LIGHT.load(Ordering::Relaxed);
        // Linux offers the barriers (here: CI and development machines);
        // elsewhere nothing is light.
        assert_eq!(
            light,
            cfg!(target_os = "linux") && crate::platform::barriers_exist() && !cfg!(miri)
        );
        assert!(
            waiter_fence(),
            "a waiter that cannot fence the light notifiers must be told"
        );
    }

    #[test]
    fn an_unfenced_waiter_sleeps_in_short_slices() {
        let tick = Some(Duration::from_millis(50));
        assert_eq!(slice(true, tick), tick);
        assert_eq!(slice(true, None), None);
        assert_eq!(slice(false, tick), Some(UNFENCED_SLICE));
        assert_eq!(slice(false, None), Some(UNFENCED_SLICE));
    }
}
