//! Shared harness for multi-process tests: the test binary re-executes itself
//! in a child role, a watchdog turns a hang into a failure (killing children
//! and removing segments), and guards remove segments when a test fails.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use memlink_shm::testkit::remove_segment;

pub mod checked;
pub mod hostile;

const ROLE_VAR: &str = "MEMLINK_TEST_ROLE";

/// The role this process was started in, if it is a child.
pub fn child_role() -> Option<Vec<String>> {
    let role = std::env::var(ROLE_VAR).ok()?;
    // A child must never outlive its parent (e.g. if the parent's watchdog fires).
    #[cfg(target_os = "linux")]
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    Some(role.split('\u{1f}').map(str::to_owned).collect())
}

/// A unique segment name for this test process.
pub fn unique_name(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "memlink-test-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Removes a segment when dropped (also on panic).
pub struct SegmentGuard(pub String);

impl Drop for SegmentGuard {
    fn drop(&mut self) {
        let _ = remove_segment(&self.0);
    }
}

/// Children spawned by this test, killed by the watchdog or on drop.
#[derive(Clone, Default)]
pub struct Children {
    procs: Arc<Mutex<Vec<Option<Child>>>>,
    pids: Arc<Mutex<Vec<u32>>>,
}

impl Children {
    /// Starts `test` of this binary again with `role` (fields joined for the child).
    pub fn spawn(&self, test: &str, role: &[&str]) -> usize {
        let exe = std::env::current_exe().expect("test binary path");
        let child = Command::new(exe)
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(ROLE_VAR, role.join("\u{1f}"))
            .stdin(Stdio::null())
            // The child's own harness lines ("test result: ...") would read as
            // the parent's; its panics still reach stderr.
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn child test process");
        self.pids.lock().unwrap().push(child.id());
        let mut v = self.procs.lock().unwrap();
        v.push(Some(child));
        v.len() - 1
    }

    /// Like `spawn`, with the child's stdout piped back (to read a readiness line).
    pub fn spawn_piped(&self, test: &str, role: &[&str]) -> (usize, std::process::ChildStdout) {
        let exe = std::env::current_exe().expect("test binary path");
        let mut child = Command::new(exe)
            .args([test, "--exact", "--nocapture", "--test-threads=1", "-q"])
            .env(ROLE_VAR, role.join("\u{1f}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn child test process");
        let out = child.stdout.take().expect("piped stdout");
        self.pids.lock().unwrap().push(child.id());
        let mut v = self.procs.lock().unwrap();
        v.push(Some(child));
        (v.len() - 1, out)
    }

    /// Like `spawn_piped`, with the child's stdin piped too (to tell it when to go on).
    pub fn spawn_talking(
        &self,
        test: &str,
        role: &[&str],
    ) -> (usize, std::process::ChildStdin, std::process::ChildStdout) {
        let exe = std::env::current_exe().expect("test binary path");
        let mut child = Command::new(exe)
            .args([test, "--exact", "--nocapture", "--test-threads=1", "-q"])
            .env(ROLE_VAR, role.join("\u{1f}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn child test process");
        let input = child.stdin.take().expect("piped stdin");
        let out = child.stdout.take().expect("piped stdout");
        self.pids.lock().unwrap().push(child.id());
        let mut v = self.procs.lock().unwrap();
        v.push(Some(child));
        (v.len() - 1, input, out)
    }

    /// Kills child `i` with SIGKILL and reaps it.
    pub fn kill(&self, i: usize) {
        let child = self.procs.lock().unwrap()[i].take();
        let mut child = child.expect("child already waited for");
        let _ = child.kill();
        let _ = child.wait();
        self.pids.lock().unwrap().retain(|&p| p != child.id());
    }

    /// Blocks until child `i` exits (the watchdog bounds this) and returns
    /// whether it succeeded.
    pub fn wait_success(&self, i: usize) -> bool {
        let child = self.procs.lock().unwrap()[i].take();
        let mut child = child.expect("child already waited for");
        let status = child.wait().expect("wait for child");
        // Reaped: its pid may be reused, so the watchdog must not signal it.
        self.pids.lock().unwrap().retain(|&p| p != child.id());
        status.success()
    }

    fn kill_all(&self) {
        if let Ok(pids) = self.pids.lock() {
            for &pid in pids.iter() {
                kill_pid(pid);
            }
        }
        if let Ok(mut v) = self.procs.lock() {
            for c in v.iter_mut().flatten() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        // Only children not yet reaped are left to kill; on success there are none.
        self.kill_all();
    }
}

/// Blocks until a child's stdout says "ready", then drains the rest of it
/// in the background (so the child never blocks writing).
pub fn wait_ready(out: std::process::ChildStdout) {
    use std::io::{BufRead, BufReader};
    let mut lines = BufReader::new(out).lines().map_while(Result::ok);
    let ready = lines.any(|l| l.trim() == "ready");
    assert!(ready, "the child exited before it was ready");
    std::thread::spawn(move || lines.for_each(drop));
}

/// Disarms its watchdog when dropped.
pub struct Watchdog(#[allow(dead_code)] mpsc::Sender<()>);

/// Fails the test process if the test is still running after `limit`: kills
/// the children, removes the segments, and exits with an error. Keep the
/// returned guard alive for the whole test.
#[must_use]
pub fn watchdog(limit: Duration, children: &Children, segments: &[&str]) -> Watchdog {
    let children = children.clone();
    let segments: Vec<String> = segments.iter().map(|s| s.to_string()).collect();
    let (tx, rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
            eprintln!("WATCHDOG: test still running after {limit:?}; killing children and failing");
            children.kill_all();
            for s in segments {
                drop(SegmentGuard(s));
            }
            std::process::exit(97);
        }
    });
    Watchdog(tx)
}

/// Watchdog for a child process: exits with an error after `limit`.
pub fn child_watchdog(limit: Duration) {
    std::thread::spawn(move || {
        // The child exits when its work is done; this thread only matters if it hangs.
        std::thread::sleep(limit);
        eprintln!("WATCHDOG (child): still running after {limit:?}");
        std::process::exit(98);
    });
}

/// Deterministic pseudo-random numbers (SplitMix64), so both processes can
/// regenerate each other's message contents.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// FNV-1a over `bytes`.
pub fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Kills process `pid` outright (SIGKILL; TerminateProcess on Windows).
#[cfg(target_os = "linux")]
pub fn kill_pid(pid: u32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
}

/// Kills process `pid` outright (SIGKILL; TerminateProcess on Windows).
#[cfg(target_os = "macos")]
pub fn kill_pid(pid: u32) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
}

/// Kills process `pid` outright (SIGKILL; TerminateProcess on Windows).
#[cfg(windows)]
pub fn kill_pid(pid: u32) {
    use windows_sys::Win32::Foundation::CloseHandle;
    use windows_sys::Win32::System::Threading::{OpenProcess, TerminateProcess, PROCESS_TERMINATE};
    // SAFETY: OpenProcess has no memory-safety preconditions; null means failure.
    let h = unsafe { OpenProcess(PROCESS_TERMINATE, 0, pid) };
    if !h.is_null() {
        // SAFETY: `h` is an open process handle with PROCESS_TERMINATE access, closed once.
        unsafe {
            TerminateProcess(h, 137);
            CloseHandle(h);
        }
    }
}
