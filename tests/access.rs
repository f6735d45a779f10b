//! Access control: segments are private by default, never reached through a
//! symlink, and a segment squatted by another user under the expected name
//! is refused (by root too).
// Exercises the 0.1.3 layer, including its deprecated 0.2 additions.
#![allow(deprecated)]
#![cfg(unix)] // permission bits, symlinks and uids are Unix notions

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use memlink_shm::inspect::segment_path;
use memlink_shm::transport::{NrelayShmTransport, ShmError, ShmTransport};
use support::{unique_name, SegmentGuard};

#[test]
fn segments_are_0600_by_default_and_mode_is_configurable() {
    let name = unique_name("mode");
    let _g = SegmentGuard(name.clone());
    let path = segment_path(&name).unwrap();
    let d = NrelayShmTransport::create(&name, 1 << 20, 1).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    drop(d);
    let d = NrelayShmTransport::builder(&name).mode(0o660).create().unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o660);
    drop(d);
}

#[test]
fn a_symlink_is_never_followed() {
    let dir = std::env::temp_dir().join(unique_name("symlink"));
    std::fs::create_dir_all(&dir).unwrap();
    let target = dir.join("precious");
    std::fs::write(&target, b"keep me").unwrap();
    let link = dir.join("seg");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let name = link.to_string_lossy().into_owned();
    assert!(NrelayShmTransport::create(&name, 1 << 20, 1).is_err());
    assert!(matches!(
        NrelayShmTransport::connect(&name, 1),
        Err(ShmError::PermissionDenied { .. } | ShmError::InvalidSegment { .. })
    ));
    assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_segment_owned_by_another_user_is_refused() {
    let name = unique_name("squat");
    let _g = SegmentGuard(name.clone());
    let d = NrelayShmTransport::create(&name, 1 << 20, 1).unwrap();
    let path = segment_path(&name).unwrap();
    // Hand the file to another user, as a squatter would have created it.
    // The file is this process's own: its owner is this process's user.
    if std::fs::metadata(&path).unwrap().uid() != 0 {
        eprintln!("skipped: changing a file's owner needs root");
        return;
    }
    std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().uid(), 65534);
    match NrelayShmTransport::connect(&name, 1) {
        Err(ShmError::PermissionDenied { reason, .. }) => assert!(reason.contains("65534"), "{reason}"),
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
    // A client that names that user as the expected owner (a segment shared
    // with a group) gets past the check.
    assert!(NrelayShmTransport::builder(&name).owner(65534).connect().is_ok());
    // Nor is it taken over or cleaned up: it is not ours.
    assert!(memlink_shm::recovery::RecoveryManager::new(&name)
        .cleanup_orphaned_shm(&name)
        .is_err());
    drop(d);
}

#[test]
fn a_second_daemon_on_a_live_name_is_refused() {
    let name = unique_name("second");
    let _g = SegmentGuard(name.clone());
    let first = NrelayShmTransport::create(&name, 1 << 20, 1).unwrap();
    match NrelayShmTransport::create(&name, 1 << 20, 1) {
        Err(ShmError::AlreadyRunning { pid, .. }) => assert_eq!(pid, std::process::id()),
        other => panic!("expected AlreadyRunning, got {other:?}"),
    }
    let client = NrelayShmTransport::connect(&name, 1).unwrap();
    // A clean shutdown (dropping the daemon) frees the name at once; taking
    // over a killed daemon's segment is tested in tests/kill.rs.
    drop(first);
    assert!(!client.is_connected());
    let second = NrelayShmTransport::create(&name, 1 << 20, 2).unwrap();
    assert_eq!(second.protocol_version(), 2);
}
