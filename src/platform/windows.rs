//! Windows: segments are files (bare names live in `%TEMP%\memlink`) mapped
//! with `CreateFileMappingW`/`MapViewOfFile` (through memmap2); liveness is a
//! byte-range lock (`LockFileEx`), which Windows releases when the holder's
//! process ends, backed by process handles for recorded pids; wake-ups go
//! through one named semaphore per shared word.
//!
//! Why file-backed and not pagefile-backed named mappings: a named mapping
//! lives exactly as long as its last handle, so the name of a dead daemon's
//! segment stays taken while any old client still holds it, and a new daemon
//! could neither publish a fresh segment atomically nor take the name over.
//! A file keeps the protocol the same on every OS: build under a hidden name,
//! publish with one no-replace rename, take a dead daemon's name over with
//! one replacing rename, and find leftovers by listing a directory. The files
//! are marked temporary, so Windows keeps their pages in memory.
//!
//! Wake-ups: `WaitOnAddress` only wakes threads of one process, so words in
//! a mapped segment use a named semaphore, `Local\memlink-<volume>-<file>-<offset>`.
//! The file's identity makes the name the same in every process that maps
//! the segment, and different for a segment that replaces it. A semaphore
//! counts, so a release that comes before the waiter sleeps is not lost.
//! Words outside any segment (process-local) use `WaitOnAddress`.

use std::collections::HashMap;
use std::ffi::c_void;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::fs::{FileExt, OpenOptionsExt};
use std::os::windows::io::AsRawHandle;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use windows_sys::Win32::Foundation::{
    CloseHandle, ERROR_CANT_RESOLVE_FILENAME, ERROR_LOCK_VIOLATION, FILETIME, HANDLE, WAIT_OBJECT_0,
};
use windows_sys::Win32::Storage::FileSystem::{
    GetFileInformationByHandle, LockFileEx, MoveFileExW, UnlockFileEx, BY_HANDLE_FILE_INFORMATION,
    FILE_ATTRIBUTE_NOT_CONTENT_INDEXED, FILE_ATTRIBUTE_TEMPORARY, FILE_FLAG_BACKUP_SEMANTICS,
    FILE_FLAG_OPEN_REPARSE_POINT, FILE_SHARE_DELETE, FILE_SHARE_READ, FILE_SHARE_WRITE, LOCKFILE_EXCLUSIVE_LOCK,
    LOCKFILE_FAIL_IMMEDIATELY,
};
use windows_sys::Win32::System::Performance::{QueryPerformanceCounter, QueryPerformanceFrequency};
use windows_sys::Win32::System::SystemInformation::GetTickCount64;
use windows_sys::Win32::System::Threading::{
    CreateSemaphoreW, GetProcessTimes, OpenProcess, ReleaseSemaphore, WaitForSingleObject, WaitOnAddress,
    WakeByAddressAll, INFINITE, PROCESS_QUERY_LIMITED_INFORMATION, PROCESS_SYNCHRONIZE,
};
use windows_sys::Win32::System::IO::OVERLAPPED;

/// Directory holding the files of bare segment names: `%TEMP%\memlink`,
/// which is the user's own, so its access control list keeps other users out.
pub(crate) fn shm_dir() -> PathBuf {
    std::env::temp_dir().join("memlink")
}

/// Where byte-range locks start. Windows locks are mandatory for `ReadFile`,
/// so they live far past the data, where reading the header never meets them.
const LOCK_BASE: u64 = 1 << 40;

const SHARE_ALL: u32 = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;

/// Creates the segment file exclusively (never through a symbolic link).
/// `mode` has no Windows meaning and is ignored: access follows the
/// directory's access control list. Size it with `reserve`.
pub(crate) fn create_segment_file(path: &Path, _mode: u32) -> io::Result<File> {
    if path.parent() == Some(shm_dir().as_path()) {
        std::fs::create_dir_all(shm_dir())?;
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true) // CREATE_NEW: fails on any existing entry, links included
        .share_mode(SHARE_ALL)
        .attributes(FILE_ATTRIBUTE_TEMPORARY | FILE_ATTRIBUTE_NOT_CONTENT_INDEXED)
        .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT)
        .open(path)?;
    Ok(file)
}

