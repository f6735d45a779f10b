//! The daemon's receiving part: the reading ends of every client's rings,
//! served Critical before High before Low across all clients, round-robin
//! among clients within a tier, in bursts.

use std::sync::{Arc, Mutex};
use std::task::{ready, Poll};
use std::time::{Duration, Instant};

use super::table::{self, attach, moved_epoch, Attached, Health, Shard, BURST, SWEEP_INTERVAL};
use crate::doorbell::{self, SlotSet};
use crate::endpoint::channel::{self, Flow, NotifyOnDrop, Throttle};
use crate::endpoint::fault::{Fault, Op};
use crate::endpoint::Stats;
use crate::priority::Priority;
use crate::ring::{PriorityConsumer, RingBytes};
use crate::segment::layout::{Direction, EventWord};
use crate::segment::Segment;
use crate::slot::{self, ClientId, Poison};
use crate::wait::{blocked, Block, Park};

/// What the daemon reads from.
struct Inbound {
    epoch: Option<u32>,
    slots: Vec<Option<Attached<PriorityConsumer>>>,
    /// Slots with attached rings.
    attached: SlotSet,
    /// Per slot and tier, how many looks in a row found the ring empty
    /// (see `crate::doorbell`).
    quiet: Vec<[u8; 3]>,
    /// Active slots whose client left: drained, then freed.
    closing: Vec<u32>,
    /// Per tier, the slot the next fair scan starts at.
    cursor: [u32; 3],
    /// Per tier, how many messages in a row came from the client at `cursor`.
    burst: [u32; 3],
    /// Slots a batch read consumed from (reused: no allocation per batch).
    touched: Vec<u32>,
    /// The slots this part serves.
    shard: Shard,
    /// Counters of the clients whose slots this daemon freed: what
    /// [`DaemonRx::stats`] adds to those of the clients still there. Shared
    /// with the daemon's control; locked only when a slot is freed.
    retired: Arc<Mutex<Stats>>,
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
        self.attached.clear();
        self.closing.clear();
        for i in self.shard.slots(seg) {
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
            let fresh = held.as_ref().map(|s| s.generation) != Some(view.id.generation);
            if attach(seg, i, view.id.generation, held, |s, i| {
                channel::consumer(s, i, Direction::ToDaemon)
            }) {
                self.attached.insert(i);
                if fresh {
                    self.quiet[i as usize] = [0; 3];
                }
            }
        }
    }

    /// Stops reading a slot whose rings hold impossible values and poisons
    /// it, so its client learns why.
    fn ban(&mut self, seg: &Segment, index: u32) {
        self.slots[index as usize] = None;
        self.attached.remove(index);
        slot::poison(seg, index, Poison::ByDaemon);
    }

    /// Rings the bell of every attached ring that holds something, whatever
    /// its bit says: run with each sweep, so that a bit a hostile peer
    /// cleared delays a message by one sweep interval at most.
    #[cold]
    #[inline(never)]
    fn look_at_all(&mut self, seg: &Segment) {
        for i in 0..self.slots.len() as u32 {
            let Some(slot) = self.slots[i as usize].as_mut() else {
                continue;
            };
            for p in Priority::ALL {
                if slot.rings.tier(p).may_have_message() {
                    doorbell::ring_again(seg, i, p);
                }
            }
        }
    }

    /// Whether a ring whose bell is rung has a message waiting.
    fn has_message(&mut self, seg: &Segment) -> bool {
        let slots = &mut self.slots;
        Priority::ALL.into_iter().any(|p| {
            self.attached.rung_slots(doorbell::bells(seg, p)).any(|i| {
                slots[i as usize]
                    .as_mut()
                    .is_some_and(|s| s.rings.tier(p).has_message())
            })
        })
    }

    /// Frees the slots of departed clients once their messages are read and
    /// `release(i)` says the sending part let go of slot `i` (if it cannot
    /// now, a later call tries again).
    #[cold]
    #[inline(never)]
    fn reap(&mut self, seg: &Segment, release: &mut impl FnMut(u32) -> bool) {
        let mut k = 0;
        while k < self.closing.len() {
            let i = self.closing[k];
            let drained = self.slots[i as usize].as_mut().map_or(true, |s| !s.rings.has_message());
            let released = drained && release(i);
            if !released {
                k += 1;
                continue;
            }
            self.slots[i as usize] = None;
            self.closing.swap_remove(k);
            self.attached.remove(i);
            // Counted and freed under one lock: a concurrent `stats` sees
            // the client either among the connected or among the retired.
            let mut retired = self.retired.lock().unwrap_or_else(|p| p.into_inner());
            retired.add_channel(seg, i);
            slot::free(seg, i);
            drop(retired);
        }
    }

    /// The ring of the next message to take: the most urgent tier with a
    /// rung ring that may hold one; within it, the first such client at or
    /// after the tier's cursor, else the first before it (round-robin). A
    /// tier nobody rang costs one load per 64 slots.
    #[inline(always)]
    fn select(&mut self, seg: &Segment) -> Option<(u32, Priority)> {
        let words = self.attached.words();
        for p in Priority::ALL {
            let t = p.index();
            let start = self.cursor[t];
            let mut wrapped = None;
            let bells = doorbell::bells(seg, p);
            for w in 0..words {
                let mut rung = self.attached.rung_in(bells, w);
                while rung != 0 {
                    let index = (w * 64) as u32 + rung.trailing_zeros();
                    rung &= rung - 1;
                    let Some(slot) = self.slots[index as usize].as_mut() else {
                        continue;
                    };
                    let ring = slot.rings.tier(p);
                    if !ring.may_have_message() {
                        let quiet = &mut self.quiet[index as usize][t];
                        *quiet += 1;
                        if *quiet >= doorbell::QUIET_LOOKS {
                            *quiet = 0;
                            silence(seg, index, p, ring);
                        }
                        continue;
                    }
                    if index >= start {
                        return Some((index, p));
                    }
                    wrapped.get_or_insert(index);
                }
            }
            if let Some(index) = wrapped {
                return Some((index, p));
            }
        }
        None
    }

    /// Moves tier `t`'s cursor after a message from slot `index`: fair in
    /// bursts, staying on one client for up to BURST messages of the tier
    /// (reading one ring in sequence is much cheaper than hopping between
    /// rings), then on to the next. Higher tiers are still checked before
    /// every message.
    #[inline]
    fn served(&mut self, t: usize, index: u32) {
        if index != self.cursor[t] {
            self.cursor[t] = index; // a new client's burst begins
            self.burst[t] = 0;
        }
        self.burst[t] += 1;
        if self.burst[t] >= BURST {
            self.burst[t] = 0;
            self.cursor[t] = index + 1;
        }
        self.quiet[index as usize][t] = 0;
    }

    /// Takes the next message: Critical before High before Low across all
    /// clients, round-robin among clients within a tier.
    #[inline(always)]
    fn take<R>(&mut self, seg: &Segment, f: impl FnOnce(ClientId, Priority, RingBytes<'_>) -> R) -> Op<Option<R>> {
        // A ring that seemed to hold something may hold only a wrap record,
        // which `peek` consumes: look again (each retry consumed one).
        for _ in 0..SELECT_ATTEMPTS {
            let Some((index, p)) = self.select(seg) else {
                return Ok(None);
            };
            let Some(Attached {
                generation,
                rings,
                channel,
            }) = self.slots[index as usize].as_mut()
            else {
                return Ok(None);
            };
            let id = ClientId {
                slot: index,
                generation: *generation,
            };
            let ring = rings.tier(p);
            match ring.peek() {
                Ok(None) => continue,
                Ok(Some(m)) => {
                    let r = {
                        // Wakes a client blocked on a full ring, even if `f` panics.
                        let _wake = NotifyOnDrop::always(&channel.to_daemon_space);
                        ring.deliver(m, |prio, bytes| f(id, prio, bytes))
                    };
                    self.served(p.index(), index);
                    return Ok(Some(r));
                }
                Err(e) => {
                    self.ban(seg, index);
                    return Err(Fault::Ring(e));
                }
            }
        }
        Ok(None)
    }

    /// Reads a burst (up to `min(max, BURST)` messages) from the ring
    /// `select` chooses; the ring's space goes back to its producer once,
    /// after the burst. Higher tiers are checked before every burst. Returns
    /// how many were read (0: all empty).
    fn take_burst(
        &mut self,
        seg: &Segment,
        max: usize,
        touched: &mut Vec<u32>,
        f: &mut impl FnMut(ClientId, Priority, RingBytes<'_>),
    ) -> Op<usize> {
        for _ in 0..SELECT_ATTEMPTS {
            let Some((index, p)) = self.select(seg) else {
                return Ok(0);
            };
            let Some(slot) = self.slots[index as usize].as_mut() else {
                return Ok(0);
            };
            let id = ClientId {
                slot: index,
                generation: slot.generation,
            };
            match slot
                .rings
                .tier(p)
                .read_batch_with(max.min(BURST as usize), |prio, b| f(id, prio, b))
            {
                Ok(0) => continue,
                Ok(got) => {
                    if !touched.contains(&index) {
                        touched.push(index);
                    }
                    let t = p.index();
                    self.quiet[index as usize][t] = 0;
                    self.cursor[t] = index + 1; // a burst served: the next client's turn
                    self.burst[t] = 0;
                    return Ok(got);
                }
                Err(e) => {
                    self.ban(seg, index);
                    return Err(Fault::Ring(e));
                }
            }
        }
        Ok(0)
    }
}

/// Clears the bell of slot `index`'s ring of tier `p`, then looks at the
/// ring once more: if the client published meanwhile, rings it again (see
/// `crate::doorbell`).
#[cold]
fn silence(seg: &Segment, index: u32, p: Priority, ring: &mut crate::ring::RingConsumer) {
    doorbell::silence(seg, index, p);
    if ring.has_message() {
        doorbell::ring_again(seg, index, p);
    }
}

/// How many times a read selects a ring again after finding only a wrap
/// record there (each time consumes one): a bound, not a expected count.
const SELECT_ATTEMPTS: usize = 8;

/// The receiving part of the daemon.
pub(crate) struct DaemonRx {
    seg: Segment,
    /// Fork and truncation checks.
    health: Health,
    spin: Duration,
    /// Paces liveness sweeps of the client table.
    sweeper: Throttle,
    inb: Inbound,
    /// Paces the first look after the messages ran out.
    pub(super) flow: Flow,
}

impl std::fmt::Debug for DaemonRx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonRx")
            .field("segment", self.seg.name())
            .finish_non_exhaustive()
    }
}

