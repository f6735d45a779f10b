//! Linux and macOS: segment files, open-file-description byte locks, and
//! atomic publication with `link`/`rename`. The OS-specific rest (wait/wake,
//! process start times, clocks, where bare names live) is in `linux.rs` and
//! `macos.rs`.

use std::fs::{File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Creates the segment file exclusively with exactly `mode`, never following
/// a symlink. Size it with `reserve`.
pub(crate) fn create_segment_file(path: &Path, mode: u32) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true) // O_CREAT | O_EXCL: fails on any existing entry, symlinks included
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    // The umask may have narrowed `mode`; set it exactly.
    file.set_permissions(Permissions::from_mode(mode))?;
    Ok(file)
}

/// Opens an existing segment file read-write without following symlinks.
pub(crate) fn open_segment_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Opens an existing segment file read-only, never following a symlink
/// (for inspection, which must not be able to write).
pub(crate) fn open_segment_file_read_only(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Opens `path` read-write, creating it with mode 0600 if missing, never
/// following a symlink (for PID files).
pub(crate) fn open_or_create_private_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Whether `e` is the refusal to open a symbolic link (`ELOOP` under `O_NOFOLLOW`).
pub(crate) fn is_symlink_refusal(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ELOOP)
}

/// Removes a segment file.
pub(crate) fn remove_segment_file(path: &Path) -> io::Result<()> {
    std::fs::remove_file(path)
}

/// Owner (uid) and size of an open segment file.
pub(crate) fn file_owner_and_size(file: &File) -> io::Result<(u32, u64)> {
    let meta = file.metadata()?;
    Ok((meta.uid(), meta.len()))
}

/// Reads exactly `buf.len()` bytes at `offset`, without moving a file cursor.
pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    file.read_exact_at(buf, offset)
}

// Lock kinds as `flock::l_type` holds them (the constants are c_int on Linux, c_short on macOS).
#[allow(clippy::unnecessary_cast)]
const WRLCK: libc::c_short = libc::F_WRLCK as libc::c_short;
#[allow(clippy::unnecessary_cast)]
const UNLCK: libc::c_short = libc::F_UNLCK as libc::c_short;

/// Takes an exclusive lock on byte `byte` of `file`, owned by this open file
/// description (an OFD lock): the kernel drops it when the last descriptor of
/// the description closes, which happens when the owning process dies.
/// Returns `Ok(false)` if another description holds it.
pub(crate) fn try_lock_byte(file: &File, byte: u64) -> io::Result<bool> {
    match ofd_lock(file, byte, libc::F_OFD_SETLK, WRLCK) {
        Ok(_) => Ok(true),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EACCES)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Releases a lock taken with [`try_lock_byte`].
pub(crate) fn unlock_byte(file: &File, byte: u64) -> io::Result<()> {
    ofd_lock(file, byte, libc::F_OFD_SETLK, UNLCK).map(|_| ())
}

/// Whether another open file description (another process, or another open
/// in this one) holds a lock on byte `byte` of the file. Takes no lock.
pub(crate) fn byte_locked_elsewhere(file: &File, byte: u64) -> io::Result<bool> {
    ofd_lock(file, byte, libc::F_OFD_GETLK, WRLCK).map(|l| l.l_type != UNLCK)
}

fn ofd_lock(file: &File, byte: u64, cmd: libc::c_int, kind: libc::c_short) -> io::Result<libc::flock> {
    use std::os::fd::AsRawFd;
    let start = libc::off_t::try_from(byte).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: all-zero is a valid `flock` (plain integers); l_pid must be 0 for OFD locks.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = kind;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
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
pub(crate) fn link_file(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::hard_link(from, to)
}

/// Atomically replaces `to` with `from`.
pub(crate) fn rename_file(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::rename(from, to)
}

/// Inode number of an open file and of a path (not following symlinks), to
/// tell whether the path still names the file.
pub(crate) fn same_file(file: &File, path: &Path) -> io::Result<bool> {
    let a = file.metadata()?;
    let b = std::fs::symlink_metadata(path)?;
    Ok(a.ino() == b.ino() && a.dev() == b.dev())
}

/// This process's id.
pub(crate) fn current_pid() -> u32 {
    std::process::id()
}

/// This process's effective user id.
pub(crate) fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Nanoseconds of clock `clock` (0 if the clock is unavailable). Through
/// libc rather than rustix: rustix finds the vDSO itself, which crashes under
/// valgrind; the C library's clock_gettime works everywhere.
pub(super) fn clock_nanos(clock: libc::clockid_t) -> u64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `t` is a valid, writable timespec; clock_gettime only writes it.
    if unsafe { libc::clock_gettime(clock, &mut t) } != 0 {
        return 0;
    }
    (t.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(t.tv_nsec as u64)
}

/// Registration of a mapping for cross-process wake-ups. On Linux and macOS
/// the kernel keys shared waits on the physical page, so there is nothing to
/// register.
#[derive(Debug)]
pub(crate) struct WakeScope;

impl WakeScope {
    /// Nothing to do here (see the type's docs).
    pub(crate) fn new(_base: *const u8, _len: usize, _file: &File) -> WakeScope {
        WakeScope
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_refuses_existing_and_symlinks() {
        let dir = std::env::temp_dir().join(format!("memlink-plat-{}", current_pid()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("target");
        std::fs::write(&target, b"precious").unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(create_segment_file(&link, 0o600).is_err());
        assert!(is_symlink_refusal(&open_segment_file(&link).unwrap_err()));
        assert!(open_or_create_private_file(&link).is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
        let f = create_segment_file(&dir.join("seg"), 0o640).unwrap();
        crate::platform::reserve(&f, 8192).unwrap();
        let meta = f.metadata().unwrap();
        assert_eq!(meta.len(), 8192);
        assert_eq!(meta.permissions().mode() & 0o777, 0o640);
        assert!(create_segment_file(&dir.join("seg"), 0o600).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
