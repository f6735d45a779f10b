//! The daemon's sending part: the writing ends of every client's rings, to
//! one client or, all or none, to every client.

use std::sync::Arc;
use std::task::{ready, Poll};
use std::time::{Duration, Instant};

use super::handoff::Handoff;
use super::table::{self, attach, moved_epoch, unknown_client, Attached, Health, Shard, SWEEP_INTERVAL};
use crate::endpoint::channel::{self, wait_for_room, Deadline, Throttle};
use crate::endpoint::fault::{Fault, Op};
use crate::endpoint::outlet::Outlet;
use crate::priority::Priority;
use crate::ring::PriorityProducer;
use crate::ring::RingError;
use crate::segment::layout::Direction;
use crate::segment::Segment;
use crate::slot::{self, ClientId, Poison};
use crate::wait::{blocked, Block, Park};

/// What the daemon writes to.
struct Outbound {
    /// Requests of the receiving half to let go of departed clients' slots.
    handoff: Arc<Handoff>,
    epoch: Option<u32>,
    slots: Vec<Option<Attached<PriorityProducer>>>,
    /// Connected slots with attached rings.
    targets: Vec<u32>,
    /// The table moved since `take_moved` last looked.
    moved: bool,
    /// The slots this part serves.
    shard: Shard,
}

impl Outbound {
    /// Lets go of the slots the receiving half asked for, then rebuilds the
    /// view of the slots if the epoch moved: one load each when not.
    ///
    /// In that order: a slot the daemon's own receive freed at once (see
    /// `handoff.rs`) may have a new client by now, whose rings the rebuild
    /// attaches; letting go after it would drop the new client's.
    #[inline]
    fn refresh(&mut self, seg: &Segment) {
        if self.handoff.has_requests() {
            self.answer_requests();
        }
        if let Some(epoch) = moved_epoch(self.epoch, seg) {
            self.rebuild(seg, epoch);
            self.moved = true;
        }
    }

    /// Lets go of the slots the receiving half asked for (see `handoff.rs`).
    #[cold]
    #[inline(never)]
    fn answer_requests(&mut self) {
        let Outbound {
            handoff,
            slots,
            targets,
            ..
        } = self;
        handoff.answer(|i| {
            if let Some(held) = slots.get_mut(i as usize) {
                *held = None;
            }
            targets.retain(|&t| t != i);
        });
    }

    #[cold]
    fn rebuild(&mut self, seg: &Segment, epoch: u32) {
        self.epoch = Some(epoch);
        self.targets.clear();
        for i in self.shard.slots(seg) {
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
    fn slot(&mut self, client: ClientId) -> Op<&mut Attached<PriorityProducer>> {
        match self.slots.get_mut(client.slot as usize) {
            Some(Some(s)) if s.generation == client.generation => Ok(s),
            _ => Err(unknown_client(client)),
        }
    }

    /// First target without room for the message, if any.
    fn lacking_room(&mut self, seg: &Segment, priority: Priority, len: usize) -> Op<Option<u32>> {
        for k in 0..self.targets.len() {
            let i = self.targets[k];
            let Some(slot) = self.slots[i as usize].as_mut() else {
                continue;
            };
            match slot.rings.can_write(priority, len) {
                Ok(true) => {}
                Ok(false) => return Ok(Some(i)),
                Err(RingError::Corrupted(what)) => {
                    self.ban(seg, i);
                    return Err(Fault::Ring(RingError::Corrupted(what)));
                }
                Err(e) => return Err(Fault::Ring(e)),
            }
        }
        Ok(None)
    }
}

/// The sending part of the daemon.
pub(crate) struct DaemonTx {
    seg: Segment,
    /// Fork and truncation checks.
    health: Health,
    spin: Duration,
    /// Paces liveness sweeps while a blocking write waits.
    sweeper: Throttle,
    out: Outbound,
}

impl Drop for DaemonTx {
    /// Lets go of every client's rings, then tells a split receiving half
    /// that it may free slots without asking.
    fn drop(&mut self) {
        self.out.slots.clear();
        self.out.targets.clear();
        self.out.handoff.sender_dropped();
    }
}

impl std::fmt::Debug for DaemonTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonTx")
            .field("segment", self.seg.name())
            .finish_non_exhaustive()
    }
}

