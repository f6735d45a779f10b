//! The wire layout of a memlink segment: the binary protocol between processes.
//!
//! Everything another process can see is defined in this file. All shared
//! words are atomics (so no access to them is a data race), every struct is
//! `#[repr(C)]` with its size and field offsets asserted at compile time, and a
//! segment opens only if its [`MAGIC`], [`LAYOUT_VERSION`] and geometry check out.
//!
//! ```text
//!  offset 0                                                  CONTROL_SIZE (4 KiB)
//!  +-----------------------------------------------------------+
//!  | ControlBlock                                              |
//!  |  line 0  identity: magic, versions, geometry, daemon pid  |  written once by the creator
//!  |  line 1  state flags, client count, epoch, bp hint,       |  rarely written
//!  |          heartbeat, recovered-client count                |
//!  |  line 2  daemon_wake  (EventWord: clients -> daemon)      |
//!  |  lines 3-5  doorbell: per tier, a bit per slot            |
//!  |  line 6  sleepers: a bit per slot whose client sleeps     |
//!  +-----------------------------------------------------------+ channel_offset
//!  | Channel 0                                   channel_stride |
//!  |  ChannelHeader (512 B)                                     |
//!  |   line 0  slot state, generation, client pid and start   |
//!  |           time, bp hint, poison                           |
//!  |   line 1  client_wake     (daemon -> client data)          |
//!  |   line 2  to_daemon_space (client waits for room)          |
//!  |   line 3  to_client_space (daemon waits for room)          |
//!  |  to-daemon rings:  [RingHeader|data Critical]              |
//!  |                    [RingHeader|data High    ]              |
//!  |                    [RingHeader|data Low     ]              |
//!  |  to-client rings:  the same three again                    |
//!  +-----------------------------------------------------------+
//!  | Channel 1 ... Channel max_clients-1                        |
//!  +-----------------------------------------------------------+ total_size
//! ```
//!
//! A ring's data area holds variable-length records, each aligned to 8 bytes:
//!
//! ```text
//!  | header u64 | payload (len bytes) | pad to 8 | header u64 | ...
//! ```
//!
//! The header word (see [`encode_message`]) is the commit: the producer
//! writes the payload, zeroes the *next* header slot, then publishes with one
//! release store of this header. A zero header means "nothing here yet". A
//! record that would not fit before the end of the data area is preceded by a
//! wrap record that covers the rest of the area. Positions (`head`, `tail`) are
//! byte counts since the ring was reset, so they only grow.
//!
//! Alignment unit: [`LINE`] = 128 bytes, two cache lines, so the adjacent-line
//! prefetcher never couples fields with different writers.
//!
//! Liveness is not in the mapping but on the segment *file*: the daemon holds
//! an OFD lock on byte [`DAEMON_LOCK_BYTE`], the client of slot `i` on byte
//! [`client_lock_byte`]`(i)`. The kernel drops a lock when its process dies, so
//! "dead" is a fact, immune to pid reuse, and never a guess from a timeout.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::error::{SegmentError, SegmentResult};
use crate::priority::Priority;
use crate::sync;

/// First 8 bytes of every segment.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"MEMLINK\x01");
/// Version of this layout; bumped on any incompatible change to this file.
pub(crate) const LAYOUT_VERSION: u32 = 3;
/// Size of the control region at the start of the segment.
pub(crate) const CONTROL_SIZE: usize = 4096;
/// Alignment and padding unit for anything with its own writer.
pub(crate) const LINE: usize = 128;
/// Size of a [`ChannelHeader`].
pub(crate) const CHANNEL_HEADER_SIZE: usize = 512;
/// Size of a [`RingHeader`].
pub(crate) const RING_HEADER_SIZE: usize = 256;
/// Size of a record header word.
pub(crate) const RECORD_HEADER_SIZE: usize = 8;
/// Records start on multiples of this.
pub(crate) const RECORD_ALIGN: usize = 8;
/// Maximum message size unless configured otherwise.
pub(crate) const DEFAULT_MAX_MESSAGE: usize = 4096;
/// Largest configurable maximum message size (256 MiB).
pub(crate) const MAX_MESSAGE_LIMIT: usize = 1 << 28;
/// Client slots a segment gets by default, when the size allows.
pub(crate) const DEFAULT_MAX_CLIENTS: u32 = 8;
/// Largest number of client slots.
pub(crate) const MAX_CLIENTS_LIMIT: u32 = 1024;

