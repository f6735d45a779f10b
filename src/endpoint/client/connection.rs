//! What the two halves of a client share: the claimed slot, and what is
//! known of the daemon.
//!
//! A client holds the OFD lock of its slot's byte for as long as it is
//! connected: that is how the daemon knows it is alive. It learns that the
//! daemon died from the daemon's lock byte, checked while it waits (every
//! [`DAEMON_CHECK_INTERVAL`]), when a write finds its ring full, when a read
//! finds nothing, and otherwise every 256 operations at most that often.
//!
//! If another process cuts the segment file short, the pages past its end
//! read as zeros in this process (see `platform::FaultGuard`) and every
//! operation from then on fails with [`Corruption::SegmentTruncated`]; a
//! write during which the pages went away reports it too.
//!
//! [`Corruption::SegmentTruncated`]: crate::Corruption::SegmentTruncated

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::super::channel;
use super::super::Stats;
use crate::doorbell::Bell;
use crate::endpoint::fault::{Fault, Op};
use crate::endpoint::OpenError;
use crate::platform;
use crate::priority::Priority;
use crate::ring::RingError;
use crate::ring::{PriorityConsumer, PriorityProducer};
use crate::segment::layout::{self, ChannelHeader, Direction, STATE_ALIVE, STATE_SHUTTING_DOWN};
use crate::segment::SegmentName;
use crate::segment::{Channel, Segment};
use crate::slot::{self, ClientId, Poison};

/// How often a client checks that its daemon is alive (at most; see the module docs).
pub(crate) const DAEMON_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// One client's hold on its slot; leaves the segment when dropped (when
/// both halves of the client are gone).
pub(crate) struct Connection {
    seg: Segment,
    id: ClientId,
    /// This client left or its daemon died: no operation goes on (one load
    /// on the message path).
    over: AtomicBool,
    /// This client left (`disconnect` ran).
    left: AtomicBool,
    /// `platform::fork_generation()` where the connection was made: in a
    /// forked child the copy is inert.
    fork_generation: u32,
    /// `platform::disturbances()` where the connection was made: while it
    /// reads the same, this process neither forked nor lost a page since.
    calm: u32,
    /// This client's bell, rung after each publish (see `crate::doorbell`).
    bell: Bell,
    /// This client's channel header, reached with one load.
    channel: Channel,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("segment", self.seg.name())
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Opens the segment, checks versions, state and the daemon's liveness,
    /// claims a free slot and attaches its rings.
    pub(crate) fn open(
        name: &SegmentName,
        given: &str,
        protocol_version: u32,
        owner: u32,
    ) -> Result<(Connection, PriorityProducer, PriorityConsumer), OpenError> {
        let fork_generation = platform::fork_generation();
        let calm = platform::disturbances();
        let seg = Segment::open_owned_by(name, owner)?;
        crate::wait::register_barriers();
        let c = seg.control();
        let found = c.protocol_version.load(Ordering::Relaxed);
        if found != protocol_version {
            return Err(OpenError::ProtocolMismatch {
                expected: protocol_version,
                found,
            });
        }
        let state = c.state.load(Ordering::Acquire);
        if state & STATE_ALIVE == 0 || state & STATE_SHUTTING_DOWN != 0 {
            return Err(OpenError::ShuttingDown { name: given.to_owned() });
        }
        if !seg.daemon_alive() {
            return Err(OpenError::OwnerDead {
                name: given.to_owned(),
                pid: c.daemon_pid.load(Ordering::Relaxed),
            });
        }
        let index = slot::claim(&seg)?;
        let id = slot::open(&seg, index);
        let attached = channel::producer(&seg, index, Direction::ToDaemon)
            .and_then(|tx| Ok((tx, channel::consumer(&seg, index, Direction::ToClient)?)));
        let (tx, rx) = match attached {
            Ok(pair) => pair,
            Err(e) => {
                slot::abandon(&seg, index);
                return Err(OpenError::corrupt_rings(given, e));
            }
        };
        slot::connect(&seg, index);
        let conn = Connection {
            id,
            over: AtomicBool::new(false),
            left: AtomicBool::new(false),
            fork_generation,
            calm,
            bell: Bell::of(index),
            channel: seg.channel_handle(index),
            seg,
        };
        Ok((conn, tx, rx))
    }

    #[inline]
    pub(crate) fn id(&self) -> ClientId {
        self.id
    }

    #[inline]
    pub(crate) fn segment(&self) -> &Segment {
        &self.seg
    }

    #[inline]
    pub(crate) fn channel(&self) -> &ChannelHeader {
        &self.channel
    }

    /// Why this client cannot go on, if it cannot: it left, the daemon shut
    /// down or died, or the channel was poisoned.
    #[inline]
    pub(crate) fn status(&self) -> Op<()> {
        if self.over.load(Ordering::Relaxed) || self.seg.is_shutting_down() {
            return Err(Fault::Disconnected);
        }
        self.poisoned()
    }