impl DaemonRx {
    pub(crate) fn new(
        seg: Segment,
        spin: Duration,
        shard: Shard,
        fork_generation: u32,
        retired: Arc<Mutex<Stats>>,
    ) -> DaemonRx {
        let n = seg.geometry().max_clients as usize;
        DaemonRx {
            inb: Inbound {
                epoch: None,
                slots: (0..n).map(|_| None).collect(),
                attached: SlotSet::with_words(doorbell::words_for(n as u32)),
                quiet: vec![[0; 3]; n],
                closing: Vec::new(),
                cursor: [0; 3],
                burst: [0; 3],
                touched: Vec::with_capacity(n),
                shard,
                retired,
            },
            seg,
            health: Health::new(fork_generation),
            spin,
            sweeper: Throttle::new(SWEEP_INTERVAL),
            flow: Flow::default(),
        }
    }

    pub(crate) fn fork_generation(&self) -> u32 {
        self.health.fork_generation()
    }

    pub(crate) fn set_spin(&mut self, spin: Duration) {
        self.spin = spin;
    }

    pub(crate) fn spin(&self) -> Duration {
        self.spin
    }

    pub(crate) fn shard(&self) -> Shard {
        self.inb.shard
    }

    /// Whether a departed client this part has seen (every read looks at
    /// the table first) waits to be drained or freed: one load.
    #[inline(always)]
    pub(crate) fn may_have_departed(&self) -> bool {
        !self.inb.closing.is_empty()
    }

