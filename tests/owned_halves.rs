//! A daemon's halves, owned (`Daemon::into_split`) or borrowed
//! (`Daemon::split`): they move to threads of their own, and together they
//! free a departed client's slot (the receiving half drains it and asks, the
//! sending half lets go at its next call or its drop). Every test has a
//! watchdog and removes its segment.

mod support;

use std::time::Duration;

use memlink_shm::{Client, Daemon, DaemonReceiver, DaemonSender, Error, OpenError, Priority};
use support::{unique_name, watchdog, Children, SegmentGuard};

const STEP: Duration = Duration::from_secs(30);

#[test]
fn owned_halves_are_static_and_send() {
    fn check<T: Send + 'static>() {}
    check::<DaemonReceiver>();
    check::<DaemonSender>();
}

/// The receiving half on one thread, the sending half on another: requests
/// go from one to the other through a std channel, replies reach the client.
#[test]
fn owned_halves_serve_from_two_threads() {
    let name = unique_name("owned-two-threads");
    let _g = SegmentGuard(name.clone());
    let _w = watchdog(Duration::from_secs(120), &Children::default(), &[&name]);
    let (mut rx, mut tx) = Daemon::create(&name).expect("create").into_split();
    let (requests, inbox) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for _ in 0..100 {
            let msg = rx.recv_timeout(STEP).expect("request");
            requests.send(msg).expect("the replier is there");
        }
    });
    let replier = std::thread::spawn(move || {
        for msg in inbox.iter().take(100) {
            let mut reply = msg.payload().to_vec();
            reply.reverse();
            tx.send_to_timeout(msg.client(), Priority::High, &reply, STEP)
                .expect("reply");
        }
    });
    let mut client = Client::connect(&name).expect("connect");
    for i in 0..100u32 {
        client.send(Priority::High, &i.to_le_bytes()).expect("send");
        let mut want = i.to_le_bytes();
        want.reverse();
        assert_eq!(client.recv_timeout(STEP).expect("reply").payload(), want);
    }
    reader.join().expect("reader");
    replier.join().expect("replier");
}

/// The segment stays up while either owned half lives, and shuts down when
/// both are gone.
#[test]
fn the_segment_lives_until_both_owned_halves_are_dropped() {
    let name = unique_name("owned-lifetime");
    let _g = SegmentGuard(name.clone());
    let _w = watchdog(Duration::from_secs(120), &Children::default(), &[&name]);
    let (rx, mut tx) = Daemon::create(&name).expect("create").into_split();
    let mut client = Client::connect(&name).expect("connect");
    drop(rx);
    tx.send_to(client.control().id(), Priority::Low, b"still here")
        .expect("send");
    assert_eq!(client.recv_timeout(STEP).expect("recv").payload(), b"still here");
    drop(tx);
    match client.recv_timeout(STEP) {
        Err(Error::Disconnected) => {}
        other => panic!("expected Disconnected once both halves are gone, got {other:?}"),
    }
}

/// A departed client's slot, in a one-slot segment: held while the sending
/// half has not let go, free once it has.
fn departed_slot_is_freed_when_the_sender_lets_go(rx: &mut DaemonReceiver, let_go: impl FnOnce(), name: &str) {
    let mut leaving = Client::connect(name).expect("first client");
    let first = leaving.control().id();
    leaving.send_timeout(Priority::High, b"bye", STEP).expect("send");
    drop(leaving);
    assert_eq!(rx.recv_timeout(STEP).expect("its message").payload(), b"bye");
    // Drained and departed: the receiving half asks for the slot...
    assert!(matches!(rx.try_recv(), Err(Error::Empty)));
    // ...which the sending half still holds, so it is not free.
    match Client::connect(name) {
        Err(OpenError::TableFull { .. }) => {}
        other => panic!("the slot was freed before the sending half let go: {other:?}"),
    }
    let_go();
    assert!(matches!(rx.try_recv(), Err(Error::Empty)));
    let next = Client::connect(name).expect("the freed slot");
    assert_eq!(next.control().id().slot(), first.slot());
    assert!(next.control().id().generation() > first.generation());
}

#[test]
fn owned_halves_free_a_departed_clients_slot_at_the_senders_next_call() {
    let name = unique_name("owned-free-call");
    let _g = SegmentGuard(name.clone());
    let _w = watchdog(Duration::from_secs(120), &Children::default(), &[&name]);
    let daemon = Daemon::builder(&name).max_clients(1).create().expect("create");
    let (mut rx, mut tx) = daemon.into_split();
    // A broadcast to nobody is a call of the sending half like any other.
    departed_slot_is_freed_when_the_sender_lets_go(
        &mut rx,
        || tx.try_broadcast(Priority::Low, b"anyone?").expect("broadcast"),
        &name,
    );
}

#[test]
fn owned_halves_free_a_departed_clients_slot_when_the_idle_sender_releases() {
    let name = unique_name("owned-free-release");
    let _g = SegmentGuard(name.clone());
    let _w = watchdog(Duration::from_secs(120), &Children::default(), &[&name]);
    let daemon = Daemon::builder(&name).max_clients(1).create().expect("create");
    let (mut rx, mut tx) = daemon.into_split();
    // A sending half that sends nothing lets go when told to.
    departed_slot_is_freed_when_the_sender_lets_go(&mut rx, || tx.release_departed(), &name);
}

