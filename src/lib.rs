//! # memlink-shm
//!
//! Inter-process messaging over shared memory: lock-free single-producer /
//! single-consumer rings that live in a named segment, three priority tiers,
//! futex wake-ups that cost nothing when nobody sleeps, and a daemon/client
//! transport on top.
//!
//! Layers, bottom up:
//!
//! | layer | modules |
//! |---|---|
//! | OS primitives | [`platform`] (segment files, futex, process identity) |
//! | the segment | [`mmap`] (mapping), [`layout`] (wire format), [`control`] (validated access) |
//! | wait/wake | [`futex`] (event count over a word in the segment) |
//! | rings | [`buffer`] (SPSC ring), [`priority`], [`pring`] (three tiers) |
//! | transport | [`transport`] (daemon/client, many clients, both directions) |
//! | recovery | [`recovery`] (liveness, PID files, cleanup), [`safety`] (bounds, panic guards, poison) |
//!
//! ```
//! use memlink_shm::transport::{NrelayShmTransport, ShmTransport};
//! use memlink_shm::priority::Priority;
//! # let name = format!("memlink-doc-lib-{}", std::process::id());
//!
//! let daemon = NrelayShmTransport::create(&name, 65536, 1)?;
//! let client = NrelayShmTransport::connect(&name, 1)?;
//!
//! client.send(Priority::High, b"Request data")?; // write + signal
//! daemon.wait(None)?;
//! let (priority, data) = daemon.read()?;
//! assert_eq!((priority, &data[..]), (Priority::High, &b"Request data"[..]));
//! # Ok::<(), memlink_shm::transport::ShmError>(())
//! ```
#![warn(missing_docs, missing_debug_implementations)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod buffer;
pub mod control;
mod endpoint;
mod error;
pub mod futex;
pub mod layout;
pub mod mmap;
pub mod platform;
pub mod pring;
pub mod priority;
pub mod recovery;
pub mod safety;
pub mod transport;

pub use endpoint::{Batch, Client, ClientBuilder, ClientId, ClientMessage, Daemon, DaemonBuilder, Message, Stats};
pub use error::{Error, OpenError, ShmError, ShmResult};
pub use priority::Priority;

// The README's code blocks are compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
