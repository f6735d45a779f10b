//! The daemon side: owns the segment and serves every client slot.
//!
//! Reading and writing keep separate state (`Inbound`, `Outbound`) so that a
//! reply can be written from inside a read closure. Each side follows the
//! client table through `ControlBlock::epoch`: one load per call, and a
//! re-scan of the slot states only when a client connected or left.

use std::cell::{Cell, RefCell, RefMut};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::channel::{self, deadline, NotifyOnDrop, Throttle};
use super::Stats;
use crate::control::Segment;
use crate::error::{ShmError, ShmResult};
use crate::layout::{Direction, EventWord, STATE_SHUTTING_DOWN};
use crate::pring::{PriorityConsumer, PriorityProducer};
use crate::priority::Priority;
use crate::slot::{self, ClientId, Poison};

/// One client's rings as one side of the daemon holds them: the reading
/// ends (to-daemon) or the writing ends (to-client), for one connection.
struct Attached<R> {
    generation: u32,
    rings: R,
}

/// The epoch this side last rebuilt its table at, if the segment's has moved
/// since (one load).
#[inline]
fn moved_epoch(seen: Option<u32>, seg: &Segment) -> Option<u32> {
    let epoch = slot::epoch(seg);
    (seen != Some(epoch)).then_some(epoch)
}

/// Makes `slot` hold channel `index`'s rings for connection `generation`,
/// opening them with `open` unless it already does. Rings that fail
/// validation poison the channel and leave the slot empty; returns whether
/// the slot is attached.
fn attach<R>(
    seg: &Segment,
    index: u32,
    generation: u32,
    slot: &mut Option<Attached<R>>,
    open: impl FnOnce(&Segment, u32) -> ShmResult<R>,
) -> bool {
    if slot.as_ref().map(|s| s.generation) == Some(generation) {
        return true;
    }
    match open(seg, index) {
        Ok(rings) => {
            *slot = Some(Attached { generation, rings });
            true
        }
        Err(_) => {
            slot::poison(seg, index, Poison::ByDaemon);
            *slot = None;
            false
        }
    }
}

/// What the daemon reads from.
struct Inbound {
    epoch: Option<u32>,
    slots: Vec<Option<Attached<PriorityConsumer>>>,
    /// Slots with attached rings, in slot order.
    active: Vec<u32>,
    /// Active slots whose client left: drained, then freed.
    closing: Vec<u32>,
    /// Per tier, where the next fair scan over `active` starts.
    cursor: [usize; 3],
    /// Per tier, how many messages in a row came from the client at `cursor`.
    burst: [u32; 3],
    /// Slots a batch read consumed from (reused: no allocation per batch).
    touched: Vec<u32>,
}

/// What the daemon writes to.
struct Outbound {
    epoch: Option<u32>,
    slots: Vec<Option<Attached<PriorityProducer>>>,
    /// Connected slots with attached rings.
    targets: Vec<u32>,
}

pub(crate) struct DaemonEngine {
    seg: Segment,
    spin: Cell<Duration>,
    rx: RefCell<Inbound>,
    tx: RefCell<Outbound>,
    removed: Cell<bool>,
    /// Paces liveness sweeps of the client table.
    sweeper: Throttle,
}

/// Messages the daemon takes in a row from one client within a tier before
/// serving the next (round-robin in bursts).
const BURST: u32 = 16;

/// How often the daemon checks its clients' liveness (and beats its heartbeat).
pub const SWEEP_INTERVAL: Duration = Duration::from_millis(50);

impl std::fmt::Debug for DaemonEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonEngine")
            .field("segment", self.seg.name())
            .finish_non_exhaustive()
    }
}

impl Inbound {
    /// Rebuilds the view of the slots if the epoch moved: one load when not.
    #[inline]
    fn refresh(&mut self, seg: &Segment) {
        if let Some(epoch) = moved_epoch(self.epoch, seg) {
            self.rebuild(seg, epoch);
        }
    }

