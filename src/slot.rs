//! The life cycle of a client slot: the one owner of the slot state in the
//! segment. The endpoints change it only through these verbs.
//!
//! ```text
//!          claim            connect             close / reclaim      free
//!   FREE --------> CLAIMED --------> CONNECTED ----------------> CLOSED ----> FREE
//!                     |   abandon / reclaim                         ^
//!                     +-------------------------> FREE               |
//!                                     (the daemon drains it first) --+
//! ```
//!
//! - `claim`, `open`, `connect`, `abandon` and `close` are the client's; it
//!   holds its slot's liveness lock from `claim` until after `close`.
//! - `reclaim_dead` (a client's lock is gone: its process died) and `free`
//!   are the daemon's.
//! - Every change that alters who the daemon serves bumps the segment's
//!   epoch, so the daemon re-reads the table only when it moved (one load
//!   per call otherwise).
//! - `poison` marks a channel unusable for both sides.

use std::fmt;
use std::sync::atomic::Ordering;

use crate::platform;
use crate::priority::Priority;
use crate::segment::layout::{
    client_lock_byte, ChannelHeader, Direction, POISON_NONE, POISON_TO_CLIENT, POISON_TO_DAEMON, SLOT_CLAIMED,
    SLOT_CLOSED, SLOT_CONNECTED, SLOT_FREE,
};
use crate::segment::{Segment, SegmentError};

/// Identifies a client slot and its occupant: a later client in the same
/// slot has another id, so a reply never reaches the wrong process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientId {
    pub(crate) slot: u32,
    pub(crate) generation: u32,
}

impl ClientId {
    /// Index of the client's slot in the segment.
    pub fn slot(&self) -> u32 {
        self.slot
    }

    /// How many clients have held this slot, this one included.
    pub fn generation(&self) -> u32 {
        self.generation
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.slot, self.generation)
    }
}

/// Which side found a channel corrupt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Poison {
    /// The daemon found the client's rings corrupt.
    ByDaemon,
    /// The client found the daemon's rings corrupt.
    ByClient,
}

impl Poison {
    /// What the poisoned side's peer is told.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Poison::ByDaemon => "the daemon found this client's rings corrupt",
            Poison::ByClient => "this client found the daemon's rings corrupt",
        }
    }
}

/// A slot as the daemon sees it when it rebuilds its table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SlotView {
    pub(crate) id: ClientId,
    /// The client is connected (served in both directions).
    pub(crate) connected: bool,
    /// The client left or died: read what it sent, then free the slot.
    pub(crate) closed: bool,
    pub(crate) poisoned: bool,
}

/// The segment's table epoch (one load).
#[inline]
pub(crate) fn epoch(seg: &Segment) -> u32 {
    seg.control().epoch.load(Ordering::Acquire)
}

fn bump_epoch(seg: &Segment) {
    seg.control().epoch.fetch_add(1, Ordering::Release);
}

/// Reads slot `i` for the daemon's table.
pub(crate) fn view(seg: &Segment, i: u32) -> SlotView {
    let ch = seg.channel(i);
    // SYNC POINT: Acquire pairs with the client's Release store of the state in
    // `connect` (made after it reset the rings, before it bumped the epoch).
    let state = ch.state.load(Ordering::Acquire);
    SlotView {
        id: ClientId {
            slot: i,
            generation: ch.generation.load(Ordering::Relaxed),
        },
        connected: state == SLOT_CONNECTED,
        closed: state == SLOT_CLOSED,
        poisoned: ch.poison.load(Ordering::Acquire) != POISON_NONE,
    }
}

/// The connected clients.
pub(crate) fn connected(seg: &Segment) -> Vec<ClientId> {
    (0..seg.geometry().max_clients)
        .map(|i| view(seg, i))
        .filter(|v| v.connected)
        .map(|v| v.id)
        .collect()
}

/// Why a client could not claim a slot.
#[derive(Debug)]
pub(crate) enum ClaimError {
    /// Every slot is taken, counted during the scan that found none free.
    Full {
        /// Slots of the segment.
        max_clients: u32,
        /// Slots of connected or connecting clients (and of free slots whose
        /// lock a client leaving or arriving still held).
        live: u32,
        /// Slots of clients that left, which the daemon frees once it has
        /// read what they sent.
        draining: u32,
    },
    /// A liveness lock could not be taken or tested.
    Lock(SegmentError),
}

