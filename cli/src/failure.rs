//! What went wrong, as a plain sentence with what to do, and its exit code.

use std::fmt;
use std::process::ExitCode;

use memlink_shm::OpenError;

/// A failed command.
#[derive(Debug)]
pub enum Failure {
    /// No segment has this name.
    NotFound(String),
    /// Another user owns the segment, or the OS refused access.
    PermissionDenied(String),
    /// The file is not a memlink segment, or one of another layout.
    NotMemlink(String),
    /// Anything else: I/O, the terminal.
    Other(String),
}

impl Failure {
    /// The exit code documented in `memlink --help`.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Failure::Other(_) => 1,
            Failure::NotFound(_) => 3,
            Failure::PermissionDenied(_) => 4,
            Failure::NotMemlink(_) => 5,
        })
    }

    /// Why segment `name` could not be read.
    pub fn open(name: &str, e: OpenError) -> Failure {
        match e {
            OpenError::NotFound { .. } => Failure::NotFound(format!(
                "no segment named {name:?} (`memlink ls` lists them; a name with a `/` is a path)"
            )),
            OpenError::PermissionDenied { reason, .. } => Failure::PermissionDenied(format!(
                "cannot read segment {name:?}: {reason} (run as the user that owns it)"
            )),
            OpenError::InvalidSegment { reason, .. } => {
                Failure::NotMemlink(format!("{name:?} is not a usable memlink segment: {reason}"))
            }
            OpenError::Starting { .. } => Failure::NotMemlink(format!(
                "{name:?} is not a usable memlink segment yet: its header is not written \
                 (its daemon is still starting, or the file is not a memlink segment)"
            )),
            OpenError::LayoutMismatch { expected, found } => Failure::NotMemlink(format!(
                "{name:?} has segment layout {found}, this memlink reads layout {expected} \
                 (use the memlink of the library version that made it)"
            )),
            other => Failure::Other(format!("cannot read segment {name:?}: {other}")),
        }
    }

    /// An I/O failure while doing `what`.
    pub fn io(what: &str, e: impl fmt::Display) -> Failure {
        Failure::Other(format!("{what}: {e}"))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::NotFound(s) | Failure::PermissionDenied(s) | Failure::NotMemlink(s) | Failure::Other(s) => {
                f.write_str(s)
            }
        }
    }
}
