//! The file behind a segment name: its path, removing it, cutting it short,
//! its daemon's liveness lock and whether that lock is held.

use std::fs::File;
use std::io;

use crate::endpoint::OpenError;
use crate::platform;
use crate::segment::layout::DAEMON_LOCK_BYTE;
use crate::segment::{owner, Owner, SegmentName};

/// Removes the name of segment `name`, as its daemon does when it shuts
/// down; processes that mapped the segment keep their mapping.
///
/// # Errors
/// [`OpenError::InvalidName`], [`OpenError::NotFound`] if nothing has the
/// name, or the error of the removal.
pub fn remove_segment(name: &str) -> Result<(), OpenError> {
    Ok(SegmentName::parse(name)?.remove()?)
}

/// Cuts the file of segment `name` to `len` bytes, as any process that may
/// open it for writing can: the processes that mapped it lose the pages
/// past `len`. Windows refuses to shrink a file below a mapped view, so
/// there this fails while the segment is mapped.
///
/// # Errors
/// An invalid name ([`io::ErrorKind::InvalidInput`]), or the error of
/// opening or resizing the file.
pub fn truncate_segment(name: &str, len: u64) -> io::Result<()> {
    let path = crate::inspect::segment_path(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    std::fs::OpenOptions::new().write(true).open(path)?.set_len(len)
}

/// The liveness lock of a segment's daemon, held by this process (see
/// [`hold_daemon_lock`]). Dropping it closes the file, which lets the lock
/// go.
#[derive(Debug)]
pub struct DaemonLock {
    _file: File,
}

/// Takes the liveness lock of the daemon of segment `name`, as a creator
/// that takes over a dead daemon's segment does before it replaces the
/// file; `None` if a live process holds it. While the lock is held, others
/// see a takeover under way.
///
/// # Errors
/// An invalid name ([`io::ErrorKind::InvalidInput`]), or the error of
/// opening the file or testing the lock.
pub fn hold_daemon_lock(name: &str) -> io::Result<Option<DaemonLock>> {
    let path = crate::inspect::segment_path(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let file = platform::open_segment_file(&path)?;
    Ok(platform::try_lock_byte(&file, DAEMON_LOCK_BYTE)?.then_some(DaemonLock { _file: file }))
}

/// Whether a live process holds the daemon's lock of the segment at `name`
/// (its daemon, or a creator taking the name over), found out the way a
/// creator does before it takes a name over: from the file's header and
/// lock, without mapping it. `Ok(false)` if no file has the name or its
/// daemon is dead.
///
/// # Errors
/// A file of another user, or one that is not a memlink segment
/// ([`OpenError::AlreadyExists`]), or the error of opening it.
pub fn daemon_holds(name: &str) -> Result<bool, OpenError> {
    match owner(&SegmentName::parse(name)?)? {
        Owner::Alive { .. } | Owner::TakingOver => Ok(true),
        Owner::Missing | Owner::Dead { .. } => Ok(false),
    }
}
