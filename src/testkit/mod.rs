//! For this crate's own tests, benches, examples and fuzz target; no
//! stability promise.
//!
//! Hidden from the docs and not part of the API: any release may change it.
//! Each item is one narrow thing the tests need that a program has no use
//! for: writing any bytes into a live segment as a hostile peer, cutting its
//! file short, holding its daemon's lock, seeing who sleeps on it, sharing a
//! page of words between processes and sleeping on one, the default spin.
//! The segment's layout and the platform calls stay private; everything
//! else a test needs is the public API and [`inspect`](crate::inspect).
//!
//! - `files.rs`: the file behind a segment name: its path, removing it,
//!   cutting it short, its daemon's liveness lock and whether it is held.
//! - `peer.rs`: a hostile peer's view of a live segment: where its rings
//!   are, writes of any bytes anywhere in it, forged record headers, and the
//!   words that say who waits.
//! - `page.rs`: one page of shared memory under a segment name, and the
//!   futex calls, for words two processes share outside any segment.

mod files;
mod page;
mod peer;

pub use crate::segment::layout::Direction;
pub use files::{daemon_holds, hold_daemon_lock, remove_segment, truncate_segment, DaemonLock};
pub use page::{futex_wait, futex_wake, SharedPage};
pub use peer::{encode_message, encode_wrap, Layout, Peer, WakeWord, CHANNEL_HEADER_SIZE};

/// How long a waiter spins before it sleeps when the builders are not told
/// otherwise (their `spin` setting).
pub const DEFAULT_SPIN: std::time::Duration = crate::wait::DEFAULT_SPIN;