/// Words of the doorbell bitmap: one bit per possible client slot.
pub(crate) const DOORBELL_WORDS: usize = MAX_CLIENTS_LIMIT as usize / 64;

/// `ControlBlock::state` bit: the daemon has initialised the segment.
pub(crate) const STATE_ALIVE: u32 = 1;
/// `ControlBlock::state` bit: the daemon is shutting down; clients disconnect.
pub(crate) const STATE_SHUTTING_DOWN: u32 = 2;

/// `ChannelHeader::poison`: the channel is fine.
pub(crate) const POISON_NONE: u32 = 0;
/// `ChannelHeader::poison`: the daemon found the client's rings corrupt.
pub(crate) const POISON_TO_DAEMON: u32 = 1;
/// `ChannelHeader::poison`: the client found the daemon's rings corrupt.
pub(crate) const POISON_TO_CLIENT: u32 = 2;

/// Liveness: the daemon holds an exclusive OFD lock on this byte of the
/// segment file for as long as it lives; the kernel releases it when the
/// daemon dies. Others test it without taking it (`F_OFD_GETLK`).
pub(crate) const DAEMON_LOCK_BYTE: u64 = 0;

/// Liveness: the client in slot `slot` holds a lock on this byte.
pub(crate) const fn client_lock_byte(slot: u32) -> u64 {
    1 + slot as u64
}

/// `ChannelHeader::state`: slot unused; a client may claim it.
pub(crate) const SLOT_FREE: u32 = 0;
/// `ChannelHeader::state`: a client claimed the slot and is resetting its rings.
pub(crate) const SLOT_CLAIMED: u32 = 1;
/// `ChannelHeader::state`: client connected; the daemon serves the slot.
pub(crate) const SLOT_CONNECTED: u32 = 2;
/// `ChannelHeader::state`: client left; the daemon drains its messages, then frees the slot.
pub(crate) const SLOT_CLOSED: u32 = 3;

/// A futex-backed event: the unit of wait/wake (see `crate::wait`).
///
/// - `seq`: the futex word. Written (incremented) by notifiers, read by waiters.
/// - `waiters`: number of registered sleepers. Waiters increment it before their
///   final re-check and decrement it after waking; notifiers read it after a
///   `SeqCst` fence and skip the syscall when it is zero.
/// - `wakeups`: how many wake syscalls notifiers issued (statistics only).
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct EventWord {
    /// Futex word; bumped before each wake.
    pub seq: sync::AtomicU32,
    /// Registered sleepers.
    pub waiters: sync::AtomicU32,
    /// Wake syscalls issued.
    pub wakeups: sync::AtomicU64,
    _pad: [u8; LINE - 16],
}

/// Under loom the protocols run on objects built in the model, not on
/// mapped bytes (the event count's model is in `wait/loom_models.rs`).
#[cfg(all(loom, test))]
impl EventWord {
    /// A fresh event: nobody waits, nothing was sent.
    pub(crate) fn new() -> EventWord {
        EventWord {
            seq: sync::AtomicU32::new(0),
            waiters: sync::AtomicU32::new(0),
            wakeups: sync::AtomicU64::new(0),
            _pad: [0; LINE - 16],
        }
    }
}

