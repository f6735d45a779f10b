//! The client side: one claimed slot, a pair of priority rings.

use std::cell::{Cell, RefCell};
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::channel::{self, deadline};
use super::daemon::NotifyOnDrop;
use super::{ClientId, TransportStats};
use crate::control::Segment;
use crate::error::{ShmError, ShmResult};
use crate::layout::{
    ChannelHeader, Direction, SLOT_CLAIMED, SLOT_CLOSED, SLOT_CONNECTED, SLOT_FREE, STATE_ALIVE,
    STATE_SHUTTING_DOWN,
};
use crate::mmap::SegmentName;
use crate::platform;
use crate::pring::{PriorityConsumer, PriorityProducer};
use crate::priority::Priority;

pub(crate) struct Client {
    seg: Segment,
    id: ClientId,
    spin: Cell<Duration>,
    tx: RefCell<PriorityProducer>,
    rx: RefCell<PriorityConsumer>,
    left: Cell<bool>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("segment", self.seg.name())
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Opens the segment, checks versions and state, claims a free slot.
    pub(crate) fn connect(
        name: &SegmentName,
        protocol_version: u32,
        spin: Duration,
    ) -> ShmResult<Client> {
        let seg = Segment::open(name)?;
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
        let max = seg.geometry().max_clients;
        let index = (0..max)
            .find(|&i| {
                // SYNC POINT: Acquire pairs with the daemon's Release when it freed
                // the slot: it no longer reads or writes these rings.
                seg.channel(i)
                    .state
                    .compare_exchange(SLOT_FREE, SLOT_CLAIMED, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            })
            .ok_or(ShmError::TableFull { max_clients: max })?;
        let ch = seg.channel(index);
        let generation = ch
            .generation
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_add(1);
        ch.client_pid
            .store(platform::current_pid(), Ordering::Relaxed);
        channel::reset(&seg, index);
        let attached = channel::producer(&seg, index, Direction::ToDaemon)
            .and_then(|tx| Ok((tx, channel::consumer(&seg, index, Direction::ToClient)?)));
        let (tx, rx) = match attached {
            Ok(pair) => pair,
            Err(e) => {
                ch.state.store(SLOT_FREE, Ordering::Release);
                return Err(e);
            }
        };
        // SYNC POINT: Release publishes the reset rings; pairs with the daemon's
        // Acquire load of the state after it sees the epoch move.
        ch.state.store(SLOT_CONNECTED, Ordering::Release);
        c.client_count.fetch_add(1, Ordering::AcqRel);
        c.epoch.fetch_add(1, Ordering::Release);
        Ok(Client {
            id: ClientId {
                slot: index,
                generation,
            },
            seg,
            spin: Cell::new(spin),
            tx: RefCell::new(tx),
            rx: RefCell::new(rx),
            left: Cell::new(false),
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

    /// Whether the daemon is gone or this client left.
    #[inline]
    fn closed(&self) -> bool {
        self.left.get() || self.seg.is_shutting_down()
    }

    pub(crate) fn is_connected(&self) -> bool {
        !self.closed()
            && self.channel().state.load(Ordering::Relaxed) == SLOT_CONNECTED
            && self.channel().generation.load(Ordering::Relaxed) == self.id.generation
    }

    #[inline]
    pub(crate) fn write_with<R>(
        &self,
        priority: Priority,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> ShmResult<R> {
        if self.closed() {
            return Err(ShmError::Disconnected);
        }
        let mut tx = self.tx.try_borrow_mut().map_err(|_| ShmError::Reentrant)?;
        tx.write_with(priority, len, fill)
    }

    pub(crate) fn write_timeout(
        &self,
        priority: Priority,
        data: &[u8],
        timeout: Option<Duration>,
    ) -> ShmResult<()> {
        let until = deadline(timeout);
        loop {
            match self.write_with(priority, data.len(), |b| b.copy_from_slice(data)) {
                Err(ShmError::BufferFull) => {}
                other => return other,
            }
            // The daemon may be asleep waiting for a signal not sent yet: wake it
            // so it drains, or we would wait for each other.
            self.signal();
            let room = || {
                self.closed()
                    || self.tx.try_borrow_mut().map_or(true, |mut t| {
                        t.can_write(priority, data.len()).unwrap_or(true)
                    })
            };
            if !self
                .channel()
                .to_daemon_space
                .wait_until(room, self.spin.get(), until)
            {
                return Err(ShmError::Timeout);
            }
        }
    }

    #[inline]
    pub(crate) fn read_with<R>(
        &self,
        f: impl FnOnce(Priority, &[u8]) -> R,
    ) -> ShmResult<Option<R>> {
        let mut rx = self.rx.try_borrow_mut().map_err(|_| ShmError::Reentrant)?;
        let consumed = Cell::new(false);
        let got = {
            // Wake a blocked daemon writer only if a message was consumed (even
            // if `f` panicked), so an empty poll costs no fence.
            let _wake = NotifyOnDrop::when(&self.channel().to_client_space, &consumed);
            rx.read_with(|p, b| {
                consumed.set(true);
                f(p, b)
            })?
        };
        if got.is_none() && self.closed() {
            return Err(ShmError::Disconnected);
        }
        Ok(got)
    }

    #[inline]
    pub(crate) fn signal(&self) {
        self.seg.control().daemon_wake.notify();
    }

    pub(crate) fn wait(&self, timeout: Option<Duration>) -> ShmResult<()> {
        let mut rx = self.rx.try_borrow_mut().map_err(|_| ShmError::Reentrant)?;
        let ready = || rx.has_message() || self.closed();
        if !self
            .channel()
            .client_wake
            .wait_until(ready, self.spin.get(), deadline(timeout))
        {
            return Err(ShmError::Timeout);
        }
        if rx.has_message() {
            Ok(())
        } else {
            Err(ShmError::Disconnected)
        }
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

    pub(crate) fn stats(&self) -> TransportStats {
        let mut stats = TransportStats {
            daemon_wakeups: self
                .seg
                .control()
                .daemon_wake
                .wakeups
                .load(Ordering::Relaxed),
            client_wakeups: self.channel().client_wake.wakeups.load(Ordering::Relaxed),
            ..TransportStats::default()
        };
        for p in Priority::ALL {
            stats.to_daemon[p.index()] = self
                .seg
                .ring(self.id.slot, Direction::ToDaemon, p)
                .counters();
            stats.to_client[p.index()] = self
                .seg
                .ring(self.id.slot, Direction::ToClient, p)
                .counters();
        }
        stats
    }

    /// Leaves the segment: the daemon reads what was sent, then frees the slot.
    pub(crate) fn disconnect(&self) {
        if self.left.replace(true) {
            return;
        }
        let ch = self.channel();
        if ch.generation.load(Ordering::Relaxed) != self.id.generation {
            return;
        }
        // SYNC POINT: Release publishes our last writes before the daemon sees CLOSED.
        if ch
            .state
            .compare_exchange(
                SLOT_CONNECTED,
                SLOT_CLOSED,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            let c = self.seg.control();
            let _ = c
                .client_count
                .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| n.checked_sub(1));
            c.epoch.fetch_add(1, Ordering::Release);
            c.daemon_wake.notify();
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.disconnect();
    }
}
