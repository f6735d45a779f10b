//! Daemon reads: Critical before High before Low across all clients, and
//! round-robin among clients within a tier (in bursts of at most 16).
// Exercises the 0.1.3 layer, including its deprecated 0.2 additions.
#![allow(deprecated)]

mod support;

use memlink_shm::priority::Priority;
use memlink_shm::transport::{NrelayShmTransport, ShmTransport};
use support::{unique_name, SegmentGuard};

fn daemon_with_three_clients(tag: &str) -> (SegmentGuard, NrelayShmTransport, Vec<NrelayShmTransport>) {
    let name = unique_name(tag);
    let guard = SegmentGuard(name.clone());
    let daemon = NrelayShmTransport::builder(&name)
        .size(4 << 20)
        .max_clients(3)
        .create()
        .unwrap();
    let clients = (0..3).map(|_| NrelayShmTransport::connect(&name, 1).unwrap()).collect();
    (guard, daemon, clients)
}

#[test]
fn critical_from_any_client_overtakes_every_backlog() {
    let (_g, daemon, clients) = daemon_with_three_clients("fair-prio");
    for c in &clients[..2] {
        for _ in 0..100 {
            c.write(Priority::Low, b"bulk").unwrap();
            c.write(Priority::High, b"work").unwrap();
        }
    }
    clients[2].write(Priority::Critical, b"halt").unwrap();
    let (from, p, m) = daemon.read_from().unwrap();
    assert_eq!(
        (from, p, &m[..]),
        (clients[2].client_id().unwrap(), Priority::Critical, &b"halt"[..])
    );
    // Then every High message before any Low one.
    for _ in 0..200 {
        assert_eq!(daemon.read().unwrap().0, Priority::High);
    }
    assert_eq!(daemon.read().unwrap().0, Priority::Low);
}

#[test]
fn backlogged_clients_are_served_in_turn() {
    let (_g, daemon, clients) = daemon_with_three_clients("fair-rr");
    for c in &clients {
        for _ in 0..200 {
            c.write(Priority::High, b"x").unwrap();
        }
    }
    let order: Vec<u32> = (0..600).map(|_| daemon.read_from().unwrap().0.slot()).collect();
    // Within any 3 bursts' worth of reads, every client is served.
    for window in order.windows(3 * 16) {
        for slot in 0..3 {
            assert!(window.contains(&slot), "client {slot} starved: {window:?}");
        }
    }
    // And nobody gets more than a burst in a row.
    let longest = order.chunk_by(|a, b| a == b).map(<[u32]>::len).max().unwrap();
    assert!(longest <= 16, "a run of {longest} reads from one client");
}

#[test]
fn batch_reads_keep_tier_order_and_serve_everyone() {
    let (_g, daemon, clients) = daemon_with_three_clients("fair-batch");
    for c in &clients {
        for _ in 0..100 {
            c.write(Priority::Low, b"bulk").unwrap();
        }
    }
    clients[1].write(Priority::Critical, b"halt").unwrap();
    let mut seen = Vec::new();
    let n = daemon
        .read_from_batch_with(48, |from, p, _| seen.push((from.slot(), p)))
        .unwrap();
    assert_eq!(n, 48);
    assert_eq!(seen[0], (1, Priority::Critical), "Critical first, even in a batch");
    for slot in 0..3 {
        assert!(
            seen.iter().any(|&(s, p)| s == slot && p == Priority::Low),
            "client {slot} not served: {seen:?}"
        );
    }
    let mut total = n;
    while let Ok(k) = daemon.read_batch_with(1000, |_, _| ()) {
        if k == 0 {
            break;
        }
        total += k;
    }
    assert_eq!(total, 301, "every message exactly once");
}
