//! The `Daemon` and `Client` endpoints across real processes: the test
//! binary re-executes itself in a child role. Every test has a watchdog and
//! removes its segment.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

use memlink_shm::{Client, Daemon, Error, Priority};
use support::{child_role, child_watchdog, unique_name, wait_ready, watchdog, Children, SegmentGuard};

const STEP: Duration = Duration::from_secs(30);

/// A segment whose rings fill after a few dozen 1 KiB messages.
fn small_daemon(name: &str, clients: u32) -> Daemon {
    Daemon::builder(name)
        .size(128 << 10)
        .max_clients(clients)
        .max_message_size(1024)
        .create()
        .expect("create")
}

/// The crate page's quickstart, with the client in another process.
#[test]
fn quickstart_across_two_processes() {
    if let Some(role) = child_role() {
        child_watchdog(Duration::from_secs(120));
        let mut client = Client::connect(&role[0]).expect("connect");
        client.send(Priority::High, b"ping").expect("send");
        let reply = client.recv_timeout(STEP).expect("reply");
        assert_eq!((reply.priority(), reply.payload()), (Priority::Critical, &b"pong"[..]));
        return;
    }
    let name = unique_name("quickstart");
    let _g = SegmentGuard(name.clone());
    let children = Children::default();
    let _w = watchdog(Duration::from_secs(120), &children, &[&name]);
    let mut daemon = Daemon::create(&name).expect("create");
    let child = children.spawn("quickstart_across_two_processes", &[&name]);
    let msg = daemon.recv_timeout(STEP).expect("request");
    assert_eq!((msg.priority(), msg.payload()), (Priority::High, &b"ping"[..]));
    daemon
        .send_to(msg.client(), Priority::Critical, b"pong")
        .expect("send_to");
    assert!(children.wait_success(child), "the client process failed");
}

/// Client role for the blocking-write tests: connects, says hello so the
/// daemon learns its id, reads nothing, and leaves when a line (or the end)
/// arrives on its stdin.
fn run_stalled_client(name: &str) {
    child_watchdog(Duration::from_secs(120));
    let client = Client::connect(name).expect("connect");
    let mut client = client;
    client.send(Priority::High, b"hello").expect("hello");
    println!("ready");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    client.disconnect();
}

/// Fills the Low ring to `client` until it is full.
fn fill_low(daemon: &mut Daemon, client: memlink_shm::ClientId) -> usize {
    let mut n = 0;
    loop {
        match daemon.try_send_to(client, Priority::Low, &[7; 1000]) {
            Ok(()) => n += 1,
            Err(Error::Full) => return n,
            Err(e) => panic!("filling: {e}"),
        }
    }
}

/// A daemon blocked in `send_to` on a client that leaves gets
/// `UnknownClient` instead of waiting for ever.
#[test]
fn blocking_send_to_ends_when_the_client_leaves() {
    if let Some(role) = child_role() {
        return run_stalled_client(&role[0]);
    }
    let name = unique_name("leaves");
    let _g = SegmentGuard(name.clone());
    let children = Children::default();
    let _w = watchdog(Duration::from_secs(120), &children, &[&name]);
    let mut daemon = small_daemon(&name, 1);
    let (child, mut input, out) = children.spawn_talking("blocking_send_to_ends_when_the_client_leaves", &[&name]);
    wait_ready(out);
    let hello = daemon.recv_timeout(STEP).expect("hello");
    assert!(fill_low(&mut daemon, hello.client()) > 0);
    // Told to leave before or while the send waits: either way it must end.
    let teller = std::thread::spawn(move || writeln!(input, "leave"));
    let r = daemon.send_to(hello.client(), Priority::Low, &[7; 1000]);
    teller.join().unwrap().expect("tell the client to leave");
    assert!(
        matches!(r, Err(Error::UnknownClient(id)) if id == hello.client()),
        "{r:?}"
    );
    assert!(children.wait_success(child), "the client process failed");
}

/// A daemon blocked in `send_to` on a client that is killed gets
/// `UnknownClient`: the wait sweeps for dead clients.
#[test]
fn blocking_send_to_ends_when_the_client_dies() {
    if let Some(role) = child_role() {
        return run_stalled_client(&role[0]);
    }
    let name = unique_name("dies");
    let _g = SegmentGuard(name.clone());
    let children = Children::default();
    let _w = watchdog(Duration::from_secs(120), &children, &[&name]);
    let mut daemon = small_daemon(&name, 1);
    // Its stdin stays open until it is killed: it does not leave by itself.
    let (child, _input, out) = children.spawn_talking("blocking_send_to_ends_when_the_client_dies", &[&name]);
    wait_ready(out);
    let hello = daemon.recv_timeout(STEP).expect("hello");
    fill_low(&mut daemon, hello.client());
    // Killed before or while the send waits: either way it must end.
    let killer = {
        let children = children.clone();
        std::thread::spawn(move || children.kill(child))
    };
    let r = daemon.send_to(hello.client(), Priority::Low, &[7; 1000]);
    killer.join().unwrap();
    assert!(matches!(r, Err(Error::UnknownClient(_))), "{r:?}");
    assert_eq!(daemon.control().client_count(), 0);
}

