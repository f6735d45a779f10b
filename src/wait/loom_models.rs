//! Loom model of the shipped event count, run with
//! `RUSTFLAGS="--cfg loom" cargo test --release --lib -- loom_models`.
//!
//! Under `--cfg loom` the event word's atomics are loom's (`src/sync.rs`)
//! and the futex is a loom mutex and condvar (`loom_futex` in `mod.rs`), so
//! loom explores the interleavings of the code that ships. A smaller copy of
//! the protocol, with the broken variant loom must catch, is in
//! `tests/loom.rs`.

use std::time::Duration;

use loom::sync::atomic::{AtomicBool, Ordering::Relaxed};
use loom::sync::Arc;
use loom::thread;

use crate::segment::layout::EventWord;

/// Whatever the interleaving, a waiter that registers as the notifier
/// publishes is woken (a lost wake-up is a deadlock, which loom reports).
#[test]
fn shipped_event_count_never_loses_a_wake_up() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(|| {
        let event = Arc::new(EventWord::new());
        let ready = Arc::new(AtomicBool::new(false));
        let (e2, r2) = (Arc::clone(&event), Arc::clone(&ready));
        let waiter = thread::spawn(move || e2.wait_until(|| r2.load(Relaxed), Duration::ZERO, None));
        ready.store(true, Relaxed);
        event.notify();
        assert!(waiter.join().unwrap());
    });
}
