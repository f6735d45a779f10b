//! A process, named so that a reused pid is never taken for the process
//! that had it before.

use crate::platform;

/// A process: its id and the time it started, so that a pid the system gave
/// to another program since is not mistaken for this one.
///
/// ```
/// use memlink_shm::liveness::Process;
///
/// let me = Process::current();
/// assert_eq!(me.pid, std::process::id());
/// assert!(me.is_running());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Process {
    /// Operating-system process id.
    pub pid: u32,
    /// When it started, in clock ticks since boot (0 if unknown: then only
    /// the pid is compared).
    pub start_time: u64,
}

impl Process {
    /// This process.
    pub fn current() -> Process {
        let pid = platform::current_pid();
        Process {
            pid,
            start_time: platform::process_start_time(pid).unwrap_or(0),
        }
    }

    /// Whether this very process (same pid and, when known, same start time)
    /// is running.
    pub fn is_running(&self) -> bool {
        platform::process_start_time(self.pid).is_some_and(|t| self.start_time == 0 || t == self.start_time)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_pid_is_another_process() {
        let me = Process::current();
        assert!(me.is_running());
        let reused = Process {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!reused.is_running());
        assert!(
            Process { start_time: 0, ..me }.is_running(),
            "an unknown start time compares the pid only"
        );
    }
}
