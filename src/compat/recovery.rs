//! Crash recovery: who is alive, PID files, and cleaning up after the dead.
//!
//! Liveness here is a kernel fact, never a guess from a timeout: a process
//! holds a lock on a byte of a file (its segment, or its PID file: an OFD
//! lock on Linux and macOS, `LockFileEx` on Windows) for as long as it
//! lives, and the kernel releases it when the process dies, however it dies.
//! Process ids are recorded next to their start time, so a recycled pid is
//! never mistaken for the process that had it.
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

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::compat::{ShmError, ShmResult};
use crate::platform;
use crate::segment::layout::DAEMON_LOCK_BYTE;
use crate::segment::{owner, Owner};
use crate::segment::{SegmentName, TEMP_SUFFIX};

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
        let pid = platform::current_pid();
        ProcessId {
            pid,
            start_time: platform::process_start_time(pid).unwrap_or(0),
        }
    }

    /// Whether this very process (same pid *and* start time) is running.
    pub fn is_alive(&self) -> bool {
        platform::process_start_time(self.pid).is_some_and(|t| self.start_time == 0 || t == self.start_time)
    }
}

/// A heartbeat: one side beats, the other asks how long ago it last did.
///
/// The timestamp is monotonic time, shared by all processes of one boot, so
/// a `Heartbeat` placed in shared memory works across processes. A late
/// heartbeat says "stuck or busy", never "dead": reclaim on liveness locks.
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
    last_beat: AtomicU64,
}

impl Heartbeat {
    /// A heartbeat expected every `interval_secs` seconds, beaten now.
    pub fn new(interval_secs: u64) -> Heartbeat {
        Heartbeat {
            interval: Duration::from_secs(interval_secs),
            last_beat: AtomicU64::new(platform::monotonic_nanos()),
        }
    }

    /// Records a beat.
    pub fn beat(&self) {
        self.last_beat.store(platform::monotonic_nanos(), Ordering::Release);
    }