    /// Brings the table up to date and frees drained slots of departed
    /// clients that `release` lets go of.
    #[inline]
    pub(crate) fn refresh(&mut self, release: &mut impl FnMut(u32) -> bool) {
        self.inb.refresh(&self.seg);
        if !self.inb.closing.is_empty() {
            self.inb.reap(&self.seg, release);
        }
    }

    /// After a read: sweep for dead clients now and then (while busy at
    /// most every 256 reads); an empty read does more.
    #[inline(always)]
    fn after_read(&mut self, empty: bool) -> Op<()> {
        if empty {
            return self.after_empty_read();
        }
        if self.sweeper.tick() {
            table::sweep(&self.seg);
            self.inb.look_at_all(&self.seg);
        }
        Ok(())
    }

    /// After a read that found nothing: sweep for dead clients by the clock,
    /// and report a cut segment or the daemon's shutdown.
    #[inline(never)]
    fn after_empty_read(&mut self) -> Op<()> {
        if self.sweeper.due() {
            table::sweep(&self.seg);
            self.inb.look_at_all(&self.seg);
        }
        // The scan may have found pages gone: say so now, not next time.
        self.health.check(&self.seg, self.inb.shard)?;
        if self.seg.is_shutting_down() {
            return Err(Fault::Disconnected);
        }
        Ok(())
    }