    #[cold]
    fn rebuild(&mut self, seg: &Segment, epoch: u32) {
        self.epoch = Some(epoch);
        self.active.clear();
        self.closing.clear();
        for i in 0..seg.geometry().max_clients {
            let view = slot::view(seg, i);
            let held = &mut self.slots[i as usize];
            if !view.connected && !view.closed {
                *held = None;
                continue;
            }
            if view.closed {
                self.closing.push(i); // freed once drained
            }
            if view.poisoned {
                *held = None; // nothing read from a poisoned channel is trusted
                continue;
            }
            if attach(seg, i, view.id.generation, held, |s, i| {
                channel::consumer(s, i, Direction::ToDaemon)
            }) {
                self.active.push(i);
            }
        }
    }

    /// Stops reading a slot whose rings hold impossible values and poisons
    /// it, so its client learns why.
    fn ban(&mut self, seg: &Segment, index: u32) {
        self.slots[index as usize] = None;
        self.active.retain(|&i| i != index);
        slot::poison(seg, index, Poison::ByDaemon);
    }

    fn has_message(&mut self) -> bool {
        let slots = &mut self.slots;
        self.active
            .iter()
            .any(|&i| slots[i as usize].as_mut().is_some_and(|s| s.rings.has_message()))
    }

    /// Frees the slots of departed clients once their messages are read.
    fn reap(&mut self, seg: &Segment, tx: &RefCell<Outbound>) {
        let mut k = 0;
        while k < self.closing.len() {
            let i = self.closing[k];
            let drained = self.slots[i as usize].as_mut().map_or(true, |s| !s.rings.has_message());
            // The writer side must let go of the slot too; if it is busy (we are
            // inside one of its closures) try again on a later call.
            let released = drained && tx.try_borrow_mut().map(|mut t| t.detach(i)).is_ok();
            if !released {
                k += 1;
                continue;
            }
            self.slots[i as usize] = None;
            self.closing.swap_remove(k);
            self.active.retain(|&a| a != i);
            slot::free(seg, i);
        }
    }

    /// Takes the next message: Critical before High before Low across all
    /// clients, round-robin among clients within a tier.
    fn take<R>(&mut self, seg: &Segment, f: impl FnOnce(ClientId, Priority, &[u8]) -> R) -> ShmResult<Option<R>> {
        let n = self.active.len();
        for p in Priority::ALL {
            // `cursor` may exceed `n` after clients left; no division on this path.
            let start = if self.cursor[p.index()] < n {
                self.cursor[p.index()]
            } else {
                0
            };
            for k in 0..n {
                let j = if start + k >= n { start + k - n } else { start + k };
                let index = self.active[j];
                let Some(slot) = self.slots[index as usize].as_mut() else {
                    continue;
                };
                let ring = slot.rings.tier(p);
                if !ring.may_have_message() {
                    continue;
                }
                match ring.peek() {
                    Ok(None) => continue,
                    Ok(Some(m)) => {
                        // Fair in bursts: stay on this client for up to BURST
                        // messages of the tier (reading one ring in sequence is
                        // much cheaper than hopping between rings), then move on.
                        // Higher tiers are still checked before every message.
                        let t = p.index();
                        if j == start && self.burst[t] + 1 < BURST {
                            self.burst[t] += 1;
                            self.cursor[t] = j;
                        } else {
                            self.burst[t] = 0;
                            self.cursor[t] = if j == start { j + 1 } else { j };
                        }
                        let id = ClientId {
                            slot: index,
                            generation: slot.generation,
                        };
                        let _wake = NotifyOnDrop::always(&seg.channel(index).to_daemon_space);
                        return Ok(Some(ring.deliver(m, |prio, bytes| f(id, prio, bytes))));
                    }
                    Err(e) => {
                        self.ban(seg, index);
                        return Err(e);
                    }
                }
            }
        }
        Ok(None)
    }
}

