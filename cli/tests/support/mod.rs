//! The harness of the `memlink` binary's tests: child roles (the test
//! binary re-executing itself), watchdogs, unique names, and cleanup.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

pub const ROLE: &str = "MEMLINK_CLI_TEST_ROLE";
pub const LIMIT: Duration = Duration::from_secs(120);
pub const STEP: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// Child roles, watchdog, names, cleanup
// ---------------------------------------------------------------------------

/// How long a child role lives at most, in seconds (raised by
/// [`watchdog_for`], passed to children as [`ROLE_LIMIT_VAR`]).
static ROLE_LIMIT: AtomicU64 = AtomicU64::new(LIMIT.as_secs());
const ROLE_LIMIT_VAR: &str = "MEMLINK_CLI_TEST_ROLE_LIMIT";

pub fn role() -> Option<Vec<String>> {
    let r = std::env::var(ROLE).ok()?;
    let limit = std::env::var(ROLE_LIMIT_VAR)
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(LIMIT, Duration::from_secs);
    // A child never outlives the test: it ends itself after the limit.
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        std::process::exit(101);
    });
    Some(r.split('\u{1f}').map(str::to_owned).collect())
}

/// A child process in a role; killed on drop. Its stdin closing tells it to
/// end.
pub struct Role {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Role {
    pub fn start(test: &str, args: &[&str]) -> Role {
        let (role, lines) = Role::watched(test, args, &[]);
        std::thread::spawn(move || lines.into_iter().for_each(drop));
        role
    }

    /// Starts a child (`prefix` is a command to run it under, such as `ip
    /// netns exec NS`), and hands out the lines it prints after "ready".
    pub fn watched(test: &str, args: &[&str], prefix: &[&str]) -> (Role, mpsc::Receiver<String>) {
        let exe = std::env::current_exe().unwrap();
        let (program, before) = match prefix.split_first() {
            Some((first, rest)) => (
                PathBuf::from(first),
                rest.iter().map(PathBuf::from).chain([exe]).collect(),
            ),
            None => (exe, Vec::new()),
        };
        let mut child = Command::new(program)
            .args(before)
            .args([test, "--exact", "--nocapture", "--test-threads=1", "-q"])
            .env(ROLE, args.join("\u{1f}"))
            .env(ROLE_LIMIT_VAR, ROLE_LIMIT.load(Ordering::Relaxed).to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn a child role");
        let mut lines = BufReader::new(child.stdout.take().unwrap())
            .lines()
            .map_while(Result::ok);
        assert!(
            lines.any(|l| l.trim() == "ready"),
            "the child {args:?} ended before it was ready"
        );
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in lines {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        (Role { child, stdin }, rx)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Closes its stdin and waits for it to end; whether it succeeded.
    pub fn finish(mut self) -> bool {
        drop(self.stdin.take());
        self.child.wait().is_ok_and(|s| s.success())
    }

    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Blocks until stdin closes (the parent's signal to end).
pub fn until_stdin_closes() {
    let mut line = String::new();
    while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {}
}

/// A flag that turns true when stdin closes (watched by a thread).
pub fn stop_when_stdin_closes() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = Arc::clone(&stop);
    std::thread::spawn(move || {
        until_stdin_closes();
        s.store(true, Ordering::Relaxed);
    });
    stop
}

/// Fails the test process (whatever hangs) after `LIMIT`, unless dropped.
pub struct Watchdog(#[allow(dead_code)] mpsc::Sender<()>);

pub fn watchdog() -> Watchdog {
    watchdog_for(LIMIT)
}

/// [`watchdog`] for a test that takes longer; its child roles live as long.
pub fn watchdog_for(limit: Duration) -> Watchdog {
    ROLE_LIMIT.fetch_max(limit.as_secs(), Ordering::Relaxed);
    let (tx, rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        if rx.recv_timeout(limit) == Err(mpsc::RecvTimeoutError::Timeout) {
            eprintln!("watchdog: a test ran past {limit:?}");
            std::process::abort();
        }
    });
    Watchdog(tx)
}

pub fn unique(tag: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!(
        "memlink-cli-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Removes a segment (a bare name or a path) when dropped.
pub struct Removed(pub String);

impl Drop for Removed {
    fn drop(&mut self) {
        let path = if self.0.contains('/') {
            PathBuf::from(&self.0)
        } else {
            memlink_shm::inspect::default_dir().join(&self.0)
        };
        // And a half-built file of that name (`.NAME.*.memlink-tmp`), which a
        // process killed while creating the segment leaves.
        if let (Some(dir), Some(file)) = (path.parent(), path.file_name()) {
            let prefix = format!(".{}.", file.to_string_lossy());
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(&prefix) && name.ends_with(".memlink-tmp") {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        let _ = std::fs::remove_file(path);
    }
}

/// A scratch directory, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(unique(tag));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    pub fn at(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