/// Client role that reads until the broadcast "bye".
fn run_reader(name: &str) {
    child_watchdog(Duration::from_secs(120));
    let mut client = Client::connect(name).expect("connect");
    client.send(Priority::High, b"hello").expect("hello");
    loop {
        let msg = client.recv().expect("recv");
        if msg.payload() == b"bye" {
            return;
        }
    }
}

/// One dead client whose ring is full does not stall a broadcast: it goes
/// on to the living.
#[test]
fn broadcast_skips_a_dead_client_with_a_full_ring() {
    if let Some(role) = child_role() {
        return match role[1].as_str() {
            "stalled" => run_stalled_client(&role[0]),
            _ => run_reader(&role[0]),
        };
    }
    let name = unique_name("bcast");
    let _g = SegmentGuard(name.clone());
    let children = Children::default();
    let _w = watchdog(Duration::from_secs(120), &children, &[&name]);
    let mut daemon = small_daemon(&name, 2);
    let test = "broadcast_skips_a_dead_client_with_a_full_ring";
    let (stalled, _input, out) = children.spawn_talking(test, &[&name, "stalled"]);
    wait_ready(out);
    let stalled_id = daemon.recv_timeout(STEP).expect("hello").client();
    let reader = children.spawn(test, &[&name, "reader"]);
    let reader_id = daemon.recv_timeout(STEP).expect("hello").client();
    assert_ne!(stalled_id, reader_id);
    fill_low(&mut daemon, stalled_id);
    assert!(matches!(
        daemon.sender().try_broadcast(Priority::Low, b"bye"),
        Err(Error::Full)
    ));
    children.kill(stalled);
    daemon.broadcast(Priority::Low, b"bye").expect("broadcast");
    assert!(children.wait_success(reader), "the reading client failed");
    assert_eq!(daemon.control().clients(), Vec::<memlink_shm::ClientId>::new());
}

/// Daemon role: creates the segment, says "ready", and never reads.
fn run_deaf_daemon(name: &str) {
    child_watchdog(Duration::from_secs(120));
    let _daemon = small_daemon(name, 1);
    println!("ready");
    loop {
        std::thread::park();
    }
}

/// A client blocked in `send` on a full ring gets `Disconnected` when the
/// daemon is killed.
#[test]
fn blocking_send_ends_when_the_daemon_dies() {
    if let Some(role) = child_role() {
        return run_deaf_daemon(&role[0]);
    }
    let name = unique_name("deaf");
    let _g = SegmentGuard(name.clone());
    let children = Children::default();
    let _w = watchdog(Duration::from_secs(120), &children, &[&name]);
    let (daemon, out) = children.spawn_piped("blocking_send_ends_when_the_daemon_dies", &[&name]);
    wait_ready(out);
    let mut client = Client::connect(&name).expect("connect");
    while client.try_send(Priority::Low, &[1; 1000]).is_ok() {}
    assert!(matches!(client.try_send(Priority::Low, &[1; 1000]), Err(Error::Full)));
    let killer = {
        let children = children.clone();
        std::thread::spawn(move || children.kill(daemon))
    };
    let r = client.send(Priority::Low, &[1; 1000]);
    killer.join().unwrap();
    assert!(matches!(r, Err(Error::Disconnected)), "{r:?}");
    assert!(!client.control().is_connected());
}

/// A daemon that only sends still frees the slots of clients that left, so
/// new clients can connect (the slots are freed when a send sees the table
/// move, not only when the daemon reads).
#[test]
fn a_daemon_that_only_sends_frees_departed_slots() {
    let name = unique_name("sendonly");
    let _g = SegmentGuard(name.clone());
    let mut daemon = small_daemon(&name, 2);
    for round in 0..20 {
        let a = Client::connect(&name).unwrap_or_else(|e| panic!("round {round}: {e}"));
        let b = Client::connect(&name).unwrap_or_else(|e| panic!("round {round}: {e}"));
        daemon.broadcast(Priority::Low, b"news").expect("broadcast");
        drop((a, b));
        daemon.broadcast(Priority::Low, b"to nobody").expect("broadcast");
    }
    assert_eq!(daemon.control().client_count(), 0);
}

