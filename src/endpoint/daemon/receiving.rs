//! The daemon's receiving part: the reading ends of every client's rings,
//! served Critical before High before Low across all clients, round-robin
//! among clients within a tier, in bursts.

use std::time::{Duration, Instant};

use super::table::{self, attach, moved_epoch, Attached, Health, Shard, BURST, SWEEP_INTERVAL};
use crate::endpoint::channel::{self, NotifyOnDrop, Throttle};
use crate::endpoint::fault::{Fault, Op};
use crate::endpoint::Stats;
use crate::pring::PriorityConsumer;
use crate::priority::Priority;
use crate::segment::layout::{Direction, EventWord};
use crate::segment::Segment;
use crate::slot::{self, ClientId, Poison};

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
    /// The slots this part serves.
    shard: Shard,
    /// Counters of the clients whose slots this daemon freed: what
    /// [`DaemonRx::stats`] adds to those of the clients still there.
    retired: Stats,
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
            self.active.retain(|&a| a != i);
            self.retired.add_channel(seg, i);
            slot::free(seg, i);
        }
    }

    /// Takes the next message: Critical before High before Low across all
    /// clients, round-robin among clients within a tier.
    fn take<R>(&mut self, seg: &Segment, f: impl FnOnce(ClientId, Priority, &[u8]) -> R) -> Op<Option<R>> {
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
                        return Err(Fault::Ring(e));
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
    ) -> Op<usize> {
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
                        return Err(Fault::Ring(e));
                    }
                }
            }
        }
        Ok(0)
    }
}

/// The receiving part of the daemon.
pub(crate) struct DaemonRx {
    seg: Segment,
    /// Fork and truncation checks.
    health: Health,
    spin: Duration,
    /// Paces liveness sweeps of the client table.
    sweeper: Throttle,
    inb: Inbound,
}

impl std::fmt::Debug for DaemonRx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonRx")
            .field("segment", self.seg.name())
            .finish_non_exhaustive()
    }
}

impl DaemonRx {
    pub(crate) fn new(seg: Segment, spin: Duration, shard: Shard, fork_generation: u32) -> DaemonRx {
        let n = seg.geometry().max_clients as usize;
        DaemonRx {
            inb: Inbound {
                epoch: None,
                slots: (0..n).map(|_| None).collect(),
                active: Vec::with_capacity(n),
                closing: Vec::new(),
                cursor: [0; 3],
                burst: [0; 3],
                touched: Vec::with_capacity(n),
                shard,
                retired: Stats::default(),
            },
            seg,
            health: Health::new(fork_generation),
            spin,
            sweeper: Throttle::new(SWEEP_INTERVAL),
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

    /// Counters of the rings and wake-ups: the clients there now, and every
    /// client whose slot this daemon freed.
    pub(crate) fn stats(&self) -> Stats {
        table::stats(&self.seg, self.inb.shard, &self.inb.retired)
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
        }
        Ok(())
    }

    /// After a read that found nothing: sweep for dead clients by the clock,
    /// and report a cut segment or the daemon's shutdown.
    #[inline(never)]
    fn after_empty_read(&mut self) -> Op<()> {
        if self.sweeper.due() {
            table::sweep(&self.seg);
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
        f: impl FnOnce(ClientId, Priority, &[u8]) -> R,
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
        mut f: impl FnMut(ClientId, Priority, &[u8]),
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

    /// Blocks until a message is waiting (`Ok`), the daemon shuts down
    /// ([`Fault::Disconnected`]) or `timeout` passes. Sweeps for dead
    /// clients every [`SWEEP_INTERVAL`] meanwhile.
    pub(crate) fn wait(&mut self, release: &mut impl FnMut(u32) -> bool, until: Option<Instant>) -> Op<()> {
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
            }
            inb.refresh(seg);
            if !inb.closing.is_empty() {
                inb.reap(seg, release);
            }
            inb.has_message() || seg.is_shutting_down()
        };
        // Tick so that a client's death, which nobody signals, is seen within a sweep interval.
        let ticks = Some(SWEEP_INTERVAL);
        if !seg.control().daemon_wake.wait_until_ticking(ready, *spin, until, ticks) {
            return Err(Fault::Timeout);
        }
        if inb.has_message() {
            Ok(())
        } else {
            Err(Fault::Disconnected)
        }
    }
}
