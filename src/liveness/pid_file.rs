//! PID files: a file that names the process holding it, and a lock on it
//! that the kernel releases when that process dies, however it dies.

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::Process;
use crate::platform;

/// The third word of a memlink PID file ("PID START memlink"): cleanup
/// touches no other `.pid` file.
const MARK: &str = "memlink";

/// How often [`PidFile::acquire`] starts over when the file is replaced
/// under it (removed and created again by another process).
const ATTEMPTS: usize = 8;

/// A PID file this process holds: it names this process (pid and start
/// time) and stays locked until dropped, when it is removed. A second
/// instance that tries to acquire it is refused with the holder's pid, and
/// the file of a process that died is taken over.
///
/// The file gets the rules of a segment file: never opened through a
/// symbolic link, refused when another user owns it, created readable by
/// this user only.
///
/// ```
/// use memlink_shm::liveness::{PidFile, PidFileError, Process};
/// # let path = std::env::temp_dir().join(format!("memlink-doc-pid-{}.pid", std::process::id()));
///
/// let held = PidFile::acquire(&path)?;
/// assert_eq!(PidFile::holder(&path), Some(Process::current()));
/// assert!(matches!(PidFile::acquire(&path), Err(PidFileError::Held { .. })));
/// drop(held); // unlocked and removed
/// assert_eq!(PidFile::holder(&path), None);
/// # Ok::<(), PidFileError>(())
/// ```
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    file: platform::LockFile,
}

impl PidFile {
    /// Creates the PID file at `path` (or takes over one whose process is
    /// dead), writes this process's id and start time into it, and locks it
    /// until the returned value is dropped.
    ///
    /// # Errors
    /// [`PidFileError::Held`] when a live process holds it (this one
    /// included, through another `PidFile`), [`PidFileError::PermissionDenied`]
    /// when it is another user's file or a symbolic link,
    /// [`PidFileError::Io`] when it cannot be opened, locked or written.
    pub fn acquire(path: impl AsRef<Path>) -> Result<PidFile, PidFileError> {
        let path = path.as_ref();
        let io = |op, e| PidFileError::from_io(op, path, e);
        for _ in 0..ATTEMPTS {
            let mut file =
                platform::LockFile::open(|| platform::open_or_create_private_file(path)).map_err(|e| io("open", e))?;
            // Another user's file (root adopting it, say) would stay writable by them.
            let (owner, _) = platform::file_owner_and_size(&file).map_err(|e| io("stat", e))?;
            let me = platform::current_uid();
            if owner != me {
                return Err(PidFileError::PermissionDenied {
                    path: path.to_owned(),
                    reason: format!(
                        "owned by uid {owner}, not by this user ({me}): refusing a file another user may control"
                    ),
                });
            }
            if !platform::try_lock_byte(&file, 0).map_err(|e| io("lock", e))? {
                return Err(PidFileError::Held {
                    path: path.to_owned(),
                    pid: read(&mut file).map_or(0, |(p, _)| p.pid),
                });
            }
            // Locked; but if the file was removed and created again meanwhile,
            // this lock guards nothing: start over with the file the path names now.
            if !matches!(platform::same_file(&file, path), Ok(true)) {
                continue;
            }
            let me = Process::current();
            file.set_len(0).map_err(|e| io("write", e))?;
            file.write_all(format!("{} {} {MARK}\n", me.pid, me.start_time).as_bytes())
                .map_err(|e| io("write", e))?;
            return Ok(PidFile {
                path: path.to_owned(),
                file,
            });
        }
        Err(io(
            "lock",
            io::Error::other(format!("it was replaced {ATTEMPTS} times while being locked")),
        ))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The live process holding the PID file at `path`, if one does (this
    /// process included, through a `PidFile`). A holder whose file cannot be
    /// read (it is writing it right now, or another program wrote it) is
    /// reported with pid 0.
    pub fn holder(path: impl AsRef<Path>) -> Option<Process> {
        let mut file = platform::open_segment_file(path.as_ref()).ok()?;
        if !platform::byte_locked_elsewhere(&file, 0).unwrap_or(false) {
            return None;
        }
        Some(read(&mut file).map_or(Process { pid: 0, start_time: 0 }, |(p, _)| p))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Only the file this lock guards: never one another process made since.
        if matches!(platform::same_file(&self.file, &self.path), Ok(true)) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Whether `path` is a memlink PID file whose process is gone (its pid no
/// longer runs, or runs another program started at another time).
pub(super) fn is_stale(path: &Path) -> bool {
    platform::open_segment_file(path)
        .ok()
        .and_then(|mut file| read(&mut file))
        .is_some_and(|(process, ours)| ours && !process.is_running())
}

/// What a PID file says: the process, and whether memlink wrote the file
/// (its third word is [`MARK`]).
fn read(file: &mut File) -> Option<(Process, bool)> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.take(64).read_to_string(&mut text).ok()?;
    let mut words = text.split_whitespace();
    let process = Process {
        pid: words.next()?.parse().ok()?,
        start_time: words.next().and_then(|t| t.parse().ok()).unwrap_or(0),
    };
    Some((process, words.next() == Some(MARK)))
}

/// Why a [`PidFile`] could not be acquired.
#[derive(Error)]
#[non_exhaustive]
pub enum PidFileError {
    /// A live process holds the file.
    #[error("the PID file {} is held by process {pid}: another instance is running; stop it first, or use another file", path.display())]
    Held {
        /// The file.
        path: PathBuf,
        /// The holder's pid, as it wrote it (0 if unreadable).
        pid: u32,
    },
    /// The file is another user's, or a symbolic link.
    #[error("permission denied on the PID file {}: {reason}", path.display())]
    PermissionDenied {
        /// The file.
        path: PathBuf,
        /// Why it was refused.
        reason: String,
    },
    /// An operating-system call failed.
    #[error("{op} failed for the PID file {}: {source}", path.display())]
    Io {
        /// What was being done: `open`, `stat`, `lock` or `write`.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

debug_is_the_message!(PidFileError);

impl PidFileError {
    fn from_io(op: &'static str, path: &Path, e: io::Error) -> PidFileError {
        let path = path.to_owned();
        if platform::is_symlink_refusal(&e) {
            let reason = "it is a symbolic link, which memlink never follows".into();
            return PidFileError::PermissionDenied { path, reason };
        }
        if e.kind() == io::ErrorKind::PermissionDenied {
            return PidFileError::PermissionDenied {
                path,
                reason: format!("{op}: {e}"),
            };
        }
        PidFileError::Io { op, path, source: e }
    }
}