    /// Time since the last beat.
    pub fn age(&self) -> Duration {
        Duration::from_nanos(platform::monotonic_nanos().saturating_sub(self.last_beat.load(Ordering::Acquire)))
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

/// PID files and cleanup for one daemon's segment name.
///
/// The PID file (`<segment path>.pid`) holds `pid start_time`; the daemon
/// keeps an OFD lock on it while registered, which is what
/// [`RecoveryManager::is_already_running`] tests.
#[derive(Debug)]
pub struct RecoveryManager {
    name: Result<SegmentName, String>,
    pid_file: PathBuf,
    held: Mutex<Option<platform::LockFile>>,
}

impl RecoveryManager {
    /// A manager for the segment `path` (a POSIX name or a file path, as for
    /// `NrelayShmTransport::create`).
    pub fn new(path: &str) -> RecoveryManager {
        let name = SegmentName::parse(path).map_err(|e| e.to_string());
        let pid_file = match &name {
            Ok(n) => pid_file_for(&n.path()),
            Err(_) => PathBuf::from(format!("{path}.pid")),
        };
        RecoveryManager {
            name,
            pid_file,
            held: Mutex::new(None),
        }
    }

    fn name(&self) -> ShmResult<&SegmentName> {
        self.name.as_ref().map_err(|e| ShmError::InvalidConfig(e.clone()))
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Option<platform::LockFile>> {
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
        let name = self.name()?;
        let mut held = self.held();
        if held.is_some() {
            return Ok(());
        }
        let io = |op, e| ShmError::from(name.io_error(op, e));
        for _ in 0..8 {
            let mut file = platform::LockFile::open(|| platform::open_or_create_private_file(&self.pid_file))
                .map_err(|e| io("open pid file", e))?;
            // Another user's file (root adopting it, say) would stay writable by them.
            crate::segment::check_owner(
                &SegmentName::Path(self.pid_file.clone()),
                &file,
                platform::current_uid(),
            )?;
            if !platform::try_lock_byte(&file, 0).map_err(|e| io("lock pid file", e))? {
                return Err(ShmError::AlreadyRunning {
                    name: name.to_string(),
                    pid: read_pid_file(&mut file).map_or(0, |(p, _)| p.pid),
                });
            }
            // Locked; but if the file was removed and recreated meanwhile, this
            // lock guards nothing: start over with the file the path names now.
            if !matches!(platform::same_file(&file, &self.pid_file), Ok(true)) {
                continue;
            }
            let me = ProcessId::current();
            file.set_len(0).map_err(|e| io("write pid file", e))?;
            file.write_all(format!("{} {} {PID_FILE_MARK}\n", me.pid, me.start_time).as_bytes())
                .map_err(|e| io("write pid file", e))?;
            *held = Some(file);
            return Ok(());
        }
        Err(io("lock pid file", std::io::Error::other("the PID file kept changing")))
    }

    /// Gives up the registration and removes the PID file.
    pub fn unregister_daemon(&self) {
        if let Some(file) = self.held().take() {
            if matches!(platform::same_file(&file, &self.pid_file), Ok(true)) {
                let _ = std::fs::remove_file(&self.pid_file);
            }
        }
    }

    /// Whether a daemon (this process included) holds the PID file.
    pub fn is_already_running(&self) -> bool {
        self.held().is_some() || self.running_daemon().is_some()
    }

    /// The process holding the PID file, if another process holds it.
    pub fn running_daemon(&self) -> Option<ProcessId> {
        let mut file = platform::open_segment_file(&self.pid_file).ok()?;
        if !platform::byte_locked_elsewhere(&file, 0).unwrap_or(false) {
            return None;
        }
        read_pid_file(&mut file)
            .map(|(p, _)| p)
            .or(Some(ProcessId { pid: 0, start_time: 0 }))
    }

    /// Removes the segment at `path` if its daemon is dead; returns whether
    /// it did. Live segments, other users' files and files that are not
    /// memlink segments are left alone.
    ///
    /// # Errors
    /// [`ShmError::InvalidConfig`] for an unusable name, [`ShmError::Io`] when
    /// the file cannot be inspected or removed.
    pub fn cleanup_orphaned_shm(&self, path: &str) -> ShmResult<bool> {
        dead(&SegmentName::parse(path)?, Act::Remove)
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
        scan(dir, Act::Remove)
    }

    /// What [`RecoveryManager::cleanup_orphans_in`] would remove in `dir`,
    /// found the same way but without removing or locking anything.
    ///
    /// # Errors
    /// [`ShmError::Io`] when `dir` cannot be read.
    pub fn find_orphans_in(dir: &Path) -> ShmResult<CleanupReport> {
        scan(dir, Act::Report)
    }

    /// [`RecoveryManager::cleanup_orphans_in`] the directory of bare segment
    /// names (`/dev/shm` on Linux, `/tmp` on macOS,
    /// `%TEMP%\memlink` on Windows).
    ///
    /// # Errors
    /// [`ShmError::Io`] when the directory cannot be read.
    pub fn cleanup_all_orphans() -> ShmResult<CleanupReport> {
        Self::cleanup_orphans_in(&platform::shm_dir())
    }
}

impl Drop for RecoveryManager {
    fn drop(&mut self) {
        self.unregister_daemon();
    }
}

/// Whether a cleanup scan removes what it finds or only reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    Remove,
    Report,
}

fn scan(dir: &Path, act: Act) -> ShmResult<CleanupReport> {
    let mut report = CleanupReport::default();
    let entries = std::fs::read_dir(dir).map_err(|e| ShmError::Io {
        op: "scan",
        name: dir.display().to_string(),
        source: e,
    })?;
    for entry in entries.flatten() {
        let path = entry.path();
        // Regular files only: never follow a link out of the directory.
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let file_name = entry.file_name().to_string_lossy().into_owned();
        // Removed while open (Windows): still there only if that delete failed.
        if file_name.ends_with(TEMP_SUFFIX) || file_name.ends_with(platform::REMOVED_SUFFIX) {
            if unlocked(&path, DAEMON_LOCK_BYTE, act) {
                report.partial_segments.push(path);
            }
        } else if file_name.ends_with(".pid") {
            if is_stale_memlink_pid_file(&path) && unlocked(&path, 0, act) {
                report.pid_files.push(path);
            }
        } else if let Ok(name) = SegmentName::parse(&path.to_string_lossy()) {
            if let Ok(true) = dead(&name, act) {
                report.segments.push(path);
            }
        }
    }
    Ok(report)
}

fn pid_file_for(segment: &Path) -> PathBuf {
    let mut s = segment.as_os_str().to_owned();
    s.push(".pid");
    PathBuf::from(s)
}

/// What a PID file says: the process, and whether memlink wrote the file
/// (its third word is [`PID_FILE_MARK`]).
fn read_pid_file(file: &mut File) -> Option<(ProcessId, bool)> {
    use std::io::Seek;
    let mut text = String::new();
    file.rewind().ok()?;
    file.take(64).read_to_string(&mut text).ok()?;
    let mut it = text.split_whitespace();
    let process = ProcessId {
        pid: it.next()?.parse().ok()?,
        start_time: it.next().and_then(|t| t.parse().ok()).unwrap_or(0),
    };
    Some((process, it.next() == Some(PID_FILE_MARK)))
}

/// The third word of a memlink PID file ("PID START memlink"): cleanup
/// touches no other `.pid` file.
const PID_FILE_MARK: &str = "memlink";

/// Whether `path` is a memlink PID file whose process is gone (its pid no
/// longer runs, or runs another program started at another time).
fn is_stale_memlink_pid_file(path: &Path) -> bool {
    platform::open_segment_file(path)
        .ok()
        .and_then(|mut file| read_pid_file(&mut file))
        .is_some_and(|(process, ours)| ours && !process.is_alive())
}

/// Whether the segment `name` is a memlink segment of this user whose
/// daemon is dead; with [`Act::Remove`], removes it, taking the dead
/// daemon's lock first so that two cleaners (or a cleaner and a daemon
/// taking over) never both act on it.
fn dead(name: &SegmentName, act: Act) -> ShmResult<bool> {
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

/// Whether `path` is a file of this user nobody holds byte `byte` of (same
/// protocol); with [`Act::Remove`], removes it under that lock.
fn unlocked(path: &Path, byte: u64, act: Act) -> bool {
    let Ok(file) = platform::open_segment_file(path) else {
        return false;
    };
    let mine = crate::segment::check_owner(&SegmentName::Path(path.to_owned()), &file, platform::current_uid()).is_ok();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::layout::Geometry;
    use crate::segment::{Segment, SharedMemory};

    fn tmp(tag: &str) -> String {
        format!("/tmp/memlink-recovery-{tag}-{}", platform::current_pid())
    }

    #[test]
    fn heartbeat_ages() {
        let h = Heartbeat::new(1);
        assert!(h.is_alive(5));
        assert!(!h.is_due());
        h.last_beat
            .store(platform::monotonic_nanos() - 10_000_000_000, Ordering::Relaxed);
        assert!(!h.is_alive(5));
        assert!(h.is_due());
        h.beat();
        assert!(h.is_alive(5));
    }

    #[test]
    fn pid_file_is_exclusive_and_released() {
        let _no_spawn = platform::spawn_exclusion().read().unwrap_or_else(|p| p.into_inner());
        let path = tmp("pid");
        let a = RecoveryManager::new(&path);
        let b = RecoveryManager::new(&path);
        a.register_daemon().unwrap();
        assert!(
            matches!(b.register_daemon(), Err(ShmError::AlreadyRunning { pid, .. }) if pid == platform::current_pid())
        );
        assert!(b.is_already_running());
        assert_eq!(b.running_daemon().unwrap(), ProcessId::current());
        drop(a);
        assert!(!b.is_already_running());
        assert!(!Path::new(&format!("{path}.pid")).exists());
        b.register_daemon().unwrap();
    }

    #[test]
    fn a_dead_segment_is_cleaned_up_and_a_live_one_is_not() {
        let _no_spawn = platform::spawn_exclusion().read().unwrap_or_else(|p| p.into_inner());
        let path = tmp("orphan");
        let name = SegmentName::parse(&path).unwrap();
        let g = Geometry::compute(1 << 20, 1, 4096).unwrap();
        let live = Segment::create(&name, g, 1, 0o600).unwrap();
        let rm = RecoveryManager::new(&path);
        assert!(!rm.cleanup_orphaned_shm(&path).unwrap(), "its daemon lives");
        drop(live); // closes the file: the daemon's lock goes, the file stays
        assert!(name.path().exists());
        assert!(rm.cleanup_orphaned_shm(&path).unwrap());
        assert!(!name.path().exists());
        assert!(!rm.cleanup_orphaned_shm(&path).unwrap(), "nothing left");
    }

    #[test]
    fn scan_removes_dead_segments_partial_ones_and_stale_pid_files_only() {
        let _no_spawn = platform::spawn_exclusion().read().unwrap_or_else(|p| p.into_inner());
        let dir = std::env::temp_dir().join(format!("memlink-scan-{}", platform::current_pid()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let seg = |n: &str| SegmentName::parse(&dir.join(n).to_string_lossy()).unwrap();
        let g = Geometry::compute(1 << 20, 1, 4096).unwrap();
        let live = Segment::create(&seg("live"), g, 1, 0o600).unwrap();
        drop(Segment::create(&seg("dead"), g, 1, 0o600).unwrap());
        std::fs::write(dir.join("foreign"), b"not ours").unwrap();
        std::fs::write(dir.join(format!(".x.1.0{TEMP_SUFFIX}")), b"half-built").unwrap();
        std::fs::write(dir.join("gone.pid"), b"4000000 1 memlink\n").unwrap();
        // Another program's PID file, unlocked, of a dead process: not ours.
        std::fs::write(dir.join("other.pid"), b"4000000\n").unwrap();
        // A memlink PID file of a live process that does not hold its lock.
        let me = ProcessId::current();
        std::fs::write(dir.join("alive.pid"), format!("{} {} memlink\n", me.pid, me.start_time)).unwrap();
        // A segment being built right now by a live creator.
        let building = SharedMemory::create_hidden(&seg("building"), 1 << 16, 0o600).unwrap();
        let files = || std::fs::read_dir(&dir).unwrap().count();
        let before = files();
        let found = RecoveryManager::find_orphans_in(&dir).unwrap();
        assert_eq!(files(), before, "a dry run removed something");
        let report = RecoveryManager::cleanup_orphans_in(&dir).unwrap();
        assert_eq!(found, report, "the dry run and the cleanup disagree");
        assert_eq!(files(), before - 3);
        assert_eq!(report.segments, vec![dir.join("dead")]);
        assert_eq!(report.partial_segments.len(), 1);
        assert_eq!(report.pid_files, vec![dir.join("gone.pid")]);
        for kept in ["live", "foreign", "other.pid", "alive.pid"] {
            assert!(dir.join(kept).exists(), "{kept} was removed");
        }
        let hidden = std::fs::read_dir(&dir).unwrap().flatten().filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with(".building.") && n.ends_with(TEMP_SUFFIX)
        });
        assert_eq!(hidden.count(), 1, "a live creator's half-built segment was removed");
        drop((live, building));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Root must not adopt (and then share) a PID file another user owns.
    #[cfg(unix)]
    #[test]
    fn a_pid_file_of_another_user_is_refused() {
        let path = tmp("foreign-pid");
        let file = format!("{path}.pid");
        std::fs::write(&file, b"").unwrap();
        if std::os::unix::fs::chown(&file, Some(65534), None).is_err() {
            // Only root can give a file away; elsewhere the case cannot arise here.
            let _ = std::fs::remove_file(&file);
            eprintln!("skipped: not allowed to chown (not root)");
            return;
        }
        let r = RecoveryManager::new(&path).register_daemon();
        assert!(matches!(r, Err(ShmError::PermissionDenied { .. })), "{r:?}");
        assert_eq!(
            std::fs::read(&file).unwrap(),
            b"",
            "the registration was written into it"
        );
        std::fs::remove_file(&file).unwrap();
    }

    #[test]
    fn process_ids_tell_reuse_apart() {
        let me = ProcessId::current();
        assert!(me.is_alive());
        let reused = ProcessId {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!reused.is_alive());
    }
}
