//! Counters read from the segment.

use crate::buffer::RingCounters;

/// Counters of the rings and wake-ups, read from the segment: on the daemon
/// summed over the connected clients, on a client its own channel's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Client -> daemon rings, indexed by [`crate::Priority::index`].
    pub to_daemon: [RingCounters; 3],
    /// Daemon -> client rings.
    pub to_client: [RingCounters; 3],
    /// Wake syscalls made for the daemon.
    pub daemon_wakeups: u64,
    /// Wake syscalls made for clients.
    pub client_wakeups: u64,
    /// Slots the daemon reclaimed from clients that died.
    pub recovered_clients: u32,
}