/// The control region at offset 0 of every segment.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct ControlBlock {
    // ---- line 0: identity. The creator writes every field, then `magic` last
    // (Release); openers load `magic` (Acquire) and read the rest once.
    /// [`MAGIC`] once the segment is initialised.
    pub magic: AtomicU64,
    /// [`LAYOUT_VERSION`] of the creator.
    pub layout_version: AtomicU32,
    /// The application's protocol version, chosen by the daemon.
    pub protocol_version: AtomicU32,
    /// Bytes of the segment in use (the file may be larger).
    pub total_size: AtomicU64,
    /// Number of channels (client slots).
    pub max_clients: AtomicU32,
    /// Largest payload of one message.
    pub max_message_size: AtomicU32,
    /// Offset of channel 0.
    pub channel_offset: AtomicU64,
    /// Distance between two channels.
    pub channel_stride: AtomicU64,
    /// Data bytes of each tier's ring (Critical, High, Low), both directions.
    pub ring_capacity: [AtomicU64; 3],
    /// Process id of the daemon that created the segment.
    pub daemon_pid: AtomicU32,
    /// Effective uid of the creator.
    pub creator_uid: AtomicU32,
    /// Start time of the daemon process (see `platform::process_start_time`).
    pub daemon_start_time: AtomicU64,
    _pad0: [u8; 40],

    // ---- line 1: daemon state. Rarely written, read on every operation.
    /// `STATE_*` bits; written by the daemon.
    pub state: AtomicU32,
    /// Connected clients; incremented by a client on connect, decremented on disconnect.
    pub client_count: AtomicU32,
    /// Bumped (Release) by clients on every slot state change; the daemon
    /// re-scans the slot table when it sees a new value (Acquire).
    pub epoch: AtomicU32,
    /// Backpressure hint the daemon publishes to clients (`f32` bits, 0..=1).
    pub daemon_backpressure: AtomicU32,
    /// Monotonic time (ns) of the daemon's last sweep: a hint that it is
    /// making progress, never by itself a reason to declare it dead.
    pub heartbeat: AtomicU64,
    /// Slots the daemon reclaimed from clients that died.
    pub recovered_clients: AtomicU32,
    _pad1: [u8; LINE - 28],

    // ---- line 2: clients notify, the daemon waits.
    /// "A client published something for the daemon."
    pub daemon_wake: EventWord,

    // ---- lines 3-5: the doorbell (see `crate::doorbell`).
    /// Per tier (Critical, High, Low), one bit per client slot: set by a
    /// client after it publishes on that tier, cleared by the daemon once
    /// that ring stays empty.
    pub doorbell: [[sync::AtomicU64; DOORBELL_WORDS]; 3],

    // ---- line 6: clients that sleep.
    /// One bit per client slot: set by the client before it registers as a
    /// waiter on its `client_wake`, cleared once its wait ends; read by the
    /// daemon when it wakes every client (a broadcast, the 0.1.3
    /// `signal()`), so that this costs what the sleepers cost, not what the
    /// connected clients do (see `crate::doorbell`).
    pub sleepers: [sync::AtomicU64; DOORBELL_WORDS],

    _reserved: [u8; CONTROL_SIZE - 7 * LINE],
}

/// Header of one client slot.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct ChannelHeader {
    // ---- line 0: slot state.
    /// `SLOT_*`; CAS FREE->CLAIMED and stores CLAIMED->CONNECTED->CLOSED by the
    /// client, CLOSED->FREE by the daemon.
    pub state: AtomicU32,
    /// Incremented by each client that claims the slot, so a stale id of a
    /// previous occupant never addresses the new one.
    pub generation: AtomicU32,
    /// Process id of the client holding the slot.
    pub client_pid: AtomicU32,
    /// Backpressure hint the client publishes to the daemon (`f32` bits).
    pub client_backpressure: AtomicU32,
    /// Start time of the client process.
    pub client_start_time: AtomicU64,
    /// `POISON_*`: set by the side that found this channel's rings corrupt;
    /// both sides then refuse to use the channel.
    pub poison: AtomicU32,
    _pad0: [u8; LINE - 28],
    /// "The daemon published something for this client."
    pub client_wake: EventWord,
    /// "The daemon freed room in the to-daemon rings."
    pub to_daemon_space: EventWord,
    /// "The client freed room in the to-client rings."
    pub to_client_space: EventWord,
}

