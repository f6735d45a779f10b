//! The 0.1.3 API, kept so that its README's code keeps compiling and
//! working: the transport ([`transport::NrelayShmTransport`] with the
//! [`transport::ShmTransport`] trait), the heap rings
//! ([`buffer::RingBuffer`], [`pring::PriorityRingBuffer`]), crash recovery
//! ([`recovery`]), the safety helpers ([`safety`]) and its single error enum
//! ([`ShmError`]). It lives in this one folder, at the paths the old crate
//! had (re-exported from the crate root), and is written over the
//! endpoints ([`crate::Daemon`], [`crate::Client`], their halves and
//! controls), [`crate::liveness`] and, for the heap rings, the engine's
//! rings: nothing below it knows it exists. New code should use the
//! endpoints.
//!
//! It is a layer a downstream crate could have written over the public API,
//! except for the heap rings. The workspace member `compat-check/` proves
//! it file by file, by compiling the files it lists as a crate of its own:
//! `transport/`, `recovery.rs` and `safety.rs`. The heap rings
//! (`buffer.rs`, `pring.rs`, `heap_ends.rs`) are thin wrappers of the
//! engine's rings, which are private so that the engine can change without
//! a semver break; a public in-process ring only for them would undo that.
//! They reach only `crate::ring` (its `heap` constructors and the ring
//! ends), and hold no unsafe code but the one call that lends a heap ring's
//! bytes in place (`heap_ends.rs`). `shm_error.rs` names public items only
//! (the endpoints' errors, `buffer::RingError`, `liveness::PidFileError`),
//! but matches them exhaustively, as only this crate can.

pub mod buffer;
mod heap_ends;
pub mod pring;
pub mod recovery;
pub mod safety;
mod shm_error;
pub mod transport;

pub use shm_error::{ShmError, ShmResult};
