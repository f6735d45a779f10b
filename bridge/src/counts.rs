//! What became of each remote client's messages to the daemon, counted by
//! the side of the bridge that handles them: for the bridge's status line
//! and its log.

use std::sync::atomic::{AtomicU64, Ordering};

/// One remote client's messages to the daemon, as one side of the bridge
/// counts them (see [`Export::counts`](crate::Export::counts) and
/// [`Import::counts`](crate::Import::counts)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientCounts {
    /// The client's name on the bridge (`<zenoh id>/<number>`).
    pub client: String,
    /// Messages this side took: from the client's ring (import), or from
    /// Zenoh (export).
    pub taken: u64,
    /// Messages delivered into the daemon's ring (counted by the export; an
    /// import learns it from a refusal only).
    pub delivered: u64,
    /// Messages taken and never delivered, because the client was refused.
    pub refused: u64,
}

impl std::fmt::Display for ClientCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} taken, {} delivered, {} refused",
            self.client, self.taken, self.delivered, self.refused
        )
    }
}

/// The live counts of one client (written by the thread that moves its
/// messages, read by the status line: relaxed, each a plain tally).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    taken: AtomicU64,
    delivered: AtomicU64,
    refused: AtomicU64,
}

impl Counters {
    pub(crate) fn took(&self, n: u64) {
        self.taken.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn delivered(&self, n: u64) {
        self.delivered.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn refused(&self, n: u64) {
        self.refused.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn taken(&self) -> u64 {
        self.taken.load(Ordering::Relaxed)
    }

    pub(crate) fn of(&self, client: &str) -> ClientCounts {
        ClientCounts {
            client: client.to_owned(),
            taken: self.taken.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }
}
