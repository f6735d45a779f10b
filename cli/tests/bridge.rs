//! `memlink bridge` between real processes on one machine: a daemon, an
//! export and an import (two Zenoh peers on explicit endpoints, no
//! multicast), and clients of the imported segment. The failure tests
//! SIGKILL the importing bridge and the daemon; the refusal tests change
//! the daemon under an import; the mutual-TLS test makes its certificates;
//! the bad-link test puts the import in a network namespace joined by a
//! veth pair that `tc netem` makes lossy, late and out of order, then cuts
//! for 30 s and restores (root and netem only: elsewhere it says SKIPPED on
//! stderr, and under `MEMLINK_REQUIRE_NETNS=1` it fails instead).

#![cfg(feature = "bridge")]

mod support;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use memlink_bridge::{BridgeConfig, RemoteClient};
use memlink_shm::{Client, ClientReceiver, ClientSender, Daemon, Error, OpenError, Priority};
use support::*;

/// The lease the bridges run with here (a silent peer is gone after it).
const LEASE: Duration = Duration::from_secs(2);
/// A departure after a crash takes GRACE (0.5 s) plus Zenoh's notice; after
/// silence, the lease more. The bounds below add room for a loaded machine.
const CRASH_BOUND: Duration = Duration::from_secs(5);
const SILENCE_BOUND: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------

/// `daemon NAME [VERSION CLIENTS MAX_MESSAGE]`: echoes every message to
/// its sender on the same tier, answers `who` with the sender's id and
/// `bcast` with a broadcast, and prints `joined ID` / `left ID` as clients
/// come and go. By default protocol version 1, 8 clients, 8 MiB.
fn run_role(r: &[String]) {
    assert_eq!(r[0], "daemon");
    let mut builder = Daemon::builder(&r[1]).max_clients(8).size(8 << 20);
    if let [version, clients, max_message] = &r[2..] {
        builder = Daemon::builder(&r[1])
            .protocol_version(version.parse().unwrap())
            .max_clients(clients.parse().unwrap())
            .max_message_size(max_message.parse().unwrap());
    }
    let mut daemon = builder.create().expect("create");
    let stop = stop_when_stdin_closes();
    println!("ready");
    let mut known = Vec::new();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        match daemon.recv_timeout(Duration::from_millis(10)) {
            Ok(m) => {
                let sent = match m.payload() {
                    b"who" => daemon.send_to(m.client(), m.priority(), format!("{}", m.client()).as_bytes()),
                    b"bcast" => daemon.broadcast(Priority::High, b"to all"),
                    other => daemon.send_to(m.client(), m.priority(), other),
                };
                match sent {
                    Ok(()) | Err(Error::UnknownClient(_)) => {}
                    Err(e) => panic!("daemon send: {e}"),
                }
            }
            Err(Error::Timeout) => {}
            Err(e) => panic!("daemon recv: {e}"),
        }
        let now = daemon.control().clients();
        for id in now.iter().filter(|id| !known.contains(*id)) {
            println!("joined {id}");
        }
        for id in known.iter().filter(|id| !now.contains(*id)) {
            println!("left {id}");
        }
        known = now;
    }
}

macro_rules! child_role {
    () => {
        if let Some(r) = role() {
            run_role(&r);
            return;
        }
    };
}

/// A `memlink bridge` process, killed when dropped.
struct Bridge {
    child: Child,
    /// Its start line.
    said: String,
    /// The lines it logs (on stderr, echoed to the test's stderr too) and
    /// its status lines (on stdout).
    log: mpsc::Receiver<String>,
}

impl Bridge {
    /// Starts `memlink bridge ARGS` (under `prefix`, such as `ip netns exec
    /// NS`) and waits for it to say it is up.
    fn start(args: &[&str], prefix: &[&str]) -> Bridge {
        let memlink = assert_cmd::cargo::cargo_bin("memlink");
        let mut command = match prefix.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(&memlink);
                c
            }
            None => Command::new(&memlink),
        };
        let mut child = command
            .arg("bridge")
            .args(args)
            .env("RUST_LOG", std::env::var("MEMLINK_TEST_ZENOH_LOG").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start memlink bridge");
        let (tx, log) = mpsc::channel();
        let out = tx.clone();
        let errors = BufReader::new(child.stderr.take().unwrap()).lines();
        std::thread::spawn(move || {
            for line in errors.map_while(Result::ok) {
                eprintln!("[bridge] {line}");
                let _ = tx.send(line);
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let said = lines.next().and_then(Result::ok).unwrap_or_default();
        assert!(
            said.starts_with("memlink bridge: "),
            "memlink bridge {args:?} said {said:?}"
        );
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let _ = out.send(line);
            }
        });
        Bridge { child, said, log }
    }

    /// Waits (up to [`STEP`]) for a logged line that contains every one of
    /// `parts`; the line.
    fn logged(&self, parts: &[&str]) -> String {
        let deadline = Instant::now() + STEP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) if parts.iter().all(|p| line.contains(p)) => return line,
                Ok(_) => {}
                Err(e) => panic!("memlink bridge never logged a line with {parts:?}: {e}"),
            }
        }
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A daemon, its export on `listen`, and an import connecting to `connect`
/// as local segment `local` (under `prefix`).
struct Setup {
    daemon: Option<Role>,
    events: mpsc::Receiver<String>,
    export: Option<Bridge>,
    import: Option<Bridge>,
    name: String,
    local: String,
    connect: String,
    prefix: Vec<String>,
    lease: Duration,
    _removed: [Removed; 2],
}

