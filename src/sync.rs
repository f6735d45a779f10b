//! The atomics, fences and spin hint of the lock-free protocols (the ring,
//! the event count, the doorbell): std's, or loom's under `--cfg loom`, so
//! that the loom models (`tests/loom.rs`, and `loom_models` in `wait/` and
//! `doorbell.rs`) check the code that ships rather than a copy (the
//! approach of crossbeam-utils).

#[cfg(loom)]
pub(crate) use loom::hint::spin_loop;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64};
#[cfg(not(loom))]
pub(crate) use std::hint::spin_loop;
pub(crate) use std::sync::atomic::Ordering;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicU32, AtomicU64};
