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
    let id = client.control().id();
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

/// What the forked child does with async calls on a segment of its own;
/// returns its exit code.
fn child_async_exchange(name: &str) -> i32 {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
    let Ok(rt) = rt else { return 10 };
    // Bounded: a task that nobody wakes fails the check instead of hanging.
    let exchange = async {
        let (Ok(mut daemon), Ok(mut client)) = (
            Daemon::builder(name).spin(Duration::ZERO).create(),
            Client::builder(name).spin(Duration::ZERO).connect(),
        ) else {
            return 11;
        };
        for i in 0..100u32 {
            // The daemon's receive parks before the message comes: only a
            // watcher of this process can wake it.
            let (got, sent) = tokio::join!(daemon.recv_async(), async {
                tokio::task::yield_now().await;
                client.send_async(Priority::High, &i.to_le_bytes()).await
            });
            match (got, sent) {
                (Ok(m), Ok(())) if m.payload() == i.to_le_bytes() => {}
                _ => return 12,
            }
            // And the client's receive parks before the reply comes.
            let id = client.control().id();
            let (got, sent) = tokio::join!(client.recv_async(), async {
                tokio::task::yield_now().await;
                daemon.send_to_async(id, Priority::High, &i.to_le_bytes()).await
            });
            match (got, sent) {
                (Ok(m), Ok(())) if m.payload() == i.to_le_bytes() => {}
                _ => return 14,
            }
        }
        0
    };
    rt.block_on(async { tokio::time::timeout(STEP, exchange).await.unwrap_or(13) })
}

#[test]
fn a_forked_child_parks_async_tasks_with_watchers_of_its_own() {
    let name = unique_name("fork-async");
    let child_name = unique_name("fork-async-child");
    let (_g, _h) = (SegmentGuard(name.clone()), SegmentGuard(child_name.clone()));
    let mut daemon = Daemon::create(&name).expect("create");
    let mut client = Client::connect(&name).expect("connect");
    // Park tasks in the parent on both endpoints' words, so that it has
    // watcher threads (which the child will not have). The child unmaps the
    // parent's segment and maps its own, often at the same addresses.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let short = Duration::from_millis(20);
        let parked = tokio::time::timeout(short, client.recv_async()).await;
        assert!(parked.is_err(), "nothing was sent");
        let parked = tokio::time::timeout(short, daemon.recv_async()).await;
        assert!(parked.is_err(), "nothing was sent");
    });
    drop(rt);

    // SAFETY: fork has no memory-safety preconditions. The child runs this
    // crate, a fresh tokio runtime and the allocator, then _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        drop((client, daemon)); // unmaps the parent's segment in the child
        let code = child_async_exchange(&child_name);
        // SAFETY: _exit ends the child at once, without the parent's harness.
        unsafe { libc::_exit(code) }
    }
    assert!(pid > 0, "fork failed: {}", std::io::Error::last_os_error());
    assert_eq!(exit_code(pid), 0, "the child's async exchange failed");
    client.send(Priority::High, b"still here").expect("send");
    assert_eq!(daemon.recv_timeout(STEP).expect("recv").payload(), b"still here");
}

/// A pipe: (read end, write end).
fn pipe() -> (libc::c_int, libc::c_int) {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid out array of two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
    (fds[0], fds[1])
}

/// Reads from `fd` until end of file (every write end closed).
fn block_until_closed(fd: libc::c_int) {
    let mut byte = 0u8;
    // SAFETY: reads at most one byte into a valid local.
    while unsafe { libc::read(fd, (&mut byte as *mut u8).cast(), 1) } > 0 {}
}

fn close(fd: libc::c_int) {
    // SAFETY: closes a descriptor this test opened and owns.
    unsafe { libc::close(fd) };
}

