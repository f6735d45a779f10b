//! Why a segment could not be created or connected to.

use std::io;

use thiserror::Error;

use crate::ring::RingError;
use crate::segment::{path_note, SegmentError};
use crate::slot::ClaimError;

/// Why [`crate::Daemon::create`] or [`crate::Client::connect`] (or their
/// builders) failed. Nothing is left behind by a failed create: no segment,
/// no hidden build file.
#[derive(Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The name cannot name a segment.
    #[error("invalid segment name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it, with the limit where there is one.
        reason: String,
    },

    /// A setting is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),

    /// The segment size cannot hold the requested geometry.
    #[error(
        "a segment of {requested} bytes is too small: these settings need at least {minimum} bytes \
         (or fewer clients, or a smaller max_message_size)"
    )]
    TooSmall {
        /// Size asked for.
        requested: usize,
        /// Smallest size that works with the same settings.
        minimum: usize,
    },

    /// No segment of that name exists.
    #[error(
        "segment {name}{} not found: start the daemon first, or check the name",
        path_note(name)
    )]
    NotFound {
        /// Segment name.
        name: String,
    },

    /// A file that is not a live memlink segment of this user holds the name.
    #[error("{name} already exists and is not a memlink segment of this user: remove it, or use another name")]
    AlreadyExists {
        /// Segment name.
        name: String,
    },

    /// A live daemon already serves the name.
    #[error("a daemon (pid {pid}) is already running on {name}: stop it first, or use another name")]
    AlreadyRunning {
        /// Segment name.
        name: String,
        /// The running daemon's process id, as recorded in the segment (0 if unknown).
        pid: u32,
    },

    /// The segment's daemon died; nobody serves it.
    #[error("the daemon of {name} (pid {pid}) is dead: start it again (it takes the name over)")]
    OwnerDead {
        /// Segment name.
        name: String,
        /// The dead daemon's process id.
        pid: u32,
    },

    /// The daemon is shutting down.
    #[error("the daemon of {name} is shutting down: connect again once a new one has started")]
    ShuttingDown {
        /// Segment name.
        name: String,
    },

    /// The daemon speaks another application protocol version.
    #[error("protocol version mismatch: this process speaks {expected}, the segment's daemon {found}")]
    ProtocolMismatch {
        /// Version this process asked for.
        expected: u32,
        /// Version stored in the segment.
        found: u32,
    },

    /// The segment was written by an incompatible version of this library.
    #[error(
        "segment layout version {found} is not supported (this build reads {expected}): \
         use the same memlink-shm version on both sides"
    )]
    LayoutMismatch {
        /// Layout version this build understands.
        expected: u32,
        /// Layout version stored in the segment.
        found: u32,
    },

    /// The file exists but fails validation.
    #[error("invalid segment {name}: {reason}")]
    InvalidSegment {
        /// Segment name.
        name: String,
        /// What failed validation.
        reason: String,
    },

    /// The segment's daemon is still starting (its header is not written
    /// yet): connecting again in a moment will succeed.
    #[error("the daemon of {name} is still starting: connect again in a moment")]
    Starting {
        /// Segment name.
        name: String,
    },

    /// The segment belongs to another user, its mode forbids access, or the
    /// name is a symbolic link.
    #[error("permission denied on segment {name}: {reason}")]
    PermissionDenied {
        /// Segment name.
        name: String,
        /// Why access was refused.
        reason: String,
    },

    /// Every client slot of the segment is taken.
    #[error(
        "all {max_clients} client slots of the segment are taken ({live} by connected clients, \
         {draining} by clients that left and whose messages the daemon has yet to read): \
         retry once a slot frees, or create the segment with a larger max_clients"
    )]
    TableFull {
        /// Number of slots in the segment.
        max_clients: u32,
        /// Slots of connected (or connecting) clients.
        live: u32,
        /// Slots of clients that left, freed once the daemon has read what
        /// they sent: while any drain, retrying will succeed.
        draining: u32,
    },

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

debug_is_the_message!(OpenError);

impl OpenError {
    /// True where retrying later will likely succeed: the daemon is starting
    /// or shutting down, or a full table has slots draining.
    pub fn is_transient(&self) -> bool {
        match self {
            OpenError::TableFull { draining, .. } => *draining > 0,
            OpenError::ShuttingDown { .. } | OpenError::Starting { .. } => true,
            _ => false,
        }
    }

    /// A channel's rings failed validation while a client attached them.
    pub(crate) fn corrupt_rings(name: &str, e: RingError) -> OpenError {
        OpenError::InvalidSegment {
            name: name.to_owned(),
            reason: format!("its rings are unusable: {e}"),
        }
    }
}

impl From<SegmentError> for OpenError {
    fn from(e: SegmentError) -> OpenError {
        match e {
            SegmentError::InvalidName { name, reason } => OpenError::InvalidName { name, reason },
            SegmentError::InvalidConfig(reason) => OpenError::InvalidConfig(reason),
            SegmentError::TooSmall { requested, minimum } => OpenError::TooSmall { requested, minimum },
            SegmentError::NotFound { name } => OpenError::NotFound { name },
            SegmentError::AlreadyExists { name } => OpenError::AlreadyExists { name },
            SegmentError::AlreadyRunning { name, pid } => OpenError::AlreadyRunning { name, pid },
            SegmentError::PermissionDenied { name, reason } => OpenError::PermissionDenied { name, reason },
            SegmentError::LayoutMismatch { expected, found } => OpenError::LayoutMismatch { expected, found },
            SegmentError::Starting { name } => OpenError::Starting { name },
            SegmentError::InvalidSegment { name, reason } => OpenError::InvalidSegment { name, reason },
            SegmentError::Io { op, name, source } => OpenError::Io { op, name, source },
        }
    }
}

impl From<ClaimError> for OpenError {
    fn from(e: ClaimError) -> OpenError {
        match e {
            ClaimError::Full {
                max_clients,
                live,
                draining,
            } => OpenError::TableFull {
                max_clients,
                live,
                draining,
            },
            ClaimError::Lock(e) => e.into(),
        }
    }
}
