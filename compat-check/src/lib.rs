//! The 0.1.3 compatibility layer (`src/compat/`) is meant to be what a
//! downstream crate would write over memlink-shm's public API. This crate
//! proves it for the files listed below: it compiles them as a crate of
//! its own, where every path they name (`crate::compat::ShmError`,
//! `crate::Client`, ...) resolves to the public item of that name and
//! nothing else exists, so a file that reaches a private module of the
//! core crate (`crate::ring`, `crate::segment`, ...) fails to build here.
//! CI runs `cargo clippy -p memlink-compat-check -- -D warnings`.
//!
//! Listed so far: `safety.rs`. Not yet: `transport/` (it uses the daemon's
//! and the client's engine parts), `recovery.rs` (segment ownership and
//! locks), `buffer.rs` / `pring.rs` / `heap_ends.rs` (the engine's rings);
//! a file joins the list once it is written on the public API.

pub use memlink_shm::*;

/// What `crate::compat::*` names in the listed files: the public items.
pub mod compat {
    pub use memlink_shm::{ShmError, ShmResult};
}

#[path = "../../src/compat/safety.rs"]
pub mod safety;
