//! The 0.1.3 compatibility layer (`src/compat/`) is meant to be what a
//! downstream crate would write over memlink-shm's public API. This crate
//! proves it for the files listed below: it compiles them as a crate of
//! its own, where every path they name (`crate::compat::ShmError`,
//! `crate::Client`, ...) resolves to the public item of that name and
//! nothing else exists, so a file that reaches a private module of the
//! core crate (`crate::ring`, `crate::segment`, ...) fails to build here.
//! CI runs `cargo clippy -p memlink-compat-check -- -D warnings`.
//!
//! Listed: `safety.rs` and `transport/` (the 0.1.3 daemon and client, on
//! the owned halves of `Daemon` and `Client` and their controls). Not yet:
//! `recovery.rs` (PID files and orphan cleanup reach the segment's
//! ownership checks and the platform's locks, which have no public form)
//! and the heap rings `buffer.rs` / `pring.rs` / `heap_ends.rs` (wrappers
//! of the engine's private rings, see the item 3); a file joins the
//! list once it is written on the public API.

pub use memlink_shm::*;

/// What `crate::compat::*` names in the listed files: the public items.
pub mod compat {
    pub use memlink_shm::{pring, ShmError, ShmResult};
}

#[path = "../../src/compat/safety.rs"]
pub mod safety;

#[path = "../../src/compat/transport/mod.rs"]
pub mod transport;
