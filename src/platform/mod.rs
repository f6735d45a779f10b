//! Operating-system primitives, one file per OS behind one interface.
//!
//! Everything above this module is OS-independent: it asks for a segment
//! file, byte locks on it that die with their holder, an atomic publish and
//! replace of a name, a wait on a 32-bit word in shared memory and a wake of
//! that word, process identity and clocks.
//!
//! | | Linux | macOS | Windows |
//! |---|---|---|---|
//! | segment | file in `/dev/shm` (tmpfs) | file in `/tmp` | temporary file in `%TEMP%\memlink` |
//! | wait/wake | shared futex | `os_sync_wait_on_address` (14.4+), `__ulock` before | named semaphore per word |
//! | liveness | OFD byte lock, `/proc` start time | OFD byte lock, `proc_pidinfo` | `LockFileEx` byte lock, process handle |
//!
//! `unix.rs` holds what Linux and macOS share (files, OFD locks, link and
//! rename); `linux.rs`, `macos.rs` and `windows.rs` the rest.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::*;

#[cfg(unix)]
mod fault_guard;
#[cfg(unix)]
pub(crate) use fault_guard::{faults_anywhere, FaultGuard};

#[cfg(unix)]
mod fork;
#[cfg(unix)]
pub(crate) use fork::{fork_generation, forked_since, ForkHold, ForkRelease};

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
use linux as os;

#[cfg(target_os = "macos")]
mod macos;
#[cfg(target_os = "macos")]
use macos as os;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as os;

pub(crate) use os::*;

/// Cross-process memory barriers (`membarrier(2)`) exist on Linux only;
/// elsewhere every notifier keeps its fence (see `crate::wait`).
#[cfg(not(target_os = "linux"))]
mod no_barriers {
    /// Never registered.
    pub(crate) fn register_for_barriers() -> bool {
        false
    }

    /// None here.
    pub(crate) fn barriers_exist() -> bool {
        false
    }

    /// None here.
    pub(crate) fn barrier_registered() -> bool {
        false
    }
}
#[cfg(not(target_os = "linux"))]
pub(crate) use no_barriers::*;

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
compile_error!("memlink-shm supports Linux, macOS and Windows");

/// Counts the events that can end this process's use of its segments
/// behind its back: a fork (counted in the child) and a page of a mapping
/// found gone. One load tells an endpoint that neither happened since it
/// last looked; which one did is then worked out from
/// [`fork_generation`] and [`faults_anywhere`].
static DISTURBANCES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// See [`DISTURBANCES`].
#[inline(always)]
pub(crate) fn disturbances() -> u32 {
    DISTURBANCES.load(std::sync::atomic::Ordering::Acquire)
}

/// Counts a fork or a lost page (async-signal-safe: one atomic add).
#[cfg(unix)]
pub(crate) fn disturbed() {
    DISTURBANCES.fetch_add(1, std::sync::atomic::Ordering::Release);
}

/// A cycle count for pacing a busy loop: cheap (no syscall, no fence) and
/// roughly monotonic on one core. x86-64: the time-stamp counter. Elsewhere,
/// and under Miri and loom: none, and callers do not pace.
#[inline]
pub(crate) fn cycle_count() -> Option<u64> {
    #[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
    {
        // SAFETY: RDTSC exists on every x86-64 processor and only reads the
        // time-stamp counter (no memory access, no precondition).
        Some(unsafe { std::arch::x86_64::_rdtsc() })
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri), not(loom))))]
    {
        None
    }
}

/// Bound on the spins of one [`spin_until_cycles`], should the cycle
/// counter stall.
const PACE_MAX_SPINS: u32 = 4096;

/// Spins until `cycles` of [`cycle_count`] have passed since `since`: at
/// once where there is no cycle counter, or if it went backwards (as across
/// cores that disagree), and after at most [`PACE_MAX_SPINS`] spin hints.
#[inline]
pub(crate) fn spin_until_cycles(since: u64, cycles: u64) {
    for _ in 0..PACE_MAX_SPINS {
        match cycle_count() {
            Some(now) if now.wrapping_sub(since) < cycles => std::hint::spin_loop(),
            _ => return,
        }
    }
}

/// Ending of a segment file that was removed while still open somewhere and
/// waits, under this hidden name, for its last handle to close (Windows only:
/// elsewhere a removed file has no name at all).
pub(crate) const REMOVED_SUFFIX: &str = ".memlink-removed";

/// The file that backs a bare segment name.
pub(crate) fn shm_path(name: &str) -> std::path::PathBuf {
    shm_dir().join(name)
}

/// A file whose locks belong to this process alone: a forked child gives up
/// its copy (see `fork.rs`). For lock-holding files that are not
/// segment mappings (PID files).
#[derive(Debug)]
pub(crate) struct LockFile {
    _release: ForkRelease,
    file: std::fs::File,
    /// Set when dropping, declared last: forks wait until the file is closed.
    closing: Option<ForkHold>,
}

