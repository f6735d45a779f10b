//! What the daemon's receiving and sending parts share: how each follows the
//! client table, the sweep for dead clients, wake-ups, counters, and the
//! owner that shuts the segment down.
//!
//! Each part keeps its own view of the table (the reading ends or the writing
//! ends of every connected client's rings) and follows the segment's epoch:
//! one load per call, a re-scan of the slots only when a client connected or
//! left. A slot is freed once the receiving part has drained it and the
//! sending part has let go of it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::doorbell;
use crate::endpoint::channel::Lacking;
use crate::endpoint::fault::{Fault, Op};
use crate::endpoint::Stats;
use crate::priority::Priority;
use crate::ring::RingError;
use crate::segment::layout::{self, Direction, EventWord, CONTROL_SIZE, STATE_SHUTTING_DOWN};
use crate::segment::{Channel, Segment};
use crate::slot::{self, ClientId, Poison};

/// Messages the daemon takes in a row from one client within a tier before
/// serving the next (round-robin in bursts).
pub(super) const BURST: u32 = 16;

/// How often the daemon checks its clients' liveness (and beats its heartbeat).
pub(super) const SWEEP_INTERVAL: Duration = Duration::from_millis(50);

/// The slots one daemon serves: those whose index is `index` modulo
/// `count` (all of them for an unshared daemon). A new client belongs to the
/// shard of the slot it claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shard {
    index: u32,
    count: u32,
}

impl Shard {
    /// Every slot.
    pub(crate) const ALL: Shard = Shard { index: 0, count: 1 };

    /// Whether slot `i` is this shard's.
    #[inline]
    pub(crate) fn owns(self, i: u32) -> bool {
        i % self.count == self.index
    }

    /// This shard's slots of `seg`.
    pub(crate) fn slots(self, seg: &Segment) -> impl Iterator<Item = u32> {
        (self.index..seg.geometry().max_clients).step_by(self.count as usize)
    }

    /// This shard's slots dealt out to `n` shards, which together own exactly
    /// what this one owns.
    pub(crate) fn divide(self, n: u32) -> impl Iterator<Item = Shard> {
        (0..n).map(move |k| Shard {
            index: self.index + k * self.count,
            count: self.count * n,
        })
    }
}

/// One client's rings as one part of the daemon holds them: the reading
/// ends (to-daemon) or the writing ends (to-client), for one connection.
pub(super) struct Attached<R> {
    pub(super) generation: u32,
    pub(super) rings: R,
    /// The channel's header (its wake-up words), reached with one load.
    pub(super) channel: Channel,
}

/// The epoch a part last rebuilt its table at, if the segment's has moved
/// since (one load).
#[inline]
pub(super) fn moved_epoch(seen: Option<u32>, seg: &Segment) -> Option<u32> {
    let epoch = slot::epoch(seg);
    (seen != Some(epoch)).then_some(epoch)
}

/// Makes `held` hold channel `index`'s rings for connection `generation`,
/// opening them with `open` unless it already does. Rings that fail
/// validation poison the channel and leave it empty; returns whether the
/// channel is attached.
pub(super) fn attach<R>(
    seg: &Segment,
    index: u32,
    generation: u32,
    held: &mut Option<Attached<R>>,
    open: impl FnOnce(&Segment, u32) -> Result<R, RingError>,
) -> bool {
    if held.as_ref().map(|s| s.generation) == Some(generation) {
        return true;
    }
    match open(seg, index) {
        Ok(rings) => {
            *held = Some(Attached {
                generation,
                rings,
                channel: seg.channel_handle(index),
            });
            true
        }
        Err(_) => {
            slot::poison(seg, index, Poison::ByDaemon);
            *held = None;
            false
        }
    }
}

/// What every operation of a daemon part checks first: that it is not a
/// forked child's copy, and that the segment file was not cut short under
/// the slots it serves.
#[derive(Debug, Clone, Copy)]
pub(super) struct Health {
    /// `platform::fork_generation()` where the daemon was made.
    fork_generation: u32,
    /// `platform::faults_anywhere()` when this part last looked.
    faults_seen: u32,
    /// `platform::disturbances()` when all was last found well.
    calm: u32,
}

impl Health {
    pub(super) fn new(fork_generation: u32) -> Health {
        Health {
            fork_generation,
            faults_seen: 0,
            calm: 0,
        }
    }

    pub(super) fn fork_generation(&self) -> u32 {
        self.fork_generation
    }

    /// `Err(Forked)` in a forked child; after pages of the mapping were
    /// found gone, poisons the slots of `shard` they cut into (see
    /// [`Health::cut_off`]). One load of a static word while all is well.
    #[inline]
    pub(super) fn check(&mut self, seg: &Segment, shard: Shard) -> Op<()> {
        if crate::platform::disturbances() != self.calm {
            return self.look_closer(seg, shard);
        }
        Ok(())
    }

    /// [`Health::check`] after a fork or a lost page somewhere in this
    /// process: which, and whether it concerns this daemon.
    #[cold]
    #[inline(never)]
    fn look_closer(&mut self, seg: &Segment, shard: Shard) -> Op<()> {
        let now = crate::platform::disturbances();
        if crate::platform::forked_since(self.fork_generation) {
            return Err(Fault::Forked);
        }
        if crate::platform::faults_anywhere() != self.faults_seen {
            self.cut_off(seg, shard)?;
        }
        self.calm = now;
        Ok(())
    }

