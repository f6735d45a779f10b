//! Daemon and clients in separate processes: the test binary re-executes
//! itself as the client. Every test has a watchdog and removes its segment.
// Exercises the 0.1.3 layer, including its deprecated 0.2 additions.
#![allow(deprecated)]

mod support;

use std::time::{Duration, Instant};

use memlink_shm::inspect::segment_path;
use memlink_shm::priority::Priority;
use memlink_shm::testkit::{Peer, WakeWord};
use memlink_shm::transport::{ClientId, NrelayShmTransport, ShmError, ShmTransport};
use support::checked::{decode, encode, shape, TierOrder};
use support::{child_role, child_watchdog, unique_name, watchdog, Children, SegmentGuard};

const STEP: Duration = Duration::from_secs(30);

/// Client role: sends `n` checked messages, verifies every echo, then waits
/// for the daemon's broadcast "bye".
fn run_stream_client(name: &str, n: u64) {
    child_watchdog(Duration::from_secs(300));
    let client = NrelayShmTransport::connect(name, 1).expect("connect");
    let me = client.client_id().unwrap().slot();
    let (mut sent, mut echoed) = (0u64, 0u64);
    let mut next_tier = [0u64; 3];
    let mut order = TierOrder::default();
    let mut bye = false;
    while echoed < n {
        let mut progress = false;
        let mut burst = 0;
        while sent < n && burst < 256 {
            let (priority, len) = shape(me, sent);
            let tier_seq = next_tier[priority.index()];
            match client.write_with(priority, len, |b| encode(b, me, sent, tier_seq)) {
                Ok(()) => {
                    next_tier[priority.index()] += 1;
                    sent += 1;
                    burst += 1;
                    progress = true;
                }
                Err(ShmError::BufferFull) => break,
                Err(e) => panic!("client write: {e}"),
            }
        }
        client.signal();
        loop {
            // The Critical "bye" overtakes echoes still queued in lower tiers.
            let got = client
                .read_with(|p, b| match (p, b) {
                    (Priority::Critical, b"bye") => Ok(true),
                    _ => decode(p, b).and_then(|(c, _, t)| {
                        if c == me {
                            order.check(p, t).map(|()| false)
                        } else {
                            Err(format!("echo for client {c}"))
                        }
                    }),
                })
                .expect("client read");
            match got {
                Some(r) => {
                    if r.expect("echo verification") {
                        assert!(!bye, "broadcast delivered twice");
                        bye = true;
                    } else {
                        echoed += 1;
                    }
                    progress = true;
                }
                None => break,
            }
        }
        if !progress {
            client.wait(Some(STEP)).expect("client wait for echoes");
        }
    }
    if !bye {
        let (p, msg) = client.recv(Some(STEP)).expect("broadcast after the stream");
        assert_eq!((p, &msg[..]), (Priority::Critical, &b"bye"[..]));
    }
}

/// Daemon role: verifies `total` messages from `clients` clients, echoing each
/// to its sender; then broadcasts "bye". Returns per-client counts.
fn run_stream_daemon(daemon: &NrelayShmTransport, clients: usize, total: u64) -> Vec<u64> {
    let mut order: Vec<TierOrder> = (0..clients).map(|_| TierOrder::default()).collect();
    let mut counts = vec![0u64; clients];
    let mut senders: Vec<Option<ClientId>> = vec![None; clients];
    let mut received = 0u64;
    while received < total {
        let got = daemon
            .read_from_with(|from, p, b| {
                let (c, _, t) = decode(p, b)?;
                let slot = from.slot() as usize;
                if c as usize != slot {
                    return Err(format!("message of client {c} arrived from slot {slot}"));
                }
                order[slot].check(p, t)?;
                counts[slot] += 1;
                senders[slot] = Some(from);
                daemon
                    .write_to_timeout(from, p, b, Some(STEP))
                    .map_err(|e| format!("echo: {e}"))
            })
            .expect("daemon read");
        match got {
            Some(r) => {
                r.expect("daemon verification");
                received += 1;
                if received % 64 == 0 {
                    daemon.signal();
                }
            }
            None => {
                daemon.signal();
                daemon.wait(Some(STEP)).expect("daemon wait");
            }
        }
    }
    daemon.signal();
    assert_eq!(daemon.client_count() as usize, clients);
    daemon
        .write_timeout(Priority::Critical, b"bye", Some(STEP))
        .expect("broadcast");
    daemon.signal();
    counts
}

