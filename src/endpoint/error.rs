//! What a connected endpoint reports.

use std::io;

use thiserror::Error as ThisError;

use super::{OpenError, TypeError};
use crate::ring::{Corruption, RingError};
use crate::slot::ClientId;

/// The error of [`crate::Daemon`] and [`crate::Client`] operations.
///
/// The non-blocking calls say "not now" with [`Error::Full`] (`try_send`)
/// and [`Error::Empty`] (`try_recv`); the timed ones with [`Error::Timeout`].
/// [`Error::is_transient`] tells these apart from the errors that retrying
/// does not cure.
///
/// ```
/// use memlink_shm::{Client, Daemon, Error};
/// # let name = format!("memlink-doc-error-{}", std::process::id());
/// let mut daemon = Daemon::create(&name)?;
/// match daemon.try_recv() {
///     Err(Error::Empty) => {} // nothing sent yet
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(ThisError)]
#[non_exhaustive]
pub enum Error {
    /// The ring to the peer has no room for this message now (`try_send`).
    #[error("the ring to the peer is full: retry later, or use send() / send_timeout() to wait for room")]
    Full,

    /// No message is waiting (`try_recv`).
    #[error("no message is waiting: use recv() or recv_timeout() to wait for one")]
    Empty,

    /// A timed call reached its deadline.
    #[error("timed out: the deadline passed before a message or room arrived")]
    Timeout,

    /// The peer is gone: the daemon shut down or died, or the client left.
    /// Messages sent before that are still received first.
    #[error("disconnected: the daemon shut down or died, or the client left; connect again to a live daemon")]
    Disconnected,

    /// The message is longer than the segment allows.
    #[error(
        "a message of {len} bytes exceeds the segment's maximum of {max} bytes: split it, \
         or create the segment with a larger max_message_size"
    )]
    MessageTooLarge {
        /// Length of the message.
        len: usize,
        /// The segment's largest message.
        max: usize,
    },

    /// The id names no connected client: it left or died (ids are not reused).
    #[error("client {0} is not connected: it left or died")]
    UnknownClient(ClientId),

    /// The channel was marked unusable after one side found its rings corrupt.
    #[error("channel poisoned: {0}; drop this endpoint and connect again for a fresh channel")]
    Poisoned(&'static str),

    /// Shared memory holds a value no well-behaved peer writes.
    #[error("shared memory is corrupted ({0}): the peer is faulty or hostile; the channel is now poisoned")]
    Corrupted(Corruption),

    /// This endpoint was made by the parent of this process, which forked: a
    /// child's copy is inert (every call fails, dropping it releases nothing
    /// of the parent's).
    #[error(
        "this endpoint belongs to the process that made it, and this is a forked child: \
         connect (or create) again in the child"
    )]
    Forked,

    /// A typed value could not be encoded, or the message received is not
    /// of the type asked for (a receive took it from the ring all the same).
    #[error(transparent)]
    Type(#[from] TypeError),

    /// Creating or connecting failed.
    #[error(transparent)]
    Open(#[from] OpenError),

    /// An operating-system call failed.
    #[error("{op} failed: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

debug_is_the_message!(Error);

impl Error {
    /// Whether retrying later may succeed: [`Error::Full`], [`Error::Empty`]
    /// or [`Error::Timeout`].
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Full | Error::Empty | Error::Timeout)
    }

    /// Whether the peer is gone ([`Error::Disconnected`]).
    pub fn is_disconnected(&self) -> bool {
        matches!(self, Error::Disconnected)
    }
}

impl From<RingError> for Error {
    fn from(e: RingError) -> Error {
        match e {
            RingError::Full => Error::Full,
            RingError::TooLarge { len, max } => Error::MessageTooLarge { len, max },
            RingError::Corrupted(what) => Error::Corrupted(what),
        }
    }
}
