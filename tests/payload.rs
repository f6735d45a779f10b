//! One method per waiting mode: every form a payload takes (bytes of each
//! kind, a typed value, a `Fill`) goes through every send of every endpoint
//! and half, and arrives as it was sent.

mod support;

use std::time::Duration;

use memlink_shm::{Client, Daemon, Error, Fill, Priority};
use support::{unique_name, SegmentGuard};

const STEP: Duration = Duration::from_secs(10);

/// A small segment: 1 KiB messages, rings that fill after a few dozen.
fn small(name: &str) -> Daemon {
    Daemon::builder(name)
        .size(128 << 10)
        .max_clients(2)
        .max_message_size(1024)
        .create()
        .expect("create")
}

#[test]
fn every_form_through_every_client_send_arrives_as_sent() {
    let name = unique_name("payload-forms");
    let _g = SegmentGuard(name.clone());
    let mut daemon = small(&name);
    let mut client = Client::connect(&name).expect("connect");
    let (array, vec, text) = (*b"array", b"vector".to_vec(), String::from("string"));
    let p = Priority::High;
    client.send(p, &b"slice"[..]).expect("slice");
    client.try_send(p, &array).expect("array");
    client.send_timeout(p, &vec, STEP).expect("vec");
    client.send(p, "str").expect("str");
    client.send(p, &text).expect("String");
    client.send(p, &7u64).expect("typed");
    client
        .try_send(p, Fill::new(4, |b| b.copy_from_slice(b"fill")))
        .expect("fill");
    futures::executor::block_on(client.send_async(p, &-2i32)).expect("async typed");
    for want in [&b"slice"[..], b"array", b"vector", b"str", b"string"] {
        assert_eq!(daemon.recv_timeout(STEP).expect("bytes").payload(), want);
    }
    let typed = daemon.recv_timeout(STEP).expect("typed");
    assert!(typed.is::<u64>());
    assert_eq!(typed.decode::<u64>(), Ok(7));
    assert_eq!(daemon.recv_timeout(STEP).expect("fill").payload(), b"fill");
    assert_eq!(daemon.recv_timeout(STEP).expect("async").decode::<i32>(), Ok(-2));
}

#[test]
fn every_form_through_the_daemon_and_its_halves_arrives_as_sent() {
    let name = unique_name("payload-daemon");
    let _g = SegmentGuard(name.clone());
    let mut daemon = small(&name);
    let mut a = Client::connect(&name).expect("connect a");
    let mut b = Client::connect(&name).expect("connect b");
    let p = Priority::Low;
    daemon.send_to(a.control().id(), p, &1.5f64).expect("typed to one");
    daemon
        .try_send_to(a.control().id(), p, Fill::new(3, |buf| buf.copy_from_slice(b"one")))
        .expect("fill to one");
    // A broadcast encodes a typed value or runs a Fill once, and copies
    // the bytes to every client.
    let mut runs = 0;
    daemon
        .broadcast(
            p,
            Fill::new(3, |buf| {
                runs += 1;
                buf.copy_from_slice(b"all");
            }),
        )
        .expect("fill to all");
    assert_eq!(runs, 1);
    daemon.sender().try_broadcast(p, &9u16).expect("typed to all");
    daemon
        .sender()
        .send_batch_to(b.control().id(), |batch| {
            batch.try_send(p, &3u8)?;
            batch.try_send(p, Fill::new(5, |buf| buf.copy_from_slice(b"batch")))
        })
        .expect("batch")
        .expect("batch messages");
    assert_eq!(a.recv_timeout(STEP).expect("a").decode::<f64>(), Ok(1.5));
    assert_eq!(a.recv_timeout(STEP).expect("a").payload(), b"one");
    for c in [&mut a, &mut b] {
        assert_eq!(c.recv_timeout(STEP).expect("all").payload(), b"all");
        assert_eq!(c.recv_timeout(STEP).expect("all").decode::<u16>(), Ok(9));
    }
    assert_eq!(b.recv_timeout(STEP).expect("b").decode::<u8>(), Ok(3));
    assert_eq!(b.recv_timeout(STEP).expect("b").payload(), b"batch");
}

/// A send that fails before there is room never runs a `Fill`'s closure,
/// and a message over the size limit is refused in every form.
#[test]
fn a_failed_send_runs_no_fill_and_writes_nothing() {
    let name = unique_name("payload-refused");
    let _g = SegmentGuard(name.clone());
    let mut daemon = small(&name);
    let mut client = Client::connect(&name).expect("connect");
    let ran = std::cell::Cell::new(0);
    let fill = |len| {
        Fill::new(len, |buf: &mut [u8]| {
            ran.set(ran.get() + 1);
            buf.fill(1);
        })
    };
    let too_large = client.try_send(Priority::High, fill(4096));
    assert!(matches!(too_large, Err(Error::MessageTooLarge { .. })), "{too_large:?}");
    assert!(matches!(
        client.try_send(Priority::High, &[0u8; 4096]),
        Err(Error::MessageTooLarge { .. })
    ));
    let mut sent = 0;
    let full = loop {
        match client.try_send(Priority::High, fill(1000)) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
    };
    assert!(matches!(full, Error::Full), "{full:?}");
    assert_eq!(ran.get(), sent, "a Fill ran for a send that failed");
    assert!(matches!(
        client.send_timeout(Priority::High, fill(1000), Duration::from_millis(1)),
        Err(Error::Timeout)
    ));
    assert_eq!(ran.get(), sent, "a Fill ran for a send that timed out");
    for _ in 0..sent {
        assert_eq!(daemon.try_recv().expect("recv").payload(), &[1u8; 1000][..]);
    }
    assert!(matches!(daemon.try_recv(), Err(Error::Empty)));
}
