//! Who is alive, PID files, and cleaning up after the dead.
//!
//! Liveness here is a kernel fact, never a guess from a timeout: a process
//! holds a lock on a byte of a file (its segment, or its PID file: an OFD
//! lock on Linux and macOS, `LockFileEx` on Windows) for as long as it
//! lives, and the kernel releases it when the process dies, however it dies.
//! A [`Process`] is a pid next to its start time, so a recycled pid is never
//! mistaken for the process that had it. A late heartbeat
//! ([`crate::ClientControl::daemon_heartbeat_age`]) says "stuck or busy",
//! never "dead".
//!
//! - [`PidFile`]: one instance of a program at a time, and which process
//!   that is.
//! - [`remove_orphans_in`] (what `memlink clean` does), [`find_orphans_in`]
//!   and [`remove_if_orphaned`]: what dead daemons and creators left behind.
//!   A daemon that starts on the name of a dead one takes it over itself.
//!
//! ```
//! use memlink_shm::liveness::{self, PidFile};
//! # let dir = std::env::temp_dir().join(format!("memlink-doc-liveness-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//!
//! let _single = PidFile::acquire(dir.join("my-daemon.pid"))?; // held until dropped
//! let orphans = liveness::find_orphans_in(&dir)?; // nothing is removed
//! assert!(orphans.is_empty(), "a live process's PID file is not an orphan");
//! # drop(_single); std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod orphans;
mod pid_file;
mod process;
#[cfg(test)]
mod tests;

pub use orphans::{find_orphans_in, remove_if_orphaned, remove_orphans_in, Orphans};
pub use pid_file::{PidFile, PidFileError};
pub use process::Process;