/// Client: claims a free slot, first its liveness lock (so the daemon never
/// sees the slot claimed by nobody alive), then the state. When none is
/// free, says how the taken ones are held, as this scan found them.
pub(crate) fn claim(seg: &Segment) -> Result<u32, ClaimError> {
    let max = seg.geometry().max_clients;
    let file = seg.shared_memory().file();
    let mut draining = 0;
    for i in 0..max {
        let ch = seg.channel(i);
        match ch.state.load(Ordering::Relaxed) {
            SLOT_FREE => {}
            SLOT_CLOSED => {
                draining += 1;
                continue;
            }
            _ => continue,
        }
        let byte = client_lock_byte(i);
        match platform::try_lock_byte(file, byte) {
            Ok(true) => {}
            Ok(false) => continue, // a live client is taking or leaving it
            Err(e) => return Err(ClaimError::Lock(seg.name().io_error("lock", e))),
        }
        // SYNC POINT: Acquire pairs with the daemon's Release in `free`: it no
        // longer reads or writes these rings.
        if ch
            .state
            .compare_exchange(SLOT_FREE, SLOT_CLAIMED, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            return Ok(i);
        }
        let _ = platform::unlock_byte(file, byte);
    }
    Err(ClaimError::Full {
        max_clients: max,
        live: max - draining,
        draining,
    })
}

/// Client: makes a claimed slot its own: a new generation, its process
/// identity, empty rings, no poison. Returns its id.
pub(crate) fn open(seg: &Segment, i: u32) -> ClientId {
    let ch = seg.channel(i);
    let generation = ch.generation.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
    let pid = platform::current_pid();
    ch.client_pid.store(pid, Ordering::Relaxed);
    ch.client_start_time
        .store(platform::process_start_time(pid).unwrap_or(0), Ordering::Relaxed);
    reset(seg, i);
    ClientId { slot: i, generation }
}

/// Empties all six rings of channel `i` and clears its wait registrations,
/// hint and poison. Only for a slot its caller has claimed, which no other
/// process touches.
fn reset(seg: &Segment, i: u32) {
    for d in [Direction::ToDaemon, Direction::ToClient] {
        for p in Priority::ALL {
            seg.reset_ring(i, d, p);
        }
    }
    let ch = seg.channel(i);
    for e in [&ch.client_wake, &ch.to_daemon_space, &ch.to_client_space] {
        e.waiters.store(0, Ordering::Relaxed);
    }
    ch.client_backpressure.store(0, Ordering::Relaxed);
    ch.poison.store(POISON_NONE, Ordering::Relaxed);
}

/// Client: publishes its opened slot to the daemon.
pub(crate) fn connect(seg: &Segment, i: u32) {
    // SYNC POINT: Release publishes the reset rings; pairs with the daemon's
    // Acquire in `view` after it sees the epoch move.
    seg.channel(i).state.store(SLOT_CONNECTED, Ordering::Release);
    seg.control().client_count.fetch_add(1, Ordering::AcqRel);
    bump_epoch(seg);
    lifecycle!(INFO, "client connected", seg, slot = i, pid = platform::current_pid());
}

/// Client: gives a claimed slot back without connecting, and its lock.
pub(crate) fn abandon(seg: &Segment, i: u32) {
    seg.channel(i).state.store(SLOT_FREE, Ordering::Release);
    let _ = platform::unlock_byte(seg.shared_memory().file(), client_lock_byte(i));
}

