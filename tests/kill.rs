//! Kill tests: SIGKILL real client and daemon processes at random points of
//! checksummed streams, and check what survives.
//!
//! - A killed client: every message it finished writing is delivered, none is
//!   torn or duplicated, its slot is reclaimed, a survivor client streaming
//!   alongside is unaffected, and the next client takes the slot.
//! - A killed daemon: the client reads every echo already sent (all intact),
//!   then gets `Disconnected`; a new daemon takes the name over and the
//!   client connects to it.
//!
//! Iterations: `MEMLINK_KILL_ITERATIONS` (default 100 client kills and a
//! third as many daemon kills); `MEMLINK_KILL_SEED` repeats a run.
// Exercises the 0.1.3 layer, including its deprecated 0.2 additions.
#![allow(deprecated)]

mod support;

use std::io::{BufRead, BufReader};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use memlink_shm::priority::Priority;
use memlink_shm::testkit::SharedPage;
use memlink_shm::transport::{NrelayShmTransport, ShmError, ShmTransport};
use rand::{Rng, SeedableRng};
use support::checked::{decode, encode, shape, TierOrder};
use support::{child_role, child_watchdog, unique_name, watchdog, Children, SegmentGuard};

const STEP: Duration = Duration::from_secs(30);
const SURVIVOR: u32 = 1_000_000;