/// A split daemon receives on one thread and replies on another; once the
/// halves are gone, the daemon frees the slot of the client that left.
#[test]
fn a_split_daemon_serves_from_two_threads() {
    let name = unique_name("split");
    let _g = SegmentGuard(name.clone());
    let mut daemon = small_daemon(&name, 1);
    let mut client = Client::connect(&name).expect("connect");
    const N: u32 = 2000;
    std::thread::scope(|s| {
        let (rx, tx) = daemon.split();
        let (ids, requests) = std::sync::mpsc::channel();
        s.spawn(move || {
            for _ in 0..N {
                let msg = rx.recv_timeout(STEP).expect("request");
                ids.send((msg.client(), msg.into_payload())).unwrap();
            }
        });
        s.spawn(move || {
            for (from, payload) in requests {
                tx.send_to(from, Priority::High, &payload).expect("reply");
            }
        });
        for i in 0..N {
            client.send(Priority::High, &i.to_le_bytes()).expect("send");
            let reply = client.recv_timeout(STEP).expect("reply");
            assert_eq!(reply.payload(), i.to_le_bytes());
        }
    });
    drop(client);
    // The daemon's next call frees the departed client's slot.
    assert!(matches!(daemon.try_recv(), Err(Error::Empty)));
    let again = Client::connect(&name).expect("the only slot is free again");
    assert_eq!(daemon.control().clients(), vec![again.control().id()]);
}

/// The daemon's counters keep what clients that left sent and received.
#[test]
fn stats_survive_departed_clients() {
    let name = unique_name("stats");
    let _g = SegmentGuard(name.clone());
    let mut daemon = small_daemon(&name, 2);
    for round in 0..10u32 {
        let mut client = Client::connect(&name).unwrap_or_else(|e| panic!("round {round}: {e}"));
        for i in 0..100u32 {
            client.send(Priority::High, &i.to_le_bytes()).expect("send");
            let msg = daemon.recv_timeout(STEP).expect("request");
            daemon
                .send_to(msg.client(), Priority::Low, msg.payload())
                .expect("reply");
            client.recv_timeout(STEP).expect("reply");
        }
    }
    // The last client's slot is freed by the next call; its counters stay.
    assert!(matches!(daemon.try_recv(), Err(Error::Empty)));
    let stats = daemon.control().stats();
    assert_eq!(stats.to_daemon[Priority::High.index()].messages_read, 1000);
    assert_eq!(stats.to_client[Priority::Low.index()].messages_written, 1000);
    assert_eq!(stats.to_client[Priority::Low.index()].bytes_read, 4000);
}