/// 1,000,000 messages of random sizes (32 B to 4 KiB) and all three priorities,
/// client -> daemon -> client, each checked for loss, duplication, corruption
/// and order within its tier, on both sides.
#[test]
fn stream_million_checked_messages_both_ways() {
    const N: u64 = 1_000_000;
    if let Some(role) = child_role() {
        return run_stream_client(&role[0], role[1].parse().unwrap());
    }
    let name = unique_name("stream");
    let _guard = SegmentGuard(name.clone());
    let children = Children::default();
    let _w = watchdog(Duration::from_secs(600), &children, &[&name]);
    let daemon = NrelayShmTransport::builder(&name)
        .size(1 << 20)
        .max_clients(1)
        .create()
        .unwrap();
    let child = children.spawn("stream_million_checked_messages_both_ways", &[&name, &N.to_string()]);
    let counts = run_stream_daemon(&daemon, 1, N);
    assert_eq!(counts, vec![N]);
    assert!(children.wait_success(child), "client process failed");
}

/// Four client processes at once, each with its own rings; the daemon serves
/// them all and a broadcast reaches every one.
#[test]
fn four_clients_at_once() {
    const N: u64 = 50_000;
    if let Some(role) = child_role() {
        return run_stream_client(&role[0], role[1].parse().unwrap());
    }
    let name = unique_name("four");
    let _guard = SegmentGuard(name.clone());
    let children = Children::default();
    let _w = watchdog(Duration::from_secs(600), &children, &[&name]);
    let daemon = NrelayShmTransport::builder(&name)
        .size(4 << 20)
        .max_clients(4)
        .create()
        .unwrap();
    let kids: Vec<usize> = (0..4)
        .map(|_| children.spawn("four_clients_at_once", &[&name, &N.to_string()]))
        .collect();
    let counts = run_stream_daemon(&daemon, 4, 4 * N);
    assert_eq!(counts, vec![N; 4], "each client's messages, all delivered");
    for k in kids {
        assert!(children.wait_success(k), "a client process failed");
    }
}

/// The old README's snippet (`create("/tmp/my_shm", 65536, 1)`, `connect`,
/// `write` + `signal`, `wait` + `read`) with daemon and client in two processes,
/// in both directions.
#[test]
fn old_readme_snippet_across_processes() {
    if let Some(role) = child_role() {
        child_watchdog(Duration::from_secs(60));
        let client = NrelayShmTransport::connect(&role[0], 1).unwrap();
        client.write(Priority::High, b"Request data").unwrap();
        client.signal();
        client.wait(Some(STEP)).unwrap();
        let (priority, data) = client.read().unwrap();
        assert_eq!((priority, &data[..]), (Priority::Critical, &b"Response"[..]));
        return;
    }
    let name = format!("/tmp/{}", unique_name("readme"));
    let _guard = SegmentGuard(name.clone());
    let children = Children::default();
    let _w = watchdog(Duration::from_secs(120), &children, &[&name]);
    let daemon = NrelayShmTransport::create(&name, 65536, 1).unwrap();
    let child = children.spawn("old_readme_snippet_across_processes", &[&name]);
    daemon.wait(Some(STEP)).unwrap();
    let (priority, data) = daemon.read().unwrap();
    assert_eq!((priority, &data[..]), (Priority::High, &b"Request data"[..]));
    daemon.write(Priority::Critical, b"Response").unwrap();
    daemon.signal();
    assert!(children.wait_success(child), "client process failed");
}

/// A client asleep in `wait(None)` wakes with `Disconnected` when the daemon
/// shuts down; its writes then fail the same way; the segment's name is gone.
#[test]
fn shutdown_wakes_a_sleeping_client() {
    if let Some(role) = child_role() {
        child_watchdog(Duration::from_secs(60));
        let client = NrelayShmTransport::builder(&role[0])
            .spin(Duration::ZERO)
            .connect()
            .unwrap();
        client.send(Priority::High, b"ready").unwrap();
        assert!(matches!(client.wait(None), Err(ShmError::Disconnected)));
        assert!(!client.is_connected());
        assert!(matches!(
            client.write(Priority::High, b"x"),
            Err(ShmError::Disconnected)
        ));
        assert!(matches!(client.read(), Err(ShmError::Disconnected)));
        return;
    }
    let name = unique_name("shutdown");
    let _guard = SegmentGuard(name.clone());
    let children = Children::default();
    let _w = watchdog(Duration::from_secs(120), &children, &[&name]);
    let daemon = NrelayShmTransport::create(&name, 1 << 20, 1).unwrap();
    let child = children.spawn("shutdown_wakes_a_sleeping_client", &[&name]);
    let (from, _, msg) = daemon.recv_from(Some(STEP)).unwrap();
    assert_eq!(msg, b"ready");
    // Make sure the client is really asleep in the kernel before shutting down,
    // so the wake path is what is tested.
    let peer = Peer::open(&name).unwrap();
    let waiters = || peer.waiters(WakeWord::Client(from.slot()));
    let until = Instant::now() + STEP;
    while waiters() == 0 && Instant::now() < until {
        std::thread::yield_now();
    }
    assert_eq!(waiters(), 1, "client never went to sleep");
    daemon.shutdown();
    assert!(
        !segment_path(&name).unwrap().exists(),
        "shutdown removes the segment's name"
    );
    assert!(children.wait_success(child), "client process failed");
}

