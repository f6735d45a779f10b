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