/// Both owned halves in one place: `free_departed` frees a drained
/// slot at once; another daemon's sending half changes nothing.
#[test]
fn owned_halves_held_together_free_a_departed_clients_slot_at_once() {
    let name = unique_name("owned-free-together");
    let other_name = unique_name("owned-free-other");
    let (_g, _h) = (SegmentGuard(name.clone()), SegmentGuard(other_name.clone()));
    let _w = watchdog(Duration::from_secs(120), &Children::default(), &[&name, &other_name]);
    let (mut rx, mut tx) = Daemon::builder(&name)
        .max_clients(1)
        .create()
        .expect("create")
        .into_split();
    let (_other_rx, mut other_tx) = Daemon::create(&other_name).expect("create").into_split();
    let mut leaving = Client::connect(&name).expect("first client");
    let first = leaving.control().id();
    leaving.send_timeout(Priority::High, b"bye", STEP).expect("send");
    drop(leaving);
    assert_eq!(rx.recv_timeout(STEP).expect("its message").payload(), b"bye");
    assert!(matches!(rx.try_recv(), Err(Error::Empty)));
    rx.free_departed(&mut other_tx);
    assert!(
        matches!(Client::connect(&name), Err(OpenError::TableFull { .. })),
        "another daemon's sending half freed the slot"
    );
    rx.free_departed(&mut tx);
    let next = Client::connect(&name).expect("the freed slot");
    assert_eq!(next.control().id().slot(), first.slot());
    // The sending half let go of the old client: it reaches the new one.
    tx.send_to_timeout(next.control().id(), Priority::High, b"hello", STEP)
        .expect("send to the new client");
}

#[test]
fn owned_halves_free_a_departed_clients_slot_when_the_sender_is_dropped() {
    let name = unique_name("owned-free-drop");
    let _g = SegmentGuard(name.clone());
    let _w = watchdog(Duration::from_secs(120), &Children::default(), &[&name]);
    let daemon = Daemon::builder(&name).max_clients(1).create().expect("create");
    let (mut rx, tx) = daemon.into_split();
    departed_slot_is_freed_when_the_sender_lets_go(&mut rx, move || drop(tx), &name);
}

#[test]
fn borrowed_halves_free_a_departed_clients_slot_while_split() {
    let name = unique_name("borrowed-free");
    let _g = SegmentGuard(name.clone());
    let _w = watchdog(Duration::from_secs(120), &Children::default(), &[&name]);
    let mut daemon = Daemon::builder(&name).max_clients(1).create().expect("create");
    let (rx, tx) = daemon.split();
    departed_slot_is_freed_when_the_sender_lets_go(
        rx,
        || tx.try_broadcast(Priority::Low, b"anyone?").expect("broadcast"),
        &name,
    );
}

/// Unsplit, the daemon's own call frees the slot at once, as before.
#[test]
fn an_unsplit_daemon_frees_a_departed_clients_slot_at_once() {
    let name = unique_name("unsplit-free");
    let _g = SegmentGuard(name.clone());
    let _w = watchdog(Duration::from_secs(120), &Children::default(), &[&name]);
    let mut daemon = Daemon::builder(&name).max_clients(1).create().expect("create");
    let mut leaving = Client::connect(&name).expect("first client");
    leaving.send_timeout(Priority::High, b"bye", STEP).expect("send");
    drop(leaving);
    assert_eq!(daemon.recv_timeout(STEP).expect("its message").payload(), b"bye");
    assert!(matches!(daemon.try_recv(), Err(Error::Empty)));
    Client::connect(&name).expect("the slot is free");
}

/// The slot an unsplit daemon freed at once gets a new client, which the
/// daemon answers: the sending half lets go of the old client's rings
/// before it attaches the new one's, not after.
#[test]
fn an_unsplit_daemon_answers_the_next_client_of_a_freed_slot() {
    let name = unique_name("unsplit-reuse");
    let _g = SegmentGuard(name.clone());
    let _w = watchdog(Duration::from_secs(120), &Children::default(), &[&name]);
    let mut daemon = Daemon::builder(&name).max_clients(1).create().expect("create");
    let mut first = Client::connect(&name).expect("first client");
    first.send_timeout(Priority::High, b"one", STEP).expect("send");
    let reply = daemon.recv_timeout(STEP).expect("its message");
    daemon
        .send_to(reply.client(), Priority::High, b"ok")
        .expect("answer the first");
    assert_eq!(first.recv_timeout(STEP).expect("reply").payload(), b"ok");
    drop(first);
    assert!(matches!(daemon.try_recv(), Err(Error::Empty)));
    let mut next = Client::connect(&name).expect("the freed slot");
    next.send_timeout(Priority::High, b"two", STEP).expect("send");
    let msg = daemon.recv_timeout(STEP).expect("its message");
    assert_eq!(msg.client(), next.control().id());
    daemon
        .send_to(msg.client(), Priority::High, b"ok")
        .expect("answer the next client");
    assert_eq!(next.recv_timeout(STEP).expect("reply").payload(), b"ok");
}
