//! Cleaning up after the dead: segments whose daemon died, segments a
//! creator died building, and PID files of processes that are gone.

use std::io;
use std::path::{Path, PathBuf};

use super::pid_file;
use crate::endpoint::OpenError;
use crate::platform;
use crate::segment::layout::DAEMON_LOCK_BYTE;
use crate::segment::{owner, Owner, SegmentName, TEMP_SUFFIX};

/// What [`remove_orphans_in`] removed, or [`find_orphans_in`] would remove.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Orphans {
    /// Segments whose daemon is dead.
    pub segments: Vec<PathBuf>,
    /// Half-built segments whose creator died.
    pub partial_segments: Vec<PathBuf>,
    /// memlink PID files whose process is gone.
    pub pid_files: Vec<PathBuf>,
}

impl Orphans {
    /// How many files in all.
    pub fn len(&self) -> usize {
        self.segments.len() + self.partial_segments.len() + self.pid_files.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Removes the segment `name` if its daemon is dead; returns whether it
/// did. A live segment, another user's file and a file that is not a
/// memlink segment are left alone. The dead daemon's lock is taken first,
/// so two cleaners (or a cleaner and a daemon taking the name over) never
/// both act on it.
///
/// ```
/// use memlink_shm::{liveness, Daemon};
/// # let name = format!("memlink-doc-orphan-{}", std::process::id());
/// let daemon = Daemon::create(&name)?;
/// assert!(!liveness::remove_if_orphaned(&name)?, "its daemon lives");
/// drop(daemon); // a daemon that shuts down removes its segment itself
/// assert!(!liveness::remove_if_orphaned(&name)?, "nothing is left");
/// # Ok::<(), memlink_shm::OpenError>(())
/// ```
///
/// # Errors
/// [`OpenError::InvalidName`] for a name no segment can have, and the
/// errors of inspecting or removing the file ([`OpenError::Io`], ...).
pub fn remove_if_orphaned(name: &str) -> Result<bool, OpenError> {
    Ok(dead(&SegmentName::parse(name)?, Act::Remove)?)
}

/// Removes, in `dir`, every segment of this user whose daemon is dead, every
/// half-built segment whose creator died, and every memlink PID file whose
/// process is gone. It never removes what a live process holds (a creator
/// locks its half-built segment from the moment the file exists), another
/// user's file, nor another program's PID file (a memlink PID file says so).
///
/// # Errors
/// When `dir` cannot be listed.
pub fn remove_orphans_in(dir: &Path) -> io::Result<Orphans> {
    scan(dir, Act::Remove)
}

/// What [`remove_orphans_in`] would remove in `dir`, found the same way but
/// without removing or locking anything.
///
/// # Errors
/// When `dir` cannot be listed.
pub fn find_orphans_in(dir: &Path) -> io::Result<Orphans> {
    scan(dir, Act::Report)
}

/// Whether a scan removes what it finds or only reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    Remove,
    Report,
}

fn scan(dir: &Path, act: Act) -> io::Result<Orphans> {
    let mut found = Orphans::default();
    for entry in std::fs::read_dir(dir)?.flatten() {
        let path = entry.path();
        // Regular files only: never follow a link out of the directory.
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let file_name = entry.file_name().to_string_lossy().into_owned();
        // Removed while open (Windows): still there only if that delete failed.
        if file_name.ends_with(TEMP_SUFFIX) || file_name.ends_with(platform::REMOVED_SUFFIX) {
            if unlocked(&path, DAEMON_LOCK_BYTE, act) {
                found.partial_segments.push(path);
            }
        } else if file_name.ends_with(".pid") {
            if pid_file::is_stale(&path) && unlocked(&path, 0, act) {
                found.pid_files.push(path);
            }
        } else if let Ok(name) = SegmentName::parse(&path.to_string_lossy()) {
            if let Ok(true) = dead(&name, act) {
                found.segments.push(path);
            }
        }
    }
    Ok(found)
}

/// Whether the segment `name` is a memlink segment of this user whose
/// daemon is dead; with [`Act::Remove`], removes it under the dead daemon's
/// lock.
fn dead(name: &SegmentName, act: Act) -> Result<bool, crate::segment::SegmentError> {
    let Owner::Dead { file, .. } = owner(name)? else {
        return Ok(false);
    };
    if act == Act::Report {
        return Ok(true);
    }
    let path = name.path();
    if !platform::try_lock_byte(&file, DAEMON_LOCK_BYTE).unwrap_or(false)
        || !matches!(platform::same_file(&file, &path), Ok(true))
    {
        return Ok(false);
    }
    platform::remove_segment_file(&path).map_err(|e| name.io_error("remove", e))?;
    Ok(true)
}

/// Whether `path` is a file of this user nobody holds byte `byte` of (the
/// same protocol); with [`Act::Remove`], removes it under that lock.
fn unlocked(path: &Path, byte: u64, act: Act) -> bool {
    let Ok(file) = platform::open_segment_file(path) else {
        return false;
    };
    let mine = platform::file_owner_and_size(&file).is_ok_and(|(uid, _)| uid == platform::current_uid());
    if !mine {
        return false;
    }
    match act {
        Act::Report => !platform::byte_locked_elsewhere(&file, byte).unwrap_or(true),
        Act::Remove => {
            platform::try_lock_byte(&file, byte).unwrap_or(false)
                && matches!(platform::same_file(&file, path), Ok(true))
                && platform::remove_segment_file(path).is_ok()
        }
    }
}