impl Setup {
    /// The daemon (the role's `VERSION CLIENTS MAX_MESSAGE`, or its
    /// defaults), its export on `listen`, and an import connecting to
    /// `connect` (under `prefix`), both with `lease`.
    fn with_daemon(test: &str, listen: &str, connect: &str, prefix: &[&str], shape: &[&str], lease: Duration) -> Setup {
        let name = unique("bridged");
        let local = unique("imported");
        let args: Vec<&str> = ["daemon", name.as_str()]
            .into_iter()
            .chain(shape.iter().copied())
            .collect();
        let (daemon, events) = Role::watched(test, &args, &[]);
        let lease_ms = lease.as_millis().to_string();
        let export = Bridge::start(&["export", &name, "--listen", listen, "--lease", &lease_ms], &[]);
        let mut setup = Setup {
            daemon: Some(daemon),
            events,
            export: Some(export),
            import: None,
            name: name.clone(),
            local: local.clone(),
            connect: connect.to_owned(),
            prefix: prefix.iter().map(|s| s.to_string()).collect(),
            lease,
            _removed: [Removed(name), Removed(local)],
        };
        setup.start_import();
        setup
    }

    /// A daemon again (after the last was killed), on the same name.
    fn restart_daemon(&mut self, test: &str) {
        self.restart_daemon_with(test, &[]);
    }

    /// [`Setup::restart_daemon`] with the daemon role's `VERSION CLIENTS
    /// MAX_MESSAGE`.
    fn restart_daemon_with(&mut self, test: &str, shape: &[&str]) {
        let args: Vec<&str> = ["daemon", self.name.as_str()]
            .into_iter()
            .chain(shape.iter().copied())
            .collect();
        let (daemon, events) = Role::watched(test, &args, &[]);
        self.daemon = Some(daemon);
        self.events = events;
    }

