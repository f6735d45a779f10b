//! Cross-process wake-ups, with no timeout to hide a lost one: two processes
//! ping-pong on a word in a shared page, each sleeping in `futex_wait(..,
//! None)` until the other wakes it. A wake that does not reach the other
//! process (say, a process-local primitive) hangs the test, and the watchdog
//! turns the hang into a failure. On Windows no sleep on a semaphore lasts
//! over 50 ms (a release can be taken by the wrong waiter, see the Windows
//! `futex_wait` in `src/platform/windows.rs`): there a wake that never
//! crosses would make every round last 50 ms, so the test also counts the
//! rounds that took that long and fails if they are more than a tenth.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use memlink_shm::testkit::{futex_wait, futex_wake, Peer, SharedPage};
use support::{child_role, unique_name, watchdog, Children, SegmentGuard};

const ROUNDS: u32 = 2_000;

fn word(page: &SharedPage) -> &AtomicU32 {
    page.word32(256)
}

/// Sleeps (in the kernel, no timeout) until the word reaches `target`.
fn sleep_until(w: &AtomicU32, target: u32) {
    loop {
        let seen = w.load(Ordering::SeqCst);
        if seen == target {
            return;
        }
        futex_wait(w, seen, None);
    }
}

#[test]
fn wake_crosses_the_process_boundary() {
    if let Some(role) = child_role() {
        let page = SharedPage::open(&role[0]).unwrap();
        let w = word(&page);
        for i in 0..ROUNDS {
            sleep_until(w, 2 * i + 1);
            w.store(2 * i + 2, Ordering::SeqCst);
            futex_wake(w, 1);
        }
        return;
    }
    let name = unique_name("wake");
    let _guard = SegmentGuard(name.clone());
    let children = Children::default();
    let _w = watchdog(Duration::from_secs(120), &children, &[&name]);
    let page = SharedPage::create(&name).unwrap();
    let child = children.spawn("wake_crosses_the_process_boundary", &[&name]);
    let w = word(&page);
    let mut slow = 0;
    for i in 0..ROUNDS {
        let start = Instant::now();
        w.store(2 * i + 1, Ordering::SeqCst);
        futex_wake(w, 1);
        sleep_until(w, 2 * i + 2);
        slow += u32::from(start.elapsed() >= Duration::from_millis(40));
    }
    assert!(children.wait_success(child), "the other process failed");
    // Rounds rescued by a sleep's time limit rather than woken: a few at
    // most (a 50 ms round is a thousand times a woken one).
    assert!(slow < ROUNDS / 10, "{slow} of {ROUNDS} rounds were not woken in time");
    assert_eq!(w.load(Ordering::SeqCst), 2 * ROUNDS);
}

/// A client that sleeps marks its slot in the segment's sleeper bits before
/// it registers, and clears it when its wait ends; waking every client (the
/// 0.1.3 `signal()`) reaches it through those bits alone.
#[test]
#[allow(deprecated)]
fn a_sleeping_client_is_marked_and_a_wake_of_every_client_reaches_it() {
    use memlink_shm::transport::{NrelayShmTransport, ShmTransport};
    use memlink_shm::Priority;

    let name = unique_name("sleepers");
    let _guard = SegmentGuard(name.clone());
    let children = Children::default();
    let _w = watchdog(Duration::from_secs(120), &children, &[&name]);
    let daemon = NrelayShmTransport::create(&name, 1 << 20, 1).unwrap();
    let idle: Vec<_> = (0..2).map(|_| NrelayShmTransport::connect(&name, 1).unwrap()).collect();
    let sleeper = NrelayShmTransport::connect(&name, 1).unwrap();
    let slot = sleeper.client_id().unwrap().slot();
    let peer = Peer::open(&name).unwrap();
    let bits = || peer.sleeper_bits();
    assert_eq!(bits(), 0, "nobody sleeps yet");
    let (id, waiting) = (
        sleeper.client_id().unwrap(),
        std::thread::spawn(move || {
            sleeper.set_spin(Duration::ZERO);
            let woke = sleeper.wait(Some(Duration::from_secs(60)));
            (woke.map(|()| sleeper.read().unwrap().1), sleeper)
        }),
    );
    let until = Instant::now() + Duration::from_secs(60);
    while bits() != 1 << slot && Instant::now() < until {
        std::thread::yield_now();
    }
    assert_eq!(bits(), 1 << slot, "only the sleeping client is marked");
    daemon.write_to(id, Priority::High, b"wake").unwrap();
    daemon.signal();
    let (got, _sleeper) = waiting.join().unwrap();
    assert_eq!(got.unwrap(), b"wake");
    assert_eq!(bits(), 0, "a client that woke is no longer marked");
    drop(idle);
}

/// The same for a task parked in `recv_async`: its watcher holds the bit,
/// and a broadcast (which wakes every client) reaches it.
#[test]
fn a_parked_task_is_marked_and_a_broadcast_reaches_it() {
    use memlink_shm::{Client, Daemon, Priority};

    let name = unique_name("sleepers-async");
    let _guard = SegmentGuard(name.clone());
    let children = Children::default();
    let _w = watchdog(Duration::from_secs(120), &children, &[&name]);
    let mut daemon = Daemon::builder(&name).max_clients(4).create().unwrap();
    let idle = Client::connect(&name).unwrap();
    let mut sleeper = Client::builder(&name).spin(Duration::ZERO).connect().unwrap();
    let slot = sleeper.control().id().slot();
    let peer = Peer::open(&name).unwrap();
    let bits = || peer.sleeper_bits();
    let waiting = std::thread::spawn(move || {
        let got = futures::executor::block_on(sleeper.recv_async()).map(|m| m.into_payload());
        (got, sleeper)
    });
    let until = Instant::now() + Duration::from_secs(60);
    while bits() != 1 << slot && Instant::now() < until {
        std::thread::yield_now();
    }
    assert_eq!(bits(), 1 << slot, "only the parked task's client is marked");
    daemon.broadcast(Priority::High, b"wake").unwrap();
    let (got, _sleeper) = waiting.join().unwrap();
    assert_eq!(got.unwrap(), b"wake");
    assert_eq!(bits(), 0, "a task that woke is no longer marked");
    drop(idle);
}
