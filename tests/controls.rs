//! The controls a daemon's and a client's halves share (`DaemonControl`,
//! `ClientControl`) and the receivers' `wait_ready`: queries and controls
//! that work from inside a closure of either half and from other threads,
//! counters that survive a freed slot, a control that keeps nothing alive,
//! a killed client reclaimed on demand, and a wait that leaves the message
//! where it is. Every test has a watchdog and removes its segment.

mod support;

use std::time::Duration;

use memlink_shm::{Client, ClientControl, Daemon, DaemonControl, Error, Fill, OpenError, Priority, Stats};
use support::{child_role, child_watchdog, unique_name, watchdog, Children, SegmentGuard};

const STEP: Duration = Duration::from_secs(30);

/// Messages the daemon read, over the three tiers.
fn to_daemon_read(stats: &Stats) -> u64 {
    stats.to_daemon.iter().map(|c| c.messages_read).sum()
}

/// Messages written to the daemon, over the three tiers.
fn to_daemon_written(stats: &Stats) -> u64 {
    stats.to_daemon.iter().map(|c| c.messages_written).sum()
}

#[test]
fn controls_are_send_sync_and_static() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<DaemonControl>();
    check::<ClientControl>();
}

/// Inside a receive closure the daemon's control answers and acts (the
/// sending half still replies), and a clone on another thread sees the
/// same segment.
#[test]
fn a_daemon_control_works_inside_closures_and_on_other_threads() {
    let name = unique_name("control-daemon");
    let _g = SegmentGuard(name.clone());
    let _w = watchdog(Duration::from_secs(120), &Children::default(), &[&name]);
    let (mut rx, mut tx) = Daemon::builder(&name)
        .max_clients(4)
        .protocol_version(9)
        .create()
        .expect("create")
        .into_split();
    let control = rx.control();
    let mut client = Client::builder(&name).protocol_version(9).connect().expect("connect");
    client.send(Priority::High, b"hello").expect("send");
    rx.recv_timeout_with(STEP, |from, _, payload| {
        assert_eq!(payload, b"hello");
        assert_eq!(control.clients(), [from]);
        assert_eq!(control.client_count(), 1);
        // Lent in place: written, and read once the closure returns.
        assert_eq!(to_daemon_written(&control.stats()), 1);
        control.set_backpressure(0.75);
        tx.send_to(from, Priority::High, b"reply")
    })
    .expect("receive")
    .expect("reply");
    assert_eq!(client.recv_timeout(STEP).expect("reply").payload(), b"reply");
    assert_eq!(client.control().backpressure(), 0.75);
    assert_eq!(to_daemon_read(&control.stats()), 1);
    let elsewhere = tx.control();
    let seen = std::thread::spawn(move || {
        (
            elsewhere.client_count(),
            elsewhere.max_clients(),
            elsewhere.protocol_version(),
            elsewhere.max_message_size(),
        )
    })
    .join()
    .expect("thread");
    assert_eq!(seen, (1, 4, 9, 4096));
}

/// A client that sent, left and was drained has its slot freed; its
/// counters stay in the daemon's, also as a control reads them.
#[test]
fn counters_of_a_freed_slot_stay_counted() {
    let name = unique_name("control-retired");
    let _g = SegmentGuard(name.clone());
    let _w = watchdog(Duration::from_secs(120), &Children::default(), &[&name]);
    let mut daemon = Daemon::create(&name).expect("create");
    let control = daemon.control();
    let mut client = Client::connect(&name).expect("connect");
    for i in 0..3u8 {
        client.send(Priority::Low, &[i]).expect("send");
    }
    drop(client);
    for i in 0..3u8 {
        assert_eq!(daemon.recv_timeout(STEP).expect("message").payload(), [i]);
    }
    // Drained and gone: the next receive frees the slot.
    assert!(matches!(daemon.try_recv(), Err(Error::Empty)), "nothing more");
    assert_eq!(control.client_count(), 0);
    assert_eq!(to_daemon_read(&control.stats()), 3);
    assert_eq!(to_daemon_read(&daemon.control().stats()), 3);
}

/// A control outlives its endpoint without keeping it: the daemon's
/// segment shuts down and goes when the daemon is dropped, the client
/// leaves when its halves are.
#[test]
fn a_control_keeps_nothing_alive() {
    let name = unique_name("control-alive");
    let _g = SegmentGuard(name.clone());
    let _w = watchdog(Duration::from_secs(120), &Children::default(), &[&name]);
    let daemon = Daemon::create(&name).expect("create");
    let daemon_control = daemon.control();
    let client = Client::connect(&name).expect("connect");
    let client_control = client.control();
    assert!(client_control.is_connected());
    drop(client);
    assert!(!client_control.is_connected());
    assert_eq!(to_daemon_written(&client_control.stats()), 0);
    client_control.disconnect();
    assert_eq!(daemon_control.client_count(), 0);
    assert!(!daemon_control.is_shut_down());
    drop(daemon);
    assert!(daemon_control.is_shut_down());
    daemon_control.shutdown();
    assert!(matches!(Client::connect(&name), Err(OpenError::NotFound { .. })));
}