    /// Waits until the import has made its local segment (a daemon of it
    /// runs).
    fn imported(&self) {
        let deadline = Instant::now() + STEP;
        while !memlink_shm::inspect::segment(&self.local).is_ok_and(|i| i.daemon.alive) {
            assert!(Instant::now() < deadline, "the import never made {}", self.local);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn export(&self) -> &Bridge {
        self.export.as_ref().expect("the export runs")
    }

    fn import(&self) -> &Bridge {
        self.import.as_ref().expect("the import runs")
    }

    /// [`Setup::with_daemon`] with both bridges on a free port of 127.0.0.1.
    fn loopback(test: &str) -> Setup {
        Setup::loopback_with(test, &[])
    }

    /// [`Setup::loopback`] with the daemon role's `VERSION CLIENTS
    /// MAX_MESSAGE`.
    fn loopback_with(test: &str, shape: &[&str]) -> Setup {
        let endpoint = format!("tcp/127.0.0.1:{}", free_port());
        Setup::with_daemon(test, &endpoint, &endpoint, &[], shape, LEASE)
    }

    fn start_import(&mut self) {
        let lease = self.lease.as_millis().to_string();
        let prefix: Vec<&str> = self.prefix.iter().map(String::as_str).collect();
        let args = [
            "import",
            &self.name,
            "--connect",
            &self.connect,
            "--as",
            &self.local,
            "--lease",
            &lease,
        ];
        self.import = Some(Bridge::start(&args, &prefix));
    }

    /// A client of the imported segment, once the import has made it and
    /// the daemon answers through it.
    fn client(&self) -> Client {
        let deadline = Instant::now() + STEP;
        loop {
            if let Ok(mut client) = Client::connect(&self.local) {
                if client.send(Priority::Critical, b"who").is_ok()
                    && client.recv_timeout(Duration::from_secs(2)).is_ok()
                {
                    return client;
                }
            }
            assert!(Instant::now() < deadline, "the imported segment never answered");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The next `joined`/`left` line the daemon prints, within `within`.
    fn event(&self, within: Duration) -> String {
        self.events
            .recv_timeout(within)
            .unwrap_or_else(|e| panic!("no daemon event within {within:?}: {e}"))
    }

    /// The id of the next client that joins the daemon.
    fn joined(&self) -> String {
        let line = self.event(STEP);
        line.strip_prefix("joined ")
            .unwrap_or_else(|| panic!("expected a join, got {line:?}"))
            .to_owned()
    }
}

/// Waits until `id` leaves the daemon; how long that took.
fn departure(setup: &Setup, id: &str, bound: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let left = Instant::now().duration_since(start);
        let line = setup.event(bound.saturating_sub(left).max(Duration::from_millis(1)));
        if line == format!("left {id}") {
            return start.elapsed();
        }
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

/// 100,000 checked messages in all three tiers, from a client of the
/// imported segment to the remote daemon and back: complete, and in order
/// within each tier.
#[test]
fn a_client_of_the_imported_segment_talks_to_the_daemon_both_ways() {
    child_role!();
    let _w = watchdog();
    let setup = Setup::loopback("a_client_of_the_imported_segment_talks_to_the_daemon_both_ways");
    // The export says what it serves: the daemon below has version 1 and 8
    // slots in 8 MiB.
    let said = &setup.export.as_ref().unwrap().said;
    for part in [
        setup.name.as_str(),
        "protocol version 1",
        "8 client slots",
        "messages up to ",
        "a segment of 8388608 bytes",
    ] {
        assert!(said.contains(part), "the export's start line {said:?} lacks {part:?}");
    }
    let client = setup.client();
    let id = setup.joined();
    let (tx, rx, took) = exchange(client, 100_000, Duration::ZERO);
    println!("100,000 checked messages each way in {took:?}");

    // Leaving the imported segment is a departure at the daemon.
    drop((tx, rx));
    let took = departure(&setup, &id, CRASH_BOUND);
    println!("a client of the import that left was a departure after {took:?}");
}

/// Sends `n` checked messages in all three tiers from `client` to the
/// echoing daemon, and checks every echo: whole, in order within its tier,
/// none lost, none duplicated (nothing more comes within `quiet` after the
/// last). The client's halves, and how long it took.
fn exchange(client: Client, n: u64, quiet: Duration) -> (ClientSender, ClientReceiver, Duration) {
    let start = Instant::now();
    let (mut tx, mut rx) = client.split();
    let sender = std::thread::spawn(move || {
        let mut sent = [0u64; 3];
        for i in 0..n {
            let tier = tier_of(i);
            tx.send(tier, &record(tier, sent[tier.index()]))
                .expect("send through the bridge");
            sent[tier.index()] += 1;
        }
        (tx, sent)
    });
    let mut next = [0u64; 3];
    for _ in 0..n {
        let m = rx.recv_timeout(STEP).expect("an echo through the bridge");
        let tier = m.priority();
        assert_eq!(
            m.payload(),
            record(tier, next[tier.index()]),
            "tier {tier} out of order, damaged or duplicated"
        );
        next[tier.index()] += 1;
    }
    let (tx, sent) = sender.join().unwrap();
    let took = start.elapsed();
    assert_eq!(next, sent);
    assert!(
        sent.iter().all(|&k| k >= n / 10),
        "every tier carried a share: {sent:?}"
    );
    let after = rx.recv_timeout(quiet);
    assert!(
        matches!(after, Err(Error::Timeout | Error::Empty)),
        "a message after the last: {after:?}"
    );
    (tx, rx, took)
}

/// Sends `payload` on `tier` and waits for the daemon's echo of it.
fn echo(client: &mut Client, tier: Priority, payload: &[u8]) {
    client.send(tier, payload).expect("send through the bridge");
    let got = client.recv_timeout(STEP).expect("the echo through the bridge");
    assert_eq!((got.priority(), got.payload()), (tier, payload));
}

/// The tier of message `i` of the stream (a mix in which each tier comes
/// both in runs and alone).
fn tier_of(i: u64) -> Priority {
    Priority::ALL[((i * 7 + i / 5) % 3) as usize]
}

fn record(tier: Priority, seq: u64) -> Vec<u8> {
    let len = 9 + (seq % 120) as usize;
    let mut out = vec![tier.index() as u8];
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend((0..len - 9).map(|k| (seq as u8).wrapping_add(k as u8)));
    out
}

/// Two clients of the imported segment and a `RemoteClient` are three
/// clients of the daemon: distinct ids, replies to each alone, broadcasts to
/// all.
#[test]
fn remote_clients_are_told_apart_and_broadcasts_reach_them() {
    child_role!();
    let _w = watchdog();
    let setup = Setup::loopback("remote_clients_are_told_apart_and_broadcasts_reach_them");
    let mut local = setup.client();
    let local_id = setup.joined();
    let config = BridgeConfig::default().connect(&setup.connect).lease(LEASE);
    let mut remote = RemoteClient::connect(&setup.name, config).expect("a remote client");
    let remote_id = setup.joined();
    // A second client of the same import is a third client of the daemon.
    let mut neighbour = setup.client();
    let neighbour_id = setup.joined();
    assert!(local_id != remote_id && local_id != neighbour_id && remote_id != neighbour_id);

    remote.send(Priority::Critical, b"who").unwrap();
    local.send(Priority::Critical, b"who").unwrap();
    neighbour.send(Priority::Low, b"who").unwrap();
    assert_eq!(remote.recv_timeout(STEP).unwrap().payload(), remote_id.as_bytes());
    assert_eq!(local.recv_timeout(STEP).unwrap().payload(), local_id.as_bytes());
    assert_eq!(neighbour.recv_timeout(STEP).unwrap().payload(), neighbour_id.as_bytes());

    local.send(Priority::High, b"bcast").unwrap();
    for m in [
        local.recv_timeout(STEP).unwrap(),
        remote.recv_timeout(STEP).unwrap(),
        neighbour.recv_timeout(STEP).unwrap(),
    ] {
        assert_eq!((m.priority(), m.payload()), (Priority::High, &b"to all"[..]));
    }
    // Each got its own replies only.
    assert!(matches!(local.try_recv(), Err(Error::Empty)));
    assert!(matches!(remote.try_recv(), Err(Error::Empty)));
    assert!(matches!(neighbour.try_recv(), Err(Error::Empty)));

    // A remote client that leaves is a departure at the daemon.
    drop(remote);
    let took = departure(&setup, &remote_id, CRASH_BOUND);
    println!("a RemoteClient that left was a departure after {took:?}");
}

/// SIGKILL of the importing bridge is a departure of its clients at the
/// daemon; SIGKILL of the daemon is a disconnect at the remote client, and
/// the imported segment comes back with a new daemon; SIGKILL of the export
/// is a disconnect too.
#[test]
fn killed_bridges_and_daemons_are_departures_and_disconnects() {
    child_role!();
    let _w = watchdog();
    const TEST: &str = "killed_bridges_and_daemons_are_departures_and_disconnects";
    let mut setup = Setup::loopback(TEST);
    let mut client = setup.client();
    let id = setup.joined();
    setup.import.take().unwrap().kill();
    let took = departure(&setup, &id, CRASH_BOUND);
    println!("SIGKILL of the import: departure at the daemon after {took:?}");
    assert!(matches!(client.recv_timeout(STEP), Err(Error::Disconnected)));

    setup.start_import();
    let mut client = setup.client();
    setup.joined();
    let killed = Instant::now();
    setup.daemon.take().unwrap().kill();
    let got = client.recv_timeout(STEP);
    assert!(matches!(got, Err(Error::Disconnected)), "{got:?}");
    println!(
        "SIGKILL of the daemon: disconnect at the remote client after {:?}",
        killed.elapsed()
    );
    assert!(killed.elapsed() < CRASH_BOUND, "took {:?}", killed.elapsed());

    // A new daemon: the import makes its segment again.
    setup.restart_daemon(TEST);
    let mut client = setup.client();
    setup.joined();
    echo(&mut client, Priority::High, b"again");

    let killed = Instant::now();
    setup.export.take().unwrap().kill();
    let got = client.recv_timeout(STEP);
    assert!(matches!(got, Err(Error::Disconnected)), "{got:?}");
    println!(
        "SIGKILL of the export: disconnect at the remote client after {:?}",
        killed.elapsed()
    );
    assert!(killed.elapsed() < CRASH_BOUND, "took {:?}", killed.elapsed());
}

/// How long the partition lasts.
const PARTITION: Duration = Duration::from_secs(30);

/// The import in a network namespace whose veth pair delays (20 ms +- 10
/// ms), reorders and loses (5 %) packets both ways (`tc netem`): 100,000
/// checked messages in all tiers still go both ways whole, in order per
/// tier, none duplicated. Then the link is cut for 30 s: within the lease
/// (plus room) the client departs at the daemon and the local client is
/// disconnected, and the import has no segment while it lasts; once the
/// link is back, a new client works over the same bad link.
#[test]
fn a_bad_link_carries_everything_and_a_partition_heals() {
    child_role!();
    const TEST: &str = "a_bad_link_carries_everything_and_a_partition_heals";
    let Some(net) = Netns::create() else {
        skip_or_fail(
            TEST,
            "creating a network namespace needs root (CAP_NET_ADMIN) and iproute2",
        );
        return;
    };
    let how = match net.impair() {
        Ok(how) => how,
        Err(why) => {
            skip_or_fail(TEST, &why);
            return;
        }
    };
    let _w = watchdog_for(Duration::from_secs(300));
    let start = Instant::now();
    let port = free_port();
    let listen = format!("tcp/{}:{port}", net.host_ip);
    let prefix = ["ip", "netns", "exec", net.ns.as_str()];
    // A longer lease than elsewhere: a keep-alive may wait behind
    // retransmissions on this link.
    let lease = Duration::from_secs(4);
    let setup = Setup::with_daemon(TEST, &listen, &listen, &prefix, &[], lease);
    let client = setup.client();
    let id = setup.joined();
    let (tx, rx, took) = exchange(client, 100_000, Duration::from_secs(1));
    println!("bad link ({how}): 100,000 checked messages each way in {took:?}");
    let mut client = (tx, rx);

    net.link(false);
    let cut = Instant::now();
    let bound = lease + SILENCE_BOUND;
    let took = departure(&setup, &id, bound);
    println!("partition: departure at the daemon after {took:?} (lease {lease:?})");
    assert!(
        took >= lease / 2,
        "a departure before the lease ran out ({took:?}): not a partition"
    );
    let got = client.1.recv_timeout(bound);
    assert!(matches!(got, Err(Error::Disconnected)), "{got:?}");
    println!("partition: disconnect at the remote client after {:?}", cut.elapsed());
    assert!(
        matches!(client.0.send(Priority::High, b"cut"), Err(Error::Disconnected)),
        "a send during the partition"
    );
    // The cut lasts: no export is reachable, so the import serves nothing.
    while cut.elapsed() < PARTITION {
        let served =
            memlink_shm::inspect::segment(&setup.local).is_ok_and(|i| i.daemon.alive && !i.daemon.shutting_down);
        assert!(!served, "the import made its segment during the partition");
        std::thread::sleep(Duration::from_millis(100));
    }

    net.link(true);
    let healed = Instant::now();
    let client = setup.client();
    setup.joined();
    println!(
        "partition of {PARTITION:?}: a new client works {:?} after the link is back",
        healed.elapsed()
    );
    let (_tx, _rx, took) = exchange(client, 10_000, Duration::from_secs(1));
    println!("after the partition: 10,000 checked messages each way in {took:?}");
    println!("{TEST}: {:?} in all", start.elapsed());
}

/// Says loudly that `test` did not run, and why (on the test's stderr,
/// which the harness does not capture); fails instead under
/// `MEMLINK_REQUIRE_NETNS=1`.
fn skip_or_fail(test: &str, why: &str) {
    assert!(
        std::env::var_os("MEMLINK_REQUIRE_NETNS").is_none(),
        "MEMLINK_REQUIRE_NETNS is set, but {test} cannot run: {why}"
    );
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "\n*** SKIPPED {test}: {why} ***\n");
}

// ---------------------------------------------------------------------------
// Mutual TLS
// ---------------------------------------------------------------------------

/// Certificates made for one test (in a scratch directory, removed after
/// it): a CA and the export's and the import's certificates it signed
/// (for 127.0.0.1), and another CA with a certificate of its own.
struct Pki {
    dir: Scratch,
}

impl Pki {
    fn new() -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let pki = Pki {
            dir: Scratch::new("tls"),
        };
        for ca in ["ca", "rogue-ca"] {
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            let key = KeyPair::generate().unwrap();
            let cert = params.self_signed(&key).unwrap();
            std::fs::write(pki.file(&format!("{ca}.pem")), cert.pem()).unwrap();
            let issuer = Issuer::new(params, key);
            let signed: &[&str] = if ca == "ca" { &["export", "import"] } else { &["rogue"] };
            for name in signed {
                let key = KeyPair::generate().unwrap();
                let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
                    .unwrap()
                    .signed_by(&key, &issuer)
                    .unwrap();
                std::fs::write(pki.file(&format!("{name}.pem")), cert.pem()).unwrap();
                std::fs::write(pki.file(&format!("{name}.key")), key.serialize_pem()).unwrap();
            }
        }
        pki
    }

    fn file(&self, name: &str) -> String {
        self.dir.at(name)
    }

    /// The TLS flags of a bridge trusting `ca`, with the certificate and
    /// key of `identity` if any.
    fn flags(&self, ca: &str, identity: Option<&str>) -> Vec<String> {
        let mut flags = vec!["--tls-ca".to_owned(), self.file(&format!("{ca}.pem"))];
        if let Some(name) = identity {
            flags.extend([
                "--tls-cert".to_owned(),
                self.file(&format!("{name}.pem")),
                "--tls-key".to_owned(),
                self.file(&format!("{name}.key")),
            ]);
        }
        flags
    }
}

/// An import with the CA's certificate is served; one without a
/// certificate, and one whose certificate another CA signed, are refused
/// at the TLS handshake: they never make their segment, and nothing of
/// theirs is attached at the daemon.
#[test]
fn mutual_tls_admits_the_right_certificate_and_refuses_the_others() {
    child_role!();
    let _w = watchdog();
    let pki = Pki::new();
    let name = unique("tls");
    let (no_cert, rogue, good) = (unique("no-cert"), unique("rogue"), unique("good"));
    let _removed = [
        Removed(name.clone()),
        Removed(no_cert.clone()),
        Removed(rogue.clone()),
        Removed(good.clone()),
    ];
    let (_daemon, events) = Role::watched(
        "mutual_tls_admits_the_right_certificate_and_refuses_the_others",
        &["daemon", &name],
        &[],
    );
    let endpoint = format!("tls/127.0.0.1:{}", free_port());
    let lease = LEASE.as_millis().to_string();
    let bridge = |side: &str, segment: &str, flags: Vec<String>| {
        let (how, local) = match side {
            "export" => ("--listen", None),
            _ => ("--connect", Some(segment)),
        };
        let mut args = vec![side, name.as_str(), how, endpoint.as_str(), "--lease", lease.as_str()];
        if let Some(local) = local {
            args.extend(["--as", local]);
        }
        args.extend(flags.iter().map(String::as_str));
        Bridge::start(&args, &[])
    };
    let export = bridge("export", &name, pki.flags("ca", Some("export")));
    // The refused ones first, so they have tried for longer than the good
    // one took.
    let _no_cert = bridge("import", &no_cert, pki.flags("ca", None));
    let _rogue = bridge("import", &rogue, pki.flags("rogue-ca", Some("rogue")));
    let _good = bridge("import", &good, pki.flags("ca", Some("import")));

    let deadline = Instant::now() + STEP;
    let mut client = loop {
        if let Ok(mut client) = Client::connect(&good) {
            if client.send(Priority::High, b"who").is_ok() && client.recv_timeout(Duration::from_secs(2)).is_ok() {
                break client;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the import with the CA's certificate was never served"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    echo(&mut client, Priority::Low, b"over tls");
    let joined = events.recv_timeout(STEP).expect("the good import's client joined");
    assert!(joined.starts_with("joined "), "{joined}");

    // A RemoteClient without a certificate finds no export in its 10 s
    // (the handshake fails, again and again), while the refused imports
    // keep trying.
    let config = BridgeConfig::default().connect(&endpoint).tls_ca(pki.file("ca.pem"));
    let got = RemoteClient::connect(&name, config);
    assert!(matches!(got, Err(memlink_bridge::BridgeError::NoExport(_))), "{got:?}");

    for refused in [&no_cert, &rogue] {
        let got = memlink_shm::inspect::segment(refused);
        assert!(
            matches!(got, Err(OpenError::NotFound { .. })),
            "the import {refused} was served: {got:?}"
        );
    }
    // (Zenoh's TLS link may drop and come back under load, zenoh#2557:
    // the good client's departure is not a client reaching the daemon.)
    let joined: Vec<String> = events.try_iter().filter(|e| e.starts_with("joined")).collect();
    assert!(joined.is_empty(), "another client reached the daemon: {joined:?}");
    let attached = std::iter::from_fn(|| export.log.try_recv().ok())
        .filter(|line| line.contains("attached client"))
        .count();
    assert_eq!(attached, 1, "the export attached another client than the good import's");
}

// ---------------------------------------------------------------------------
// Refusals: accepted means delivered or refused
// ---------------------------------------------------------------------------
//
// Each test makes the import's segment while one daemon runs, then changes
// the daemon under it (killed, or replaced by one of another shape) while
// the import has no client, so the import's segment is stale; a client of
// it is then refused at the export, and must see it.

/// Connects a client of protocol `version` to the imported segment, sends
/// `payload` and waits for the answer: the import refuses it, so its
/// receive says `Disconnected`, and so does a send after it.
fn refused_client(setup: &Setup, version: u32, payload: &[u8]) {
    let deadline = Instant::now() + STEP;
    let mut client = loop {
        match Client::builder(&setup.local).protocol_version(version).connect() {
            Ok(client) => break client,
            Err(e) => assert!(Instant::now() < deadline, "no client of the imported segment: {e}"),
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Taken by the import (then refused at the export), or refused at once.
    let sent = client.send(Priority::High, payload);
    assert!(matches!(sent, Ok(()) | Err(Error::Disconnected)), "{sent:?}");
    let got = client.recv_timeout(STEP);
    assert!(matches!(got, Err(Error::Disconnected)), "a refused client got {got:?}");
    let again = client.send(Priority::High, b"again");
    assert!(
        matches!(again, Err(Error::Disconnected)),
        "a send after the refusal: {again:?}"
    );
}

/// Waits until connecting (as `version`) to the imported segment gives
/// what `ok` accepts; what it gave.
fn reconnect_until(
    setup: &Setup,
    version: u32,
    ok: impl Fn(&Result<Client, OpenError>) -> bool,
) -> Result<Client, OpenError> {
    let deadline = Instant::now() + STEP;
    loop {
        let got = Client::builder(&setup.local).protocol_version(version).connect();
        if ok(&got) {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "connecting to the imported segment kept giving {got:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An import whose segment was made for a daemon of shape `before` (the
/// role's `VERSION CLIENTS MAX_MESSAGE`), which is then killed and, if
/// `after` says one, replaced by a daemon of that shape: the import, which
/// has no client, still serves its stale segment.
fn stale_import(test: &str, before: &[&str], after: Option<&[&str]>) -> Setup {
    let mut setup = Setup::loopback_with(test, before);
    setup.imported();
    setup.daemon.take().unwrap().kill();
    if let Some(after) = after {
        setup.restart_daemon_with(test, after);
    }
    setup
}

#[test]
fn a_daemon_of_another_protocol_version_refuses_the_import_s_client() {
    child_role!();
    let _w = watchdog();
    const TEST: &str = "a_daemon_of_another_protocol_version_refuses_the_import_s_client";
    let setup = stale_import(TEST, &["1", "8", "4096"], Some(&["3", "8", "4096"]));
    refused_client(&setup, 1, b"hello");
    setup
        .export()
        .logged(&["refused to attach client", "protocol version 3, the client 1"]);
    setup.import().logged(&[
        "the export refused client",
        "protocol version 3, the client 1",
        "Ending",
    ]);
    // Made again with version 3: a client of version 1 is told so here.
    let got = reconnect_until(&setup, 1, |r| matches!(r, Err(OpenError::ProtocolMismatch { .. })));
    assert!(
        matches!(got, Err(OpenError::ProtocolMismatch { expected: 1, found: 3 })),
        "{got:?}"
    );
    let mut client = reconnect_until(&setup, 3, Result::is_ok).unwrap();
    echo(&mut client, Priority::High, b"v3");
}

#[test]
fn a_full_client_table_refuses_the_import_s_client() {
    child_role!();
    let _w = watchdog();
    let setup = Setup::loopback_with("a_full_client_table_refuses_the_import_s_client", &["1", "1", "4096"]);
    // The daemon's one slot, taken on its own host.
    let _direct = Client::connect(&setup.name).expect("the daemon's one slot");
    setup.joined();
    setup.imported();
    refused_client(&setup, 1, b"hello");
    let line = setup.export().logged(&[
        "refused to attach client",
        "all 1 client slots",
        "1 by connected clients",
    ]);
    println!("export: {line}");
    let line = setup
        .import()
        .logged(&["the export refused client", "all 1 client slots", "Ending"]);
    println!("import: {line}");
    // Nothing was attached: no other client joined the daemon.
    assert!(setup.events.try_recv().is_err(), "a refused client reached the daemon");
}

#[test]
fn a_daemon_gone_refuses_the_import_s_client() {
    child_role!();
    let _w = watchdog();
    const TEST: &str = "a_daemon_gone_refuses_the_import_s_client";
    let mut setup = stale_import(TEST, &[], None);
    refused_client(&setup, 1, b"hello");
    setup
        .export()
        .logged(&["refused to attach client", "no daemon runs on segment", &setup.name]);
    setup
        .import()
        .logged(&["the export refused client", "no daemon runs on segment", "Ending"]);
    // The imported segment is gone while no daemon runs, and back with one.
    let got = reconnect_until(&setup, 1, |r| matches!(r, Err(OpenError::NotFound { .. })));
    assert!(got.is_err());
    setup.restart_daemon(TEST);
    let mut client = setup.client();
    echo(&mut client, Priority::Low, b"back");
}

#[test]
fn a_message_over_the_daemon_s_limit_refuses_the_import_s_client() {
    child_role!();
    let _w = watchdog();
    const TEST: &str = "a_message_over_the_daemon_s_limit_refuses_the_import_s_client";
    let setup = stale_import(TEST, &["1", "8", "4096"], Some(&["1", "8", "1024"]));
    refused_client(&setup, 1, &[7; 2000]);
    let line = setup.export().logged(&[
        "refused client",
        "a message of 2000 bytes exceeds the daemon's maximum of 1024 bytes",
        "0 of its messages delivered, 1 refused",
    ]);
    println!("export: {line}");
    let line = setup.import().logged(&[
        "the export refused client",
        "2000 bytes",
        "1 taken here, 0 delivered, 1 refused by the export",
        "Ending",
    ]);
    println!("import: {line}");
    // Made again with the daemon's limit: the client is told at once.
    let mut client = reconnect_until(&setup, 1, |r| {
        r.as_ref().is_ok_and(|c| c.control().max_message_size() == 1024)
    })
    .unwrap();
    let got = client.send(Priority::High, &[7; 2000]);
    assert!(
        matches!(got, Err(Error::MessageTooLarge { len: 2000, max: 1024 })),
        "{got:?}"
    );
}

/// A network namespace joined to this one by a veth pair; removed on drop.
struct Netns {
    ns: String,
    host_if: String,
    ns_if: String,
    host_ip: String,
}

impl Netns {
    fn create() -> Option<Netns> {
        let id = std::process::id() % 100_000;
        let net = Netns {
            ns: format!("mlb{id}"),
            host_if: format!("mlbh{id}"),
            ns_if: format!("mlbn{id}"),
            host_ip: format!("10.213.{}.1", id % 250),
        };
        let ns_if = net.ns_if.clone();
        let ns_ip = format!("10.213.{}.2/30", id % 250);
        let ns = net.ns.as_str();
        let steps: [&[&str]; 7] = [
            &["netns", "add", ns],
            &["link", "add", &net.host_if, "type", "veth", "peer", "name", &ns_if],
            &["link", "set", &ns_if, "netns", ns],
            &["addr", "add", &format!("{}/30", net.host_ip), "dev", &net.host_if],
            &["link", "set", &net.host_if, "up"],
            &["-n", ns, "addr", "add", &ns_ip, "dev", &ns_if],
            &["-n", ns, "link", "set", &ns_if, "up"],
        ];
        for step in steps {
            if !ip(step) {
                return None; // `net` drops and removes what was made
            }
        }
        ip(&["-n", ns, "link", "set", "lo", "up"]);
        Some(net)
    }

    /// Makes the pair a bad link both ways: `tc netem` on each end, 5 %
    /// loss, 20 ms +- 10 ms delay, a quarter of the packets reordered; what
    /// was done, or why it cannot be.
    ///
    /// Where the kernel has no netem, `MEMLINK_TEST_LOSS=iptables` (for a
    /// developer's machine, not CI) drops 5 % of the packets each way with
    /// iptables in the namespace instead: loss only, said so in the output.
    fn impair(&self) -> Result<&'static str, String> {
        let netem = [
            "root", "netem", "loss", "5%", "delay", "20ms", "10ms", "reorder", "25%", "50%",
        ];
        let host = ["qdisc", "add", "dev", self.host_if.as_str()];
        let ns = ["-n", self.ns.as_str(), "qdisc", "add", "dev", self.ns_if.as_str()];
        if run("tc", &[&host[..], &netem].concat()) && run("tc", &[&ns[..], &netem].concat()) {
            return Ok("tc netem on both ends: 5 % loss, 20 ms +- 10 ms delay, 25 % reordered");
        }
        if std::env::var("MEMLINK_TEST_LOSS").as_deref() == Ok("iptables") {
            let drop = [
                "-m",
                "statistic",
                "--mode",
                "random",
                "--probability",
                "0.05",
                "-j",
                "DROP",
            ];
            let exec = ["netns", "exec", self.ns.as_str(), "iptables"];
            let inbound = [&exec[..], &["-A", "INPUT", "-i", self.ns_if.as_str()], &drop].concat();
            let outbound = [&exec[..], &["-A", "OUTPUT", "-o", self.ns_if.as_str()], &drop].concat();
            if ip(&inbound) && ip(&outbound) {
                return Ok("NO netem here: iptables drops 5 % each way; delay and reordering NOT tested");
            }
        }
        Err(
            "tc netem is unavailable (the kernel lacks sch_netem, or tc is missing): \
             the bad-link test needs it"
                .to_owned(),
        )
    }

    /// Brings the host's end of the pair up or down (down: packets stop,
    /// no connection is closed).
    fn link(&self, up: bool) {
        assert!(ip(&["link", "set", &self.host_if, if up { "up" } else { "down" }]));
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        ip(&["link", "del", &self.host_if]);
        ip(&["netns", "del", &self.ns]);
    }
}

fn ip(args: &[&str]) -> bool {
    run("ip", args)
}

fn run(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
