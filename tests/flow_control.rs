//! Backpressure and blocking writes: a writer blocked on a full ring is woken
//! when the reader frees room, and times out when nobody reads.
// Exercises the 0.1.3 layer, including its deprecated 0.2 additions.
#![allow(deprecated)]

mod support;

use std::time::{Duration, Instant};

use memlink_shm::priority::Priority;
use memlink_shm::testkit::{Peer, WakeWord};
use memlink_shm::transport::{NrelayShmTransport, ShmError, ShmTransport};
use support::{unique_name, watchdog, Children, SegmentGuard};

fn fill(t: &NrelayShmTransport, p: Priority) -> usize {
    let mut n = 0;
    while t.write(p, &[0u8; 1000]).is_ok() {
        n += 1;
    }
    n
}

#[test]
fn blocked_client_writer_is_woken_when_the_daemon_reads() {
    let name = unique_name("flow");
    let _guard = SegmentGuard(name.clone());
    let _w = watchdog(Duration::from_secs(60), &Children::default(), &[&name]);
    let daemon = NrelayShmTransport::builder(&name)
        .size(1 << 20)
        .max_clients(1)
        .spin(Duration::ZERO)
        .create()
        .unwrap();
    let client = NrelayShmTransport::builder(&name)
        .spin(Duration::ZERO)
        .connect()
        .unwrap();
    let queued = fill(&client, Priority::Low);
    assert!(queued > 0);
    assert!(matches!(
        client.write(Priority::Low, &[0u8; 1000]),
        Err(ShmError::BufferFull)
    ));

    let writer = std::thread::spawn(move || {
        let r = client.write_timeout(Priority::Low, &[9u8; 1000], Some(Duration::from_secs(30)));
        (r, client)
    });
    // Read only once the writer sleeps in the kernel, so the wake path is tested.
    let peer = Peer::open(&name).unwrap();
    while peer.waiters(WakeWord::ToDaemonSpace(0)) == 0 {
        std::thread::yield_now();
    }
    // The blocked writer woke the daemon before sleeping: a wait returns at once.
    daemon.wait(Some(Duration::from_secs(30))).unwrap();
    // Read one message at a time; each read wakes the writer to check for room
    // (a wrapping record may need up to two records' worth).
    let mut read = 0;
    while !writer.is_finished() && read < queued {
        assert_eq!(daemon.read().unwrap().1.len(), 1000);
        read += 1;
    }
    let (r, client) = writer.join().unwrap();
    r.expect("the writer is woken when room is freed");
    let mut last = Vec::new();
    while let Ok((_, m)) = daemon.read() {
        last = m;
        read += 1;
    }
    assert_eq!(
        read,
        queued + 1,
        "every message, the blocked one included, arrives once"
    );
    assert_eq!(last, vec![9u8; 1000], "the blocked message arrives last");
    drop(client);
}

#[test]
fn blocking_write_times_out_when_nobody_reads() {
    let name = unique_name("flow-timeout");
    let _guard = SegmentGuard(name.clone());
    let _w = watchdog(Duration::from_secs(60), &Children::default(), &[&name]);
    let daemon = NrelayShmTransport::builder(&name)
        .size(1 << 20)
        .max_clients(1)
        .create()
        .unwrap();
    let client = NrelayShmTransport::connect(&name, 1).unwrap();
    fill(&client, Priority::High);
    let t0 = Instant::now();
    let r = client.write_timeout(Priority::High, &[0u8; 1000], Some(Duration::from_millis(50)));
    assert!(matches!(r, Err(ShmError::Timeout)), "{r:?}");
    assert!(t0.elapsed() >= Duration::from_millis(50));
    // Other tiers are unaffected by a full one.
    client.write(Priority::Critical, b"urgent").unwrap();
    assert_eq!(daemon.read().unwrap(), (Priority::Critical, b"urgent".to_vec()));
}

#[test]
fn daemon_broadcast_is_all_or_nothing_and_waits_for_the_slowest_client() {
    let name = unique_name("flow-bcast");
    let _guard = SegmentGuard(name.clone());
    let _w = watchdog(Duration::from_secs(60), &Children::default(), &[&name]);
    let daemon = NrelayShmTransport::builder(&name)
        .size(1 << 20)
        .max_clients(2)
        .create()
        .unwrap();
    let fast = NrelayShmTransport::connect(&name, 1).unwrap();
    let slow = NrelayShmTransport::connect(&name, 1).unwrap();
    let n = fill(&daemon, Priority::High);
    assert!(matches!(
        daemon.write(Priority::High, &[1u8; 1000]),
        Err(ShmError::BufferFull)
    ));
    // The fast client drains; the broadcast still fails: the slow one is full.
    for _ in 0..n {
        fast.read().unwrap();
    }
    assert!(matches!(
        daemon.write(Priority::High, &[1u8; 10]),
        Err(ShmError::BufferFull)
    ));
    assert!(matches!(fast.read(), Err(ShmError::Empty)), "nothing half-delivered");
    // Once the slow one reads one message, the broadcast reaches both.
    slow.read().unwrap();
    daemon.write(Priority::High, &[1u8; 10]).unwrap();
    assert_eq!(fast.read().unwrap().1, vec![1u8; 10]);
    assert!(
        daemon.backpressure() > 0.9,
        "the slow client's ring is still nearly full"
    );
}

/// The 0.1.3 layer's queries and signals work from inside the closure of a
/// write or a read on the same side (0.2 allowed it; a RefCell borrow made
/// them panic).
#[test]
fn queries_from_inside_a_closure_never_panic() {
    let name = unique_name("reentry");
    let _g = SegmentGuard(name.clone());
    let daemon = NrelayShmTransport::create(&name, 1 << 20, 1).expect("create");
    let client = NrelayShmTransport::connect(&name, 1).expect("connect");
    let id = client.client_id().expect("id");
    client
        .write_with(Priority::High, 1, |_| {
            client.signal();
            assert_eq!(client.client_id(), Some(id));
            assert!(client.is_connected());
            let _ = (client.stats(), client.backpressure(), client.daemon_heartbeat_age());
            client.set_backpressure(0.25);
        })
        .expect("write");
    let read = daemon.read_from_with(|from, _, _| {
        daemon.set_backpressure(0.5);
        daemon.signal();
        let _ = (daemon.stats(), daemon.backpressure(), daemon.clients());
        daemon.write_to(from, Priority::High, b"reply")
    });
    read.expect("read").expect("a message").expect("reply");
    let got = client.read_with(|_, b| {
        client.signal();
        let _ = client.stats();
        b.to_vec()
    });
    assert_eq!(got.expect("read"), Some(b"reply".to_vec()));
    client
        .write_with(Priority::High, 1, |_| client.shutdown())
        .expect("leave from inside a write");
    assert!(!client.is_connected());
}