/// A client's control leaves from inside a send closure; the daemon
/// still receives what was sent before.
#[test]
fn a_client_leaves_through_its_control_inside_a_send() {
    let name = unique_name("control-leave");
    let _g = SegmentGuard(name.clone());
    let _w = watchdog(Duration::from_secs(120), &Children::default(), &[&name]);
    let mut daemon = Daemon::create(&name).expect("create");
    let mut client = Client::connect(&name).expect("connect");
    let control = client.control();
    assert_eq!(control.id(), client.control().id());
    client.send(Priority::High, b"before").expect("send");
    client
        .try_send(
            Priority::High,
            Fill::new(1, |buf| {
                buf[0] = 1;
                control.set_backpressure(0.5);
                assert!(control.daemon_heartbeat_age() < Duration::from_secs(3600));
                control.disconnect();
            }),
        )
        .expect("the send that was under way");
    assert!(!client.control().is_connected());
    assert!(matches!(
        client.try_send(Priority::High, b"after"),
        Err(Error::Disconnected)
    ));
    assert_eq!(daemon.recv_timeout(STEP).expect("before").payload(), b"before");
}

/// `wait_ready` returns once a message waits and leaves it for the next
/// receive; with none it times out, and after a shutdown it says so.
#[test]
fn wait_ready_leaves_the_message_where_it_is() {
    let name = unique_name("wait-ready");
    let _g = SegmentGuard(name.clone());
    let _w = watchdog(Duration::from_secs(120), &Children::default(), &[&name]);
    let mut daemon = Daemon::create(&name).expect("create");
    let mut client = Client::connect(&name).expect("connect");
    let short = Duration::from_millis(20);
    assert!(matches!(daemon.receiver().wait_ready(short), Err(Error::Timeout)));
    assert!(matches!(client.receiver().wait_ready(short), Err(Error::Timeout)));

    client.send(Priority::Low, b"up").expect("send");
    daemon.receiver().wait_ready(STEP).expect("a message waits");
    daemon.receiver().wait_ready(STEP).expect("still there");
    assert_eq!(daemon.try_recv().expect("it").payload(), b"up");

    daemon
        .send_to(client.control().id(), Priority::Low, b"down")
        .expect("send");
    client.receiver().wait_ready(STEP).expect("a message waits");
    assert_eq!(client.try_recv().expect("it").payload(), b"down");

    // A waiter on another thread is woken by the send.
    let (mut tx, mut rx) = client.split();
    let waiter = std::thread::spawn(move || rx.wait_ready(STEP).map(|()| rx));
    daemon
        .send_to(tx.control().id(), Priority::High, b"wake")
        .expect("send");
    let mut rx = waiter.join().expect("waiter").expect("woken with a message");
    assert_eq!(rx.try_recv().expect("it").payload(), b"wake");

    daemon.shutdown();
    assert!(matches!(rx.wait_ready(STEP), Err(Error::Disconnected)));
    assert!(matches!(tx.try_send(Priority::High, b"late"), Err(Error::Disconnected)));
}

/// Child role: connects, says "ready", and blocks until killed.
fn run_doomed_client(name: &str) {
    child_watchdog(Duration::from_secs(120));
    let _client = Client::connect(name).expect("connect");
    println!("ready");
    let mut line = String::new();
    // The parent never writes: this blocks until the kill.
    let _ = std::io::stdin().read_line(&mut line);
}

/// A killed client's slot is reclaimed by `reclaim_dead` at once, without
/// the daemon ever waiting; a second call finds nobody dead.
#[test]
fn reclaim_dead_reclaims_a_killed_client() {
    if let Some(role) = child_role() {
        return run_doomed_client(&role[0]);
    }
    let name = unique_name("reclaim");
    let _g = SegmentGuard(name.clone());
    let children = Children::default();
    let _w = watchdog(Duration::from_secs(120), &children, &[&name]);
    let daemon = Daemon::create(&name).expect("create");
    let control = daemon.control();
    let (child, _stdin, out) = children.spawn_talking("reclaim_dead_reclaims_a_killed_client", &[&name]);
    support::wait_ready(out);
    assert_eq!(control.client_count(), 1);
    assert_eq!(control.reclaim_dead(), 0, "the client is alive");
    children.kill(child);
    assert_eq!(control.reclaim_dead(), 1, "the killed client");
    assert_eq!(control.reclaim_dead(), 0);
    assert_eq!(control.client_count(), 0);
    assert_eq!(control.stats().recovered_clients, 1);
}
