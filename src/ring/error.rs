//! How a ring operation can fail.

use thiserror::Error;

pub use crate::segment::layout::Corruption;

/// Why a ring operation failed. Small and `Copy`: it is returned on the
/// message path.
#[derive(Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RingError {
    /// No room for this message now; retry once the reader has caught up.
    #[error("the ring is full: retry once the reader has caught up")]
    Full,
    /// The message is longer than the ring's largest message.
    #[error("a message of {len} bytes exceeds the ring's maximum of {max} bytes")]
    TooLarge {
        /// Length of the message.
        len: usize,
        /// The ring's largest message.
        max: usize,
    },
    /// The ring holds a value no well-behaved peer writes.
    #[error("the ring is corrupted ({0}): its peer is faulty or hostile")]
    Corrupted(Corruption),
}

debug_is_the_message!(RingError);
