//! The segment: its name and file, its mapping, its wire format, and the
//! validated view of it that everything above works through.
//!
//! - `name`: what a name means (a bare shared-memory name or a path) and
//!   its limits.
//! - `mapping`: creating (hidden, then published), opening and mapping the
//!   file, with the owner and symlink checks.
//! - `layout`: the wire format, `#[repr(C)]` with compile-time offset
//!   checks, and the record encoding of the rings.
//! - `validated`: a mapped segment whose header was checked against the
//!   real mapping, with typed access to the control block, channels and
//!   rings, and the liveness locks.

#![cfg_attr(not(feature = "internals"), allow(unreachable_pub))]

mod error;
pub mod layout;
mod mapping;
mod name;
mod validated;

pub use error::SegmentError;
pub use mapping::SharedMemory;
pub(crate) use mapping::check_owner;
pub use name::{SegmentName, MAX_NAME_LEN, TEMP_SUFFIX};
pub(crate) use validated::{daemon_of, Channel, RingRegion};
pub use validated::{owner, Owner, Segment};