impl Inbound {
    /// Reads a burst (up to `min(max, BURST)` messages) from the most urgent
    /// non-empty ring, chosen as `take` chooses; the ring's space goes back to
    /// its producer once, after the burst. Higher tiers are checked before
    /// every burst. Returns how many were read (0: all empty).
    fn take_burst(
        &mut self,
        seg: &Segment,
        max: usize,
        touched: &mut Vec<u32>,
        f: &mut impl FnMut(ClientId, Priority, &[u8]),
    ) -> ShmResult<usize> {
        let n = self.active.len();
        for p in Priority::ALL {
            let t = p.index();
            let start = if self.cursor[t] < n { self.cursor[t] } else { 0 };
            for k in 0..n {
                let j = if start + k >= n { start + k - n } else { start + k };
                let index = self.active[j];
                let Some(slot) = self.slots[index as usize].as_mut() else {
                    continue;
                };
                let id = ClientId {
                    slot: index,
                    generation: slot.generation,
                };
                let ring = slot.rings.tier(p);
                match ring.read_batch_with(max.min(BURST as usize), |prio, b| f(id, prio, b)) {
                    Ok(0) => continue,
                    Ok(got) => {
                        if !touched.contains(&index) {
                            touched.push(index);
                        }
                        self.cursor[t] = j + 1; // a burst served: the next client's turn
                        self.burst[t] = 0;
                        return Ok(got);
                    }
                    Err(e) => {
                        self.ban(seg, index);
                        return Err(e);
                    }
                }
            }
        }
        Ok(0)
    }
}

#[cold]
fn unknown_client(client: ClientId) -> ShmError {
    ShmError::UnknownClient(client.to_string())
}

impl Outbound {
    /// Rebuilds the view of the slots if the epoch moved: one load when not.
    #[inline]
    fn refresh(&mut self, seg: &Segment) {
        if let Some(epoch) = moved_epoch(self.epoch, seg) {
            self.rebuild(seg, epoch);
        }
    }

    #[cold]
    fn rebuild(&mut self, seg: &Segment, epoch: u32) {
        self.epoch = Some(epoch);
        self.targets.clear();
        for i in 0..seg.geometry().max_clients {
            let view = slot::view(seg, i);
            let held = &mut self.slots[i as usize];
            if !view.connected || view.poisoned {
                *held = None;
                continue;
            }
            if attach(seg, i, view.id.generation, held, |s, i| {
                channel::producer(s, i, Direction::ToClient)
            }) {
                self.targets.push(i);
            }
        }
    }

    fn detach(&mut self, index: u32) {
        self.slots[index as usize] = None;
        self.targets.retain(|&i| i != index);
    }

    fn ban(&mut self, seg: &Segment, index: u32) {
        self.detach(index);
        slot::poison(seg, index, Poison::ByDaemon);
    }

    #[inline]
    fn slot(&mut self, client: ClientId) -> ShmResult<&mut Attached<PriorityProducer>> {
        match self.slots.get_mut(client.slot as usize) {
            Some(Some(s)) if s.generation == client.generation => Ok(s),
            _ => Err(unknown_client(client)),
        }
    }

