//! The 0.1.3 API, kept so that its README's code keeps compiling and
//! working: the transport ([`transport::NrelayShmTransport`] with the
//! [`transport::ShmTransport`] trait), the heap rings
//! ([`buffer::RingBuffer`], [`pring::PriorityRingBuffer`]), crash recovery
//! ([`recovery`]), the safety helpers ([`safety`]) and its single error enum
//! ([`ShmError`]). It lives in this one folder, at the paths the old crate
//! had (re-exported from the crate root), and is written over the
//! endpoints ([`crate::Daemon`], [`crate::Client`], their halves and
//! controls) and, for the heap rings and recovery, the engine: nothing
//! below it knows it exists. New code should use the endpoints.
//!
//! The goal is a layer a downstream crate could have written, over the
//! public API only. The workspace member `compat-check/` proves it file by
//! file, by compiling the files it lists as a crate of its own: so far
//! `safety.rs` and `transport/`. Recovery (PID files, orphan cleanup) still
//! reaches the segment's ownership checks and the platform's locks, and the
//! heap rings wrap the engine's private rings.

pub mod buffer;
mod heap_ends;
pub mod pring;
pub mod recovery;
pub mod safety;
mod shm_error;
pub mod transport;

pub use shm_error::{ShmError, ShmResult};
