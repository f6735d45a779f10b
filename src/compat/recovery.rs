//! Crash recovery: who is alive, PID files, and cleaning up after the dead,
//! in the 0.1.3 shapes, over [`crate::liveness`].
//!
//! Liveness here is a kernel fact, never a guess from a timeout: a process
//! holds a lock on a byte of a file (its segment, or its PID file) for as
//! long as it lives, and the kernel releases it when the process dies,
//! however it dies. Process ids are recorded next to their start time, so a
//! recycled pid is never mistaken for the process that had it.
//! [`Heartbeat`] measures progress, which is a different question: a busy
//! process is late, not dead.
//!
//! ```
//! use memlink_shm::recovery::RecoveryManager;
//! # let path = format!("/tmp/memlink-doc-recovery-{}", std::process::id());
//!
//! let recovery = RecoveryManager::new(&path);
//! recovery.register_daemon()?;             // PID file, held until drop
//! assert!(recovery.is_already_running());  // a second instance would see this
//! assert!(RecoveryManager::new(&path).register_daemon().is_err());
//! # Ok::<(), memlink_shm::ShmError>(())
//! ```

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crate::compat::{ShmError, ShmResult};
use crate::liveness::{self, Orphans, PidFile, PidFileError, Process};
use crate::{inspect, OpenError};

/// A process named so that pid reuse cannot fool a check: pid plus the time
/// the process started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProcessId {
    /// Operating-system process id.
    pub pid: u32,
    /// Start time in clock ticks since boot (0 if unknown).
    pub start_time: u64,
}

impl ProcessId {
    /// This process.
    pub fn current() -> ProcessId {
        Process::current().into()
    }

    /// Whether this very process (same pid *and* start time) is running.
    pub fn is_alive(&self) -> bool {
        Process {
            pid: self.pid,
            start_time: self.start_time,
        }
        .is_running()
    }
}

impl From<Process> for ProcessId {
    fn from(p: Process) -> ProcessId {
        ProcessId {
            pid: p.pid,
            start_time: p.start_time,
        }
    }
}

/// A heartbeat: one side beats, the other asks how long ago it last did.
/// It is shared between threads (in an `Arc`); across processes, a daemon's
/// heartbeat is in its segment ([`crate::ClientControl::daemon_heartbeat_age`]).
/// A late heartbeat says "stuck or busy", never "dead": reclaim on liveness
/// locks.
///
/// ```
/// use memlink_shm::recovery::Heartbeat;
/// use std::sync::Arc;
///
/// let heartbeat = Arc::new(Heartbeat::new(1)); // 1 second interval
/// heartbeat.beat();
/// assert!(heartbeat.is_alive(5));
/// ```
#[derive(Debug)]
pub struct Heartbeat {
    interval: Duration,
    /// Nanoseconds from [`epoch`] to the last beat.
    last_beat: AtomicU64,
}

/// The instant heartbeats of this process count from.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds since [`epoch`], counted from a day, so that a beat placed
/// up to a day before the first one (a test's, say) is representable.
fn now_nanos() -> u64 {
    const DAY: u64 = 86_400 * 1_000_000_000;
    u64::try_from(epoch().elapsed().as_nanos()).map_or(u64::MAX, |n| n.saturating_add(DAY))
}

impl Heartbeat {
    /// A heartbeat expected every `interval_secs` seconds, beaten now.
    pub fn new(interval_secs: u64) -> Heartbeat {
        Heartbeat {
            interval: Duration::from_secs(interval_secs),
            last_beat: AtomicU64::new(now_nanos()),
        }
    }

    /// Records a beat.
    pub fn beat(&self) {
        self.last_beat.store(now_nanos(), Ordering::Release);
    }

    /// Time since the last beat.
    pub fn age(&self) -> Duration {
        Duration::from_nanos(now_nanos().saturating_sub(self.last_beat.load(Ordering::Acquire)))
    }

    /// Whether the last beat is at most `timeout_secs` seconds old.
    pub fn is_alive(&self, timeout_secs: u64) -> bool {
        self.age() <= Duration::from_secs(timeout_secs)
    }

    /// Whether a beat is due (an interval has passed since the last).
    pub fn is_due(&self) -> bool {
        self.age() >= self.interval
    }

    /// The expected interval between beats.
    pub fn interval(&self) -> Duration {
        self.interval
    }
}

/// What a cleanup removed (or, from [`RecoveryManager::find_orphans_in`],
/// would remove).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CleanupReport {
    /// Segments whose daemon was dead.
    pub segments: Vec<PathBuf>,
    /// Half-built segments abandoned by a creator that died.
    pub partial_segments: Vec<PathBuf>,
    /// PID files whose process was dead.
    pub pid_files: Vec<PathBuf>,
}

impl From<Orphans> for CleanupReport {
    fn from(o: Orphans) -> CleanupReport {
        CleanupReport {
            segments: o.segments,
            partial_segments: o.partial_segments,
            pid_files: o.pid_files,
        }
    }
}

/// PID files and cleanup for one daemon's segment name.
///
/// The PID file (`<segment path>.pid`) holds `pid start_time`; the daemon
/// keeps it locked while registered (a [`PidFile`]), which is what
/// [`RecoveryManager::is_already_running`] tests.
#[derive(Debug)]
pub struct RecoveryManager {
    /// The segment name as given.
    name: String,
    /// Why the name is unusable, if it is: `register_daemon` reports it.
    unusable: Option<OpenError>,
    pid_file: PathBuf,
    held: Mutex<Option<PidFile>>,
}

