//! What creating or connecting reports when it cannot: each error says what
//! went wrong with the numbers involved, and a failed create leaves nothing
//! behind.

mod support;

use memlink_shm::{Client, Daemon, OpenError};
use support::{unique_name, SegmentGuard};

/// Files in the segment directory whose name mentions `name` (the segment or
/// a hidden build file of it).
fn leftovers(name: &str) -> Vec<String> {
    let dir = memlink_shm::inspect::segment_path("x").unwrap();
    let dir = dir.parent().unwrap().to_owned();
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|f| f.contains(name))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_path_in_a_missing_directory_says_so() {
    let dir = std::env::temp_dir().join(unique_name("nodir"));
    let path = dir.join("segment");
    let e = Daemon::create(path.to_str().unwrap()).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, OpenError::Io { .. }), "{e:?}");
    assert!(text.contains("does not exist"), "{text}");
    assert!(!text.contains("start the daemon"), "{text}");
}

#[test]
fn an_impossible_size_fails_cleanly_and_leaves_nothing() {
    for size in [1usize << 40, usize::MAX] {
        let name = unique_name("huge");
        let _g = SegmentGuard(name.clone());
        let e = Daemon::builder(&name).size(size).create().unwrap_err();
        let text = e.to_string();
        // Sizing fails on Linux; on Windows the file may be sized and mapping fails.
        let said = text.contains("could not reserve") || text.contains("could not map");
        assert!(said && text.contains("smaller size"), "{size}: {text}");
        assert_eq!(leftovers(&name), Vec::<String>::new(), "{size}: {text}");
    }
}

#[test]
fn names_longer_than_the_limit_are_refused_up_front() {
    let max = memlink_shm::MAX_NAME_LEN;
    let ok = "n".repeat(max);
    let _g = SegmentGuard(ok.clone());
    let daemon = Daemon::create(&ok).unwrap_or_else(|e| panic!("a {max}-byte name: {e}"));
    drop(daemon);
    for len in [max + 1, 255, 300] {
        let e = Daemon::create(&"n".repeat(len)).unwrap_err();
        assert!(matches!(e, OpenError::InvalidName { .. }), "{len}: {e:?}");
        assert!(e.to_string().contains(&max.to_string()), "{len}: {e}");
    }
}

#[test]
fn max_message_size_out_of_range_is_a_configuration_error() {
    for bad in [0usize, (256 << 20) + 1, usize::MAX] {
        let name = unique_name("maxmsg");
        let _g = SegmentGuard(name.clone());
        let e = Daemon::builder(&name).max_message_size(bad).create().unwrap_err();
        assert!(matches!(e, OpenError::InvalidConfig(_)), "{bad}: {e:?}");
        assert!(e.to_string().contains(&bad.to_string()), "{bad}: {e}");
    }
}

#[test]
fn connecting_to_nothing_says_to_start_the_daemon() {
    let e = Client::connect(&unique_name("absent")).unwrap_err();
    assert!(matches!(e, OpenError::NotFound { .. }), "{e:?}");
    assert!(e.to_string().contains("start the daemon"), "{e}");
}

#[test]
fn a_full_table_counts_live_and_draining_slots() {
    let name = unique_name("full");
    let _g = SegmentGuard(name.clone());
    let mut daemon = Daemon::builder(&name).max_clients(2).create().expect("create");
    let a = Client::connect(&name).expect("a");
    let mut b = Client::connect(&name).expect("b");
    let e = Client::connect(&name).unwrap_err();
    assert!(
        matches!(
            e,
            OpenError::TableFull {
                max_clients: 2,
                live: 2,
                draining: 0
            }
        ),
        "{e:?}"
    );
    assert!(!e.is_transient(), "nobody is leaving");
    // b leaves with a message the daemon has not read: its slot drains.
    b.send(memlink_shm::Priority::High, b"last words").expect("send");
    drop(b);
    let e = Client::connect(&name).unwrap_err();
    assert!(
        matches!(
            e,
            OpenError::TableFull {
                live: 1,
                draining: 1,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        e.is_transient() && e.to_string().contains("1 by clients that left"),
        "{e}"
    );
    assert_eq!(daemon.try_recv().expect("the last words").payload(), b"last words");
    let _c = Client::connect(&name).expect("the drained slot is free");
    drop(a);
}