/// Held by each test that keeps forked processes waiting on a pipe: a fork
/// copies every descriptor of this process, so two such tests at once each
/// hand their processes a copy of the other's pipe end, and each test's
/// processes then wait for the other's to end: both live on after the tests,
/// holding the harness's output open.
static WORKERS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Forks a process that runs `endpoint` (it makes a daemon or a client and
/// keeps it), forks a worker that keeps running, then waits to be killed.
/// Returns the process and the write end that, once closed, ends the
/// worker; it returns when the endpoint exists and the worker has come out
/// of its fork (its copies are given up then, not at the fork itself).
///
/// Tests that call it hold [`WORKERS`] throughout.
fn process_with_a_forked_worker<E>(endpoint: impl FnOnce() -> Option<E>) -> (libc::pid_t, libc::c_int) {
    let (ready_r, ready_w) = pipe();
    let (hold_r, hold_w) = pipe();
    // SAFETY: fork has no memory-safety preconditions. The child runs this
    // crate, fork, and blocking reads, then _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        close(ready_r);
        close(hold_w);
        let Some(kept) = endpoint() else {
            // SAFETY: ends the child without the parent's harness.
            unsafe { libc::_exit(1) }
        };
        // SAFETY: as above.
        if unsafe { libc::fork() } == 0 {
            // The worker: has run the fork handlers (fork returned here), so
            // it says ready; then runs until told.
            // SAFETY: writes one byte from a valid local.
            unsafe { libc::write(ready_w, b"r".as_ptr().cast(), 1) };
            close(ready_w);
            block_until_closed(hold_r);
            // SAFETY: as above.
            unsafe { libc::_exit(0) }
        }
        close(ready_w);
        block_until_closed(hold_r); // until killed
        drop(kept);
        // SAFETY: as above.
        unsafe { libc::_exit(0) }
    }
    assert!(pid > 0, "fork failed: {}", std::io::Error::last_os_error());
    close(ready_w);
    close(hold_r);
    let mut byte = 0u8;
    // SAFETY: reads one byte into a valid local; returns 0 if the child died.
    let got = unsafe { libc::read(ready_r, (&mut byte as *mut u8).cast(), 1) };
    close(ready_r);
    assert_eq!(got, 1, "the forked process could not make its endpoint");
    (pid, hold_w)
}

fn kill_and_reap(pid: libc::pid_t) {
    // SAFETY: signals and reaps our own child.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
}

/// A worker forked by a daemon holds copies of its descriptor and mapping,
/// which would keep the daemon's liveness lock: the child gives them up, so
/// the daemon's death still reaches its clients.
#[test]
fn a_daemons_forked_worker_does_not_keep_it_alive_once_killed() {
    let name = unique_name("fork-worker-d");
    let _g = SegmentGuard(name.clone());
    let _one_at_a_time = WORKERS.lock().unwrap_or_else(|e| e.into_inner());
    let (daemon, worker) = process_with_a_forked_worker(|| Daemon::create(&name).ok());
    let mut client = Client::connect(&name).expect("connect");
    kill_and_reap(daemon);
    let info = inspect::segment(&name).expect("inspect");
    let lost = client.recv_timeout(STEP);
    close(worker); // the worker ends
    assert!(!info.daemon.alive, "the worker kept the dead daemon's lock");
    assert!(matches!(lost, Err(Error::Disconnected)), "{lost:?}");
}

/// The same for a client: its forked worker does not keep its slot.
#[test]
fn a_clients_forked_worker_does_not_keep_its_slot_once_killed() {
    let name = unique_name("fork-worker-c");
    let _g = SegmentGuard(name.clone());
    let mut daemon = Daemon::create(&name).expect("create");
    let _one_at_a_time = WORKERS.lock().unwrap_or_else(|e| e.into_inner());
    let (client, worker) = process_with_a_forked_worker(|| Client::connect(&name).ok());
    kill_and_reap(client);
    let info = inspect::segment(&name).expect("inspect");
    close(worker);
    assert_eq!(info.clients.len(), 1);
    assert!(!info.clients[0].alive, "the worker kept the dead client's lock");
    // And the daemon reclaims the slot: a new client gets in and is served.
    let mut next = Client::connect(&name).expect("connect after the death");
    next.send(Priority::High, b"next").expect("send");
    assert_eq!(daemon.recv_timeout(STEP).expect("recv").payload(), b"next");
}
