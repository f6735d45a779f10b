//! The client side: one claimed slot, a pair of priority rings.
//!
//! A client holds the OFD lock of its slot's byte for as long as it is
//! connected: that is how the daemon knows it is alive. It learns that the
//! daemon died from the daemon's lock byte, checked while it waits (every
//! [`DAEMON_CHECK_INTERVAL`]), when a write finds its ring full, when a read
//! finds nothing, and otherwise every 256 operations at most that often.

use std::cell::{Cell, RefCell};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::channel::{self, deadline, NotifyOnDrop, Throttle};
use super::{ClientId, Stats};
use crate::control::Segment;
use crate::error::{ShmError, ShmResult};
use crate::layout::{
    client_lock_byte, ChannelHeader, Direction, POISON_NONE, POISON_TO_CLIENT, POISON_TO_DAEMON, SLOT_CLAIMED,
    SLOT_CLOSED, SLOT_CONNECTED, SLOT_FREE, STATE_ALIVE, STATE_SHUTTING_DOWN,
};
use crate::mmap::SegmentName;
use crate::platform;
use crate::pring::{PriorityConsumer, PriorityProducer};
use crate::priority::Priority;

/// How often a client checks that its daemon is alive (at most; see the module docs).
pub const DAEMON_CHECK_INTERVAL: Duration = Duration::from_millis(100);

pub(crate) struct ClientEngine {
    seg: Segment,
    id: ClientId,
    spin: Cell<Duration>,
    tx: RefCell<PriorityProducer>,
    rx: RefCell<PriorityConsumer>,
    left: Cell<bool>,
    daemon_gone: Cell<bool>,
    liveness: Throttle,
}

