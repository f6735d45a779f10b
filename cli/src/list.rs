//! `memlink ls`: the memlink segments of the default directory and of the
//! directories given.

use std::path::PathBuf;

use memlink_shm::inspect;

use crate::failure::Failure;
use crate::report::{self, Listing};

pub fn run(dirs: &[PathBuf], json: bool) -> Result<(), Failure> {
    let default = inspect::default_dir();
    let mut all = Vec::new();
    for dir in std::iter::once(&default).chain(dirs.iter().filter(|d| **d != default)) {
        let found = match inspect::segments_in(dir) {
            Ok(found) => found,
            // The default directory may not exist yet (Windows, before any segment).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && *dir == default => Vec::new(),
            Err(e) => return Err(Failure::io(&format!("cannot list {}", dir.display()), e)),
        };
        all.extend(found.iter().map(|f| report::listed(f, *dir == default)));
    }
    if json {
        let listing = Listing {
            schema: report::SCHEMA,
            segments: all,
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&listing).map_err(|e| Failure::io("json", e))?
        );
        return Ok(());
    }
    if all.is_empty() {
        println!("no memlink segments in {}", describe(&default, dirs));
        return Ok(());
    }
    println!(
        "{:<40} {:>10} {:>5} {:>14} {:>7} {:>8} {:>9}",
        "NAME", "SIZE", "PROTO", "DAEMON", "CLIENTS", "POISONED", "HEARTBEAT"
    );
    for l in &all {
        let Some(size) = l.size else {
            println!("{:<40} {}", l.name, l.error.as_deref().unwrap_or("unreadable"));
            continue;
        };
        let daemon = format!(
            "{} {}",
            l.daemon_pid.unwrap_or(0),
            if l.daemon_alive == Some(true) { "alive" } else { "dead" }
        );
        println!(
            "{:<40} {:>10} {:>5} {:>14} {:>7} {:>8} {:>9}",
            l.name,
            bytes(size),
            l.protocol_version.unwrap_or(0),
            daemon,
            l.clients.unwrap_or(0),
            l.poisoned.unwrap_or(0),
            report::age(l.heartbeat_age_ms.unwrap_or(0)),
        );
    }
    Ok(())
}

fn describe(default: &std::path::Path, dirs: &[PathBuf]) -> String {
    let mut all = vec![default.display().to_string()];
    all.extend(dirs.iter().map(|d| d.display().to_string()));
    all.join(", ")
}

/// A byte count, short: "1.0 MiB".
pub fn bytes(n: usize) -> String {
    match n {
        0..=10_239 => format!("{n} B"),
        10_240..=10_485_759 => format!("{:.1} KiB", n as f64 / 1024.0),
        _ => format!("{:.1} MiB", n as f64 / 1_048_576.0),
    }
}
