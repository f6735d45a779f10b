//! Linux: segments are files (in `/dev/shm` for bare names), wake-ups are
//! shared (not process-private) futexes on words inside the mapping.

use std::fs::{File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use rustix::fs::{FallocateFlags, OFlags};
use rustix::thread::futex;

/// Directory backing POSIX shared-memory names (what `shm_open` uses).
pub const SHM_DIR: &str = "/dev/shm";

/// Longest bare segment name accepted.
pub const MAX_SHM_NAME: usize = 255;

/// The file that backs a bare (POSIX) segment name.
pub fn shm_path(name: &str) -> PathBuf {
    Path::new(SHM_DIR).join(name)
}

/// Creates the segment file exclusively with exactly `mode`, never following
/// a symlink, and reserves `size` bytes of memory for it.
pub fn create_segment_file(path: &Path, size: u64, mode: u32) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true) // O_CREAT | O_EXCL: fails on any existing entry, symlinks included
        .mode(mode)
        .custom_flags((OFlags::NOFOLLOW | OFlags::CLOEXEC).bits() as i32)
        .open(path)?;
    // The umask may have narrowed `mode`; set it exactly.
    file.set_permissions(Permissions::from_mode(mode))?;
    // Reserve the pages now so that a full tmpfs fails here with ENOSPC
    // instead of raising SIGBUS on first touch.
    match rustix::fs::fallocate(&file, FallocateFlags::empty(), 0, size) {
        Ok(()) => {}
        Err(e) if e == rustix::io::Errno::OPNOTSUPP => file.set_len(size)?,
        Err(e) => return Err(e.into()),
    }
    Ok(file)
}

/// Opens an existing segment file read-write without following symlinks.
pub fn open_segment_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags((OFlags::NOFOLLOW | OFlags::CLOEXEC).bits() as i32)
        .open(path)
}

/// Removes a segment file.
pub fn remove_segment_file(path: &Path) -> io::Result<()> {
    std::fs::remove_file(path)
}

/// Owner (uid) and size of an open segment file.
pub fn file_owner_and_size(file: &File) -> io::Result<(u32, u64)> {
    let meta = file.metadata()?;
    Ok((meta.uid(), meta.len()))
}

/// Takes an exclusive lock on byte `byte` of `file`, owned by this open file
/// description (an OFD lock): the kernel drops it when the last descriptor of
/// the description closes, which happens when the owning process dies.
/// Returns `Ok(false)` if another description holds it.
pub fn try_lock_byte(file: &File, byte: u64) -> io::Result<bool> {
    match ofd_lock(file, byte, libc::F_OFD_SETLK, libc::F_WRLCK as i16) {
        Ok(_) => Ok(true),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EACCES)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Releases a lock taken with [`try_lock_byte`].
pub fn unlock_byte(file: &File, byte: u64) -> io::Result<()> {
    ofd_lock(file, byte, libc::F_OFD_SETLK, libc::F_UNLCK as i16).map(|_| ())
}

/// Whether another open file description (another process, or another open
/// in this one) holds a lock on byte `byte` of the file. Takes no lock.
pub fn byte_locked_elsewhere(file: &File, byte: u64) -> io::Result<bool> {
    ofd_lock(file, byte, libc::F_OFD_GETLK, libc::F_WRLCK as i16).map(|l| l.l_type != libc::F_UNLCK as i16)
}

fn ofd_lock(file: &File, byte: u64, cmd: libc::c_int, kind: i16) -> io::Result<libc::flock> {
    use std::os::fd::AsRawFd;
    let start = libc::off_t::try_from(byte).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: all-zero is a valid `flock` (plain integers); l_pid must be 0 for OFD locks.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = kind;
    lock.l_whence = libc::SEEK_SET as i16;
    lock.l_start = start;
    lock.l_len = 1;
    // SAFETY: the descriptor is open for the lifetime of `file`, and `lock` is a
    // valid, exclusively borrowed flock that the kernel reads (and, for GETLK, writes).
    let r = unsafe { libc::fcntl(file.as_raw_fd(), cmd, &mut lock as *mut libc::flock) };
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(lock)
    }
}

/// Gives the file at `from` the name `to` too, failing if `to` exists.
pub fn link_file(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::hard_link(from, to)
}

/// Atomically replaces `to` with `from`.
pub fn rename_file(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::rename(from, to)
}

