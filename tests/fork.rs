//! A forked child's copies of a daemon and a client are inert: every call
//! fails with `Error::Forked`, and dropping them releases nothing of the
//! parent's (not the client's slot or lock, not the daemon's segment).
#![cfg(unix)]

mod support;

use std::time::Duration;

use memlink_shm::{inspect, Client, Daemon, Error, Priority};
use support::{unique_name, SegmentGuard};

const STEP: Duration = Duration::from_secs(30);

/// What the forked child checks, given its copies; returns its exit code.
fn child_checks(mut client: Client, mut daemon: Daemon, id: memlink_shm::ClientId) -> i32 {
    let checks: [(i32, bool); 5] = [
        (1, matches!(client.try_send(Priority::High, b"x"), Err(Error::Forked))),
        (2, matches!(client.try_recv(), Err(Error::Forked))),
        (3, matches!(daemon.try_recv(), Err(Error::Forked))),
        (
            4,
            matches!(daemon.try_send_to(id, Priority::High, b"x"), Err(Error::Forked)),
        ),
        (5, matches!(daemon.broadcast(Priority::High, b"x"), Err(Error::Forked))),
    ];
    if let Some((code, _)) = checks.iter().find(|(_, ok)| !ok) {
        return *code;
    }
    drop(client); // must not close the parent's slot or drop its lock
    drop(daemon); // must not shut the parent's segment down
    0
}

/// Waits for child `pid` and returns its exit code.
fn exit_code(pid: libc::pid_t) -> i32 {
    let mut status = 0;
    // SAFETY: waits for our own child; `status` is a valid out pointer.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid, "waitpid");
    assert!(libc::WIFEXITED(status), "the child did not exit normally: {status}");
    libc::WEXITSTATUS(status)
}

#[test]
fn a_forked_child_cannot_use_or_release_the_parents_endpoints() {
    let name = unique_name("fork");
    let _g = SegmentGuard(name.clone());
    let mut daemon = Daemon::create(&name).expect("create");
    let mut client = Client::connect(&name).expect("connect");
    let id = client.id();
    client.send(Priority::High, b"before the fork").expect("send");

    // SAFETY: fork has no memory-safety preconditions. The child only calls
    // this crate and the allocator (glibc's is fork-safe), then _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let code = child_checks(client, daemon, id);
        // SAFETY: _exit ends the child at once, without running the parent's
        // exit handlers or test harness in it.
        unsafe { libc::_exit(code) }
    }
    assert!(pid > 0, "fork failed: {}", std::io::Error::last_os_error());
    let code = exit_code(pid);
    assert_eq!(code, 0, "check {code} failed in the child");

    // The parent's endpoints are untouched: the message sent before the fork
    // is still there (the child could not take it), and both ways work.
    let info = inspect::segment(&name).expect("the segment is still there");
    assert!(info.daemon.alive && !info.daemon.shutting_down);
    assert_eq!(info.clients.len(), 1);
    assert!(info.clients[0].alive, "the child released the parent's client lock");
    let msg = daemon.recv_timeout(STEP).expect("the message sent before the fork");
    assert_eq!(msg.payload(), b"before the fork");
    client.send(Priority::High, b"after").expect("send after the fork");
    assert_eq!(daemon.recv_timeout(STEP).expect("recv").payload(), b"after");
    daemon.send_to(id, Priority::High, b"reply").expect("send_to");
    assert_eq!(client.recv_timeout(STEP).expect("reply").payload(), b"reply");
}