/// Client: leaves. Its slot turns CLOSED (if it still holds it), the daemon
/// is woken to drain and free it, and the liveness lock is let go.
pub(crate) fn close(seg: &Segment, id: ClientId) {
    let ch = seg.channel(id.slot);
    if ch.generation.load(Ordering::Relaxed) == id.generation {
        // SYNC POINT: Release publishes our last writes before the daemon sees CLOSED.
        let closed = ch
            .state
            .compare_exchange(SLOT_CONNECTED, SLOT_CLOSED, Ordering::AcqRel, Ordering::Relaxed);
        if closed.is_ok() {
            decrement_clients(seg);
            bump_epoch(seg);
            seg.control().daemon_wake.notify();
            lifecycle!(INFO, "client left", seg, slot = id.slot, pid = platform::current_pid());
        }
    }
    // Let the next client take the slot once the daemon frees it.
    let _ = platform::unlock_byte(seg.shared_memory().file(), client_lock_byte(id.slot));
}

/// Client: whether `id` still holds its slot, connected.
pub(crate) fn holds(seg: &Segment, id: ClientId) -> bool {
    let ch = seg.channel(id.slot);
    ch.state.load(Ordering::Relaxed) == SLOT_CONNECTED && ch.generation.load(Ordering::Relaxed) == id.generation
}

fn decrement_clients(seg: &Segment) {
    let _ = seg
        .control()
        .client_count
        .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| n.checked_sub(1));
}

/// Daemon: if slot `i`'s client process died (its lock is gone, a kernel
/// fact), a connected slot turns CLOSED (what it published is still read)
/// and a half-connected one FREE. Returns whether it reclaimed the slot.
pub(crate) fn reclaim_if_dead(seg: &Segment, i: u32) -> bool {
    let ch = seg.channel(i);
    let state = ch.state.load(Ordering::Acquire);
    if (state != SLOT_CONNECTED && state != SLOT_CLAIMED) || seg.client_alive(i) {
        return false;
    }
    let next = if state == SLOT_CONNECTED {
        SLOT_CLOSED
    } else {
        SLOT_FREE
    };
    if ch
        .state
        .compare_exchange(state, next, Ordering::AcqRel, Ordering::Relaxed)
        .is_err()
    {
        return false;
    }
    if state == SLOT_CONNECTED {
        decrement_clients(seg);
        bump_epoch(seg);
    }
    seg.control().recovered_clients.fetch_add(1, Ordering::Relaxed);
    lifecycle!(
        WARN,
        "client found dead",
        seg,
        slot = i,
        dead_pid = ch.client_pid.load(Ordering::Relaxed),
    );
    true
}

/// Daemon: frees a CLOSED slot it has drained and no longer touches.
pub(crate) fn free(seg: &Segment, i: u32) {
    // SYNC POINT: Release hands the slot (and our last reads of it) to the next
    // client's Acquire in `claim`. Only FREE slots are claimed, so a CLOSED
    // slot's occupant cannot change under us.
    let freed = seg
        .channel(i)
        .state
        .compare_exchange(SLOT_CLOSED, SLOT_FREE, Ordering::AcqRel, Ordering::Relaxed);
    if freed.is_ok() {
        lifecycle!(INFO, "slot reclaimed", seg, slot = i);
    }
}

/// Either side: marks channel `i` unusable (the first finding stays) and
/// makes the daemon re-read its table.
pub(crate) fn poison(seg: &Segment, i: u32, by: Poison) {
    let code = match by {
        Poison::ByDaemon => POISON_TO_DAEMON,
        Poison::ByClient => POISON_TO_CLIENT,
    };
    let first = seg
        .channel(i)
        .poison
        .compare_exchange(POISON_NONE, code, Ordering::AcqRel, Ordering::Relaxed);
    bump_epoch(seg);
    if first.is_ok() {
        let by = match by {
            Poison::ByDaemon => "daemon",
            Poison::ByClient => "client",
        };
        lifecycle!(WARN, "channel poisoned", seg, slot = i, by = by);
    }
}

/// Whether channel `i` is poisoned, and by whom.
#[inline]
pub(crate) fn poisoned(seg: &Segment, i: u32) -> Option<Poison> {
    poison_of(seg.channel(i))
}

/// Whether, and by whom, the channel with header `channel` was poisoned.
#[inline]
pub(crate) fn poison_of(channel: &ChannelHeader) -> Option<Poison> {
    match channel.poison.load(Ordering::Acquire) {
        POISON_NONE => None,
        POISON_TO_DAEMON => Some(Poison::ByDaemon),
        _ => Some(Poison::ByClient),
    }
}
