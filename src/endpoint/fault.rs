//! What stops an endpoint operation on the message path: small and `Copy`,
//! turned into the endpoints' [`crate::Error`] only at the surface.

use super::Error;
use crate::ring::RingError;
use crate::segment::layout::Corruption;
use crate::slot::{ClientId, Poison};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// A ring refused: full, too large, or corrupt.
    Ring(RingError),
    /// The daemon shut down or died, or this client left.
    Disconnected,
    /// The channel was poisoned (by the side named).
    Poisoned(Poison),
    /// The id names no connected client.
    UnknownClient(ClientId),
    /// A blocking call reached its deadline.
    Timeout,
    /// The endpoint is a forked child's copy.
    Forked,
}

/// The result of an engine operation.
pub(crate) type Op<T> = Result<T, Fault>;

impl Fault {
    /// No room now.
    pub(crate) const FULL: Fault = Fault::Ring(RingError::Full);

    /// The segment's file shrank under the mapping.
    pub(crate) const TRUNCATED: Fault = Fault::Ring(RingError::Corrupted(Corruption::SegmentTruncated));

    /// The endpoints' error.
    #[cold]
    pub(crate) fn into_error(self) -> Error {
        match self {
            Fault::Ring(e) => e.into(),
            Fault::Disconnected => Error::Disconnected,
            Fault::Poisoned(by) => Error::Poisoned(by.reason()),
            Fault::UnknownClient(id) => Error::UnknownClient(id),
            Fault::Timeout => Error::Timeout,
            Fault::Forked => Error::Forked,
        }
    }
}

impl From<RingError> for Fault {
    #[inline]
    fn from(e: RingError) -> Fault {
        Fault::Ring(e)
    }
}

impl From<Fault> for Error {
    #[cold]
    fn from(f: Fault) -> Error {
        f.into_error()
    }
}