    /// Whether this copy may touch the channel at all, whether the segment
    /// is whole and whether the channel was poisoned: the conditions that
    /// stop reads even while messages are waiting.
    #[inline]
    pub(crate) fn poisoned(&self) -> Op<()> {
        if platform::disturbances() != self.calm {
            self.disturbed()?;
        }
        match slot::poison_of(&self.channel) {
            None => Ok(()),
            Some(by) => Err(Fault::Poisoned(by)),
        }
    }

    /// [`Connection::poisoned`] after a fork or a lost page somewhere in
    /// this process since the connection was made: which, and whether it
    /// concerns this connection.
    #[cold]
    #[inline(never)]
    fn disturbed(&self) -> Op<()> {
        if platform::forked_since(self.fork_generation) {
            return Err(Fault::Forked);
        }
        self.intact()
    }

    /// `Err` once part of the mapping was found gone (a peer truncated the
    /// segment file): a client touches only the control region and its own
    /// channel, so any such page was one of them.
    #[inline]
    pub(crate) fn intact(&self) -> Op<()> {
        if self.seg.truncated() {
            return Err(Fault::TRUNCATED);
        }
        Ok(())
    }

    /// Looks at the daemon's liveness lock (a syscall) and remembers a death.
    pub(crate) fn check_daemon(&self) {
        if !self.over.load(Ordering::Relaxed) && !self.seg.daemon_alive() {
            self.over.store(true, Ordering::Relaxed);
        }
    }

    /// Marks the channel unusable after finding the daemon's rings corrupt.
    pub(crate) fn poison(&self) {
        slot::poison(&self.seg, self.id.slot, Poison::ByClient);
    }

    /// A read found the daemon's ring corrupt: poison the channel.
    #[cold]
    pub(crate) fn read_failed(&self, e: RingError) -> Fault {
        if let RingError::Corrupted(_) = e {
            self.poison();
        }
        Fault::Ring(e)
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.check_daemon();
        self.status().is_ok() && slot::holds(&self.seg, self.id)
    }

    /// Rings this client's bell of tier `priority` after a publish there, so
    /// the daemon looks at that ring (see `crate::doorbell`).
    #[inline]
    pub(crate) fn ring(&self, priority: Priority) {
        self.bell.ring(&self.seg, priority);
    }

    /// Rings this client's bells of every tier (after a batch).
    #[inline]
    pub(crate) fn ring_all(&self) {
        self.bell.ring_all(&self.seg);
    }

    /// Wakes the daemon if it sleeps. Every publish rang the doorbell, whose
    /// fence orders the publish before this check of the sleepers (the
    /// event count's protocol, see `crate::wait`): one load.
    #[inline]
    pub(crate) fn signal(&self) {
        self.seg.control().daemon_wake.notify_fenced();
    }

    /// How long ago the daemon last swept its clients (a progress hint only).
    pub(crate) fn daemon_heartbeat_age(&self) -> Duration {
        let beat = self.seg.control().heartbeat.load(Ordering::Relaxed);
        Duration::from_nanos(platform::monotonic_nanos().saturating_sub(beat))
    }

    /// The hint the daemon published.
    pub(crate) fn daemon_backpressure(&self) -> f32 {
        layout::load_hint(&self.seg.control().daemon_backpressure)
    }

    /// The fullest of this client's rings to the daemon (from their
    /// published positions; 1.0 for impossible ones), or the daemon's hint,
    /// whichever is higher: the sending half's and the control's.
    pub(crate) fn backpressure(&self) -> f32 {
        Priority::ALL
            .into_iter()
            .map(|p| crate::ring::on_segment(&self.seg, self.id.slot, Direction::ToDaemon, p).fill_level())
            .fold(self.daemon_backpressure(), f32::max)
    }

    pub(crate) fn set_backpressure(&self, level: f32) {
        layout::store_hint(&self.channel().client_backpressure, level);
    }

    pub(crate) fn stats(&self) -> Stats {
        let c = self.seg.control();
        let mut stats = Stats {
            daemon_wakeups: c.daemon_wake.wakeups.load(Ordering::Relaxed),
            recovered_clients: c.recovered_clients.load(Ordering::Relaxed),
            ..Stats::default()
        };
        stats.add_channel(&self.seg, self.id.slot);
        stats
    }

    /// Leaves the segment: the daemon reads what was sent, then frees the
    /// slot. A forked child's copy leaves nothing: the slot and the lock
    /// (shared with the parent through the inherited file) are the parent's.
    pub(crate) fn disconnect(&self) {
        self.over.store(true, Ordering::Relaxed);
        if platform::forked_since(self.fork_generation) {
            return;
        }
        if !self.left.swap(true, Ordering::Relaxed) {
            slot::close(&self.seg, self.id);
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.disconnect();
    }
}