/// Header of one ring; the data area follows it directly.
///
/// The producer owns line 0, the consumer owns line 1: each writes only its
/// own line, so the two never false-share.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct RingHeader {
    // ---- line 0: producer.
    /// Bytes published (records and wrap padding). Release-stored after each
    /// publish; read for occupancy figures only (the consumer follows headers).
    pub tail: sync::AtomicU64,
    /// Messages published.
    pub messages_written: sync::AtomicU64,
    /// Payload bytes published.
    pub bytes_written: sync::AtomicU64,
    /// Writes refused because the ring was full.
    pub full_events: sync::AtomicU64,
    _pad0: [u8; LINE - 32],
    // ---- line 1: consumer.
    /// Bytes consumed. Release-stored after each consume; the producer loads
    /// it (Acquire) before reusing space, which pairs with that store.
    pub head: sync::AtomicU64,
    /// Messages consumed.
    pub messages_read: sync::AtomicU64,
    /// Payload bytes consumed.
    pub bytes_read: sync::AtomicU64,
    _pad1: [u8; LINE - 24],
}

#[cfg(loom)]
impl RingHeader {
    /// An empty ring's header.
    pub(crate) fn new() -> RingHeader {
        let zero = || sync::AtomicU64::new(0);
        RingHeader {
            tail: zero(),
            messages_written: zero(),
            bytes_written: zero(),
            full_events: zero(),
            _pad0: [0; LINE - 32],
            head: zero(),
            messages_read: zero(),
            bytes_read: zero(),
            _pad1: [0; LINE - 24],
        }
    }
}

// The wire format, checked at compile time (loom's atomics are larger; the
// loom build never maps a segment).
#[cfg(not(loom))]
const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(size_of::<EventWord>() == LINE);
    assert!(size_of::<ControlBlock>() == CONTROL_SIZE);
    assert!(offset_of!(ControlBlock, doorbell) == 3 * LINE);
    assert!(offset_of!(ControlBlock, sleepers) == 6 * LINE);
    assert!(DOORBELL_WORDS * 8 == LINE);
    assert!(offset_of!(ControlBlock, magic) == 0);
    assert!(offset_of!(ControlBlock, layout_version) == 8);
    assert!(offset_of!(ControlBlock, protocol_version) == 12);
    assert!(offset_of!(ControlBlock, total_size) == 16);
    assert!(offset_of!(ControlBlock, max_clients) == 24);
    assert!(offset_of!(ControlBlock, max_message_size) == 28);
    assert!(offset_of!(ControlBlock, channel_offset) == 32);
    assert!(offset_of!(ControlBlock, channel_stride) == 40);
    assert!(offset_of!(ControlBlock, ring_capacity) == 48);
    assert!(offset_of!(ControlBlock, daemon_pid) == 72);
    assert!(offset_of!(ControlBlock, creator_uid) == 76);
    assert!(offset_of!(ControlBlock, daemon_start_time) == 80);
    assert!(offset_of!(ControlBlock, state) == LINE);
    assert!(offset_of!(ControlBlock, client_count) == LINE + 4);
    assert!(offset_of!(ControlBlock, epoch) == LINE + 8);
    assert!(offset_of!(ControlBlock, daemon_backpressure) == LINE + 12);
    assert!(offset_of!(ControlBlock, heartbeat) == LINE + 16);
    assert!(offset_of!(ControlBlock, recovered_clients) == LINE + 24);
    assert!(offset_of!(ControlBlock, daemon_wake) == 2 * LINE);
    assert!(size_of::<ChannelHeader>() == CHANNEL_HEADER_SIZE);
    assert!(offset_of!(ChannelHeader, client_start_time) == 16);
    assert!(offset_of!(ChannelHeader, poison) == 24);
    assert!(offset_of!(ChannelHeader, client_wake) == LINE);
    assert!(offset_of!(ChannelHeader, to_daemon_space) == 2 * LINE);
    assert!(offset_of!(ChannelHeader, to_client_space) == 3 * LINE);
    assert!(size_of::<RingHeader>() == RING_HEADER_SIZE);
    assert!(offset_of!(RingHeader, tail) == 0);
    assert!(offset_of!(RingHeader, head) == LINE);
};

// ---------------------------------------------------------------------------
// Backpressure hints
// ---------------------------------------------------------------------------

