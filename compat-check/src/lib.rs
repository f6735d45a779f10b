//! The 0.1.3 compatibility layer (`src/compat/`) is meant to be what a
//! downstream crate would write over memlink-shm's public API. This crate
//! proves it for the files listed below: it compiles them as a crate of
//! its own, where every path they name (`crate::compat::ShmError`,
//! `crate::Client`, ...) resolves to the public item of that name and
//! nothing else exists, so a file that reaches a private module of the
//! core crate (`crate::ring`, `crate::segment`, ...) fails to build here.
//! CI runs `cargo clippy -p memlink-compat-check -- -D warnings`.
//!
//! Listed: `transport/` (the 0.1.3 daemon and client, on the owned halves
//! of `Daemon` and `Client` and their controls), `recovery.rs` (on
//! `liveness` and `inspect`) and `safety.rs`. Not listed: the heap rings
//! `buffer.rs` / `pring.rs` / `heap_ends.rs`, thin wrappers of the engine's
//! private rings (see `src/compat/mod.rs`), and `shm_error.rs`, whose
//! `match`es on the endpoints' `#[non_exhaustive]` errors only the defining
//! crate may write without a wildcard.

pub use memlink_shm::*;

/// What `crate::compat::*` names in the listed files: the public items.
pub mod compat {
    pub use memlink_shm::{pring, ShmError, ShmResult};
}

#[path = "../../src/compat/recovery.rs"]
pub mod recovery;

#[path = "../../src/compat/safety.rs"]
pub mod safety;

#[path = "../../src/compat/transport/mod.rs"]
pub mod transport;