impl RecoveryManager {
    /// A manager for the segment `path` (a POSIX name or a file path, as for
    /// `NrelayShmTransport::create`).
    pub fn new(path: &str) -> RecoveryManager {
        let (segment, unusable) = match inspect::segment_path(path) {
            Ok(segment) => (segment, None),
            Err(e) => (PathBuf::from(path), Some(e)),
        };
        let mut pid_file = segment.into_os_string();
        pid_file.push(".pid");
        RecoveryManager {
            name: path.to_owned(),
            unusable,
            pid_file: pid_file.into(),
            held: Mutex::new(None),
        }
    }

    fn held(&self) -> MutexGuard<'_, Option<PidFile>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The PID file's path.
    pub fn pid_file(&self) -> &Path {
        &self.pid_file
    }

    /// Registers this process as the daemon: writes and locks the PID file.
    /// Fails with [`ShmError::AlreadyRunning`] if a live process holds it; a
    /// dead one's file is taken over.
    ///
    /// The PID file gets the same rules as a segment: it is never opened
    /// through a symbolic link, and one that another user owns is refused.
    ///
    /// # Errors
    /// [`ShmError::AlreadyRunning`] when a live process holds the PID file,
    /// [`ShmError::PermissionDenied`] when another user owns it,
    /// [`ShmError::InvalidConfig`] for an unusable name, [`ShmError::Io`] when the
    /// file cannot be opened, locked or written.
    pub fn register_daemon(&self) -> ShmResult<()> {
        if let Some(e) = &self.unusable {
            return Err(ShmError::InvalidConfig(e.to_string()));
        }
        let mut held = self.held();
        if held.is_none() {
            *held = Some(PidFile::acquire(&self.pid_file).map_err(|e| match e {
                PidFileError::Held { pid, .. } => ShmError::AlreadyRunning {
                    name: self.name.clone(),
                    pid,
                },
                other => other.into(),
            })?);
        }
        Ok(())
    }

    /// Gives up the registration and removes the PID file.
    pub fn unregister_daemon(&self) {
        drop(self.held().take());
    }

    /// Whether a daemon (this process included) holds the PID file.
    pub fn is_already_running(&self) -> bool {
        self.held().is_some() || self.running_daemon().is_some()
    }

    /// The process holding the PID file, if a process holds it (pid 0 when
    /// what it wrote cannot be read).
    pub fn running_daemon(&self) -> Option<ProcessId> {
        PidFile::holder(&self.pid_file).map(ProcessId::from)
    }

    /// Removes the segment at `path` if its daemon is dead; returns whether
    /// it did. Live segments, other users' files and files that are not
    /// memlink segments are left alone.
    ///
    /// # Errors
    /// [`ShmError::InvalidConfig`] for an unusable name, [`ShmError::Io`] when
    /// the file cannot be inspected or removed.
    pub fn cleanup_orphaned_shm(&self, path: &str) -> ShmResult<bool> {
        Ok(liveness::remove_if_orphaned(path)?)
    }

    /// Removes, in `dir`, every segment of this user whose daemon is dead,
    /// every half-built segment whose creator died, and every memlink PID
    /// file whose process is gone. It never removes what a live process
    /// holds (a creator locks its half-built segment from the moment the file
    /// exists) nor another program's PID file (a memlink PID file says so).
    ///
    /// # Errors
    /// [`ShmError::Io`] when `dir` cannot be read.
    pub fn cleanup_orphans_in(dir: &Path) -> ShmResult<CleanupReport> {
        liveness::remove_orphans_in(dir)
            .map(CleanupReport::from)
            .map_err(|e| scan_error(dir, e))
    }

    /// What [`RecoveryManager::cleanup_orphans_in`] would remove in `dir`,
    /// found the same way but without removing or locking anything.
    ///
    /// # Errors
    /// [`ShmError::Io`] when `dir` cannot be read.
    pub fn find_orphans_in(dir: &Path) -> ShmResult<CleanupReport> {
        liveness::find_orphans_in(dir)
            .map(CleanupReport::from)
            .map_err(|e| scan_error(dir, e))
    }

    /// [`RecoveryManager::cleanup_orphans_in`] the directory of bare segment
    /// names (`/dev/shm` on Linux, `/tmp` on macOS,
    /// `%TEMP%\memlink` on Windows).
    ///
    /// # Errors
    /// [`ShmError::Io`] when the directory cannot be read.
    pub fn cleanup_all_orphans() -> ShmResult<CleanupReport> {
        Self::cleanup_orphans_in(&inspect::default_dir())
    }
}

fn scan_error(dir: &Path, source: std::io::Error) -> ShmError {
    ShmError::Io {
        op: "scan",
        name: dir.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_ages() {
        let h = Heartbeat::new(1);
        assert!(h.is_alive(5));
        assert!(!h.is_due());
        // As if the last beat were 10 s ago.
        h.last_beat.store(now_nanos() - 10_000_000_000, Ordering::Relaxed);
        assert!(h.age() >= Duration::from_secs(10));
        assert!(!h.is_alive(5));
        assert!(h.is_due());
        h.beat();
        assert!(h.is_alive(5));
        assert!(!h.is_due());
    }

    #[test]
    fn process_ids_tell_reuse_apart() {
        let me = ProcessId::current();
        assert_eq!(me.pid, std::process::id());
        assert!(me.is_alive());
        let reused = ProcessId {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!reused.is_alive());
    }

    #[test]
    fn an_unusable_name_is_refused_at_registration() {
        let r = RecoveryManager::new("").register_daemon();
        assert!(matches!(r, Err(ShmError::InvalidConfig(_))), "{r:?}");
    }
}
