//! The daemon looks only at clients that rang its doorbell, and silences
//! those that stay quiet: a quiet client is still heard the moment it sends,
//! no message is lost to the race between a send and a silence, and 1024
//! clients (in four processes) are served.

mod support;

use std::io::{BufRead, BufReader};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use memlink_shm::{Client, Daemon, Error, Priority};
use support::{child_role, child_watchdog, unique_name, watchdog, Children, SegmentGuard};

const STEP: Duration = Duration::from_secs(30);

/// Polls with `try_recv` until a message comes (at most `STEP`).
fn poll_for(daemon: &mut Daemon) -> memlink_shm::ClientMessage {
    let until = std::time::Instant::now() + STEP;
    loop {
        match daemon.try_recv() {
            Ok(m) => return m,
            Err(Error::Empty) if std::time::Instant::now() < until => std::hint::spin_loop(),
            Err(e) => panic!("poll: {e}"),
        }
    }
}

#[test]
fn a_client_silenced_for_quiet_is_heard_again_on_every_tier() {
    let name = unique_name("bell-quiet");
    let _g = SegmentGuard(name.clone());
    let mut daemon = Daemon::create(&name).expect("create");
    let mut a = Client::connect(&name).expect("connect a");
    let mut b = Client::connect(&name).expect("connect b");
    for round in 0..3u8 {
        for p in Priority::ALL {
            a.send(p, &[round]).expect("send");
            let m = poll_for(&mut daemon);
            assert_eq!(
                (m.client(), m.priority(), m.payload()),
                (a.control().id(), p, &[round][..])
            );
            // Far more empty polls than it takes to silence every bell.
            for _ in 0..1000 {
                assert!(matches!(daemon.try_recv(), Err(Error::Empty)));
            }
        }
    }
    // A client that never sent before is heard at once too, by a blocking receive.
    b.send(Priority::Low, b"late").expect("send");
    let m = daemon.recv_timeout(STEP).expect("recv");
    assert_eq!((m.client(), m.payload()), (b.control().id(), &b"late"[..]));
}

/// A hostile peer clears every bell (they are in the shared control
/// region): the daemon still finds the message, at its next sweep.
#[test]
fn a_bell_cleared_by_a_hostile_peer_delays_a_message_one_sweep_at_most() {
    use memlink_shm::testkit::Peer;
    let name = unique_name("bell-hostile");
    let _g = SegmentGuard(name.clone());
    let mut daemon = Daemon::create(&name).expect("create");
    let mut client = Client::connect(&name).expect("connect");
    let peer = Peer::open(&name).expect("open");
    client.send(Priority::High, b"hidden").expect("send");
    peer.clear_doorbells();
    let m = daemon.recv_timeout(STEP).expect("found at the next sweep");
    assert_eq!(m.payload(), b"hidden");
}

/// A sender that pauses between messages (so the daemon keeps silencing
/// its bells) races a daemon that polls without sleeping: every message
/// arrives, in order.
#[test]
fn no_message_is_lost_between_a_send_and_a_silence() {
    let name = unique_name("bell-race");
    let _g = SegmentGuard(name.clone());
    let children = Children::default();
    let _w = watchdog(Duration::from_secs(120), &children, &[&name]);
    let mut daemon = Daemon::create(&name).expect("create");
    let mut client = Client::connect(&name).expect("connect");
    const N: u32 = 20_000;
    let done = Arc::new(AtomicBool::new(false));
    let sender = {
        let done = done.clone();
        std::thread::spawn(move || {
            for i in 0..N {
                // Between 0 and ~200 polls' worth of pause: often longer than a silence takes.
                for _ in 0..(support::mix(u64::from(i)) % 2000) {
                    std::hint::spin_loop();
                }
                let p = Priority::ALL[i as usize % 3];
                client.send(p, &i.to_le_bytes()).expect("send");
            }
            done.store(true, Ordering::Release);
            client
        })
    };
    let mut next = [0u32; 3];
    for _ in 0..N {
        let m = poll_for(&mut daemon);
        let i = u32::from_le_bytes(m.payload().try_into().expect("4 bytes"));
        let t = m.priority().index();
        assert_eq!(i as usize % 3, t);
        assert!(i >= next[t], "message {i} of tier {t} after {}", next[t]);
        next[t] = i + 1;
    }
    let _client = sender.join().expect("sender");
    assert!(done.load(Ordering::Acquire));
}

/// Child role: connects `count` clients, each sends its index, waits for
/// the daemon's echo, and only then do they leave.
fn run_clients(name: &str, first: u32, count: u32) {
    child_watchdog(Duration::from_secs(120));
    let mut clients: Vec<Client> = (0..count).map(|_| Client::connect(name).expect("connect")).collect();
    println!("ready");
    for (k, c) in clients.iter_mut().enumerate() {
        c.send(Priority::High, &(first + k as u32).to_le_bytes()).expect("send");
    }
    for (k, c) in clients.iter_mut().enumerate() {
        let m = c.recv_timeout(STEP).expect("echo");
        assert_eq!(m.payload(), (first + k as u32).to_le_bytes());
    }
}

#[test]
fn a_thousand_and_twenty_four_clients_are_served() {
    if let Some(role) = child_role() {
        return run_clients(&role[0], role[1].parse().unwrap(), role[2].parse().unwrap());
    }
    let name = unique_name("bell-1024");
    let _g = SegmentGuard(name.clone());
    let children = Children::default();
    let _w = watchdog(Duration::from_secs(120), &children, &[&name]);
    let mut daemon = Daemon::builder(&name)
        .size(8 << 20)
        .max_clients(1024)
        .max_message_size(64)
        .create()
        .expect("create");
    // Four processes of 256 clients: each stays under the usual limit of
    // 1024 open files.
    let test = "a_thousand_and_twenty_four_clients_are_served";
    let mut kids = Vec::new();
    for k in 0..4u32 {
        let (first, count) = ((k * 256).to_string(), 256.to_string());
        let (child, out) = children.spawn_piped(test, &[&name, &first, &count]);
        let mut lines = BufReader::new(out).lines().map_while(Result::ok);
        assert!(lines.any(|l| l.trim() == "ready"), "client process {k} did not connect");
        std::thread::spawn(move || lines.for_each(drop));
        kids.push(child);
    }
    assert_eq!(daemon.control().client_count(), 1024);
    let mut seen = vec![false; 1024];
    for _ in 0..1024 {
        let m = daemon.recv_timeout(STEP).expect("hello");
        let i = u32::from_le_bytes(m.payload().try_into().expect("4 bytes")) as usize;
        assert!(!seen[i], "message {i} twice");
        seen[i] = true;
        daemon.send_to(m.client(), Priority::High, m.payload()).expect("echo");
    }
    for child in kids {
        assert!(children.wait_success(child), "a client process failed");
    }
}
