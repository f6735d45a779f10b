//! Errors, one type per layer.
//!
//! - [`OpenError`]: creating or connecting to a segment (names, sizes,
//!   ownership, versions, a full client table).
//! - [`Error`]: what the endpoints ([`crate::Daemon`], [`crate::Client`])
//!   report once connected; it wraps an [`OpenError`] so that one `?` serves
//!   both.
//! - [`TypeError`]: a typed message that cannot be encoded or is not the
//!   type asked for (carried by [`Error::Type`]).
//! - [`ShmError`]: the 0.1.3 API's single enum, kept for the compatibility
//!   layer ([`crate::transport`] and the heap rings).
//!
//! Messages say what went wrong, with the numbers involved, and what to do.

mod endpoint;
mod open;
mod shm;
mod typed;

pub use endpoint::Error;
pub use open::OpenError;
pub use shm::{ShmError, ShmResult};
pub use typed::TypeError;
