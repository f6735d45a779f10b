//! How naming, creating, opening or validating a segment can fail: the
//! segment layer's own error, turned into [`crate::OpenError`] by `From`
//! (and from there into the 0.1.3 layer's `ShmError`). Each variant is raised
//! where the fault is found, with the numbers it found; nothing above this
//! layer reads its text.

use std::io;

use thiserror::Error;

/// Why a segment could not be named, laid out, created, opened or accepted.
#[derive(Debug, Error)]
pub enum SegmentError {
    /// The name cannot name a segment.
    #[error("invalid segment name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it, with the limit where there is one.
        reason: String,
    },

    /// A layout setting is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),

    /// The size cannot hold the requested layout.
    #[error("a segment of {requested} bytes is too small: these settings need at least {minimum} bytes")]
    TooSmall {
        /// Size asked for.
        requested: usize,
        /// Smallest size that works with the same settings.
        minimum: usize,
    },

    /// No file has the name.
    #[error("segment {name} not found")]
    NotFound {
        /// Segment name.
        name: String,
    },

    /// A file that is not a live memlink segment of this user holds the name.
    #[error("{name} already exists and is not a memlink segment of this user")]
    AlreadyExists {
        /// Segment name.
        name: String,
    },

    /// A live daemon holds the segment.
    #[error("a daemon (pid {pid}) is already running on {name}")]
    AlreadyRunning {
        /// Segment name.
        name: String,
        /// The running daemon's process id, as recorded in the segment (0 if unknown).
        pid: u32,
    },

    /// Another user owns the file, its mode forbids access, or it is a link.
    #[error("permission denied on segment {name}: {reason}")]
    PermissionDenied {
        /// Segment name.
        name: String,
        /// Why access was refused.
        reason: String,
    },

    /// The segment was written by an incompatible version of this library.
    #[error("segment layout version {found} is not supported (this build reads {expected})")]
    LayoutMismatch {
        /// Layout version this build understands.
        expected: u32,
        /// Layout version stored in the segment.
        found: u32,
    },

    /// The file exists but its header is not written yet (its magic number
    /// is 0): its creator has not finished it, and opening again shortly
    /// will succeed.
    #[error("segment {name} is not initialised yet: its daemon is still starting")]
    Starting {
        /// Segment name.
        name: String,
    },

    /// The file fails validation.
    #[error("invalid segment {name}: {reason}")]
    InvalidSegment {
        /// Segment name.
        name: String,
        /// What failed validation, with the numbers found.
        reason: String,
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

/// Result of the segment layer.
pub(crate) type SegmentResult<T> = Result<T, SegmentError>;