/// Reads a backpressure hint (`ControlBlock::daemon_backpressure`,
/// `ChannelHeader::client_backpressure`: `f32` bits, 0..=1) published by
/// the peer; garbage reads as 0.
pub(crate) fn load_hint(word: &AtomicU32) -> f32 {
    let v = f32::from_bits(word.load(Ordering::Relaxed));
    if v.is_finite() {
        v.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// Publishes this side's backpressure hint into one of those fields,
/// clamped to 0..=1.
pub(crate) fn store_hint(word: &AtomicU32, level: f32) {
    let v = if level.is_finite() { level.clamp(0.0, 1.0) } else { 1.0 };
    word.store(v.to_bits(), Ordering::Relaxed);
}

// ---------------------------------------------------------------------------
// Record header word
// ---------------------------------------------------------------------------

const KIND_MESSAGE: u64 = 0x01;
const KIND_WRAP: u64 = 0x02;
const TAG: u64 = 0x4D4C; // "ML"

/// A decoded, validated record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Record {
    /// A message of `len` payload bytes.
    Message {
        /// Payload length.
        len: usize,
        /// Tier tag carried with the message.
        priority: Priority,
    },
    /// Padding to the end of the data area; the next record is at offset 0.
    Wrap {
        /// Bytes skipped, header included.
        skip: usize,
    },
}

/// Bytes a message of `len` payload bytes occupies in a ring.
#[inline]
pub(crate) const fn record_size(len: usize) -> usize {
    (RECORD_HEADER_SIZE + len + RECORD_ALIGN - 1) & !(RECORD_ALIGN - 1)
}

/// Header word of a message record.
#[inline]
pub(crate) const fn encode_message(len: usize, priority: Priority) -> u64 {
    (len as u64) | (KIND_MESSAGE << 32) | ((priority as u64) << 40) | (TAG << 48)
}

/// Header word of a wrap record skipping `skip` bytes.
#[inline]
pub(crate) const fn encode_wrap(skip: usize) -> u64 {
    (skip as u64) | (KIND_WRAP << 32) | (TAG << 48)
}

/// What in a ring or segment held a value no well-behaved peer writes (or
/// what a peer did to it). The ring stays failed from then on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Corruption {
    /// The consumer's position is out of range.
    HeadIndex,
    /// The producer's position is out of range.
    TailIndex,
    /// A record header lacks the tag every header carries.
    RecordTag,
    /// A record names no priority.
    RecordPriority,
    /// A record is longer than the ring's largest message.
    RecordLength,
    /// A record runs past the end of the ring.
    RecordOverrun,
    /// A wrap record does not end at the end of the ring.
    WrapPlacement,
    /// A record is of no known kind.
    RecordKind,
    /// The segment's file shrank under its mapping: another process cut it
    /// short, and the pages past its end are gone.
    SegmentTruncated,
}

impl Corruption {
    /// What held the impossible value, in words.
    pub fn what(self) -> &'static str {
        match self {
            Corruption::HeadIndex => "ring head index",
            Corruption::TailIndex => "ring tail index",
            Corruption::RecordTag => "record header tag",
            Corruption::RecordPriority => "record priority",
            Corruption::RecordLength => "record length above the maximum message size",
            Corruption::RecordOverrun => "record runs past the end of the ring",
            Corruption::WrapPlacement => "wrap record does not end at the end of the ring",
            Corruption::RecordKind => "record kind",
            Corruption::SegmentTruncated => "segment file cut short by another process",
        }
    }
}

impl std::fmt::Display for Corruption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.what())
    }
}

/// Decodes a header word found at `offset` of a data area of `capacity` bytes.
///
/// Returns `Ok(None)` for a zero word (nothing published yet) and an error
/// for anything a correct producer cannot have written: unknown kind or tag, a
/// length above `max_message`, a record running past the end of the area, a
/// wrap that does not end exactly at the end of the area.
#[inline]
pub(crate) fn decode(
    word: u64,
    offset: usize,
    capacity: usize,
    max_message: usize,
) -> Result<Option<Record>, Corruption> {
    if word == 0 {
        return Ok(None);
    }
    // The common case in a few compares: a message header (tag and kind in
    // one compare) of a known tier, whose record fits.
    if (word >> 32) & 0xFFFF_00FF == (TAG << 16) | KIND_MESSAGE {
        let len = (word & 0xFFFF_FFFF) as usize;
        if let Some(priority) = Priority::from_index(((word >> 40) & 0xFF) as usize) {
            if len <= max_message && record_size(len) <= capacity - offset {
                return Ok(Some(Record::Message { len, priority }));
            }
        }
    }
    decode_checked(word, offset, capacity, max_message)
}

