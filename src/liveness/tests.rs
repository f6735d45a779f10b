//! PID files and orphan scans against real files and segments.

use std::path::{Path, PathBuf};

use super::*;
use crate::platform;
use crate::segment::layout::Geometry;
use crate::segment::{Segment, SegmentName, SharedMemory, TEMP_SUFFIX};

fn tmp(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("memlink-liveness-{tag}-{}", platform::current_pid()))
}

#[test]
fn a_pid_file_is_exclusive_and_released() {
    let _no_spawn = platform::spawn_exclusion().read().unwrap_or_else(|p| p.into_inner());
    let path = tmp("pid");
    let a = PidFile::acquire(&path).unwrap();
    assert_eq!(a.path(), path);
    let second = PidFile::acquire(&path);
    assert!(
        matches!(&second, Err(PidFileError::Held { pid, .. }) if *pid == platform::current_pid()),
        "{second:?}"
    );
    assert_eq!(PidFile::holder(&path), Some(Process::current()));
    drop(a);
    assert_eq!(PidFile::holder(&path), None);
    assert!(!path.exists(), "a released PID file stays");
    drop(PidFile::acquire(&path).unwrap());
}

#[test]
fn a_dead_processs_pid_file_is_taken_over() {
    let _no_spawn = platform::spawn_exclusion().read().unwrap_or_else(|p| p.into_inner());
    let path = tmp("takeover");
    std::fs::write(&path, b"4000000 1 memlink\n").unwrap();
    let held = PidFile::acquire(&path).unwrap();
    let me = Process::current();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        format!("{} {} memlink\n", me.pid, me.start_time)
    );
    drop(held);
}

/// Root must not adopt (and then share) a PID file another user owns.
#[cfg(unix)]
#[test]
fn a_pid_file_of_another_user_is_refused() {
    let path = tmp("foreign-pid");
    std::fs::write(&path, b"").unwrap();
    if std::os::unix::fs::chown(&path, Some(65534), None).is_err() {
        // Only root can give a file away; elsewhere the case cannot arise here.
        let _ = std::fs::remove_file(&path);
        eprintln!("skipped: not allowed to chown (not root)");
        return;
    }
    let r = PidFile::acquire(&path);
    assert!(matches!(r, Err(PidFileError::PermissionDenied { .. })), "{r:?}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        b"",
        "the registration was written into it"
    );
    std::fs::remove_file(&path).unwrap();
}

#[cfg(unix)]
#[test]
fn a_pid_file_behind_a_symbolic_link_is_refused() {
    let target = tmp("link-target");
    let link = tmp("link.pid");
    std::fs::write(&target, b"").unwrap();
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let r = PidFile::acquire(&link);
    assert!(matches!(r, Err(PidFileError::PermissionDenied { .. })), "{r:?}");
    assert_eq!(std::fs::read(&target).unwrap(), b"", "written through the link");
    std::fs::remove_file(&link).unwrap();
    std::fs::remove_file(&target).unwrap();
}

#[test]
fn a_dead_segment_is_removed_and_a_live_one_is_not() {
    let _no_spawn = platform::spawn_exclusion().read().unwrap_or_else(|p| p.into_inner());
    let path = tmp("orphan");
    let text = path.to_string_lossy().into_owned();
    let name = SegmentName::parse(&text).unwrap();
    let g = Geometry::compute(1 << 20, 1, 4096).unwrap();
    let live = Segment::create(&name, g, 1, 0o600).unwrap();
    assert!(!remove_if_orphaned(&text).unwrap(), "its daemon lives");
    drop(live); // closes the file: the daemon's lock goes, the file stays
    assert!(path.exists());
    assert!(remove_if_orphaned(&text).unwrap());
    assert!(!path.exists());
    assert!(!remove_if_orphaned(&text).unwrap(), "nothing left");
    assert!(matches!(
        remove_if_orphaned(""),
        Err(crate::OpenError::InvalidName { .. })
    ));
}

#[test]
fn a_scan_takes_dead_segments_partial_ones_and_stale_pid_files_only() {
    let _no_spawn = platform::spawn_exclusion().read().unwrap_or_else(|p| p.into_inner());
    let dir = tmp("scan");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let seg = |n: &str| SegmentName::parse(&dir.join(n).to_string_lossy()).unwrap();
    let g = Geometry::compute(1 << 20, 1, 4096).unwrap();
    let live = Segment::create(&seg("live"), g, 1, 0o600).unwrap();
    drop(Segment::create(&seg("dead"), g, 1, 0o600).unwrap());
    std::fs::write(dir.join("foreign"), b"not ours").unwrap();
    std::fs::write(dir.join(format!(".x.1.0{TEMP_SUFFIX}")), b"half-built").unwrap();
    std::fs::write(dir.join("gone.pid"), b"4000000 1 memlink\n").unwrap();
    // Another program's PID file, unlocked, of a dead process: not ours.
    std::fs::write(dir.join("other.pid"), b"4000000\n").unwrap();
    // A memlink PID file of a live process that does not hold its lock.
    let me = Process::current();
    std::fs::write(dir.join("alive.pid"), format!("{} {} memlink\n", me.pid, me.start_time)).unwrap();
    // A PID file held right now.
    let held = PidFile::acquire(dir.join("held.pid")).unwrap();
    // A segment being built right now by a live creator.
    let building = SharedMemory::create_hidden(&seg("building"), 1 << 16, 0o600).unwrap();
    let files = |d: &Path| std::fs::read_dir(d).unwrap().count();
    let before = files(&dir);
    let found = find_orphans_in(&dir).unwrap();
    assert_eq!(files(&dir), before, "a dry run removed something");
    let removed = remove_orphans_in(&dir).unwrap();
    assert_eq!(found, removed, "the dry run and the removal disagree");
    assert_eq!((removed.len(), files(&dir)), (3, before - 3));
    assert_eq!(removed.segments, vec![dir.join("dead")]);
    assert_eq!(removed.partial_segments.len(), 1);
    assert_eq!(removed.pid_files, vec![dir.join("gone.pid")]);
    for kept in ["live", "foreign", "other.pid", "alive.pid", "held.pid"] {
        assert!(dir.join(kept).exists(), "{kept} was removed");
    }
    let hidden = std::fs::read_dir(&dir).unwrap().flatten().filter(|e| {
        let n = e.file_name().to_string_lossy().into_owned();
        n.starts_with(".building.") && n.ends_with(TEMP_SUFFIX)
    });
    assert_eq!(hidden.count(), 1, "a live creator's half-built segment was removed");
    assert!(remove_orphans_in(&dir).unwrap().is_empty(), "a second pass found more");
    drop((live, building, held));
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(find_orphans_in(&dir).is_err(), "a missing directory is an error");
}