/// Inode number of an open file and of a path (not following symlinks), to
/// tell whether the path still names the file.
pub fn same_file(file: &File, path: &Path) -> io::Result<bool> {
    let a = file.metadata()?;
    let b = std::fs::symlink_metadata(path)?;
    Ok(a.ino() == b.ino() && a.dev() == b.dev())
}

/// When process `pid` started, in clock ticks since boot (field 22 of
/// `/proc/PID/stat`); `None` if there is no such process. Together with the
/// pid it names a process uniquely: a reused pid has another start time.
pub fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: skip past the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Monotonic time in nanoseconds, comparable between processes of one boot.
pub fn monotonic_nanos() -> u64 {
    clock_nanos(libc::CLOCK_MONOTONIC)
}

/// A cheap monotonic clock (ns), a few milliseconds coarse: for throttling
/// periodic checks on hot paths.
pub fn coarse_monotonic_nanos() -> u64 {
    clock_nanos(libc::CLOCK_MONOTONIC_COARSE)
}

// Through libc rather than rustix: rustix finds the vDSO itself, which crashes
// under valgrind; glibc's clock_gettime works everywhere.
fn clock_nanos(clock: libc::clockid_t) -> u64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `t` is a valid, writable timespec; clock_gettime only writes it.
    if unsafe { libc::clock_gettime(clock, &mut t) } != 0 {
        return 0;
    }
    (t.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(t.tv_nsec as u64)
}

/// This process's id.
pub fn current_pid() -> u32 {
    rustix::process::getpid().as_raw_nonzero().get() as u32
}

/// This process's effective user id.
pub fn current_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Sleeps while `word` holds `expected`, for at most `timeout`.
///
/// Returns on a wake, a value change, a signal or the timeout; callers always
/// re-check their condition, so the reason does not matter. The futex is
/// shared (no `FUTEX_PRIVATE_FLAG`): the kernel keys it on the physical page,
/// so a waker in another process that maps the same segment reaches it.
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|d| futex::Timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(d.subsec_nanos()),
    });
    // EAGAIN (value changed), EINTR and ETIMEDOUT are all "go and look again".
    let _ = futex::wait(word, futex::Flags::empty(), expected, ts.as_ref());
}

/// Wakes up to `count` processes sleeping on `word`; returns how many woke.
pub fn futex_wake(word: &AtomicU32, count: u32) -> usize {
    futex::wake(word, futex::Flags::empty(), count).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

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
    fn ofd_locks_are_seen_by_other_descriptions_and_released_on_close() {
        let path = std::env::temp_dir().join(format!("memlink-plat-lock-{}", current_pid()));
        let _ = std::fs::remove_file(&path);
        let a = create_segment_file(&path, 4096, 0o600).unwrap();
        let b = open_segment_file(&path).unwrap();
        assert!(!byte_locked_elsewhere(&b, 3).unwrap());
        assert!(try_lock_byte(&a, 3).unwrap());
        assert!(byte_locked_elsewhere(&b, 3).unwrap());
        assert!(!byte_locked_elsewhere(&b, 4).unwrap(), "locks are per byte");
        assert!(!try_lock_byte(&b, 3).unwrap(), "exclusive between descriptions");
        drop(a);
        assert!(!byte_locked_elsewhere(&b, 3).unwrap(), "closing releases");
        assert!(try_lock_byte(&b, 3).unwrap());
        unlock_byte(&b, 3).unwrap();
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn own_process_has_a_start_time() {
        let t = process_start_time(current_pid()).unwrap();
        assert_eq!(process_start_time(current_pid()), Some(t));
        assert_eq!(process_start_time(u32::MAX), None);
    }

    #[test]
    fn create_refuses_existing_and_symlinks() {
        let dir = std::env::temp_dir().join(format!("memlink-plat-{}", current_pid()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("target");
        std::fs::write(&target, b"precious").unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(create_segment_file(&link, 4096, 0o600).is_err());
        assert!(open_segment_file(&link).is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
        let f = create_segment_file(&dir.join("seg"), 8192, 0o640).unwrap();
        let meta = f.metadata().unwrap();
        assert_eq!(meta.len(), 8192);
        assert_eq!(meta.permissions().mode() & 0o777, 0o640);
        assert!(create_segment_file(&dir.join("seg"), 8192, 0o600).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