impl DaemonTx {
    pub(crate) fn new(
        seg: Segment,
        spin: Duration,
        shard: Shard,
        fork_generation: u32,
        handoff: Arc<Handoff>,
    ) -> DaemonTx {
        let n = seg.geometry().max_clients as usize;
        DaemonTx {
            out: Outbound {
                handoff,
                epoch: None,
                slots: (0..n).map(|_| None).collect(),
                targets: Vec::with_capacity(n),
                moved: false,
                shard,
            },
            seg,
            health: Health::new(fork_generation),
            spin,
            sweeper: Throttle::new(SWEEP_INTERVAL),
        }
    }

    pub(crate) fn segment(&self) -> &Segment {
        &self.seg
    }

    pub(crate) fn shard(&self) -> Shard {
        self.out.shard
    }

    pub(crate) fn set_spin(&mut self, spin: Duration) {
        self.spin = spin;
    }

    /// Lets go of slot `index` (its client left; the receiving part frees it).
    pub(crate) fn detach(&mut self, index: u32) {
        self.out.detach(index);
    }

    /// The record through which a split receiving half asks this part to
    /// let go of slots.
    pub(crate) fn handoff(&self) -> &Arc<Handoff> {
        &self.out.handoff
    }

    /// Whether the client table moved at the last send: then the receiving
    /// part may have slots to free (see `daemon::tidy`).
    #[inline]
    pub(crate) fn table_moved(&self) -> bool {
        self.out.moved
    }

    pub(crate) fn clear_table_moved(&mut self) {
        self.out.moved = false;
    }

    /// Lets go of the slots the receiving half asked for, as every send
    /// does first (one load when none was asked for).
    #[inline]
    pub(crate) fn release_departed(&mut self) {
        if self.out.handoff.has_requests() {
            self.out.answer_requests();
        }
    }

    /// The writing side, current with the client table; refused in a
    /// forked child and once the daemon shuts down.
    #[inline(always)]
    fn writer(&mut self) -> Op<(&Segment, &mut Outbound)> {
        self.health.check(&self.seg, self.out.shard)?;
        if self.seg.is_shutting_down() {
            return Err(Fault::Disconnected);
        }
        self.out.refresh(&self.seg);
        Ok((&self.seg, &mut self.out))
    }

    /// Broadcast: the message goes to every connected client or to none.
    pub(crate) fn write_with(&mut self, priority: Priority, len: usize, mut fill: impl FnMut(&mut [u8])) -> Op<()> {
        if len > self.seg.geometry().max_message_size as usize {
            return Err(Fault::Ring(RingError::TooLarge {
                len,
                max: self.seg.geometry().max_message_size as usize,
            }));
        }
        let (seg, out) = self.writer()?;
        // Only this process writes these rings, so room found now stays free.
        if out.lacking_room(seg, priority, len)?.is_some() {
            return Err(Fault::FULL);
        }
        let Outbound { slots, targets, .. } = out;
        for &i in targets.iter() {
            if let Some(s) = slots[i as usize].as_mut() {
                s.rings.write_with(priority, len, &mut fill)?;
            }
        }
        Ok(())
    }

