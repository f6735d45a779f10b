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

mod error;
pub(crate) mod layout;
mod mapping;
mod name;
mod validated;

pub(crate) use error::SegmentError;
pub(crate) use mapping::check_owner;
pub(crate) use mapping::SharedMemory;
pub use name::MAX_NAME_LEN;
pub(crate) use name::{path_note, SegmentName, TEMP_SUFFIX};
pub(crate) use validated::{daemon_of, Channel, RingRegion};
pub(crate) use validated::{owner, Owner, Segment};