/// Sizes a new segment file.
pub(crate) fn reserve(file: &File, size: u64) -> io::Result<()> {
    file.set_len(size)
}

/// Opens an existing segment file read-write, refusing a symbolic link.
pub(crate) fn open_segment_file(path: &Path) -> io::Result<File> {
    refuse_link(
        OpenOptions::new()
            .read(true)
            .write(true)
            .share_mode(SHARE_ALL)
            .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT)
            .open(path)?,
    )
}

/// Opens an existing segment file read-only, refusing a symbolic link
/// (for inspection, which must not be able to write).
pub(crate) fn open_segment_file_read_only(path: &Path) -> io::Result<File> {
    refuse_link(
        OpenOptions::new()
            .read(true)
            .share_mode(SHARE_ALL)
            .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT)
            .open(path)?,
    )
}

/// Opens `path` read-write, creating it if missing, refusing a symbolic
/// link (for PID files).
pub(crate) fn open_or_create_private_file(path: &Path) -> io::Result<File> {
    refuse_link(
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .share_mode(SHARE_ALL)
            .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT)
            .open(path)?,
    )
}

/// `FILE_FLAG_OPEN_REPARSE_POINT` opened the link itself instead of its
/// target; refuse it.
fn refuse_link(file: File) -> io::Result<File> {
    if file.metadata()?.file_type().is_symlink() {
        return Err(io::Error::from_raw_os_error(ERROR_CANT_RESOLVE_FILENAME as i32));
    }
    Ok(file)
}

/// Whether `e` is the refusal to open a symbolic link.
pub(crate) fn is_symlink_refusal(e: &io::Error) -> bool {
    e.raw_os_error() == Some(ERROR_CANT_RESOLVE_FILENAME as i32)
}