    /// First target without room for the message, if any.
    fn lacking_room(&mut self, seg: &Segment, priority: Priority, len: usize) -> ShmResult<Option<u32>> {
        for k in 0..self.targets.len() {
            let i = self.targets[k];
            let Some(slot) = self.slots[i as usize].as_mut() else {
                continue;
            };
            match slot.rings.can_write(priority, len) {
                Ok(true) => {}
                Ok(false) => return Ok(Some(i)),
                Err(ShmError::Corrupted(what)) => {
                    self.ban(seg, i);
                    return Err(ShmError::Corrupted(what));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }
}

impl DaemonEngine {
    pub(crate) fn new(seg: Segment, spin: Duration) -> DaemonEngine {
        let n = seg.geometry().max_clients as usize;
        let none = |_| None;
        DaemonEngine {
            rx: RefCell::new(Inbound {
                epoch: None,
                slots: (0..n).map(none).collect(),
                active: Vec::with_capacity(n),
                closing: Vec::new(),
                cursor: [0; 3],
                burst: [0; 3],
                touched: Vec::with_capacity(n),
            }),
            tx: RefCell::new(Outbound {
                epoch: None,
                slots: (0..n).map(|_| None).collect(),
                targets: Vec::with_capacity(n),
            }),
            seg,
            spin: Cell::new(spin),
            removed: Cell::new(false),
            sweeper: Throttle::new(SWEEP_INTERVAL),
        }
    }

    pub(crate) fn segment(&self) -> &Segment {
        &self.seg
    }

    pub(crate) fn set_spin(&self, spin: Duration) {
        self.spin.set(spin);
    }

    /// The writing side, current with the client table; refused once the
    /// daemon shuts down.
    #[inline]
    fn writer(&self) -> ShmResult<RefMut<'_, Outbound>> {
        if self.seg.is_shutting_down() {
            return Err(ShmError::Disconnected);
        }
        let mut tx = self.tx.try_borrow_mut().map_err(|_| ShmError::Reentrant)?;
        tx.refresh(&self.seg);
        Ok(tx)
    }

    /// The reading side, current with the client table, departed clients
    /// freed once drained.
    #[inline]
    fn reader(&self) -> ShmResult<RefMut<'_, Inbound>> {
        let mut rx = self.rx.try_borrow_mut().map_err(|_| ShmError::Reentrant)?;
        rx.refresh(&self.seg);
        if !rx.closing.is_empty() {
            rx.reap(&self.seg, &self.tx);
        }
        Ok(rx)
    }

    /// After a read: sweep for dead clients now and then (on an empty poll by
    /// the clock, while busy at most every 256 reads), and once the daemon
    /// shuts down, report it on an empty read.
    #[inline]
    fn after_read(&self, empty: bool) -> ShmResult<()> {
        let sweep = if empty { self.sweeper.due() } else { self.sweeper.tick() };
        if sweep {
            self.sweep();
        }
        if empty && self.seg.is_shutting_down() {
            return Err(ShmError::Disconnected);
        }
        Ok(())
    }

    /// Broadcast: the message goes to every connected client or to none.
    pub(crate) fn write_with(&self, priority: Priority, len: usize, mut fill: impl FnMut(&mut [u8])) -> ShmResult<()> {
        let mut tx = self.writer()?;
        if len > self.seg.geometry().max_message_size as usize {
            return Err(ShmError::MessageTooLarge);
        }
        // Only this process writes these rings, so room found now stays free.
        if tx.lacking_room(&self.seg, priority, len)?.is_some() {
            return Err(ShmError::BufferFull);
        }
        let Outbound { slots, targets, .. } = &mut *tx;
        for &i in targets.iter() {
            if let Some(s) = slots[i as usize].as_mut() {
                s.rings.write_with(priority, len, &mut fill)?;
            }
        }
        Ok(())
    }

    #[inline(always)]
    pub(crate) fn write_to_with<R>(
        &self,
        client: ClientId,
        priority: Priority,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> ShmResult<R> {
        let mut tx = self.writer()?;
        let r = tx.slot(client)?.rings.write_with(priority, len, fill);
        if let Err(ShmError::Corrupted(_)) = r {
            tx.ban(&self.seg, client.slot);
        }
        r
    }

    /// Broadcast that waits for room in every client's ring.
    pub(crate) fn write_timeout(&self, priority: Priority, data: &[u8], timeout: Option<Duration>) -> ShmResult<()> {
        let until = deadline(timeout);
        loop {
            match self.write_with(priority, data.len(), |b| b.copy_from_slice(data)) {
                Err(ShmError::BufferFull) => {}
                other => return other,
            }
            self.wait_for_room_all(priority, data.len(), until)?;
        }
    }

    /// Waits for room in one client's ring, then writes.
    pub(crate) fn write_to_timeout(
        &self,
        client: ClientId,
        priority: Priority,
        data: &[u8],
        timeout: Option<Duration>,
    ) -> ShmResult<()> {
        let until = deadline(timeout);
        loop {
            match self.write_to_with(client, priority, data.len(), |b| b.copy_from_slice(data)) {
                Err(ShmError::BufferFull) => {}
                other => return other,
            }
            self.wait_for_room_to(client, priority, data.len(), until)?;
        }
    }

    /// Blocks until a `len`-byte message of `priority` fits the ring to
    /// `client` (`Ok`), the client is gone ([`ShmError::UnknownClient`]), the
    /// daemon shuts down ([`ShmError::Disconnected`]) or `until` passes.
    /// While it waits it sweeps for dead clients every [`SWEEP_INTERVAL`], so
    /// a client that dies with a full ring is noticed, not waited for.
    pub(crate) fn wait_for_room_to(
        &self,
        client: ClientId,
        priority: Priority,
        len: usize,
        until: Option<Instant>,
    ) -> ShmResult<()> {
        let fits = |t: &mut Outbound| -> ShmResult<bool> {
            t.refresh(&self.seg);
            t.slot(client)?.rings.can_write(priority, len)
        };
        loop {
            if fits(&mut *self.writer()?)? {
                return Ok(());
            }
            // The client may be asleep waiting for a signal we have not sent yet:
            // wake it so it drains, or we would wait for each other.
            self.signal_client(client);
            let ready = || {
                if self.sweeper.due() {
                    self.sweep();
                }
                self.seg.is_shutting_down()
                    || self
                        .tx
                        .try_borrow_mut()
                        .map_or(true, |mut t| fits(&mut t).unwrap_or(true))
            };
            let space = &self.seg.channel(client.slot).to_client_space;
            if !space.wait_until_ticking(ready, self.spin.get(), until, Some(SWEEP_INTERVAL)) {
                return Err(ShmError::Timeout);
            }
        }
    }

    /// Like [`DaemonEngine::wait_for_room_to`], for room in every connected
    /// client's ring; clients that leave or die meanwhile stop counting.
    pub(crate) fn wait_for_room_all(&self, priority: Priority, len: usize, until: Option<Instant>) -> ShmResult<()> {
        loop {
            let Some(i) = self.writer()?.lacking_room(&self.seg, priority, len)? else {
                return Ok(());
            };
            self.seg.channel(i).client_wake.notify();
            let ready = || {
                if self.sweeper.due() {
                    self.sweep();
                }
                self.seg.is_shutting_down()
                    || self.tx.try_borrow_mut().map_or(true, |mut t| {
                        t.refresh(&self.seg);
                        !matches!(t.lacking_room(&self.seg, priority, len), Ok(Some(j)) if j == i)
                    })
            };
            let space = &self.seg.channel(i).to_client_space;
            if !space.wait_until_ticking(ready, self.spin.get(), until, Some(SWEEP_INTERVAL)) {
                return Err(ShmError::Timeout);
            }
        }
    }

    #[inline(always)]
    pub(crate) fn read_from_with<R>(&self, f: impl FnOnce(ClientId, Priority, &[u8]) -> R) -> ShmResult<Option<R>> {
        let r = self.reader()?.take(&self.seg, f)?;
        self.after_read(r.is_none())?;
        Ok(r)
    }

    /// Reads up to `max` messages (Critical first, fair among clients), waking
    /// blocked writers once per client at the end instead of once per message.
    pub(crate) fn read_from_batch_with(
        &self,
        max: usize,
        mut f: impl FnMut(ClientId, Priority, &[u8]),
    ) -> ShmResult<usize> {
        let mut rx = self.reader()?;
        let mut touched = std::mem::take(&mut rx.touched);
        touched.clear();
        let mut n = 0;
        let result = loop {
            if n == max {
                break Ok(());
            }
            match rx.take_burst(&self.seg, max - n, &mut touched, &mut f) {
                Ok(0) => break Ok(()),
                Ok(got) => n += got,
                Err(e) => break Err(e),
            }
        };
        EventWord::notify_each(touched.iter().map(|&i| &self.seg.channel(i).to_daemon_space));
        rx.touched = touched;
        result?;
        drop(rx);
        self.after_read(n == 0)?;
        Ok(n)
    }

    /// Writes several messages to one client, published together.
    pub(crate) fn write_to_batch<R>(
        &self,
        client: ClientId,
        f: impl FnOnce(&mut crate::pring::PriorityBatch<'_>) -> R,
    ) -> ShmResult<R> {
        self.with_producer_to(client, |p| f(&mut p.batch()))
    }

    /// Lends the writing ends of the rings to one client.
    pub(crate) fn with_producer_to<R>(
        &self,
        client: ClientId,
        f: impl FnOnce(&mut PriorityProducer) -> R,
    ) -> ShmResult<R> {
        let mut tx = self.writer()?;
        Ok(f(&mut tx.slot(client)?.rings))
    }

    /// Reclaims the slots of clients whose process died: a connected one is
    /// closed (its published messages are still read, then the slot is
    /// freed), a half-connected one is freed at once. Beats the heartbeat.
    /// Returns how many slots it reclaimed.
    pub(crate) fn sweep(&self) -> u32 {
        let seg = &self.seg;
        let reclaimed = (0..seg.geometry().max_clients)
            .filter(|&i| slot::reclaim_if_dead(seg, i))
            .count() as u32;
        seg.control()
            .heartbeat
            .store(crate::platform::monotonic_nanos(), Ordering::Relaxed);
        reclaimed
    }

    /// Wakes the clients sleeping in `wait` after this side wrote to them.
    pub(crate) fn signal(&self) {
        let seg = &self.seg;
        let connected = |i: &u32| slot::is_connected(seg, *i);
        EventWord::notify_each(
            (0..seg.geometry().max_clients)
                .filter(connected)
                .map(|i| &seg.channel(i).client_wake),
        );
    }

    pub(crate) fn signal_client(&self, client: ClientId) {
        if client.slot < self.seg.geometry().max_clients {
            self.seg.channel(client.slot).client_wake.notify();
        }
    }

    pub(crate) fn wait(&self, timeout: Option<Duration>) -> ShmResult<()> {
        let mut rx = self.rx.try_borrow_mut().map_err(|_| ShmError::Reentrant)?;
        let seg = &self.seg;
        let ready = || {
            if self.sweeper.due() {
                self.sweep();
            }
            rx.refresh(seg);
            if !rx.closing.is_empty() {
                rx.reap(seg, &self.tx);
            }
            rx.has_message() || seg.is_shutting_down()
        };
        // Tick so that a client's death, which nobody signals, is seen within a sweep interval.
        let ticks = Some(SWEEP_INTERVAL);
        if !seg
            .control()
            .daemon_wake
            .wait_until_ticking(ready, self.spin.get(), deadline(timeout), ticks)
        {
            return Err(ShmError::Timeout);
        }
        if rx.has_message() {
            Ok(())
        } else {
            Err(ShmError::Disconnected)
        }
    }

    pub(crate) fn clients(&self) -> Vec<ClientId> {
        slot::connected(&self.seg)
    }

    /// Fullest to-client ring, or the highest hint a client published.
    pub(crate) fn backpressure(&self) -> f32 {
        let mut level = 0f32;
        if let Ok(mut tx) = self.tx.try_borrow_mut() {
            tx.refresh(&self.seg);
            let Outbound { slots, targets, .. } = &mut *tx;
            for &i in targets.iter() {
                if let Some(s) = slots[i as usize].as_mut() {
                    level = level.max(s.rings.occupancy().unwrap_or(1.0));
                }
                level = level.max(channel::load_hint(&self.seg.channel(i).client_backpressure));
            }
        }
        level
    }

    pub(crate) fn set_backpressure(&self, level: f32) {
        channel::store_hint(&self.seg.control().daemon_backpressure, level);
    }

    pub(crate) fn stats(&self) -> Stats {
        let seg = &self.seg;
        let mut stats = Stats {
            daemon_wakeups: seg.control().daemon_wake.wakeups.load(Ordering::Relaxed),
            recovered_clients: seg.control().recovered_clients.load(Ordering::Relaxed),
            ..Stats::default()
        };
        for i in 0..seg.geometry().max_clients {
            let view = slot::view(seg, i);
            if !view.connected && !view.closed {
                continue;
            }
            let ch = seg.channel(i);
            stats.client_wakeups = stats
                .client_wakeups
                .wrapping_add(ch.client_wake.wakeups.load(Ordering::Relaxed));
            for p in Priority::ALL {
                stats.to_daemon[p.index()] += seg.ring(i, Direction::ToDaemon, p).counters();
                stats.to_client[p.index()] += seg.ring(i, Direction::ToClient, p).counters();
            }
        }
        stats
    }

    /// Tells clients to leave, wakes all of them, removes the segment's name.
    pub(crate) fn shutdown(&self) {
        let seg = &self.seg;
        seg.control().state.fetch_or(STATE_SHUTTING_DOWN, Ordering::AcqRel);
        let n = seg.geometry().max_clients;
        EventWord::notify_each((0..n).flat_map(|i| {
            let ch = seg.channel(i);
            [&ch.client_wake, &ch.to_daemon_space]
        }));
        seg.control().daemon_wake.notify();
        if !self.removed.replace(true) {
            seg.shared_memory().remove_if_current();
        }
    }
}

impl Drop for DaemonEngine {
    fn drop(&mut self) {
        self.shutdown();
    }
}