    /// Passes the next message and its sender to `f` in place. `Ok(None)`:
    /// none waiting.
    #[inline(always)]
    pub(crate) fn read_from_with<R>(
        &mut self,
        release: &mut impl FnMut(u32) -> bool,
        f: impl FnOnce(ClientId, Priority, RingBytes<'_>) -> R,
    ) -> Op<Option<R>> {
        self.health.check(&self.seg, self.inb.shard)?;
        self.refresh(release);
        let r = self.inb.take(&self.seg, f)?;
        if !self.inb.closing.is_empty() {
            // The read may have drained a departed client: free its slot now.
            self.inb.reap(&self.seg, release);
        }
        self.after_read(r.is_none())?;
        Ok(r)
    }

    /// Reads up to `max` messages (Critical first, fair among clients), waking
    /// blocked writers once per client at the end instead of once per message.
    pub(crate) fn read_from_batch_with(
        &mut self,
        release: &mut impl FnMut(u32) -> bool,
        max: usize,
        mut f: impl FnMut(ClientId, Priority, RingBytes<'_>),
    ) -> Op<usize> {
        self.health.check(&self.seg, self.inb.shard)?;
        self.refresh(release);
        let inb = &mut self.inb;
        let mut touched = std::mem::take(&mut inb.touched);
        touched.clear();
        let mut n = 0;
        let result = loop {
            if n == max {
                break Ok(());
            }
            match inb.take_burst(&self.seg, max - n, &mut touched, &mut f) {
                Ok(0) => break Ok(()),
                Ok(got) => n += got,
                Err(e) => break Err(e),
            }
        };
        EventWord::notify_each(touched.iter().map(|&i| &self.seg.channel(i).to_daemon_space));
        inb.touched = touched;
        if !inb.closing.is_empty() {
            inb.reap(&self.seg, release);
        }
        result?;
        self.after_read(n == 0)?;
        Ok(n)
    }

    /// Waits through `park` until a message is waiting (`Ok`), the daemon
    /// shuts down ([`Fault::Disconnected`]) or `until` passes. Sweeps for
    /// dead clients every [`SWEEP_INTERVAL`] meanwhile.
    pub(crate) fn poll_wait(
        &mut self,
        park: &mut impl Park,
        release: &mut impl FnMut(u32) -> bool,
        until: Option<Instant>,
    ) -> Poll<Op<()>> {
        self.health.check(&self.seg, self.inb.shard)?;
        let DaemonRx {
            seg,
            spin,
            sweeper,
            inb,
            ..
        } = self;
        let ready = || {
            if sweeper.due() {
                table::sweep(seg);
                inb.look_at_all(seg);
            }
            inb.refresh(seg);
            if !inb.closing.is_empty() {
                inb.reap(seg, release);
            }
            inb.has_message(seg) || seg.is_shutting_down()
        };
        // Tick so that a client's death, which nobody signals, is seen within a sweep interval.
        let (mapping, event) = (seg.shared_memory(), &seg.control().daemon_wake);
        if !ready!(park.park(mapping, event, ready, *spin, until, Some(SWEEP_INTERVAL))) {
            return Poll::Ready(Err(Fault::Timeout));
        }
        if inb.has_message(seg) {
            Poll::Ready(Ok(()))
        } else {
            Poll::Ready(Err(Fault::Disconnected))
        }
    }

    /// Blocks until a message is waiting (see [`DaemonRx::poll_wait`]).
    pub(crate) fn wait(&mut self, release: &mut impl FnMut(u32) -> bool, until: Option<Instant>) -> Op<()> {
        blocked(self.poll_wait(&mut Block, release, until))
    }
}