impl LockFile {
    /// Opens the file with `open`, holding forks off until it is registered.
    pub(crate) fn open(open: impl FnOnce() -> std::io::Result<std::fs::File>) -> std::io::Result<LockFile> {
        let held = ForkHold::acquire();
        let file = open()?;
        Ok(LockFile {
            _release: ForkRelease::new(&held, &file, std::ptr::null(), 0),
            file,
            closing: None,
        })
    }
}

impl std::ops::Deref for LockFile {
    type Target = std::fs::File;
    fn deref(&self) -> &std::fs::File {
        &self.file
    }
}

impl std::ops::DerefMut for LockFile {
    fn deref_mut(&mut self) -> &mut std::fs::File {
        &mut self.file
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        self.closing = Some(ForkHold::acquire());
    }
}

/// For unit tests: a child being spawned holds copies of this process's
/// descriptors until its `exec` closes them, and with them the locks of any
/// file just closed here. Tests that spawn take this for writing; tests that
/// expect a lock to go when they close a file take it for reading.
#[cfg(test)]
pub(crate) fn spawn_exclusion() -> &'static std::sync::RwLock<()> {
    static LOCK: std::sync::RwLock<()> = std::sync::RwLock::new(());
    &LOCK
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn futex_wait_returns_when_value_differs() {
        let w = AtomicU32::new(1);
        // Expected 0 but value is 1: must return immediately.
        futex_wait(&w, 0, None);
    }

    #[test]
    fn futex_wake_reaches_a_sleeper() {
        let w = Arc::new(AtomicU32::new(0));
        let w2 = Arc::clone(&w);
        let t = std::thread::spawn(move || {
            while w2.load(Ordering::Acquire) == 0 {
                futex_wait(&w2, 0, Some(Duration::from_secs(10)));
            }
        });
        w.store(1, Ordering::Release);
        futex_wake(&w, u32::MAX);
        t.join().unwrap();
    }

    #[test]
    fn byte_locks_are_seen_by_other_opens_and_released_on_close() {
        let _no_spawn = spawn_exclusion().read().unwrap_or_else(|p| p.into_inner());
        let path = std::env::temp_dir().join(format!("memlink-plat-lock-{}", current_pid()));
        let _ = std::fs::remove_file(&path);
        let a = create_segment_file(&path, 0o600).unwrap();
        reserve(&a, 4096).unwrap();
        let b = open_segment_file(&path).unwrap();
        assert!(!byte_locked_elsewhere(&b, 3).unwrap());
        assert!(try_lock_byte(&a, 3).unwrap());
        assert!(byte_locked_elsewhere(&b, 3).unwrap());
        assert!(!byte_locked_elsewhere(&b, 4).unwrap(), "locks are per byte");
        assert!(!try_lock_byte(&b, 3).unwrap(), "exclusive between opens");
        let mut head = [0u8; 8];
        read_exact_at(&b, &mut head, 0).unwrap(); // a lock never blocks reading the data
        drop(a);
        assert!(!byte_locked_elsewhere(&b, 3).unwrap(), "closing releases");
        assert!(try_lock_byte(&b, 3).unwrap());
        unlock_byte(&b, 3).unwrap();
        drop(b);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn own_process_has_a_start_time() {
        let t = process_start_time(current_pid()).unwrap();
        assert_eq!(process_start_time(current_pid()), Some(t));
        assert_eq!(process_start_time(u32::MAX - 1), None);
    }

    #[test]
    fn an_exited_process_has_no_start_time() {
        let _spawning = spawn_exclusion().write().unwrap_or_else(|p| p.into_inner());
        // `--list` makes this test binary print its tests and exit at once.
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .arg("--list")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        child.wait().unwrap();
        // On Windows the Child still holds a handle, so the process object
        // exists: it must count as dead because the handle is signalled.
        assert_eq!(process_start_time(pid), None);
        drop(child);
    }

    #[test]
    fn link_publishes_only_if_absent_and_rename_replaces() {
        let dir = std::env::temp_dir().join(format!("memlink-plat-link-{}", current_pid()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b, name) = (dir.join("a"), dir.join("b"), dir.join("name"));
        let fa = create_segment_file(&a, 0o600).unwrap();
        let fb = create_segment_file(&b, 0o600).unwrap();
        link_file(&a, &name).unwrap();
        assert!(same_file(&fa, &name).unwrap());
        let refused = link_file(&b, &name).unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::AlreadyExists);
        rename_file(&b, &name).unwrap();
        assert!(same_file(&fb, &name).unwrap());
        assert!(!same_file(&fa, &name).unwrap());
        drop((fa, fb));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn clocks_move_forward() {
        let a = monotonic_nanos();
        std::thread::sleep(Duration::from_millis(20));
        let b = monotonic_nanos();
        assert!(b > a && a > 0);
        assert!(coarse_monotonic_nanos() > 0);
    }
}
