//! `RemoteClient` against an `Export` and a daemon (here in one process,
//! over TCP on 127.0.0.1): both directions in order per tier, the async
//! forms, backpressure in both directions, refusal.

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use memlink_bridge::{BridgeConfig, BridgeError, Export, Refusal, RemoteClient};
use memlink_shm::{Daemon, Error, Priority};

const STEP: Duration = Duration::from_secs(30);

fn unique(tag: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!(
        "memlink-bridge-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Fails the test process after 120 s, unless dropped.
struct Watchdog(#[allow(dead_code)] mpsc::Sender<()>);

fn watchdog() -> Watchdog {
    let (tx, rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        if rx.recv_timeout(Duration::from_secs(120)) == Err(mpsc::RecvTimeoutError::Timeout) {
            eprintln!("watchdog: a test ran past 120 s");
            std::process::abort();
        }
    });
    Watchdog(tx)
}

/// An export of `name` on a free port, and the configuration to reach it.
fn export(name: &str) -> (Export, BridgeConfig) {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let endpoint = format!("tcp/127.0.0.1:{port}");
    let export = Export::start(name, BridgeConfig::default().listen(&endpoint)).expect("export");
    (export, BridgeConfig::default().connect(&endpoint))
}

/// A daemon on its own thread that echoes while `echo` is set, until
/// `stop`.
fn daemon(name: &str, echo: Arc<AtomicBool>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Daemon> {
    daemon_of_version(name, 1, echo, stop)
}

/// [`daemon`] speaking application protocol `version`.
fn daemon_of_version(
    name: &str,
    version: u32,
    echo: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Daemon> {
    let mut daemon = Daemon::builder(name)
        .size(1 << 20)
        .max_clients(4)
        .protocol_version(version)
        .create()
        .expect("daemon");
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            if !echo.load(Ordering::Relaxed) {
                std::thread::park_timeout(Duration::from_millis(5));
                continue;
            }
            match daemon.recv_timeout(Duration::from_millis(5)) {
                Ok(m) => daemon.send_to(m.client(), m.priority(), m.payload()).expect("echo"),
                Err(Error::Timeout) => {}
                Err(e) => panic!("daemon: {e}"),
            }
        }
        daemon
    })
}

fn record(tier: Priority, seq: u32) -> Vec<u8> {
    let mut out = vec![tier.index() as u8];
    out.extend_from_slice(&seq.to_le_bytes());
    out.resize(5 + (seq % 60) as usize, seq as u8);
    out
}

#[test]
fn a_remote_client_talks_both_ways_in_order_with_sync_and_async_calls() {
    let _w = watchdog();
    let name = unique("talk");
    let (echo, stop) = (Arc::new(AtomicBool::new(true)), Arc::new(AtomicBool::new(false)));
    let server = daemon(&name, echo, stop.clone());
    let (_export, config) = export(&name);
    let mut client = RemoteClient::connect(&name, config).expect("connect");
    assert!(client.is_connected());
    assert_eq!(
        client.max_message_size(),
        memlink_shm::Client::connect(&name)
            .unwrap()
            .control()
            .max_message_size()
    );

    // Rounds of 300 sent then 300 received: windows fill and drain.
    let mut sent = [0u32; 3];
    let mut got = [0u32; 3];
    for round in 0..20 {
        for i in 0..300u32 {
            let tier = Priority::ALL[((i * 5 + round) % 3) as usize];
            client.send(tier, &record(tier, sent[tier.index()])).unwrap();
            sent[tier.index()] += 1;
        }
        for _ in 0..300 {
            let m = client.recv_timeout(STEP).expect("echo");
            let t = m.priority().index();
            assert_eq!(m.payload(), record(m.priority(), got[t]), "tier {t} in order");
            got[t] += 1;
        }
    }
    assert_eq!(sent, got);

    // The async forms, on a runtime of the caller's choice.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for i in 0..500u32 {
            client.send_async(Priority::Low, &i.to_le_bytes()).await.unwrap();
        }
        for i in 0..500u32 {
            let m = client.recv_async().await.unwrap();
            assert_eq!((m.priority(), m.payload()), (Priority::Low, &i.to_le_bytes()[..]));
        }
    });
    assert!(matches!(client.try_recv(), Err(Error::Empty)));
    let too_big = vec![0; client.max_message_size() + 1];
    assert!(matches!(
        client.send(Priority::High, &too_big),
        Err(Error::MessageTooLarge { .. })
    ));

    // The daemon shutting down is a disconnect.
    stop.store(true, Ordering::Relaxed);
    drop(server.join().unwrap());
    assert!(matches!(client.recv_timeout(STEP), Err(Error::Disconnected)));
    assert!(matches!(client.send(Priority::High, b"x"), Err(Error::Disconnected)));
    assert!(!client.is_connected());
}