/// [`decode`] of a word that is no well-formed message header: a wrap, or
/// the error that says what is wrong.
#[cold]
#[inline(never)]
fn decode_checked(word: u64, offset: usize, capacity: usize, max_message: usize) -> Result<Option<Record>, Corruption> {
    if word >> 48 != TAG {
        return Err(Corruption::RecordTag);
    }
    let low = (word & 0xFFFF_FFFF) as usize;
    let room = capacity - offset;
    match (word >> 32) & 0xFF {
        KIND_MESSAGE => {
            let Some(priority) = Priority::from_index(((word >> 40) & 0xFF) as usize) else {
                return Err(Corruption::RecordPriority);
            };
            if low > max_message {
                return Err(Corruption::RecordLength);
            }
            if record_size(low) > room {
                return Err(Corruption::RecordOverrun);
            }
            Ok(Some(Record::Message { len: low, priority }))
        }
        KIND_WRAP => {
            if low != room || offset == 0 {
                return Err(Corruption::WrapPlacement);
            }
            Ok(Some(Record::Wrap { skip: low }))
        }
        _ => Err(Corruption::RecordKind),
    }
}

// ---------------------------------------------------------------------------
// Geometry
// ---------------------------------------------------------------------------

/// Direction of a ring within a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client writes, daemon reads.
    ToDaemon = 0,
    /// Daemon writes, client reads.
    ToClient = 1,
}

/// Where everything lives in a segment, derived from three numbers:
/// the segment size, the number of client slots and the maximum message size.
///
/// How `size` is split: 4 KiB of control region, then `max_clients` equal
/// channels. A channel is a 512-byte header plus two equal halves (to-daemon,
/// to-client); each half gives Critical 20 %, High 50 %, Low 30 % (rounded
/// down to 128 bytes; each ring's 256-byte header comes out of its share).
/// Every ring must hold two maximum-size messages ([`min_ring_capacity`]); in
/// small segments a tier below that is raised to it, at the expense of High,
/// then Low. That fixes the minimum size ([`Geometry::minimum_size`]).
/// Opening a segment recomputes the geometry from the header's three numbers
/// and rejects any other value found there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// Bytes of the segment in use.
    pub total_size: usize,
    /// Number of channels.
    pub max_clients: u32,
    /// Largest payload of one message.
    pub max_message_size: u32,
    /// Distance between two channels (channel 0 is at [`CONTROL_SIZE`]).
    pub channel_stride: usize,
    /// Data bytes of the Critical, High and Low rings (both directions).
    pub ring_capacity: [usize; 3],
}

const fn align_down(x: usize, to: usize) -> usize {
    x & !(to - 1)
}

const fn align_up(x: usize, to: usize) -> usize {
    (x + to - 1) & !(to - 1)
}

/// Smallest data area for messages of up to `max_message` bytes: two
/// maximum records plus the zeroed header slot the producer keeps ahead of its
/// tail. With that, a drained ring accepts any message wherever its tail
/// stands: a record that does not fit before the end wastes less than one
/// record on the wrap and fits after it.
pub(crate) const fn min_ring_capacity(max_message: usize) -> usize {
    align_up(2 * record_size(max_message) + RECORD_HEADER_SIZE, LINE)
}

/// A segment's largest message is at most [`MAX_MESSAGE_LIMIT`].
fn check_max_message(max_message: usize) -> SegmentResult<()> {
    if max_message > MAX_MESSAGE_LIMIT {
        return Err(SegmentError::InvalidConfig(format!(
            "max_message_size must be at most {MAX_MESSAGE_LIMIT} bytes, not {max_message}"
        )));
    }
    Ok(())
}