    /// Writes a `len`-byte message in place to one client, without a wake-up.
    #[inline(always)]
    pub(crate) fn write_to_with<R>(
        &mut self,
        client: ClientId,
        priority: Priority,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> Op<R> {
        let written = {
            let (_, out) = self.writer()?;
            out.slot(client)?.rings.write_with(priority, len, fill)
        };
        match written {
            Ok(r) => Ok(r),
            Err(e) => Err(self.write_failed(client, e)),
        }
    }

    /// A write to `client` failed: a corrupt ring bans (poisons) the client.
    #[cold]
    fn write_failed(&mut self, client: ClientId, e: RingError) -> Fault {
        if let RingError::Corrupted(_) = e {
            self.out.ban(&self.seg, client.slot);
        }
        Fault::Ring(e)
    }

    /// Broadcast that waits until `until` for room in every client's ring,
    /// without a wake-up.
    pub(crate) fn write_all_until(&mut self, priority: Priority, data: &[u8], mut until: Deadline) -> Op<()> {
        blocked(self.poll_write_all(&mut Block, priority, data, &mut until))
    }

    /// [`DaemonTx::write_all_until`] through `park`.
    pub(crate) fn poll_write_all(
        &mut self,
        park: &mut impl Park,
        priority: Priority,
        data: &[u8],
        until: &mut Deadline,
    ) -> Poll<Op<()>> {
        loop {
            match self.write_with(priority, data.len(), |b| b.copy_from_slice(data)) {
                Err(Fault::FULL) => {}
                other => return Poll::Ready(other),
            }
            let (len, until) = (data.len(), until.instant());
            ready!(self.wait_until_room(park, until, |out, seg| out.lacking_room(seg, priority, len)))?;
        }
    }

    /// The way to one client, as an [`Outlet`].
    #[inline(always)]
    pub(crate) fn to(&mut self, client: ClientId) -> ToClient<'_> {
        ToClient { tx: self, client }
    }

    /// Waits until a `len`-byte message of `priority` fits the ring to
    /// `client` (`Ok`), the client is gone ([`Fault::UnknownClient`]), the
    /// daemon shuts down ([`Fault::Disconnected`]) or `until` passes.
    /// While it waits it sweeps for dead clients every [`SWEEP_INTERVAL`], so
    /// a client that dies with a full ring is noticed, not waited for.
    pub(crate) fn poll_room_to(
        &mut self,
        park: &mut impl Park,
        client: ClientId,
        priority: Priority,
        len: usize,
        until: Option<Instant>,
    ) -> Poll<Op<()>> {
        self.wait_until_room(park, until, |out, _| {
            let fits = out.slot(client)?.rings.can_write(priority, len)?;
            Ok((!fits).then_some(client.slot))
        })
    }

    /// Waits until `find` names no client slot whose ring lacks room (for a
    /// broadcast: clients that leave or die meanwhile stop counting). Each
    /// check sweeps for dead clients now and then, refuses once the daemon
    /// shuts down and follows the client table first.
    fn wait_until_room(
        &mut self,
        park: &mut impl Park,
        until: Option<Instant>,
        mut find: impl FnMut(&mut Outbound, &Segment) -> Op<Option<u32>>,
    ) -> Poll<Op<()>> {
        let DaemonTx {
            seg,
            spin,
            sweeper,
            out,
            ..
        } = self;
        let seg: &Segment = seg;
        wait_for_room(park, seg.shared_memory(), *spin, until, SWEEP_INTERVAL, move || {
            if sweeper.due() {
                table::sweep(seg);
            }
            if seg.is_shutting_down() {
                return Err(Fault::Disconnected);
            }
            out.refresh(seg);
            Ok(find(out, seg)?.map(|i| table::lacking(seg, i)))
        })
    }

    /// Lends the writing ends of the rings to one client.
    pub(crate) fn with_producer_to<R>(
        &mut self,
        client: ClientId,
        f: impl FnOnce(&mut PriorityProducer) -> R,
    ) -> Op<R> {
        let (_, out) = self.writer()?;
        Ok(f(&mut out.slot(client)?.rings))
    }
}

/// The daemon's way to one client: writes to its rings, waits for room in
/// them, wakes it.
pub(crate) struct ToClient<'a> {
    tx: &'a mut DaemonTx,
    client: ClientId,
}

impl Outlet for ToClient<'_> {
    #[inline(always)]
    fn write<R>(&mut self, priority: Priority, len: usize, fill: impl FnOnce(&mut [u8]) -> R) -> Op<R> {
        self.tx.write_to_with(self.client, priority, len, fill)
    }

    fn poll_room(
        &mut self,
        park: &mut impl Park,
        priority: Priority,
        len: usize,
        until: Option<Instant>,
    ) -> Poll<Op<()>> {
        self.tx.poll_room_to(park, self.client, priority, len, until)
    }

    #[inline]
    fn wake(&self) {
        table::signal_client(&self.tx.seg, self.client);
    }
}
