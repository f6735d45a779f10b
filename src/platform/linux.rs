//! Linux: bare names are files in `/dev/shm`; wake-ups are shared (not
//! process-private) futexes on words inside the mapping; start times come
//! from `/proc`.

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use rustix::fs::FallocateFlags;
use rustix::thread::futex;

/// Directory backing POSIX shared-memory names (what `shm_open` uses).
pub(crate) fn shm_dir() -> PathBuf {
    PathBuf::from("/dev/shm")
}

/// Longest bare segment name accepted.
/// Reserves the pages now, so that a full tmpfs fails here with ENOSPC
/// instead of raising SIGBUS on first touch.
pub(crate) fn reserve(file: &File, size: u64) -> io::Result<()> {
    match rustix::fs::fallocate(file, FallocateFlags::empty(), 0, size) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::OPNOTSUPP => file.set_len(size),
        Err(e) => Err(e.into()),
    }
}

/// When process `pid` started, in clock ticks since boot (field 22 of
/// `/proc/PID/stat`); `None` if there is no such process. Together with the
/// pid it names a process uniquely: a reused pid has another start time.
pub(crate) fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: skip past the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Monotonic time in nanoseconds, comparable between processes of one boot.
pub(crate) fn monotonic_nanos() -> u64 {
    super::unix::clock_nanos(libc::CLOCK_MONOTONIC)
}

/// A cheap monotonic clock (ns), a few milliseconds coarse: for throttling
/// periodic checks on hot paths.
pub(crate) fn coarse_monotonic_nanos() -> u64 {
    super::unix::clock_nanos(libc::CLOCK_MONOTONIC_COARSE)
}

/// Sleeps while `word` holds `expected`, for at most `timeout`.
///
/// Returns on a wake, a value change, a signal or the timeout; callers always
/// re-check their condition, so the reason does not matter. The futex is
/// shared (no `FUTEX_PRIVATE_FLAG`): the kernel keys it on the physical page,
/// so a waker in another process that maps the same segment reaches it.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|d| futex::Timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(d.subsec_nanos()),
    });
    // EAGAIN (value changed), EINTR and ETIMEDOUT are all "go and look again".
    let _ = futex::wait(word, futex::Flags::empty(), expected, ts.as_ref());
}

/// Wakes up to `count` processes sleeping on `word`; returns how many woke.
pub(crate) fn futex_wake(word: &AtomicU32, count: u32) -> usize {
    futex::wake(word, futex::Flags::empty(), count).unwrap_or(0)
}

/// Registers this process as a target of the global expedited memory
/// barriers other processes issue (`membarrier(2)`, Linux 4.16). False if
/// the kernel lacks them or refuses (a seccomp filter).
pub(crate) fn register_for_barriers() -> bool {
    use rustix::thread::{membarrier, membarrier_query, MembarrierCommand, MembarrierQuery};
    membarrier_query().contains(MembarrierQuery::GLOBAL_EXPEDITED | MembarrierQuery::REGISTER_GLOBAL_EXPEDITED)
        && membarrier(MembarrierCommand::RegisterGlobalExpedited).is_ok()
}

/// Whether the kernel offers global expedited barriers at all.
pub(crate) fn barriers_exist() -> bool {
    use rustix::thread::{membarrier_query, MembarrierQuery};
    membarrier_query().contains(MembarrierQuery::GLOBAL_EXPEDITED)
}

/// A full memory barrier on every CPU that runs a thread of a registered
/// process, as if each had issued a fence where it stands. False if the
/// call failed.
pub(crate) fn barrier_registered() -> bool {
    use rustix::thread::{membarrier, MembarrierCommand};
    membarrier(MembarrierCommand::GlobalExpedited).is_ok()
}