impl Geometry {
    /// Lays out a segment of `size` bytes with `max_clients` channels.
    pub(crate) fn compute(size: usize, max_clients: u32, max_message: usize) -> SegmentResult<Geometry> {
        if max_clients == 0 || max_clients > MAX_CLIENTS_LIMIT {
            return Err(SegmentError::InvalidConfig(format!(
                "max_clients must be between 1 and {MAX_CLIENTS_LIMIT}, not {max_clients}"
            )));
        }
        check_max_message(max_message)?;
        match Self::try_compute(size, max_clients, max_message) {
            Some(g) => Ok(g),
            None => Err(SegmentError::TooSmall {
                requested: size,
                minimum: Self::minimum_size(max_clients, max_message),
            }),
        }
    }

    fn try_compute(size: usize, max_clients: u32, max_message: usize) -> Option<Geometry> {
        let avail = size.checked_sub(CONTROL_SIZE)?;
        let stride = align_down(avail / max_clients as usize, LINE);
        let half = align_down(stride.checked_sub(CHANNEL_HEADER_SIZE)? / 2, LINE);
        let floor = min_ring_capacity(max_message) + RING_HEADER_SIZE;
        // Shares of the half, each raised to the floor if needed; whatever the
        // raises cost is taken from High, then Low, then Critical.
        let mut share = Priority::ALL.map(|p| align_down(half / 100 * p.share_percent() as usize, LINE));
        let mut excess = 0;
        for s in &mut share {
            if *s < floor {
                excess += floor - *s;
                *s = floor;
            }
        }
        for p in [Priority::High, Priority::Low, Priority::Critical] {
            let take = excess.min(share[p.index()] - floor);
            share[p.index()] -= take;
            excess -= take;
        }
        if excess > 0 {
            return None;
        }
        let ring_capacity = share.map(|s| s - RING_HEADER_SIZE);
        Some(Geometry {
            total_size: CONTROL_SIZE + stride * max_clients as usize,
            max_clients,
            max_message_size: max_message as u32,
            channel_stride: stride,
            ring_capacity,
        })
    }