/// Removes a segment file, freeing its name at once.
///
/// Windows deletes an open file only when its last handle closes, and until
/// then the name stays taken. So the file first moves to a unique hidden
/// name in the same directory and is deleted there; processes that still
/// map it keep their mapping, and the name is free for a new segment.
pub(crate) fn remove_segment_file(path: &Path) -> io::Result<()> {
    use std::sync::atomic::AtomicU64;
    static N: AtomicU64 = AtomicU64::new(0);
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = N.fetch_add(1, Ordering::Relaxed);
    let aside = path.with_file_name(format!(".{file}.{}.{n}{}", current_pid(), super::REMOVED_SUFFIX));
    match link_file(path, &aside) {
        // The delete may stay pending while someone holds the file; the name is free either way.
        Ok(()) => {
            let _ = std::fs::remove_file(&aside);
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(e),
        Err(_) => std::fs::remove_file(path),
    }
}

/// Owner and size of an open segment file. Windows has no numeric user id:
/// every file counts as this user's ([`current_uid`]), and the directory's
/// access control list is what keeps other users out.
pub(crate) fn file_owner_and_size(file: &File) -> io::Result<(u32, u64)> {
    Ok((current_uid(), file.metadata()?.len()))
}

/// Reads exactly `buf.len()` bytes at `offset`.
pub(crate) fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match file.seek_read(buf, offset)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

fn lock_at(byte: u64) -> OVERLAPPED {
    let at = LOCK_BASE + byte;
    // SAFETY: all-zero is a valid OVERLAPPED (integers and a null event handle).
    let mut ov: OVERLAPPED = unsafe { std::mem::zeroed() };
    ov.Anonymous.Anonymous.Offset = at as u32;
    ov.Anonymous.Anonymous.OffsetHigh = (at >> 32) as u32;
    ov
}

fn lock_once(file: &File, byte: u64) -> io::Result<bool> {
    let mut ov = lock_at(byte);
    let flags = LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY;
    // SAFETY: the handle is open for the lifetime of `file`; `ov` is a valid
    // OVERLAPPED for this synchronous call, which returns before `ov` is dropped.
    let ok = unsafe { LockFileEx(file.as_raw_handle() as HANDLE, flags, 0, 1, 0, &mut ov) };
    if ok != 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(ERROR_LOCK_VIOLATION as i32) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// Takes an exclusive lock on byte `byte` of `file`, owned by this handle:
/// Windows drops it when the handle closes, which happens when the owning
/// process ends. Returns `Ok(false)` if another handle holds it.
///
/// [`byte_locked_elsewhere`] probes by locking for an instant, so a refusal
/// is retried a few times before it counts.
pub(crate) fn try_lock_byte(file: &File, byte: u64) -> io::Result<bool> {
    for _ in 0..4 {
        if lock_once(file, byte)? {
            return Ok(true);
        }
        std::thread::yield_now();
    }
    Ok(false)
}

/// Releases a lock taken with [`try_lock_byte`].
pub(crate) fn unlock_byte(file: &File, byte: u64) -> io::Result<()> {
    let mut ov = lock_at(byte);
    // SAFETY: as in `lock_once`.
    let ok = unsafe { UnlockFileEx(file.as_raw_handle() as HANDLE, 0, 1, 0, &mut ov) };
    if ok != 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether another handle (another process, or another open in this one)
/// holds a lock on byte `byte` of the file. Windows cannot ask without
/// trying, so this takes the lock for an instant and gives it back; a lock
/// this very handle holds also counts as held.
pub(crate) fn byte_locked_elsewhere(file: &File, byte: u64) -> io::Result<bool> {
    if lock_once(file, byte)? {
        unlock_byte(file, byte)?;
        Ok(false)
    } else {
        Ok(true)
    }
}

fn wide(path: &Path) -> Vec<u16> {
    path.as_os_str().encode_wide().chain(Some(0)).collect()
}

/// Moves the file at `from` to the name `to`, failing if `to` exists (the
/// no-replace rename is Windows' atomic "publish if absent").
pub(crate) fn link_file(from: &Path, to: &Path) -> io::Result<()> {
    let (from, to) = (wide(from), wide(to));
    // SAFETY: both are NUL-terminated UTF-16 strings that outlive the call.
    if unsafe { MoveFileExW(from.as_ptr(), to.as_ptr(), 0) } != 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Replaces `to` with `from`.
///
/// Windows refuses to rename over a file that is open, and a dead daemon's
/// segment is usually still open in its clients. So `to` is removed first
/// (moved aside, see [`remove_segment_file`]) and `from` moved in without
/// replacing. In between, the name is briefly free: an opener sees "not
/// found", and a creator may take the name first, in which case this fails
/// with `AlreadyExists`.
pub(crate) fn rename_file(from: &Path, to: &Path) -> io::Result<()> {
    match remove_segment_file(to) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        // Moved aside but still open here or elsewhere: deleted when closed.
        Err(_) if !to.exists() => {}
        Err(e) => return Err(e),
    }
    link_file(from, to)
}

fn file_id(file: &File) -> io::Result<(u32, u64)> {
    // SAFETY: all-zero is a valid BY_HANDLE_FILE_INFORMATION (integers only).
    let mut info: BY_HANDLE_FILE_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: the handle is open; `info` is writable and of the expected type.
    if unsafe { GetFileInformationByHandle(file.as_raw_handle() as HANDLE, &mut info) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let index = (u64::from(info.nFileIndexHigh) << 32) | u64::from(info.nFileIndexLow);
    Ok((info.dwVolumeSerialNumber, index))
}

/// Whether `path` (not following links) still names the open `file`.
pub(crate) fn same_file(file: &File, path: &Path) -> io::Result<bool> {
    let other = OpenOptions::new()
        .access_mode(0)
        .share_mode(SHARE_ALL)
        .custom_flags(FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT)
        .open(path)?;
    let ((va, a), (vb, b)) = (file_id(file)?, file_id(&other)?);
    // Wine reports volume 0 through a handle whose file was renamed since it
    // was opened; the index alone still tells files of one directory apart.
    Ok(a == b && (va == vb || va == 0 || vb == 0))
}

/// An owned kernel handle, closed on drop.
struct OwnedHandle(HANDLE);

impl Drop for OwnedHandle {
    fn drop(&mut self) {
        // SAFETY: the handle was returned open by the OS and is closed only here.
        unsafe { CloseHandle(self.0) };
    }
}

// SAFETY: a kernel handle is a process-wide value, usable from any thread.
unsafe impl Send for OwnedHandle {}

/// When process `pid` was created (a FILETIME, in 100 ns units); `None` if it
/// does not exist or has ended. A process is dead when `OpenProcess` fails
/// or its handle is signalled; the exit code is never consulted (a process
/// may exit with 259, `STILL_ACTIVE`).
pub(crate) fn process_start_time(pid: u32) -> Option<u64> {
    // SAFETY: OpenProcess has no memory-safety preconditions; null means failure.
    let h = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION | PROCESS_SYNCHRONIZE, 0, pid) };
    if h.is_null() {
        return None;
    }
    let h = OwnedHandle(h);
    // SAFETY: `h` is an open process handle with SYNCHRONIZE access.
    if unsafe { WaitForSingleObject(h.0, 0) } == WAIT_OBJECT_0 {
        return None;
    }
    let zero = FILETIME {
        dwLowDateTime: 0,
        dwHighDateTime: 0,
    };
    let (mut created, mut exited, mut kernel, mut user) = (zero, zero, zero, zero);
    // SAFETY: `h` has PROCESS_QUERY_LIMITED_INFORMATION access; the four out
    // pointers are valid, writable FILETIMEs.
    if unsafe { GetProcessTimes(h.0, &mut created, &mut exited, &mut kernel, &mut user) } == 0 {
        return None;
    }
    Some((u64::from(created.dwHighDateTime) << 32) | u64::from(created.dwLowDateTime))
}

/// Monotonic time in nanoseconds, comparable between processes of one boot
/// (the performance counter is system-wide).
pub(crate) fn monotonic_nanos() -> u64 {
    static FREQUENCY: OnceLock<u64> = OnceLock::new();
    let freq = *FREQUENCY.get_or_init(|| {
        let mut f = 0i64;
        // SAFETY: `f` is a valid, writable i64.
        unsafe { QueryPerformanceFrequency(&mut f) };
        u64::try_from(f).unwrap_or(0).max(1)
    });
    let mut count = 0i64;
    // SAFETY: `count` is a valid, writable i64.
    unsafe { QueryPerformanceCounter(&mut count) };
    let nanos = u128::from(u64::try_from(count).unwrap_or(0)) * 1_000_000_000 / u128::from(freq);
    u64::try_from(nanos).unwrap_or(u64::MAX)
}

/// A cheap monotonic clock (ns), coarse to the system tick: for throttling
/// periodic checks on hot paths.
pub(crate) fn coarse_monotonic_nanos() -> u64 {
    // SAFETY: GetTickCount64 has no preconditions.
    unsafe { GetTickCount64() }.saturating_mul(1_000_000)
}

/// This process's id.
pub(crate) fn current_pid() -> u32 {
    std::process::id()
}

/// Windows has no fork: always 0 (see the Unix version).
#[inline]
pub(crate) fn fork_generation() -> u32 {
    0
}

/// Windows has no fork: never.
#[inline]
pub(crate) fn forked_since(_generation: u32) -> bool {
    false
}

/// Windows has no numeric user id; 0 stands for "this user" throughout.
pub(crate) fn current_uid() -> u32 {
    0
}

/// A mapping registered for cross-process wake-ups.
struct Region {
    base: usize,
    len: usize,
    /// `<volume>-<file index>`: the same in every process that maps the file
    /// (`None` if Windows would not say: then waiters poll).
    file_key: Option<String>,
    /// Semaphores opened so far, by offset of their word.
    semaphores: HashMap<usize, OwnedHandle>,
}

fn regions() -> std::sync::MutexGuard<'static, Vec<Region>> {
    static REGIONS: Mutex<Vec<Region>> = Mutex::new(Vec::new());
    REGIONS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Registers a mapping so that words inside it wait and wake through named
/// semaphores that other processes mapping the same file also find. Drop it
/// before unmapping.
#[derive(Debug)]
pub(crate) struct WakeScope {
    base: usize,
}

impl WakeScope {
    /// Registers `len` bytes at `base`, a mapping of `file`.
    pub(crate) fn new(base: *const u8, len: usize, file: &File) -> WakeScope {
        let base = base as usize;
        regions().push(Region {
            base,
            len,
            file_key: file_id(file)
                .ok()
                .map(|(volume, index)| format!("{volume:08x}-{index:016x}")),
            semaphores: HashMap::new(),
        });
        WakeScope { base }
    }
}

impl Drop for WakeScope {
    fn drop(&mut self) {
        let removed: Vec<Region> = {
            let mut all = regions();
            let (gone, kept) = std::mem::take(&mut *all).into_iter().partition(|r| r.base == self.base);
            *all = kept;
            gone
        };
        drop(removed); // closes the semaphores, outside the lock
    }
}

/// A mapping's registration against a shrinking file. Windows refuses to
/// shrink a file below a mapped view (`SetEndOfFile` fails with
/// `ERROR_USER_MAPPED_FILE`), so a mapping never loses pages: nothing to
/// guard, and the count stays 0.
#[derive(Debug)]
pub(crate) struct FaultGuard;

static NO_FAULTS: AtomicU32 = AtomicU32::new(0);

/// Always 0: a mapped file cannot shrink.
#[inline]
pub(crate) fn faults_anywhere() -> u32 {
    0
}

impl FaultGuard {
    /// Nothing to register (see the type's docs).
    pub(crate) fn new(_base: *const u8, _len: usize) -> FaultGuard {
        FaultGuard
    }

    /// Always 0: a mapped file cannot shrink.
    pub(crate) fn faults(&self) -> &'static AtomicU32 {
        &NO_FAULTS
    }

    /// Never: a mapped file cannot shrink.
    pub(crate) fn lowest_fault(&self) -> Option<usize> {
        None
    }
}

/// Windows has no fork: nothing to hold off (see the Unix version).
#[must_use]
#[derive(Debug)]
pub(crate) struct ForkHold(());

impl ForkHold {
    /// Nothing to wait for.
    pub(crate) fn acquire() -> ForkHold {
        ForkHold(())
    }
}

/// Windows has no fork: nothing to release in a child (see the Unix version).
#[derive(Debug)]
pub(crate) struct ForkRelease;

impl ForkRelease {
    /// Nothing to register.
    pub(crate) fn new(_held: &ForkHold, _file: &File, _start: *const u8, _len: usize) -> ForkRelease {
        ForkRelease
    }
}

/// How a word at some address waits and wakes.
enum Channel {
    /// In a registered mapping: its named semaphore. The handle stays open
    /// until that mapping's [`WakeScope`] drops, which cannot happen while
    /// the caller borrows a word inside it.
    Semaphore(HANDLE),
    /// In a registered mapping, but its semaphore could not be named or
    /// opened (out of handles, say): waiters poll every millisecond instead.
    Poll,
    /// Not in any mapping: process-local memory, `WaitOnAddress`.
    Local,
}

fn channel_for(addr: usize) -> Channel {
    let mut all = regions();
    let Some(region) = all.iter_mut().find(|r| addr >= r.base && addr - r.base < r.len) else {
        return Channel::Local;
    };
    let offset = addr - region.base;
    if let Some(h) = region.semaphores.get(&offset) {
        return Channel::Semaphore(h.0);
    }
    let Some(key) = &region.file_key else {
        return Channel::Poll;
    };
    let name: Vec<u16> = format!("Local\\memlink-{key}-{offset:x}")
        .encode_utf16()
        .chain(Some(0))
        .collect();
    // SAFETY: `name` is NUL-terminated UTF-16; default security; the initial
    // count 0 is within the maximum. Opens the semaphore if it already exists.
    let h = unsafe { CreateSemaphoreW(std::ptr::null(), 0, i32::MAX, name.as_ptr()) };
    if h.is_null() {
        return Channel::Poll;
    }
    region.semaphores.insert(offset, OwnedHandle(h));
    Channel::Semaphore(h)
}

/// The longest sleep on a named semaphore, in milliseconds (see
/// `futex_wait`).
const SEMAPHORE_SLICE_MS: u32 = 50;

fn millis(timeout: Option<Duration>) -> u32 {
    // Round up, so that a short timeout sleeps rather than spins; stay below INFINITE.
    timeout.map_or(INFINITE, |d| {
        u32::try_from(d.as_nanos().div_ceil(1_000_000)).map_or(INFINITE - 1, |ms| ms.min(INFINITE - 1))
    })
}

/// Sleeps while `word` holds `expected`, for at most `timeout`.
///
/// Returns on a wake, a value change or the timeout (and, with a semaphore,
/// on a release left over from an earlier wake, or after 50 ms at most);
/// callers always re-check their condition.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    if word.load(Ordering::SeqCst) != expected {
        return;
    }
    let addr = word.as_ptr() as usize;
    match channel_for(addr) {
        // A semaphore is not a futex: a release finds no waiter when the one
        // it is meant for has checked the word but not yet slept, and then
        // any process that waits on the same word next takes it, the waker
        // itself included (two processes ping-ponging on one word lose a
        // wake that way; seen in 11 of 40 runs of tests/wake.rs under Wine).
        // So no sleep here is longer than `SEMAPHORE_SLICE_MS`: a lost wake
        // costs that much, never a hang, and callers look again anyway.
        // SAFETY: `h` is an open semaphore handle (see `Channel::Semaphore`).
        Channel::Semaphore(h) => unsafe {
            WaitForSingleObject(h, millis(timeout).min(SEMAPHORE_SLICE_MS));
        },
        Channel::Poll => {
            std::thread::sleep(timeout.map_or(Duration::from_millis(1), |t| t.min(Duration::from_millis(1))))
        }
        // SAFETY: `word` and `expected` are live, aligned 4-byte values for the call.
        Channel::Local => unsafe {
            WaitOnAddress(
                addr as *const c_void,
                (&expected as *const u32).cast(),
                4,
                millis(timeout),
            );
        },
    }
}

/// Wakes up to `count` processes sleeping on `word` (at most 64: a larger
/// count from a corrupt segment must not store up a flood of wake-ups).
pub(crate) fn futex_wake(word: &AtomicU32, count: u32) -> usize {
    let addr = word.as_ptr() as usize;
    match channel_for(addr) {
        Channel::Semaphore(h) => {
            let n = count.clamp(1, 64);
            // SAFETY: `h` is an open semaphore handle; a null previous-count pointer is allowed.
            let ok = unsafe { ReleaseSemaphore(h, n as i32, std::ptr::null_mut()) };
            if ok != 0 {
                n as usize
            } else {
                0
            }
        }
        Channel::Poll => 0, // the waiters look again within a millisecond
        Channel::Local => {
            // SAFETY: `addr` is the address of a live word.
            unsafe { WakeByAddressAll(addr as *const c_void) };
            1
        }
    }
}
