//! The 0.1.3 API's single error enum, kept so that its `match` on
//! `ShmError::BufferFull` / `Disconnected` / `Timeout` / `MessageTooLarge`
//! keeps compiling. Only the compatibility layer returns it; it is built from
//! the endpoints' [`crate::Error`] and [`OpenError`] (and the rings' `RingError`,
//! through [`crate::Error`]) by `From`, never from their text.

use std::io;

use thiserror::Error;

use crate::buffer::RingError;
use crate::liveness::PidFileError;
use crate::{Error as EndpointError, OpenError};

/// Result of the 0.1.3 API.
pub type ShmResult<T> = Result<T, ShmError>;

/// Everything that can go wrong with a ring, a segment or a transport of the
/// 0.1.3 API.
#[derive(Error)]
#[non_exhaustive]
pub enum ShmError {
    /// The ring has no room for this message right now; retry after the reader
    /// has caught up, or use a blocking write with a timeout.
    #[error("ring buffer is full: retry later, or use a blocking write with a timeout")]
    BufferFull,

    /// No message is waiting.
    #[error("no message is waiting: call wait() or recv() to block until one arrives")]
    Empty,

    /// The other side has shut down or is gone.
    #[error("peer disconnected: the daemon shut down or the client left")]
    Disconnected,

    /// A blocking operation reached its deadline.
    #[error("operation timed out")]
    Timeout,

    /// The message is longer than the transport's maximum message size.
    #[error(
        "message exceeds the maximum message size (4 KiB unless configured): \
         split it, or raise max_message_size when creating the segment"
    )]
    MessageTooLarge,

    /// Shared memory holds a value this process refuses to trust: an index, a
    /// length or a header that a well-behaved peer could not have written.
    #[error("shared memory is corrupted ({0}): the peer is faulty or hostile; reconnect to a fresh segment")]
    Corrupted(&'static str),

    /// The segment was created for another protocol version.
    #[error("protocol version mismatch: this process speaks {expected}, the segment uses {found}")]
    ProtocolMismatch {
        /// Version this process asked for.
        expected: u32,
        /// Version stored in the segment.
        found: u32,
    },

    /// The segment's binary layout is from another version of this library.
    #[error("segment layout version {found} is not supported (this build reads {expected}): use the same memlink-shm version on both sides")]
    LayoutMismatch {
        /// Layout version this build understands.
        expected: u32,
        /// Layout version stored in the segment.
        found: u32,
    },

    /// The segment exists but is not a valid memlink segment.
    #[error("invalid segment {name}: {reason}")]
    InvalidSegment {
        /// Segment name.
        name: String,
        /// What failed validation.
        reason: String,
    },

    /// No segment of that name exists.
    #[error("shared memory segment {name} not found: start the daemon first")]
    NotFound {
        /// Segment name.
        name: String,
    },

    /// A segment of that name already exists.
    #[error("shared memory segment {name} already exists: another daemon owns it, or a crashed one left it behind (remove it first)")]
    AlreadyExists {
        /// Segment name.
        name: String,
    },

    /// The requested size cannot hold the requested geometry.
    #[error("segment size {requested} bytes is too small for this geometry: it needs at least {minimum} bytes (or fewer clients / a smaller max_message_size)")]
    TooSmall {
        /// Size asked for.
        requested: usize,
        /// Smallest size that works with the same settings.
        minimum: usize,
    },

    /// A live daemon already serves this name.
    #[error("a daemon (pid {pid}) is already running on {name}: stop it first, or use another name")]
    AlreadyRunning {
        /// Segment name.
        name: String,
        /// The running daemon's process id, as recorded in the segment (0 if unknown).
        pid: u32,
    },

    /// The segment's daemon died; nobody serves it.
    #[error("the daemon of {name} (pid {pid}) is dead: start it again (it takes the name over), or remove the segment with RecoveryManager")]
    OwnerDead {
        /// Segment name.
        name: String,
        /// The dead daemon's process id.
        pid: u32,
    },

    /// The channel was marked unusable because one side found its memory corrupt.
    #[error("channel poisoned: {0}; reconnect to get a fresh channel")]
    Poisoned(&'static str),

    /// A closure run under a panic guard panicked.
    #[error("a panic was caught inside a guarded operation: {0}")]
    Panicked(String),

    /// An offset/length pair falls outside the region it addresses.
    #[error("access of {len} bytes at offset {offset} is outside the {size}-byte region")]
    OutOfBounds {
        /// Requested offset.
        offset: usize,
        /// Requested length.
        len: usize,
        /// Size of the region.
        size: usize,
    },

    /// Every client slot of the segment is taken.
    #[error(
        "client table full: all {max_clients} client slots are in use (create the segment with a larger max_clients)"
    )]
    TableFull {
        /// Number of slots in the segment.
        max_clients: u32,
    },

    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),

    /// The operation needs the other role (e.g. `write_to` on a client).
    #[error("{0} is only available on the daemon side")]
    DaemonOnly(&'static str),

    /// The operation is for clients (e.g. `write_batch` on the daemon).
    #[error("{0} is only available on the client side")]
    ClientOnly(&'static str),

    /// The client id does not name a connected client (it left, or never was).
    #[error("client {0} is not connected")]
    UnknownClient(String),

    /// The transport was re-entered from inside one of its own closures.
    #[error("transport re-entered from inside read_with/write_with on the same side: finish the closure first")]
    Reentrant,

    /// The segment exists but belongs to another user, or its mode forbids us.
    #[error("permission denied on segment {name}: {reason}")]
    PermissionDenied {
        /// Segment name.
        name: String,
        /// Why access was refused.
        reason: String,
    },

    /// The transport was made by the parent of this process, which forked:
    /// a child's copy is inert.
    #[error(
        "this transport belongs to the process that made it, and this is a forked child: \
         connect (or create) again in the child"
    )]
    Forked,

    /// An operating-system call failed.
    #[error("{op} failed for {name}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// Segment name or path.
        name: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

