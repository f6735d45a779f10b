//! `Debug` of every public error is its message, so that `?` in `main`
//! (which prints `Error: {err:?}`, see `std::process::Termination`) prints
//! what went wrong, with the numbers, and what to do.

mod support;

use std::fmt::{Debug, Display};

use memlink_shm::buffer::{Priority, RingBuffer};
use memlink_shm::transport::NrelayShmTransport;
use memlink_shm::{Client, Daemon, Error, OpenError};
use support::{unique_name, SegmentGuard};

/// What `fn main() -> Result<(), E>` prints for `err`.
fn printed_by_main(err: &(impl Debug + Display)) -> String {
    let printed = format!("Error: {err:?}");
    assert_eq!(printed, format!("Error: {err}"), "Debug is not the message");
    printed
}

#[test]
fn main_prints_the_advice_of_an_open_error() {
    let name = unique_name("never-created");
    match Client::connect(&name) {
        Err(e @ OpenError::NotFound { .. }) => {
            let printed = printed_by_main(&e);
            assert!(
                printed.contains(&name) && printed.contains("start the daemon first"),
                "{printed}"
            );
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    // A name with a slash is a file path, and the message says so; a bare
    // name carries no prefix of the crate's.
    let dir = std::env::temp_dir().join(unique_name("no-such-dir"));
    let path = dir.join("bus").to_string_lossy().into_owned();
    match Client::connect(&path) {
        Err(e @ OpenError::NotFound { .. }) => {
            let printed = printed_by_main(&e);
            assert!(
                printed.contains(&path) && printed.contains("taken as a file path"),
                "{printed}"
            );
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    let bare = unique_name("bare");
    let printed = printed_by_main(&Client::connect(&bare).expect_err("no daemon"));
    assert!(printed.contains(&format!("segment {bare} not found")), "{printed}");
    let name = unique_name("too-small");
    let _g = SegmentGuard(name.clone());
    match Daemon::builder(&name).size(16 << 20).max_message_size(1 << 20).create() {
        Err(e @ OpenError::TooSmall { .. }) => {
            let printed = printed_by_main(&e);
            let minimum = Daemon::segment_size(8, 1 << 20).to_string();
            assert!(printed.contains(&minimum) && printed.contains("16777216"), "{printed}");
        }
        other => panic!("expected TooSmall, got {other:?}"),
    }
}

#[test]
fn main_prints_the_message_of_an_endpoint_error() {
    let name = unique_name("empty");
    let _g = SegmentGuard(name.clone());
    let mut daemon = Daemon::create(&name).expect("create");
    let e = daemon.try_recv().expect_err("nothing sent");
    assert!(matches!(e, Error::Empty));
    assert_eq!(printed_by_main(&e), format!("Error: {e}"));
    let mut client = Client::connect(&name).expect("connect");
    let too_big = vec![0; daemon.control().max_message_size() + 1];
    let e = client.try_send(Priority::High, &too_big).expect_err("too large");
    let printed = printed_by_main(&e);
    assert!(printed.contains(&too_big.len().to_string()), "{printed}");
}

#[test]
fn main_prints_the_message_of_a_type_ring_and_compatibility_error() {
    let e = memlink_shm::typed::decode::<u32>(b"not a typed record").expect_err("not typed");
    printed_by_main(&e);
    let (mut tx, _rx) = RingBuffer::with_capacity(4096, 64).expect("ring").split();
    let e = tx.write(Priority::Low, &[0; 65]).expect_err("too large");
    let printed = printed_by_main(&e);
    assert!(printed.contains("65") && printed.contains("64"), "{printed}");
    let name = unique_name("never-created-0.1.3");
    #[allow(deprecated)]
    let e = NrelayShmTransport::connect(&name, 1).expect_err("no daemon");
    let printed = printed_by_main(&e);
    assert!(printed.contains(&name), "{printed}");
}