/// A daemon that does not read holds back a remote sender (its ring fills,
/// then the window): sending blocks instead of the bridge's memory
/// growing. And a remote client that does not read holds back the daemon.
#[test]
fn backpressure_crosses_the_bridge_both_ways() {
    let _w = watchdog();
    let name = unique("backpressure");
    let (echo, stop) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let server = daemon(&name, echo.clone(), stop.clone());
    let (_export, config) = export(&name);
    let mut client = RemoteClient::connect(&name, config).expect("connect");

    // Up: the daemon reads nothing.
    let mut accepted = 0u64;
    while client
        .send_timeout(Priority::High, &[1; 64], Duration::from_secs(2))
        .is_ok()
    {
        accepted += 1;
        assert!(accepted < 100_000, "the bridge took {accepted} messages nobody read");
    }
    // At most the daemon's ring (less than its 1 MiB segment) and one window
    // (1 MiB of messages and their 4-byte frames, and one more).
    let window = (1 << 20) / 68 + 1;
    assert!(
        (window..=window + (1 << 20) / 64).contains(&accepted),
        "accepted {accepted}"
    );
    assert!(matches!(client.try_send(Priority::High, &[1; 64]), Err(Error::Full)));

    // Reading again drains it all, echoed back.
    echo.store(true, Ordering::Relaxed);
    server.thread().unpark();
    for _ in 0..accepted {
        assert_eq!(client.recv_timeout(STEP).expect("echo").payload(), [1; 64]);
    }

    // Down: the remote client reads nothing while the daemon broadcasts.
    echo.store(false, Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let mut daemon = server.join().unwrap();
    let mut pushed = 0u64;
    loop {
        match daemon.sender().try_broadcast(Priority::Low, &[2; 64]) {
            Ok(()) => pushed += 1,
            Err(Error::Full) => {
                // Give the bridge time to drain the ring into its window; if
                // it took more, go on.
                match daemon
                    .sender()
                    .broadcast_timeout(Priority::Low, &[2; 64], Duration::from_secs(2))
                {
                    Ok(()) => pushed += 1,
                    Err(Error::Timeout | Error::Full) => break,
                    Err(e) => panic!("{e}"),
                }
            }
            Err(e) => panic!("{e}"),
        }
        assert!(pushed < 100_000, "the bridge took {pushed} messages nobody read");
    }
    // Acknowledgements go every quarter window: up to a quarter of the
    // echoes above may be taken but not yet acknowledged.
    assert!(
        (window * 3 / 4..=window + (1 << 20) / 64).contains(&pushed),
        "pushed {pushed}"
    );
    for _ in 0..pushed {
        assert_eq!(client.recv_timeout(STEP).expect("a broadcast").payload(), [2; 64]);
    }
}

#[test]
fn an_export_without_a_daemon_refuses_a_remote_client() {
    let _w = watchdog();
    let name = unique("refused");
    let (_export, config) = export(&name);
    match RemoteClient::connect(&name, config) {
        Err(BridgeError::Refused(Refusal::DaemonGone { segment })) => assert_eq!(segment, name),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// A daemon whose slots are all taken refuses the remote client, and the
/// refusal says how many there are.
#[test]
fn a_full_daemon_refuses_a_remote_client_with_its_numbers() {
    let _w = watchdog();
    let name = unique("full");
    let _daemon = Daemon::builder(&name).max_clients(1).create().expect("daemon");
    let _local = memlink_shm::Client::connect(&name).expect("the one slot");
    let (export, config) = export(&name);
    match RemoteClient::connect(&name, config) {
        Err(BridgeError::Refused(refusal)) => {
            assert_eq!(
                refusal,
                Refusal::TableFull {
                    max_clients: 1,
                    live: 1,
                    draining: 0
                }
            );
            let text = refusal.to_string();
            assert!(text.contains("all 1 client slots"), "{text}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(export.client_count(), 0, "nothing is attached");
}

/// The export attaches its remote clients with the daemon's own protocol
/// version (it used the default, 1, and a daemon of version 3 refused every
/// attach while the client's messages went nowhere).
#[test]
fn a_daemon_of_another_protocol_version_is_served() {
    let _w = watchdog();
    let name = unique("version3");
    let (echo, stop) = (Arc::new(AtomicBool::new(true)), Arc::new(AtomicBool::new(false)));
    let server = daemon_of_version(&name, 3, echo, stop.clone());
    let (_export, config) = export(&name);
    let mut client = RemoteClient::connect(&name, config).expect("connect through the export");
    for seq in 0..64 {
        let msg = record(Priority::High, seq);
        client.send(Priority::High, &msg).expect("send");
        assert_eq!(client.recv_timeout(STEP).expect("the echo").payload(), &msg[..]);
    }
    stop.store(true, Ordering::Relaxed);
    drop(server.join().expect("daemon thread"));
}
