//! macOS: bare names are files in `/tmp` (a shared sticky directory, as
//! `/dev/shm` is on Linux); wake-ups use `os_sync_wait_on_address` with its
//! `SHARED` flag where the system has it (macOS 14.4 and later) and
//! `__ulock_wait`/`__ulock_wake` with `UL_COMPARE_AND_WAIT_SHARED` before;
//! start times come from `proc_pidinfo`.
//!
//! Why files and not `shm_open` objects: the daemon's protocol needs to build
//! a segment under a hidden name and publish it with one `link` (or replace a
//! dead daemon's with one `rename`), to list leftover segments for cleanup,
//! and to hold open-file-description locks on it. macOS shared-memory objects
//! support none of these (and limit names to 31 characters).

use std::ffi::{c_int, c_void, CStr};
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::AtomicU32;
use std::sync::OnceLock;
use std::time::Duration;

/// Directory holding the files of bare segment names.
pub(crate) fn shm_dir() -> PathBuf {
    PathBuf::from("/tmp")
}

/// Sizes the file; macOS has no `fallocate`, and file-backed pages are
/// allocated on first touch.
pub(crate) fn reserve(file: &File, size: u64) -> io::Result<()> {
    file.set_len(size)
}

/// When process `pid` started, in microseconds since the epoch; `None` if
/// there is no such process. Together with the pid it names a process
/// uniquely: a reused pid has another start time.
pub(crate) fn process_start_time(pid: u32) -> Option<u64> {
    let pid = c_int::try_from(pid).ok()?;
    // SAFETY: all-zero is a valid proc_bsdinfo (plain integers and byte arrays).
    let mut info: libc::proc_bsdinfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::proc_bsdinfo>() as c_int;
    // SAFETY: `info` is a writable buffer of exactly `size` bytes.
    let n = unsafe {
        libc::proc_pidinfo(
            pid,
            libc::PROC_PIDTBSDINFO,
            0,
            (&mut info as *mut libc::proc_bsdinfo).cast(),
            size,
        )
    };
    if n != size {
        return None;
    }
    Some(
        info.pbi_start_tvsec
            .saturating_mul(1_000_000)
            .saturating_add(info.pbi_start_tvusec),
    )
}

/// Monotonic time in nanoseconds, comparable between processes of one boot.
pub(crate) fn monotonic_nanos() -> u64 {
    super::unix::clock_nanos(libc::CLOCK_MONOTONIC)
}

/// A cheap monotonic clock (ns), possibly coarse: for throttling periodic
/// checks on hot paths.
pub(crate) fn coarse_monotonic_nanos() -> u64 {
    super::unix::clock_nanos(libc::CLOCK_MONOTONIC_RAW_APPROX)
}

// The private, stable-since-10.12 ulock interface (what libc++ and Rust's std use).
const UL_COMPARE_AND_WAIT_SHARED: u32 = 3;
const ULF_WAKE_ALL: u32 = 0x100;
const ULF_NO_ERRNO: u32 = 0x0100_0000;

extern "C" {
    fn __ulock_wait(operation: u32, addr: *mut c_void, value: u64, timeout_us: u32) -> c_int;
    fn __ulock_wake(operation: u32, addr: *mut c_void, wake_value: u64) -> c_int;
}

type WaitFn = unsafe extern "C" fn(*mut c_void, u64, usize, u32) -> c_int;
type WaitWithTimeoutFn = unsafe extern "C" fn(*mut c_void, u64, usize, u32, u32, u64) -> c_int;
type WakeFn = unsafe extern "C" fn(*mut c_void, usize, u32) -> c_int;

/// The `os_sync_*` functions of macOS 14.4 and later (os/os_sync_wait_on_address.h).
#[derive(Clone, Copy)]
struct OsSync {
    wait: WaitFn,
    wait_with_timeout: WaitWithTimeoutFn,
    wake_all: WakeFn,
}

/// The `os_sync_*` functions, if this macOS has them. Looked up once, at run
/// time: linking them would stop the binary from loading on older systems.
fn os_sync() -> Option<OsSync> {
    static FNS: OnceLock<Option<OsSync>> = OnceLock::new();
    *FNS.get_or_init(|| {
        let wait = lookup(c"os_sync_wait_on_address")?;
        let wait_with_timeout = lookup(c"os_sync_wait_on_address_with_timeout")?;
        let wake_all = lookup(c"os_sync_wake_by_address_all")?;
        // SAFETY: each symbol is the function of that name, whose C signature the
        // field's type repeats; a non-null dlsym result is its address.
        unsafe {
            Some(OsSync {
                wait: std::mem::transmute::<*mut c_void, WaitFn>(wait),
                wait_with_timeout: std::mem::transmute::<*mut c_void, WaitWithTimeoutFn>(wait_with_timeout),
                wake_all: std::mem::transmute::<*mut c_void, WakeFn>(wake_all),
            })
        }
    })
}

fn lookup(name: &CStr) -> Option<*mut c_void> {
    // SAFETY: `name` is NUL-terminated; RTLD_DEFAULT searches every loaded image.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!p.is_null()).then_some(p)
}

/// Sleeps while `word` holds `expected`, for at most `timeout`.
///
/// Returns on a wake, a value change, a signal or the timeout; callers always
/// re-check their condition. The wait is shared between processes: the
/// kernel keys it on the physical page, not on this process's address.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let addr = word.as_ptr().cast::<c_void>();
    if let Some(f) = os_sync() {
        let (value, shared) = (u64::from(expected), libc::OS_SYNC_WAIT_ON_ADDRESS_SHARED);
        // SAFETY: `addr` points to a live, aligned 4-byte word; the calls only read it.
        let _ = unsafe {
            match timeout {
                None => (f.wait)(addr, value, 4, shared),
                Some(d) => {
                    let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1);
                    (f.wait_with_timeout)(addr, value, 4, shared, libc::OS_CLOCK_MACH_ABSOLUTE_TIME, nanos)
                }
            }
        };
        return;
    }
    // 0 means "forever" to ulock; round short timeouts up to 1 us.
    let micros = timeout.map_or(0, |d| u32::try_from(d.as_micros()).unwrap_or(u32::MAX).max(1));
    // SAFETY: as above.
    let _ = unsafe {
        __ulock_wait(
            UL_COMPARE_AND_WAIT_SHARED | ULF_NO_ERRNO,
            addr,
            u64::from(expected),
            micros,
        )
    };
}

/// Wakes the processes sleeping on `word` (all of them: macOS wakes one or
/// all); returns whether the call succeeded.
pub(crate) fn futex_wake(word: &AtomicU32, _count: u32) -> usize {
    let addr = word.as_ptr().cast::<c_void>();
    let r = match os_sync() {
        // SAFETY: `addr` points to a live, aligned 4-byte word.
        Some(f) => unsafe { (f.wake_all)(addr, 4, libc::OS_SYNC_WAKE_BY_ADDRESS_SHARED) },
        // SAFETY: as above.
        None => unsafe { __ulock_wake(UL_COMPARE_AND_WAIT_SHARED | ULF_WAKE_ALL | ULF_NO_ERRNO, addr, 0) },
    };
    usize::from(r >= 0)
}