impl std::fmt::Debug for ClientEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientEngine")
            .field("segment", self.seg.name())
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl ClientEngine {
    /// Opens the segment, checks versions, state and the daemon's liveness,
    /// and claims a free slot.
    pub(crate) fn connect(
        name: &SegmentName,
        protocol_version: u32,
        spin: Duration,
        owner: u32,
    ) -> ShmResult<ClientEngine> {
        let seg = Segment::open_owned_by(name, owner)?;
        let c = seg.control();
        let found = c.protocol_version.load(Ordering::Relaxed);
        if found != protocol_version {
            return Err(ShmError::ProtocolMismatch {
                expected: protocol_version,
                found,
            });
        }
        let state = c.state.load(Ordering::Acquire);
        if state & STATE_ALIVE == 0 || state & STATE_SHUTTING_DOWN != 0 {
            return Err(ShmError::Disconnected);
        }
        if !seg.daemon_alive() {
            return Err(ShmError::OwnerDead {
                name: name.to_string(),
                pid: c.daemon_pid.load(Ordering::Relaxed),
            });
        }
        let index = claim_slot(&seg)?;
        let ch = seg.channel(index);
        let generation = ch.generation.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        let pid = platform::current_pid();
        ch.client_pid.store(pid, Ordering::Relaxed);
        ch.client_start_time
            .store(platform::process_start_time(pid).unwrap_or(0), Ordering::Relaxed);
        channel::reset(&seg, index);
        let attached = channel::producer(&seg, index, Direction::ToDaemon)
            .and_then(|tx| Ok((tx, channel::consumer(&seg, index, Direction::ToClient)?)));
        let (tx, rx) = match attached {
            Ok(pair) => pair,
            Err(e) => {
                ch.state.store(SLOT_FREE, Ordering::Release);
                let _ = platform::unlock_byte(seg.shared_memory().file(), client_lock_byte(index));
                return Err(e);
            }
        };
        // SYNC POINT: Release publishes the reset rings; pairs with the daemon's
        // Acquire load of the state after it sees the epoch move.
        ch.state.store(SLOT_CONNECTED, Ordering::Release);
        c.client_count.fetch_add(1, Ordering::AcqRel);
        c.epoch.fetch_add(1, Ordering::Release);
        Ok(ClientEngine {
            id: ClientId {
                slot: index,
                generation,
            },
            seg,
            spin: Cell::new(spin),
            tx: RefCell::new(tx),
            rx: RefCell::new(rx),
            left: Cell::new(false),
            daemon_gone: Cell::new(false),
            liveness: Throttle::new(DAEMON_CHECK_INTERVAL),
        })
    }

    fn channel(&self) -> &ChannelHeader {
        self.seg.channel(self.id.slot)
    }

    pub(crate) fn id(&self) -> ClientId {
        self.id
    }

    pub(crate) fn segment(&self) -> &Segment {
        &self.seg
    }

    pub(crate) fn set_spin(&self, spin: Duration) {
        self.spin.set(spin);
    }

    /// Why this client cannot go on, if it cannot: it left, the daemon shut
    /// down or died, or the channel was poisoned.
    #[inline]
    fn status(&self) -> ShmResult<()> {
        if self.left.get() || self.daemon_gone.get() || self.seg.is_shutting_down() {
            return Err(ShmError::Disconnected);
        }
        self.poisoned()
    }

    /// Whether the channel was poisoned: the one condition that stops reads
    /// even while messages are waiting.
    #[inline]
    fn poisoned(&self) -> ShmResult<()> {
        match self.channel().poison.load(Ordering::Acquire) {
            POISON_NONE => Ok(()),
            POISON_TO_DAEMON => Err(ShmError::Poisoned("the daemon found this client's rings corrupt")),
            _ => Err(ShmError::Poisoned("this client found the daemon's rings corrupt")),
        }
    }

    /// Looks at the daemon's liveness lock (a syscall) and remembers a death.
    fn check_daemon(&self) {
        if !self.daemon_gone.get() && !self.seg.daemon_alive() {
            self.daemon_gone.set(true);
        }
    }

    /// Marks the channel unusable after finding the daemon's rings corrupt.
    fn poison(&self) {
        let _ =
            self.channel()
                .poison
                .compare_exchange(POISON_NONE, POISON_TO_CLIENT, Ordering::AcqRel, Ordering::Relaxed);
        self.seg.control().epoch.fetch_add(1, Ordering::Release);
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.check_daemon();
        self.status().is_ok()
            && self.channel().state.load(Ordering::Relaxed) == SLOT_CONNECTED
            && self.channel().generation.load(Ordering::Relaxed) == self.id.generation
    }

    #[inline(always)]
    pub(crate) fn write_with<R>(
        &self,
        priority: Priority,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> ShmResult<R> {
        if self.liveness.tick() {
            self.check_daemon();
        }
        self.status()?;
        let mut tx = self.tx.try_borrow_mut().map_err(|_| ShmError::Reentrant)?;
        match tx.write_with(priority, len, fill) {
            Err(ShmError::BufferFull) => {
                // A full ring may mean nobody reads any more.
                if self.liveness.due() {
                    self.check_daemon();
                }
                self.status()?;
                Err(ShmError::BufferFull)
            }
            other => other,
        }
    }

    pub(crate) fn write_timeout(&self, priority: Priority, data: &[u8], timeout: Option<Duration>) -> ShmResult<()> {
        let until = deadline(timeout);
        loop {
            match self.write_with(priority, data.len(), |b| b.copy_from_slice(data)) {
                Err(ShmError::BufferFull) => {}
                other => return other,
            }
            self.wait_for_room(priority, data.len(), until)?;
        }
    }

    /// Blocks until a `len`-byte message of `priority` fits (`Ok`), the
    /// daemon is gone ([`ShmError::Disconnected`]) or `until` passes
    /// ([`ShmError::Timeout`]). Room found stays: this client is the ring's
    /// only writer.
    pub(crate) fn wait_for_room(&self, priority: Priority, len: usize, until: Option<Instant>) -> ShmResult<()> {
        loop {
            self.status()?;
            let fits = self
                .tx
                .try_borrow_mut()
                .map_err(|_| ShmError::Reentrant)?
                .can_write(priority, len)?;
            if fits {
                return Ok(());
            }
            // The daemon may be asleep waiting for a signal not sent yet: wake it
            // so it drains, or we would wait for each other.
            self.signal();
            let room = || {
                if self.liveness.due() {
                    self.check_daemon();
                }
                self.status().is_err()
                    || self
                        .tx
                        .try_borrow_mut()
                        .map_or(true, |mut t| t.can_write(priority, len).unwrap_or(true))
            };
            let space = &self.channel().to_daemon_space;
            if !space.wait_until_ticking(room, self.spin.get(), until, Some(DAEMON_CHECK_INTERVAL)) {
                return Err(ShmError::Timeout);
            }
        }
    }

    #[inline(always)]
    pub(crate) fn read_with<R>(&self, f: impl FnOnce(Priority, &[u8]) -> R) -> ShmResult<Option<R>> {
        let mut rx = self.rx.try_borrow_mut().map_err(|_| ShmError::Reentrant)?;
        self.poisoned()?;
        let consumed = Cell::new(false);
        let got = {
            // Wake a blocked daemon writer only if a message was consumed (even
            // if `f` panicked), so an empty poll costs no fence.
            let _wake = NotifyOnDrop::when(&self.channel().to_client_space, &consumed);
            rx.read_with(|p, b| {
                consumed.set(true);
                f(p, b)
            })
        };
        let got = got.map_err(|e| self.read_failed(e))?;
        if got.is_none() {
            self.read_empty()?;
        }
        Ok(got)
    }

    /// A read found the daemon's ring corrupt: poison the channel.
    #[cold]
    fn read_failed(&self, e: ShmError) -> ShmError {
        if let ShmError::Corrupted(_) = e {
            self.poison();
        }
        e
    }

    /// A read found nothing. Messages sent before a shutdown or death are
    /// still delivered; after them, the reason is reported.
    fn read_empty(&self) -> ShmResult<()> {
        if self.liveness.due() {
            self.check_daemon();
        }
        self.status()
    }

    /// Writes several messages, published together (one release store per tier).
    pub(crate) fn write_batch<R>(&self, f: impl FnOnce(&mut crate::pring::PriorityBatch<'_>) -> R) -> ShmResult<R> {
        self.with_producer(|p| f(&mut p.batch()))
    }

    /// Lends the writing ends, once the client is known to be usable.
    pub(crate) fn with_producer<R>(&self, f: impl FnOnce(&mut PriorityProducer) -> R) -> ShmResult<R> {
        if self.liveness.tick() {
            self.check_daemon();
        }
        self.status()?;
        let mut tx = self.tx.try_borrow_mut().map_err(|_| ShmError::Reentrant)?;
        Ok(f(&mut tx))
    }

    /// Reads up to `max` messages, waking a blocked daemon writer once at the end.
    pub(crate) fn read_batch_with(&self, max: usize, mut f: impl FnMut(Priority, &[u8])) -> ShmResult<usize> {
        let mut rx = self.rx.try_borrow_mut().map_err(|_| ShmError::Reentrant)?;
        self.poisoned()?;
        let consumed = Cell::new(false);
        let result = {
            let _wake = NotifyOnDrop::when(&self.channel().to_client_space, &consumed);
            rx.read_batch_with(max, |p, b| {
                consumed.set(true);
                f(p, b)
            })
        };
        let n = result.map_err(|e| self.read_failed(e))?;
        if n == 0 {
            self.read_empty()?;
        }
        Ok(n)
    }

    #[inline]
    pub(crate) fn signal(&self) {
        self.seg.control().daemon_wake.notify();
    }

    pub(crate) fn wait(&self, timeout: Option<Duration>) -> ShmResult<()> {
        let mut rx = self.rx.try_borrow_mut().map_err(|_| ShmError::Reentrant)?;
        let ready = || {
            if self.liveness.due() {
                self.check_daemon();
            }
            rx.has_message() || self.status().is_err()
        };
        // Tick so that the daemon's death, which nobody signals, is seen within an interval.
        let event = &self.channel().client_wake;
        if !event.wait_until_ticking(ready, self.spin.get(), deadline(timeout), Some(DAEMON_CHECK_INTERVAL)) {
            return Err(ShmError::Timeout);
        }
        if rx.has_message() {
            Ok(())
        } else {
            self.status()?;
            Err(ShmError::Disconnected)
        }
    }

    /// How long ago the daemon last swept its clients (a progress hint only).
    pub(crate) fn daemon_heartbeat_age(&self) -> Duration {
        let beat = self.seg.control().heartbeat.load(Ordering::Relaxed);
        Duration::from_nanos(platform::monotonic_nanos().saturating_sub(beat))
    }

    pub(crate) fn backpressure(&self) -> f32 {
        let own = self
            .tx
            .try_borrow_mut()
            .map_or(0.0, |mut t| t.occupancy().unwrap_or(1.0));
        own.max(channel::load_hint(&self.seg.control().daemon_backpressure))
    }

    pub(crate) fn set_backpressure(&self, level: f32) {
        channel::store_hint(&self.channel().client_backpressure, level);
    }

    pub(crate) fn stats(&self) -> Stats {
        let c = self.seg.control();
        let mut stats = Stats {
            daemon_wakeups: c.daemon_wake.wakeups.load(Ordering::Relaxed),
            client_wakeups: self.channel().client_wake.wakeups.load(Ordering::Relaxed),
            recovered_clients: c.recovered_clients.load(Ordering::Relaxed),
            ..Stats::default()
        };
        for p in Priority::ALL {
            stats.to_daemon[p.index()] = self.seg.ring(self.id.slot, Direction::ToDaemon, p).counters();
            stats.to_client[p.index()] = self.seg.ring(self.id.slot, Direction::ToClient, p).counters();
        }
        stats
    }

    /// Leaves the segment: the daemon reads what was sent, then frees the slot.
    pub(crate) fn disconnect(&self) {
        if self.left.replace(true) {
            return;
        }
        let ch = self.channel();
        if ch.generation.load(Ordering::Relaxed) == self.id.generation {
            // SYNC POINT: Release publishes our last writes before the daemon sees CLOSED.
            let closed = ch
                .state
                .compare_exchange(SLOT_CONNECTED, SLOT_CLOSED, Ordering::AcqRel, Ordering::Relaxed);
            if closed.is_ok() {
                let c = self.seg.control();
                let _ = c
                    .client_count
                    .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| n.checked_sub(1));
                c.epoch.fetch_add(1, Ordering::Release);
                c.daemon_wake.notify();
            }
        }
        // Let the next client take the slot once the daemon frees it.
        let _ = platform::unlock_byte(self.seg.shared_memory().file(), client_lock_byte(self.id.slot));
    }
}

impl Drop for ClientEngine {
    fn drop(&mut self) {
        self.disconnect();
    }
}

/// Claims a free slot: first its liveness lock (so the daemon never sees the
/// slot claimed by nobody alive), then the slot state.
fn claim_slot(seg: &Segment) -> ShmResult<u32> {
    let max = seg.geometry().max_clients;
    let file = seg.shared_memory().file();
    for i in 0..max {
        let ch = seg.channel(i);
        if ch.state.load(Ordering::Relaxed) != SLOT_FREE {
            continue;
        }
        let byte = client_lock_byte(i);
        match platform::try_lock_byte(file, byte) {
            Ok(true) => {}
            Ok(false) => continue, // a live client is taking or leaving it
            Err(e) => return Err(seg.name().io_error("lock", e)),
        }
        // SYNC POINT: Acquire pairs with the daemon's Release when it freed the
        // slot: it no longer reads or writes these rings.
        if ch
            .state
            .compare_exchange(SLOT_FREE, SLOT_CLAIMED, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            return Ok(i);
        }
        let _ = platform::unlock_byte(file, byte);
    }
    Err(ShmError::TableFull { max_clients: max })
}