/// A daemon shared out among worker threads: each worker serves only the
/// clients of its slots, every client is always answered by the same worker,
/// and every worker gets clients.
#[test]
fn a_daemon_shared_out_among_worker_threads() {
    const WORKERS: usize = 3;
    const CLIENTS: usize = 6;
    const REQUESTS: u32 = 300;
    let name = unique_name("shards");
    let _g = SegmentGuard(name.clone());
    let daemon = Daemon::builder(&name)
        .max_clients(CLIENTS as u32)
        .create()
        .expect("create");
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for (k, mut shard) in daemon.shard(WORKERS).into_iter().enumerate() {
            let done = &done;
            s.spawn(move || loop {
                match shard.recv_timeout(Duration::from_millis(20)) {
                    Ok(msg) => {
                        assert_eq!(msg.client().slot() as usize % WORKERS, k, "a client of another shard");
                        let mut reply = msg.payload().to_vec();
                        reply.push(k as u8);
                        shard.send_to(msg.client(), Priority::High, &reply).expect("reply");
                    }
                    Err(Error::Timeout) if done.load(std::sync::atomic::Ordering::Relaxed) => return,
                    Err(Error::Timeout) => {}
                    Err(e) => panic!("worker {k}: {e}"),
                }
            });
        }
        // Stops the workers also when a client thread panics, so that the
        // scope ends and the panic is reported instead of a hang.
        struct StopOnDrop<'a>(&'a std::sync::atomic::AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let stop = StopOnDrop(&done);
        let served_by: Vec<u8> = std::thread::scope(|c| {
            // All connected before any starts: a client that finished and
            // left would free its slot for the next one, skewing the shards.
            let clients: Vec<Client> = (0..CLIENTS).map(|_| Client::connect(&name).expect("connect")).collect();
            let handles: Vec<_> = clients
                .into_iter()
                .map(|mut client| {
                    c.spawn(move || {
                        let mut worker = None;
                        for i in 0..REQUESTS {
                            client.send(Priority::High, &i.to_le_bytes()).expect("send");
                            let reply = client.recv_timeout(STEP).expect("reply").into_payload();
                            assert_eq!(&reply[..4], i.to_le_bytes());
                            let k = reply[4];
                            assert_eq!(*worker.get_or_insert(k), k, "answered by two workers");
                        }
                        worker.unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        drop(stop);
        let mut workers = served_by.clone();
        workers.sort_unstable();
        workers.dedup();
        assert_eq!(workers.len(), WORKERS, "served by {served_by:?}");
    });
}

/// Child role for the takeover race: waits for "go" on stdin, then tries to
/// create the daemon and says "won PID" (and holds the name until its stdin
/// closes) or "lost PID-NAMED".
fn run_contender(name: &str) {
    child_watchdog(Duration::from_secs(120));
    println!("ready");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).expect("go");
    match Daemon::create(name) {
        Ok(_daemon) => {
            println!("won {}", std::process::id());
            let _ = std::io::stdin().read_line(&mut line); // hold until told
        }
        Err(memlink_shm::OpenError::AlreadyRunning { pid, .. }) => println!("lost {pid}"),
        Err(e) => println!("error {e}"),
    }
}

/// Eight processes race to take over a dead daemon's name: one wins, and
/// every loser's AlreadyRunning names the winner, not the dead daemon.
#[test]
fn a_takeover_race_names_the_winner() {
    if let Some(role) = child_role() {
        return match role[1].as_str() {
            "deaf" => run_deaf_daemon(&role[0]),
            _ => run_contender(&role[0]),
        };
    }
    let name = unique_name("takeover");
    let _g = SegmentGuard(name.clone());
    let children = Children::default();
    let _w = watchdog(Duration::from_secs(120), &children, &[&name]);
    let test = "a_takeover_race_names_the_winner";
    let (dead, out) = children.spawn_piped(test, &[&name, "deaf"]);
    wait_ready(out);
    children.kill(dead);
    let contenders: Vec<_> = (0..8)
        .map(|_| {
            let (i, input, out) = children.spawn_talking(test, &[&name, "contender"]);
            let mut lines = BufReader::new(out).lines().map_while(Result::ok);
            assert!(lines.any(|l| l.trim() == "ready"), "a contender did not start");
            (i, input, lines)
        })
        .collect();
    let mut inputs = Vec::new();
    let mut outputs = Vec::new();
    for (i, mut input, lines) in contenders {
        writeln!(input, "go").expect("go");
        inputs.push((i, input));
        outputs.push(lines);
    }
    let said: Vec<String> = outputs
        .iter_mut()
        .map(|lines| lines.find(|l| !l.trim().is_empty()).expect("an answer"))
        .collect();
    let winners: Vec<&String> = said.iter().filter(|s| s.starts_with("won ")).collect();
    assert_eq!(winners.len(), 1, "{said:?}");
    let winner = winners[0].trim_start_matches("won ");
    for s in &said {
        assert!(s.starts_with("won ") || s == &format!("lost {winner}"), "{said:?}");
    }
    drop(inputs); // the winner lets go
}

/// A creator that finds a dead daemon's segment being taken over (its lock
/// held, here by this test as a stuck winner would) waits for the winner to
/// show itself, and never answers with the dead daemon's pid.
#[test]
fn a_takeover_loser_never_names_the_dead_daemon() {
    if let Some(role) = child_role() {
        return run_deaf_daemon(&role[0]);
    }
    let name = unique_name("stuck");
    let _g = SegmentGuard(name.clone());
    let children = Children::default();
    let _w = watchdog(Duration::from_secs(120), &children, &[&name]);
    let (dead, out) = children.spawn_piped("a_takeover_loser_never_names_the_dead_daemon", &[&name]);
    wait_ready(out);
    let dead_pid = memlink_shm::inspect::segment(&name).expect("inspect").daemon.pid;
    children.kill(dead);
    let lock = memlink_shm::testkit::hold_daemon_lock(&name)
        .expect("open the dead segment")
        .expect("the dead daemon's lock is free");
    match Daemon::create(&name) {
        Err(memlink_shm::OpenError::AlreadyRunning { pid, .. }) => {
            assert_ne!(pid, dead_pid, "named the dead daemon");
            assert_eq!(pid, 0, "no winner showed itself: unknown");
        }
        other => panic!("{other:?}"),
    }
    drop(lock);
    // With the lock free, the name is taken over.
    let _daemon = Daemon::create(&name).expect("take the name over");
}
