//! Counters read from the segment.

use std::sync::atomic::Ordering;

use crate::priority::Priority;
use crate::ring::RingCounters;
use crate::segment::layout::Direction;
use crate::segment::Segment;

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

impl Stats {
    /// Adds channel `i`'s counters (its six rings, its wake-ups).
    pub(crate) fn add_channel(&mut self, seg: &Segment, i: u32) {
        let ch = seg.channel(i);
        self.client_wakeups = self
            .client_wakeups
            .wrapping_add(ch.client_wake.wakeups.load(Ordering::Relaxed));
        for p in Priority::ALL {
            self.to_daemon[p.index()] += crate::ring::on_segment(seg, i, Direction::ToDaemon, p).counters();
            self.to_client[p.index()] += crate::ring::on_segment(seg, i, Direction::ToClient, p).counters();
        }
    }
}
