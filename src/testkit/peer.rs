//! A hostile peer's view of a live segment: where its channels and rings
//! are, writes of any bytes anywhere in it, forged record headers, and the
//! words that say who waits on it.

use std::sync::atomic::AtomicU64;

use crate::endpoint::OpenError;
use crate::priority::Priority;
use crate::segment::layout::{self, Direction, Geometry, RING_HEADER_SIZE};
use crate::segment::{Segment, SegmentName};
use crate::sync::Ordering;

/// Size of a channel's header, the slot's state and wake words, which
/// starts at [`Layout::channel_offset`].
pub const CHANNEL_HEADER_SIZE: usize = layout::CHANNEL_HEADER_SIZE;

/// The header word of a message record of `len` bytes on tier `priority`,
/// as a producer publishes it (and a hostile peer forges it).
pub fn encode_message(len: usize, priority: Priority) -> u64 {
    layout::encode_message(len, priority)
}

/// The header word of a wrap record that skips `skip` bytes to the end of
/// a ring's data.
pub fn encode_wrap(skip: usize) -> u64 {
    layout::encode_wrap(skip)
}

/// Where things are in a segment (offsets from its start), as its header
/// lays it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout(Geometry);

impl Layout {
    /// Client slots (channels).
    pub fn max_clients(&self) -> u32 {
        self.0.max_clients
    }

    /// Offset of the header of slot `slot`'s channel; its rings follow it.
    pub fn channel_offset(&self, slot: u32) -> usize {
        self.0.channel_offset(slot)
    }

    /// Offset of the header of one ring: its producer's line (the tail
    /// first), then at 128 its consumer's (the head first).
    pub fn ring_offset(&self, slot: u32, direction: Direction, priority: Priority) -> usize {
        self.0.ring_offset(slot, direction, priority)
    }

    /// Offset of one ring's data, whose first word is the header of the
    /// first record written since the ring was last emptied.
    pub fn records_offset(&self, slot: u32, direction: Direction, priority: Priority) -> usize {
        self.ring_offset(slot, direction, priority) + RING_HEADER_SIZE
    }
}

/// A word of a segment that waiters register on (see [`Peer::waiters`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WakeWord {
    /// The daemon's: a client published something for it.
    Daemon,
    /// The client's of this slot: the daemon published something for it.
    Client(u32),
    /// The client of this slot waits for room in its rings to the daemon.
    ToDaemonSpace(u32),
}

/// A live segment mapped read-write, as any process of its user can map
/// it: a hostile peer that writes what it likes, and a test that looks at
/// who waits. It takes no slot and no lock.
#[derive(Debug)]
pub struct Peer {
    segment: Segment,
}

impl Peer {
    /// Maps segment `name` and checks its header, as a client does before
    /// it claims a slot (a header a hostile peer spoiled is refused here).
    ///
    /// # Errors
    /// The errors of opening a segment: [`OpenError::NotFound`],
    /// [`OpenError::InvalidSegment`], [`OpenError::LayoutMismatch`], ...
    pub fn open(name: &str) -> Result<Peer, OpenError> {
        let segment = Segment::open(&SegmentName::parse(name)?)?;
        Ok(Peer { segment })
    }

    /// Where things are in the segment.
    pub fn layout(&self) -> Layout {
        Layout(*self.segment.geometry())
    }

    /// Bytes mapped (the segment's file when it was opened, at least the
    /// segment's size).
    pub fn mapped_len(&self) -> usize {
        self.segment.shared_memory().len()
    }

    /// Writes `bytes` at `offset`, one byte at a time; bytes that would land
    /// past the end of the mapping are left out.
    pub fn write_bytes(&self, offset: usize, bytes: &[u8]) {
        let (base, len) = (self.segment.shared_memory().base(), self.mapped_len());
        for (at, &b) in (offset..len).zip(bytes) {
            // SAFETY: `at < len`: the byte lies inside the mapping, which is
            // read-write (`open`) and mapped while `self.segment` lives. The
            // memory is shared with other processes, any of which may write
            // any byte of it at any time, and the library reads it as such;
            // this volatile write is one of those writes, made from here.
            unsafe { base.as_ptr().add(at).write_volatile(b) };
        }
    }

    /// Stores `value` in the 64-bit word at `offset`, as one atomic store.
    ///
    /// # Panics
    /// If `offset` is not a multiple of 8 or the word does not fit in the
    /// mapping.
    pub fn write_u64(&self, offset: usize, value: u64) {
        assert!(
            offset % 8 == 0 && offset + 8 <= self.mapped_len(),
            "no 64-bit word at {offset}"
        );
        // SAFETY: the word lies inside the mapping (checked above), which is
        // page-aligned, so the pointer is 8-aligned; the mapping lives while
        // `self.segment` does, which the borrow keeps. An AtomicU64 is valid
        // for any bits, and the library accesses the segment's words
        // atomically.
        let word = unsafe {
            &*self
                .segment
                .shared_memory()
                .base()
                .as_ptr()
                .add(offset)
                .cast::<AtomicU64>()
        };
        word.store(value, std::sync::atomic::Ordering::Relaxed);
    }

    /// How many waiters are registered on `word` now: they sleep, or are
    /// about to (a registered waiter looks once more, then sleeps).
    ///
    /// # Panics
    /// If the slot of `word` is not below [`Layout::max_clients`].
    pub fn waiters(&self, word: WakeWord) -> u32 {
        let event = match word {
            WakeWord::Daemon => &self.segment.control().daemon_wake,
            WakeWord::Client(slot) => &self.segment.channel(slot).client_wake,
            WakeWord::ToDaemonSpace(slot) => &self.segment.channel(slot).to_daemon_space,
        };
        event.waiters.load(Ordering::Acquire)
    }

    /// The sleeper bits of slots 0 to 63: bit `i` is set while the client
    /// of slot `i` is registered as a waiter for the daemon's messages.
    pub fn sleeper_bits(&self) -> u64 {
        self.segment.control().sleepers[0].load(Ordering::SeqCst)
    }

    /// Clears every bell of the daemon's doorbell, of every tier: the
    /// daemon no longer knows which clients published.
    pub fn clear_doorbells(&self) {
        for word in self.segment.control().doorbell.iter().flatten() {
            word.store(0, Ordering::Relaxed);
        }
    }
}