fn iterations() -> usize {
    std::env::var("MEMLINK_KILL_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
}

fn rng() -> (rand::rngs::StdRng, u64) {
    let seed = std::env::var("MEMLINK_KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    (rand::rngs::StdRng::seed_from_u64(seed), seed)
}

/// One 64-bit word in a shared page of its own: where a victim records how
/// many messages it has finished writing.
struct Side(SharedPage);

impl Side {
    fn create(name: &str) -> Side {
        Side(SharedPage::create(name).unwrap())
    }
    fn open(name: &str) -> Side {
        Side(SharedPage::open(name).unwrap())
    }
    fn word(&self) -> &AtomicU64 {
        self.0.word64(0)
    }
}

/// Streams checked messages tagged `tag` until killed, recording in `side`
/// (if any) how many it has finished writing. The survivor (no side) stops
/// when the daemon says so and reports its count.
fn run_streamer(name: &str, tag: u32, side: Option<&str>) {
    child_watchdog(Duration::from_secs(600));
    let side = side.map(Side::open);
    let client = NrelayShmTransport::connect(name, 1).expect("connect");
    let mut next_tier = [0u64; 3];
    let mut seq = 0u64;
    let mut buf = vec![0u8; 4096];
    loop {
        let (priority, len) = shape(tag, seq);
        let tier_seq = next_tier[priority.index()];
        encode(&mut buf[..len], tag, seq, tier_seq);
        match client.write_timeout(priority, &buf[..len], Some(STEP)) {
            Ok(()) => {
                next_tier[priority.index()] += 1;
                seq += 1;
                if let Some(s) = &side {
                    s.word().store(seq, Ordering::Release);
                }
                if seq % 32 == 0 {
                    client.signal();
                }
            }
            Err(e) => panic!("streamer {tag}: {e}"),
        }
        if side.is_none() && seq % 64 == 0 {
            if let Ok(Some(true)) = client.read_with(|p, b| p == Priority::Critical && b == b"stop") {
                client
                    .send(Priority::Critical, format!("done {seq}").as_bytes())
                    .unwrap();
                return;
            }
        }
    }
}

/// Per-sender verification on the daemon side.
#[derive(Default)]
struct Received {
    order: TierOrder,
    count: u64,
    max_seq: Option<u64>,
}

#[test]
fn kill_clients_at_random_points() {
    if let Some(role) = child_role() {
        let side = role.get(2).map(String::as_str);
        return run_streamer(&role[0], role[1].parse().unwrap(), side);
    }
    let iterations = iterations();
    let (mut rng, seed) = rng();
    let name = unique_name("killc");
    let side_name = unique_name("killc-side");
    let (_g1, _g2) = (SegmentGuard(name.clone()), SegmentGuard(side_name.clone()));
    let children = Children::default();
    let _w = watchdog(Duration::from_secs(900), &children, &[&name, &side_name]);
    // Small rings, so that wraps and full rings happen all the time.
    let daemon = NrelayShmTransport::builder(&name)
        .size(256 << 10)
        .max_clients(2)
        .create()
        .unwrap();
    let side = Side::create(&side_name);
    let survivor = children.spawn("kill_clients_at_random_points", &[&name, &SURVIVOR.to_string()]);

    let mut survivor_rx = Received::default();
    let mut survivor_id = None;
    let mut verified = 0u64;
    let mut slowest_reclaim = Duration::ZERO;
    let read_one = |daemon: &NrelayShmTransport,
                    survivor_rx: &mut Received,
                    victim_rx: &mut Received,
                    survivor_id: &mut Option<_>|
     -> Option<u64> {
        let got = daemon
            .read_from_with(|from, p, b| -> Result<Option<u64>, String> {
                if p == Priority::Critical && b.starts_with(b"done ") {
                    // The survivor finished and says how many it sent.
                    return Ok(std::str::from_utf8(&b[5..]).ok().and_then(|n| n.parse().ok()));
                }
                let (tag, seq, tier_seq) = decode(p, b)?;
                let rx = if tag == SURVIVOR {
                    *survivor_id = Some(from);
                    &mut *survivor_rx
                } else {
                    &mut *victim_rx
                };
                rx.order.check(p, tier_seq)?;
                rx.count += 1;
                rx.max_seq = rx.max_seq.max(Some(seq));
                Ok(None)
            })
            .expect("daemon read");
        match got {
            Some(r) => r.expect("verification"),
            None => {
                daemon.wait(Some(Duration::from_millis(20))).ok();
                None
            }
        }
    };

    for it in 0..iterations {
        let tag = it as u32;
        side.word().store(0, Ordering::Release);
        let victim = children.spawn("kill_clients_at_random_points", &[&name, &tag.to_string(), &side_name]);
        let kill_after = rng.random_range(1..3000u64);
        let mut victim_rx = Received::default();
        let until = Instant::now() + STEP;
        while victim_rx.count < kill_after && Instant::now() < until {
            read_one(&daemon, &mut survivor_rx, &mut victim_rx, &mut survivor_id);
        }
        assert!(
            victim_rx.count >= kill_after,
            "victim {it} stalled at {} messages",
            victim_rx.count
        );
        children.kill(victim);
        let killed_at = Instant::now();
        let committed = side.word().load(Ordering::Acquire);
        // The daemon notices the death by itself, reads what the victim
        // published, then frees its slot: keep serving until the only busy
        // slot is the survivor's.
        let recovered_before = it as u32;
        let busy_slots = || memlink_shm::inspect::segment(&name).expect("inspect").clients.len();
        while daemon.stats().recovered_clients <= recovered_before {
            read_one(&daemon, &mut survivor_rx, &mut victim_rx, &mut survivor_id);
        }
        slowest_reclaim = slowest_reclaim.max(killed_at.elapsed());
        while busy_slots() > 1 {
            read_one(&daemon, &mut survivor_rx, &mut victim_rx, &mut survivor_id);
        }
        // Drain what the victim published before dying (its slot was only freed once empty).
        let delivered = victim_rx.count;
        assert!(
            delivered >= committed && delivered <= committed + 1,
            "iteration {it}: {committed} messages committed, {delivered} delivered"
        );
        assert_eq!(
            victim_rx.max_seq.map_or(0, |m| m + 1),
            delivered,
            "iteration {it}: a gap (lost message)"
        );
        verified += delivered;
    }

    // The survivor streamed through all of it; stop it and compare counts.
    let survivor_id = survivor_id.expect("survivor sent something");
    daemon.send_to(survivor_id, Priority::Critical, b"stop").unwrap();
    let mut unused = Received::default();
    let sent = loop {
        if let Some(n) = read_one(&daemon, &mut survivor_rx, &mut unused, &mut Some(survivor_id)) {
            break n;
        }
    };
    // "done" is Critical: it overtakes the survivor's last High and Low messages.
    while survivor_rx.count < sent {
        read_one(&daemon, &mut survivor_rx, &mut unused, &mut Some(survivor_id));
    }
    assert_eq!(survivor_rx.count, sent, "the survivor's messages, all delivered");
    assert!(children.wait_success(survivor));
    verified += sent;
    let recovered = daemon.stats().recovered_clients;
    println!(
        "kill harness (clients, seed {seed}): {iterations} client kills, {verified} messages verified, \
         {recovered} slots recovered, slowest detection of a dead client {} ms",
        slowest_reclaim.as_millis()
    );
    assert_eq!(recovered as usize, iterations);
}

/// Daemon role: creates the segment (taking over a dead predecessor's),
/// says "ready", echoes every message back to its sender until killed.
fn run_echo_daemon(name: &str) {
    child_watchdog(Duration::from_secs(600));
    let daemon = NrelayShmTransport::builder(name)
        .size(256 << 10)
        .max_clients(1)
        .create()
        .expect("create (taking over a dead daemon's segment)");
    println!("ready");
    loop {
        let got = daemon.read_from_with(|from, p, b| daemon.write_to_timeout(from, p, b, None));
        match got {
            Ok(Some(r)) => {
                r.expect("echo");
                daemon.signal();
            }
            Ok(None) => {
                daemon.signal();
                let _ = daemon.wait(Some(Duration::from_millis(100)));
            }
            Err(e) => panic!("echo daemon: {e}"),
        }
    }
}

#[test]
fn kill_daemon_at_random_points() {
    if let Some(role) = child_role() {
        return run_echo_daemon(&role[0]);
    }
    let iterations = iterations().div_ceil(3);
    let (mut rng, seed) = rng();
    let name = unique_name("killd");
    let _g = SegmentGuard(name.clone());
    let children = Children::default();
    let _w = watchdog(Duration::from_secs(900), &children, &[&name]);
    let (mut verified, mut worst_detection) = (0u64, Duration::ZERO);
    for it in 0..iterations {
        let (daemon, out) = children.spawn_piped("kill_daemon_at_random_points", &[&name]);
        // The test harness prints its own lines first; the daemon's is "ready".
        let ready = BufReader::new(out)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.trim() == "ready");
        assert!(ready, "iteration {it}: the new daemon did not take the name over");
        let client = NrelayShmTransport::connect(&name, 1).expect("connect to the new daemon");
        let tag = it as u32;
        let kill_after = rng.random_range(1..2000u64);
        let (mut sent, mut echoed, mut next_tier) = (0u64, 0u64, [0u64; 3]);
        let mut order = TierOrder::default();
        let mut check_echo = |client: &NrelayShmTransport, echoed: &mut u64| -> ShmResult {
            match client.read_with(|p, b| {
                decode(p, b).and_then(|(t, _, ts)| {
                    if t != tag {
                        return Err(format!("echo of stream {t} in stream {tag}"));
                    }
                    order.check(p, ts)
                })
            }) {
                Ok(Some(r)) => {
                    r.expect("echo verification");
                    *echoed += 1;
                    Ok(true)
                }
                Ok(None) => Ok(false),
                Err(e) => Err(e),
            }
        };
        while echoed < kill_after {
            if sent - echoed < 64 {
                let (p, len) = shape(tag, sent);
                let ts = next_tier[p.index()];
                if client.write_with(p, len, |b| encode(b, tag, sent, ts)).is_ok() {
                    next_tier[p.index()] += 1;
                    sent += 1;
                    client.signal();
                    continue;
                }
            }
            if !check_echo(&client, &mut echoed).expect("read while the daemon lives") {
                client.wait(Some(STEP)).expect("wait while the daemon lives");
            }
        }
        children.kill(daemon);
        let killed_at = Instant::now();
        // Echoes already sent are still read, all intact; then the death is reported.
        let detected = loop {
            match check_echo(&client, &mut echoed) {
                Ok(true) => continue,
                Err(ShmError::Disconnected) => break killed_at.elapsed(),
                Err(e) => panic!("iteration {it}: expected Disconnected, got {e}"),
                Ok(false) => match client.wait(Some(STEP)) {
                    Err(ShmError::Disconnected) => break killed_at.elapsed(),
                    Ok(()) => continue,
                    Err(e) => panic!("iteration {it}: expected Disconnected, got {e}"),
                },
            }
        };
        assert!(!client.is_connected());
        assert!(matches!(
            client.write(Priority::High, b"x"),
            Err(ShmError::Disconnected)
        ));
        assert!(echoed <= sent);
        worst_detection = worst_detection.max(detected);
        verified += echoed;
    }
    println!(
        "kill harness (daemon, seed {seed}): {iterations} daemon kills, {verified} echoes verified, \
         slowest detection of a dead daemon by a waiting client {} ms",
        worst_detection.as_millis()
    );
}

type ShmResult = Result<bool, ShmError>;