debug_is_the_message!(ShmError);

impl ShmError {
    /// True for errors that go away by retrying later (full ring, empty ring, timeout).
    pub fn is_transient(&self) -> bool {
        matches!(self, ShmError::BufferFull | ShmError::Empty | ShmError::Timeout)
    }
}

impl From<RingError> for ShmError {
    fn from(e: RingError) -> ShmError {
        EndpointError::from(e).into()
    }
}

impl From<EndpointError> for ShmError {
    fn from(e: EndpointError) -> ShmError {
        match e {
            EndpointError::Full => ShmError::BufferFull,
            EndpointError::Empty => ShmError::Empty,
            EndpointError::Timeout => ShmError::Timeout,
            EndpointError::Disconnected => ShmError::Disconnected,
            EndpointError::MessageTooLarge { .. } => ShmError::MessageTooLarge,
            EndpointError::UnknownClient(id) => ShmError::UnknownClient(id.to_string()),
            EndpointError::Poisoned(why) => ShmError::Poisoned(why),
            EndpointError::Corrupted(what) => ShmError::Corrupted(what.what()),
            EndpointError::Forked => ShmError::Forked,
            EndpointError::Open(e) => e.into(),
            EndpointError::Io { op, source } => ShmError::Io {
                op,
                name: String::new(),
                source,
            },
            // The 0.1.3 layer sends no typed messages; should one appear,
            // it is a message this side cannot use.
            EndpointError::Type(e) => ShmError::InvalidConfig(e.to_string()),
        }
    }
}

impl From<OpenError> for ShmError {
    fn from(e: OpenError) -> ShmError {
        match e {
            OpenError::InvalidName { name, reason } => {
                ShmError::InvalidConfig(format!("segment name {name:?} {reason}"))
            }
            OpenError::InvalidConfig(reason) => ShmError::InvalidConfig(reason),
            OpenError::TooSmall { requested, minimum } => ShmError::TooSmall { requested, minimum },
            OpenError::NotFound { name } => ShmError::NotFound { name },
            OpenError::AlreadyExists { name } => ShmError::AlreadyExists { name },
            OpenError::AlreadyRunning { name, pid } => ShmError::AlreadyRunning { name, pid },
            OpenError::OwnerDead { name, pid } => ShmError::OwnerDead { name, pid },
            OpenError::ShuttingDown { .. } => ShmError::Disconnected,
            OpenError::ProtocolMismatch { expected, found } => ShmError::ProtocolMismatch { expected, found },
            OpenError::LayoutMismatch { expected, found } => ShmError::LayoutMismatch { expected, found },
            OpenError::Starting { name } => ShmError::InvalidSegment {
                name,
                reason: "not initialised (its daemon may still be starting: retry)".into(),
            },
            OpenError::InvalidSegment { name, reason } => ShmError::InvalidSegment { name, reason },
            OpenError::PermissionDenied { name, reason } => ShmError::PermissionDenied { name, reason },
            OpenError::TableFull { max_clients, .. } => ShmError::TableFull { max_clients },
            OpenError::Io { op, name, source } => ShmError::Io { op, name, source },
        }
    }
}

impl From<PidFileError> for ShmError {
    fn from(e: PidFileError) -> ShmError {
        match e {
            PidFileError::Held { path, pid } => ShmError::AlreadyRunning {
                name: path.display().to_string(),
                pid,
            },
            PidFileError::PermissionDenied { path, reason } => ShmError::PermissionDenied {
                name: path.display().to_string(),
                reason,
            },
            PidFileError::Io { op, path, source } => ShmError::Io {
                op,
                name: path.display().to_string(),
                source,
            },
        }
    }
}