    /// Smallest segment size that fits `max_clients` channels for messages of
    /// up to `max_message` bytes.
    pub(crate) fn minimum_size(max_clients: u32, max_message: usize) -> usize {
        // `try_compute` succeeds for every size above some threshold: search it.
        let (mut lo, mut hi) = (CONTROL_SIZE, CONTROL_SIZE * 2);
        while Self::try_compute(hi, max_clients, max_message).is_none() {
            lo = hi;
            hi = match hi.checked_mul(2) {
                Some(h) => h,
                None => return usize::MAX,
            };
        }
        while lo + 1 < hi {
            let mid = lo + (hi - lo) / 2;
            if Self::try_compute(mid, max_clients, max_message).is_some() {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        hi
    }

    /// Client slots for a segment of `size` bytes when none are configured:
    /// as many as fit, up to [`DEFAULT_MAX_CLIENTS`].
    pub(crate) fn auto_clients(size: usize, max_message: usize) -> SegmentResult<u32> {
        // Before the search, which would report an impossible size instead.
        check_max_message(max_message)?;
        (1..=DEFAULT_MAX_CLIENTS)
            .rev()
            .find(|&n| Self::try_compute(size, n, max_message).is_some())
            .ok_or(SegmentError::TooSmall {
                requested: size,
                minimum: Self::minimum_size(1, max_message),
            })
    }

    /// Offset of channel `index`'s header.
    pub(crate) fn channel_offset(&self, index: u32) -> usize {
        CONTROL_SIZE + index as usize * self.channel_stride
    }

    /// Offset of the [`RingHeader`] of one ring; its data follows it.
    pub(crate) fn ring_offset(&self, channel: u32, direction: Direction, priority: Priority) -> usize {
        let half: usize = self.ring_capacity.iter().map(|c| c + RING_HEADER_SIZE).sum();
        let before: usize = self.ring_capacity[..priority.index()]
            .iter()
            .map(|c| c + RING_HEADER_SIZE)
            .sum();
        self.channel_offset(channel) + CHANNEL_HEADER_SIZE + direction as usize * half + before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_sizes_are_aligned() {
        assert_eq!(record_size(0), 8);
        assert_eq!(record_size(1), 16);
        assert_eq!(record_size(8), 16);
        assert_eq!(record_size(64), 72);
        assert_eq!(record_size(4096), 4104);
    }

    #[test]
    fn headers_round_trip_and_reject_garbage() {
        for p in Priority::ALL {
            let w = encode_message(100, p);
            assert_eq!(
                decode(w, 0, 4096, 4096).unwrap(),
                Some(Record::Message { len: 100, priority: p })
            );
        }
        assert_eq!(decode(0, 8, 4096, 4096).unwrap(), None);
        assert_eq!(
            decode(encode_wrap(96), 4000, 4096, 4096).unwrap(),
            Some(Record::Wrap { skip: 96 })
        );
        assert!(
            decode(encode_wrap(96), 3992, 4096, 4096).is_err(),
            "wrap must end at the end"
        );
        assert!(
            decode(encode_wrap(4096), 0, 4096, 4096).is_err(),
            "wrap at 0 would loop"
        );
        assert!(decode(encode_message(5000, Priority::Low), 0, 8192, 4096).is_err());
        assert!(decode(encode_message(100, Priority::Low), 4000, 4096, 4096).is_err());
        assert!(decode(u64::MAX, 0, 4096, 4096).is_err());
        assert!(decode(encode_message(1, Priority::Low) | (7 << 40), 0, 4096, 4096).is_err());
        assert!(decode(0x1234, 0, 4096, 4096).is_err());
    }

    #[test]
    fn geometry_fits_in_size_and_rings_do_not_overlap() {
        for (size, clients, max) in [
            (65536, 1, 4096),
            (1 << 20, 8, 4096),
            (1 << 22, 4, 65536),
            (300_000, 3, 100),
        ] {
            let g = Geometry::compute(size, clients, max).unwrap();
            assert!(g.total_size <= size);
            let mut end = CONTROL_SIZE;
            for c in 0..clients {
                assert_eq!(g.channel_offset(c), end);
                let mut at = end + CHANNEL_HEADER_SIZE;
                for d in [Direction::ToDaemon, Direction::ToClient] {
                    for p in Priority::ALL {
                        let off = g.ring_offset(c, d, p);
                        assert_eq!(off, at);
                        assert_eq!(off % LINE, 0);
                        at = off + RING_HEADER_SIZE + g.ring_capacity[p.index()];
                    }
                }
                end += g.channel_stride;
                assert!(at <= end, "rings of channel {c} overflow its stride");
            }
            for cap in g.ring_capacity {
                assert!(cap >= min_ring_capacity(max));
            }
        }
    }

    #[test]
    fn large_segments_get_exact_shares_small_ones_the_floor() {
        let g = Geometry::compute(1 << 22, 2, 4096).unwrap();
        let totals = g.ring_capacity.map(|c| (c + RING_HEADER_SIZE) as f64);
        let sum: f64 = totals.iter().sum();
        for p in Priority::ALL {
            let pct = totals[p.index()] * 100.0 / sum;
            assert!((pct - p.share_percent() as f64).abs() < 0.1, "{p}: {pct}");
        }
        let small = Geometry::compute(65536, 1, 4096).unwrap();
        assert_eq!(small.ring_capacity[0], min_ring_capacity(4096));
        assert!(small.ring_capacity[1] > small.ring_capacity[2]);
    }

    #[test]
    fn minimum_size_is_tight() {
        for (clients, max) in [(1, 4096), (4, 4096), (2, 0), (16, 65536)] {
            let min = Geometry::minimum_size(clients, max);
            assert!(Geometry::compute(min, clients, max).is_ok());
            match Geometry::compute(min - 1, clients, max) {
                Err(SegmentError::TooSmall { minimum, .. }) => assert_eq!(minimum, min),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn auto_clients_matches_old_readme_sizes() {
        // The old README's `create("/tmp/my_shm", 65536, 1)`: one client slot fits.
        let clients = Geometry::auto_clients(65536, DEFAULT_MAX_MESSAGE).unwrap();
        let g = Geometry::compute(65536, clients, DEFAULT_MAX_MESSAGE).unwrap();
        assert_eq!(g.max_clients, 1);
        assert!(g.ring_capacity[0] >= 2 * (4096 + 8));
        assert_eq!(Geometry::auto_clients(1 << 20, 4096).unwrap(), 8);
        assert!(Geometry::auto_clients(8192, 4096).is_err());
    }
}