/// A client asking for another protocol version is refused with both versions named.
#[test]
fn protocol_version_mismatch_across_processes() {
    if let Some(role) = child_role() {
        match NrelayShmTransport::connect(&role[0], 2) {
            Err(ShmError::ProtocolMismatch { expected: 2, found: 1 }) => return,
            other => panic!("expected a protocol mismatch, got {other:?}"),
        }
    }
    let name = unique_name("version");
    let _guard = SegmentGuard(name.clone());
    let children = Children::default();
    let _w = watchdog(Duration::from_secs(60), &children, &[&name]);
    let daemon = NrelayShmTransport::create(&name, 65536, 1).unwrap();
    let child = children.spawn("protocol_version_mismatch_across_processes", &[&name]);
    assert!(children.wait_success(child));
    assert_eq!(daemon.client_count(), 0);
}

/// With every slot taken, another process's connect fails with `TableFull`.
#[test]
fn client_table_full_across_processes() {
    if let Some(role) = child_role() {
        match NrelayShmTransport::connect(&role[0], 1) {
            Err(ShmError::TableFull { max_clients: 2 }) => return,
            other => panic!("expected TableFull, got {other:?}"),
        }
    }
    let name = unique_name("full");
    let _guard = SegmentGuard(name.clone());
    let children = Children::default();
    let _w = watchdog(Duration::from_secs(60), &children, &[&name]);
    let daemon = NrelayShmTransport::builder(&name)
        .size(1 << 20)
        .max_clients(2)
        .create()
        .unwrap();
    let _a = NrelayShmTransport::connect(&name, 1).unwrap();
    let _b = NrelayShmTransport::connect(&name, 1).unwrap();
    let child = children.spawn("client_table_full_across_processes", &[&name]);
    assert!(children.wait_success(child));
    assert_eq!(daemon.client_count(), 2);
    // A slot freed by a leaving client is reused.
    drop(_a);
    daemon.read_with(|_, _| ()).unwrap(); // the daemon reaps departed clients as it reads
    let c = NrelayShmTransport::connect(&name, 1).unwrap();
    assert_eq!(c.client_id().unwrap().generation(), 2);
}

/// A client that starts before its daemon waits for it
/// (`ClientBuilder::wait`), blocking and async, instead of failing with
/// `NotFound`: the daemon is another process, started after the clients
/// began to wait.
#[test]
fn a_client_started_first_waits_for_its_daemon() {
    use memlink_shm::{Client, Daemon, Priority};
    if let Some(role) = child_role() {
        child_watchdog(Duration::from_secs(60));
        let mut daemon = Daemon::create(&role[0]).unwrap();
        for _ in 0..2 {
            let msg = daemon.recv_timeout(Duration::from_secs(30)).unwrap();
            daemon.send_to(msg.client(), Priority::High, msg.payload()).unwrap();
        }
        let until = std::time::Instant::now() + Duration::from_secs(30);
        while daemon.control().client_count() > 0 && std::time::Instant::now() < until {
            let _ = daemon.recv_timeout(Duration::from_millis(20));
        }
        return;
    }
    let name = unique_name("waitfor");
    let _guard = SegmentGuard(name.clone());
    let children = Children::default();
    let _w = watchdog(Duration::from_secs(90), &children, &[&name]);
    let talk = |mut client: Client, what: &[u8]| {
        client.send(Priority::High, what).unwrap();
        assert_eq!(client.recv_timeout(Duration::from_secs(30)).unwrap().payload(), what);
    };
    let blocking = {
        let name = name.clone();
        std::thread::spawn(move || Client::builder(&name).wait(Duration::from_secs(60)).connect())
    };
    let asynchronous = {
        let name = name.clone();
        std::thread::spawn(move || {
            futures::executor::block_on(Client::builder(&name).wait(Duration::from_secs(60)).connect_async())
        })
    };
    assert!(!segment_path(&name).unwrap().exists(), "no daemon yet");
    let child = children.spawn("a_client_started_first_waits_for_its_daemon", &[&name]);
    talk(
        blocking.join().unwrap().expect("the blocking connect waited"),
        b"blocking",
    );
    talk(
        asynchronous.join().unwrap().expect("the async connect waited"),
        b"async",
    );
    assert!(children.wait_success(child), "daemon process failed");
    // Without a daemon, a wait ends with the error it waited through.
    let absent = Client::builder(&unique_name("never"))
        .wait(Duration::from_millis(30))
        .connect();
    assert!(
        matches!(absent, Err(memlink_shm::OpenError::NotFound { .. })),
        "{absent:?}"
    );
}