    /// A mapping of this process lost pages. If it was this segment's, the
    /// file was cut short (a peer truncated it) and this process touched a
    /// page past its end, now a private zero page. Every
    /// slot of `shard` whose channel reaches past what is still shared is
    /// poisoned (its client cannot be served: what either side writes there
    /// stays in its own process); the other clients go on. `Err` when the
    /// control region itself is gone: then nothing can be served.
    #[cold]
    #[inline(never)]
    fn cut_off(&mut self, seg: &Segment, shard: Shard) -> Op<()> {
        let faults = crate::platform::faults_anywhere();
        if !seg.truncated() {
            self.faults_seen = faults; // another segment's
            return Ok(());
        }
        let intact = seg.intact_len();
        if intact < CONTROL_SIZE {
            return Err(Fault::TRUNCATED);
        }
        let g = *seg.geometry();
        for i in shard.slots(seg) {
            if g.channel_offset(i) + g.channel_stride > intact {
                slot::poison(seg, i, Poison::ByDaemon);
            }
        }
        self.faults_seen = faults;
        Ok(())
    }
}

#[cold]
pub(super) fn unknown_client(client: ClientId) -> Fault {
    Fault::UnknownClient(client)
}

/// Reclaims the slots of clients whose process died: a connected one is
/// closed (its published messages are still read, then the slot is freed),
/// a half-connected one is freed at once. Beats the heartbeat. Returns how
/// many slots it reclaimed.
pub(crate) fn sweep(seg: &Segment) -> u32 {
    let reclaimed = (0..seg.geometry().max_clients)
        .filter(|&i| slot::reclaim_if_dead(seg, i))
        .count() as u32;
    seg.control()
        .heartbeat
        .store(crate::platform::monotonic_nanos(), Ordering::Relaxed);
    reclaimed
}

/// Wakes every client of `shard` that sleeps: costs what the sleepers
/// cost, not what the connected clients do (see `crate::doorbell`). The
/// sleepers' bits are read after the notifier's fence.
pub(crate) fn signal_all(seg: &Segment, shard: Shard) {
    let sleepers = doorbell::sleeping(seg).filter(move |&i| shard.owns(i));
    EventWord::notify_each(sleepers.map(|i| &seg.channel(i).client_wake));
}

/// Where a daemon writer blocked on client slot `i` waits, and whom it wakes.
pub(super) fn lacking(seg: &Segment, i: u32) -> Lacking<'_> {
    let ch = seg.channel(i);
    Lacking {
        space: &ch.to_client_space,
        reader: &ch.client_wake,
    }
}

/// Wakes one client if it sleeps.
#[inline]
pub(crate) fn signal_client(seg: &Segment, client: ClientId) {
    if client.slot < seg.geometry().max_clients {
        seg.channel(client.slot).client_wake.notify();
    }
}

/// Fullest ring to a connected client, or the highest hint a client
/// published, 0.0 to 1.0.
pub(crate) fn backpressure(seg: &Segment, shard: Shard) -> f32 {
    let mut level = 0f32;
    for id in slot::connected(seg).into_iter().filter(|id| shard.owns(id.slot)) {
        for p in Priority::ALL {
            level = level.max(crate::ring::on_segment(seg, id.slot, Direction::ToClient, p).fill_level());
        }
        level = level.max(layout::load_hint(&seg.channel(id.slot).client_backpressure));
    }
    level
}

/// Publishes the daemon's congestion hint (0.0 to 1.0) to its clients.
pub(crate) fn set_backpressure(seg: &Segment, level: f32) {
    layout::store_hint(&seg.control().daemon_backpressure, level);
}

/// Counters of the rings of the connected and departing clients, added to
/// `retired` (those of the clients whose slots were freed).
pub(crate) fn stats(seg: &Segment, shard: Shard, retired: &Stats) -> Stats {
    let mut stats = Stats {
        daemon_wakeups: seg.control().daemon_wake.wakeups.load(Ordering::Relaxed),
        recovered_clients: seg.control().recovered_clients.load(Ordering::Relaxed),
        ..*retired
    };
    for i in shard.slots(seg) {
        let view = slot::view(seg, i);
        if view.connected || view.closed {
            stats.add_channel(seg, i);
        }
    }
    stats
}

/// The daemon's hold on its segment: shuts it down when dropped (when every
/// part of the daemon is gone).
#[derive(Debug)]
pub(crate) struct Owner {
    seg: Segment,
    removed: AtomicBool,
    fork_generation: u32,
}

impl Owner {
    pub(crate) fn new(seg: Segment, fork_generation: u32) -> Owner {
        Owner {
            seg,
            removed: AtomicBool::new(false),
            fork_generation,
        }
    }

    /// Tells clients to leave, wakes all of them, removes the segment's name.
    /// A forked child's copy does nothing: the segment is the parent's.
    pub(crate) fn shutdown(&self) {
        if crate::platform::forked_since(self.fork_generation) {
            return;
        }
        let seg = &self.seg;
        seg.control().state.fetch_or(STATE_SHUTTING_DOWN, Ordering::AcqRel);
        let n = seg.geometry().max_clients;
        EventWord::notify_each((0..n).flat_map(|i| {
            let ch = seg.channel(i);
            [&ch.client_wake, &ch.to_daemon_space]
        }));
        seg.control().daemon_wake.notify();
        if !self.removed.swap(true, Ordering::AcqRel) {
            seg.shared_memory().remove_if_current();
            lifecycle!(INFO, "shutdown", seg, pid = crate::platform::current_pid());
        }
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.shutdown();
    }
}
