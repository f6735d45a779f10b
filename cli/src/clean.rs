//! `memlink clean`: removes what dead daemons and creators left behind
//! (through `liveness`, whose rules keep anything a live process holds or
//! another user owns), or says what it would remove.

use std::path::PathBuf;

use memlink_shm::inspect;
use memlink_shm::liveness::{self, Orphans};

use crate::failure::Failure;

pub fn run(dirs: &[PathBuf], dry_run: bool) -> Result<(), Failure> {
    let dirs = if dirs.is_empty() {
        vec![inspect::default_dir()]
    } else {
        dirs.to_vec()
    };
    let verb = if dry_run { "would remove" } else { "removed" };
    let mut total = 0;
    for dir in &dirs {
        let report = if dry_run {
            liveness::find_orphans_in(dir)
        } else {
            liveness::remove_orphans_in(dir)
        }
        .map_err(|e| Failure::io(&format!("cannot clean {}", dir.display()), e))?;
        total += say(&report, verb);
    }
    if total == 0 {
        println!("nothing to clean in {}", list(&dirs));
    } else {
        println!("{verb} {total} file(s)");
    }
    Ok(())
}

/// Prints one line per file; returns how many.
fn say(r: &Orphans, verb: &str) -> usize {
    let kinds = [
        (&r.segments, "segment whose daemon is dead"),
        (&r.partial_segments, "half-built segment whose creator is dead"),
        (&r.pid_files, "PID file of a dead process"),
    ];
    let mut n = 0;
    for (paths, what) in kinds {
        for p in paths {
            println!("{verb} {} ({what})", p.display());
            n += 1;
        }
    }
    n
}

fn list(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
