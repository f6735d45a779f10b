//! The SPSC ring of variable-length records, over memory it does not own.
//!
//! Algorithm: a byte ring of length-prefixed records (layout in
//! [`crate::segment::layout`]), in the family of Lamport's SPSC queue with the commit in
//! the record header (as in Aeron's log buffers and FastForward), so that a
//! consumer polls one word in the data itself rather than a shared tail index.
//!
//! - The producer owns `tail` and knows it locally; it caches the consumer's
//!   `head` and reloads it only when the cached value says the ring is full.
//! - A publish is one release store: the record's header word. Before it, the
//!   producer zeroes the header slot *after* the record, so the consumer, which
//!   acquires each header before reading the next one, always finds either a
//!   zero (nothing yet) or a freshly published header at its position, never a
//!   stale one from the previous lap. The producer therefore keeps 8 bytes of
//!   slack: a record of `n` bytes needs `n + 8` free bytes.
//! - The consumer validates every header it reads ([`layout::decode`]) and the
//!   producer validates every `head` it loads; anything out of range is
//!   [`RingError::Corrupted`], and the handle stays failed from then on (it
//!   delivers nothing more; a ring emptied since reads as empty).
//! - A read lends the reader the record's payload as a [`RingBytes`], not a
//!   `&[u8]`: every index that locates it is validated, so no value a peer
//!   writes moves it outside the data area, and the reader either copies it
//!   out with atomic loads or, trusting the peer, borrows it in place (see
//!   `bytes.rs` for why and who does which).

use std::ptr::NonNull;
use std::sync::Arc;

use super::bytes::RingBytes;
use super::error::{Corruption, RingError};
use crate::platform;
use crate::priority::Priority;
use crate::segment::layout::{self, Record, RingHeader, RECORD_ALIGN, RECORD_HEADER_SIZE};
use crate::segment::RingRegion;
use crate::sync::{AtomicU64, Ordering};

/// Keeps the memory behind a ring alive (a heap region or a mapped segment).
pub(crate) type Backing = Arc<dyn Send + Sync>;

/// Location and shape of one ring.
#[derive(Clone)]
pub(crate) struct RingMemory {
    /// The ring header (under loom, the model's copy stands in for it).
    #[cfg(not(loom))]
    header: NonNull<RingHeader>,
    data: NonNull<u8>,
    capacity: usize,
    max_message: usize,
    _backing: Backing,
    /// Under loom: the model's header and record-header words (see `model`).
    #[cfg(loom)]
    model: Arc<model::Words>,
}

/// Under loom, atomics cannot be laid over raw bytes, so a ring's header and
/// the record-header view of its data area are loom objects built in the
/// model, and each 8-byte word of the data area has a loom cell that every
/// payload access registers with: loom then checks the ring's orderings and
/// that no payload access races with another. The payload bytes themselves
/// stay in the data area. The two views of one word are kept apart (a real
/// ring reuses a lap's payload bytes as the next lap's headers), which loses
/// nothing: a consumer only reads a header slot after the producer zeroed it.
#[cfg(loom)]
mod model {
    use crate::segment::layout::{RingHeader, RECORD_ALIGN};
    use crate::sync::AtomicU64;

    pub(super) struct Words {
        pub(super) header: RingHeader,
        pub(super) words: Box<[AtomicU64]>,
        pub(super) cells: Box<[loom::cell::UnsafeCell<()>]>,
    }

    impl Words {
        pub(super) fn new(capacity: usize) -> Words {
            let n = capacity / RECORD_ALIGN;
            Words {
                header: RingHeader::new(),
                words: (0..n).map(|_| AtomicU64::new(0)).collect(),
                cells: (0..n).map(|_| loom::cell::UnsafeCell::new(())).collect(),
            }
        }

        /// Registers an access to the payload bytes `[offset, offset + len)`.
        pub(super) fn touch(&self, offset: usize, len: usize, write: bool) {
            let end = (offset + len).div_ceil(RECORD_ALIGN).min(self.cells.len());
            for cell in &self.cells[offset / RECORD_ALIGN..end] {
                if write {
                    cell.with_mut(|_| ());
                } else {
                    cell.with(|_| ());
                }
            }
        }
    }
}

// SAFETY: the pointers target memory kept alive by `_backing` (which is
// Send + Sync); all shared words there are atomics, and each handle built on a
// RingMemory touches only the bytes its role owns (see the module docs).
unsafe impl Send for RingMemory {}

// SAFETY: every `&self` method of RingMemory reads or writes only atomics (the
// ring header and record header words); the non-atomic payload bytes are
// reached only through `&mut RingProducer` / `&mut RingConsumer`, which the
// borrow checker keeps to one thread at a time.
unsafe impl Sync for RingMemory {}

impl RingMemory {
    /// Describes the ring whose [`RingHeader`] is at `header`, followed by
    /// `capacity` data bytes.
    ///
    /// # Safety
    /// `header` must be 128-byte aligned and point to `RING_HEADER_SIZE +
    /// capacity` bytes that stay mapped while `backing` lives; `capacity` must
    /// be a multiple of 8 and at least `layout::min_ring_capacity(max_message)`.
    pub(crate) unsafe fn new(header: NonNull<u8>, capacity: usize, max_message: usize, backing: Backing) -> RingMemory {
        debug_assert!(header.as_ptr() as usize % layout::LINE == 0);
        debug_assert!(capacity % RECORD_ALIGN == 0 && capacity >= layout::min_ring_capacity(max_message));
        RingMemory {
            #[cfg(not(loom))]
            header: header.cast(),
            // SAFETY: the data area starts right after the header, inside the region (caller's contract).
            data: unsafe { header.add(layout::RING_HEADER_SIZE) },
            capacity,
            max_message,
            _backing: backing,
            #[cfg(loom)]
            model: Arc::new(model::Words::new(capacity)),
        }
    }

    /// The ring on a region of a segment.
    pub(crate) fn on(region: RingRegion) -> RingMemory {
        // SAFETY: the segment hands out regions that meet `new`'s contract
        // (see `RingRegion`), and the mapping Arc is the backing.
        unsafe { RingMemory::new(region.header, region.capacity, region.max_message, region.mapping) }
    }

    #[cfg(not(loom))]
    #[inline]
    fn header(&self) -> &RingHeader {
        // SAFETY: aligned and alive for as long as `self` (constructor contract).
        unsafe { self.header.as_ref() }
    }

    #[cfg(loom)]
    fn header(&self) -> &RingHeader {
        &self.model.header
    }

    /// The record header word at `offset`.
    #[cfg(not(loom))]
    #[inline]
    fn word(&self, offset: usize) -> &AtomicU64 {
        debug_assert!(offset % RECORD_ALIGN == 0 && offset + RECORD_HEADER_SIZE <= self.capacity);
        // SAFETY: `offset` is 8-aligned and at most capacity - 8 (every caller derives
        // it from a validated position), and the data area is 128-aligned, so this
        // is an aligned u64 inside the area.
        unsafe { &*self.data.as_ptr().add(offset).cast::<AtomicU64>() }
    }

    #[cfg(loom)]
    fn word(&self, offset: usize) -> &AtomicU64 {
        &self.model.words[offset / RECORD_ALIGN]
    }

    /// Registers a payload access with loom's race checker (nothing without loom).
    #[inline(always)]
    fn touch(&self, _offset: usize, _len: usize, _write: bool) {
        #[cfg(loom)]
        self.model.touch(_offset, _len, _write);
    }

    /// Fraction of the ring in use, from its published positions (1.0 if
    /// they are impossible): for monitoring, from any process.
    pub(crate) fn fill_level(&self) -> f32 {
        self.occupancy().unwrap_or(1.0)
    }

    /// Fraction of the ring in use, or `None` if its published positions
    /// are impossible (more in use than it holds, or less than nothing).
    pub(crate) fn occupancy(&self) -> Option<f32> {
        let h = self.header();
        let (tail, head) = (h.tail.load(Ordering::Acquire), h.head.load(Ordering::Acquire));
        match tail.checked_sub(head) {
            Some(used) if used <= self.capacity as u64 => Some(used as f32 / self.capacity as f32),
            _ => None,
        }
    }

    /// Counter snapshot for monitoring.
    pub(crate) fn counters(&self) -> RingCounters {
        let h = self.header();
        RingCounters {
            messages_written: h.messages_written.load(Ordering::Relaxed),
            bytes_written: h.bytes_written.load(Ordering::Relaxed),
            messages_read: h.messages_read.load(Ordering::Relaxed),
            bytes_read: h.bytes_read.load(Ordering::Relaxed),
            full_events: h.full_events.load(Ordering::Relaxed),
        }
    }
}

/// Counters a ring keeps in its header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingCounters {
    /// Messages published.
    pub messages_written: u64,
    /// Payload bytes published.
    pub bytes_written: u64,
    /// Messages consumed.
    pub messages_read: u64,
    /// Payload bytes consumed.
    pub bytes_read: u64,
    /// Writes refused because the ring was full.
    pub full_events: u64,
}

// Wrapping: the values come from shared memory, which a peer may have scribbled on.
impl std::ops::AddAssign for RingCounters {
    fn add_assign(&mut self, o: RingCounters) {
        self.messages_written = self.messages_written.wrapping_add(o.messages_written);
        self.bytes_written = self.bytes_written.wrapping_add(o.bytes_written);
        self.messages_read = self.messages_read.wrapping_add(o.messages_read);
        self.bytes_read = self.bytes_read.wrapping_add(o.bytes_read);
        self.full_events = self.full_events.wrapping_add(o.full_events);
    }
}

/// Positions never get near this (2^62 bytes is decades at memory bandwidth),
/// so arithmetic on validated positions cannot overflow.
const MAX_POSITION: u64 = 1 << 62;

/// Checks a position loaded from shared memory against what this side knows.
fn check_position(pos: u64, low: u64, high: u64, what: Corruption) -> Result<u64, Corruption> {
    if pos < low || pos > high || pos > MAX_POSITION || pos % RECORD_ALIGN as u64 != 0 {
        return Err(what);
    }
    Ok(pos)
}

/// The writing end of a ring. One per ring, ever at a time.
pub(crate) struct RingProducer {
    mem: RingMemory,
    /// Bytes published; only this handle advances it.
    tail: u64,
    /// `tail % capacity`, kept incrementally so the hot path never divides.
    offset: usize,
    /// Last `head` loaded. Reloaded only when it says the ring is full: the
    /// consumer's line is then read once per lap, not once per message.
    head_cache: u64,
    /// The offset up to which records (with the zeroed slot after them) can
    /// be written with no other check: `offset` plus the smaller of the bytes
    /// left before the end of the area and the free bytes `head_cache`
    /// allows. Writing in place moves `offset` and shrinks both by as much,
    /// so it holds until the next wrap or reload. 0 once the ring failed.
    limit: usize,
    /// The cycle count when a load of `head` last found the ring full; 0
    /// when the last load found room (see [`RELOAD_PACE_CYCLES`]).
    full_at: u64,
    messages: u64,
    bytes: u64,
    full: u64,
    failed: Option<Corruption>,
}

/// How long (in cycles of [`platform::cycle_count`], about a microsecond)
/// a producer that found the ring full lets pass before it loads `head`
/// again: a look that comes sooner first waits out the rest. A writer that
/// retried at once (a caller's `try_send` loop, a blocked `send` spinning)
/// would load the consumer's line on every try, and each load takes the line
/// from the consumer, which must fetch it back (and wait for it in the fence
/// of its wake-up check) to hand the next message's room over: measured, the
/// busy consumer of a full ring read 1.3-1.6x faster with this pace. No look
/// is skipped, only delayed, so waits built on it stay exact; the cost is
/// that a write into a full ring retried within a microsecond takes up to
/// that microsecond.
const RELOAD_PACE_CYCLES: u64 = 4000;

impl std::fmt::Debug for RingProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingProducer")
            .field("capacity", &self.mem.capacity)
            .field("tail", &self.tail)
            .field("head_cache", &self.head_cache)
            .finish()
    }
}

impl RingProducer {
    /// Attaches to a ring whose positions were last published consistently.
    pub(crate) fn attach(mem: RingMemory) -> Result<RingProducer, RingError> {
        let h = mem.header();
        let cap = mem.capacity as u64;
        let head = check_position(h.head.load(Ordering::Acquire), 0, MAX_POSITION, Corruption::HeadIndex)
            .map_err(RingError::Corrupted)?;
        let tail = check_position(h.tail.load(Ordering::Acquire), head, head + cap, Corruption::TailIndex)
            .map_err(RingError::Corrupted)?;
        let c = h.messages_written.load(Ordering::Relaxed);
        let b = h.bytes_written.load(Ordering::Relaxed);
        let f = h.full_events.load(Ordering::Relaxed);
        let mut producer = RingProducer {
            offset: (tail % cap) as usize,
            tail,
            head_cache: head,
            limit: 0,
            full_at: 0,
            messages: c,
            bytes: b,
            full: f,
            failed: None,
            mem,
        };
        producer.set_limit();
        Ok(producer)
    }

    /// Recomputes [`RingProducer::limit`] from the positions.
    #[inline]
    fn set_limit(&mut self) {
        let free = self.head_cache + self.mem.capacity as u64 - self.tail;
        let to_end = (self.mem.capacity - self.offset) as u64;
        self.limit = if self.failed.is_some() {
            0
        } else {
            self.offset + free.min(to_end) as usize
        };
    }

    /// Whether `need` more bytes fit; reloads `head` if the cache says no.
    /// The error is what is corrupt (and sticks).
    #[inline]
    fn has_room(&mut self, need: usize) -> Result<bool, Corruption> {
        let cap = self.mem.capacity as u64;
        if self.tail + need as u64 <= self.head_cache + cap {
            return Ok(true);
        }
        self.load_head(need)
    }

    /// Loads `head` (checked) and says whether `need` more bytes fit, after
    /// waiting out the pace if the last load found the ring full.
    #[cold]
    fn load_head(&mut self, need: usize) -> Result<bool, Corruption> {
        if self.full_at != 0 {
            platform::spin_until_cycles(self.full_at, RELOAD_PACE_CYCLES);
        }
        // SYNC POINT: Acquire pairs with the consumer's Release store of `head`
        // in `RingConsumer::consume`: the consumer is done with those bytes.
        let head = self.mem.header().head.load(Ordering::Acquire);
        if check_position(head, self.head_cache, self.tail, Corruption::HeadIndex).is_err() {
            self.failed = Some(Corruption::HeadIndex);
            self.limit = 0;
            return Err(Corruption::HeadIndex);
        }
        self.head_cache = head;
        self.set_limit();
        let room = self.tail + need as u64 <= head + self.mem.capacity as u64;
        // 0 means "found room"; a counter that reads 0 counts as 1.
        self.full_at = if room {
            0
        } else {
            platform::cycle_count().map_or(0, |c| c.max(1))
        };
        Ok(room)
    }

    /// Writes a header word. The first header of a batch is held back and
    /// published by `commit` with one release store; the rest are stored
    /// relaxed, since the consumer reaches them only through that first one.
    #[inline]
    fn put_header(&mut self, pending: &mut Option<(usize, u64)>, offset: usize, word: u64) {
        if pending.is_none() {
            *pending = Some((offset, word));
        } else {
            self.mem.word(offset).store(word, Ordering::Release);
        }
    }

    /// Reserves room for a `len`-byte record, lets `fill` write it in place
    /// and writes its header (held back if it is the batch's first).
    #[inline]
    pub(crate) fn put<R>(
        &mut self,
        pending: &mut Option<(usize, u64)>,
        priority: Priority,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<R, RingError> {
        if let Some(next) = self.fits_now(len) {
            return Ok(self.put_at(pending, next, priority, len, fill));
        }
        self.put_checked(pending, priority, len, fill)
    }

    /// The common case in two compares: where the record after a `len`-byte
    /// message starts, if the message and the slot after it fit before
    /// `limit` (so no wrap, no reload, and the ring is sound).
    #[inline(always)]
    fn fits_now(&self, len: usize) -> Option<usize> {
        if len > self.mem.max_message {
            return None;
        }
        let next = self.offset + layout::record_size(len);
        (next + RECORD_HEADER_SIZE <= self.limit).then_some(next)
    }

    /// [`RingProducer::put`] with every check: a wrap, a reload of `head`,
    /// a full ring, a message too large, a failed ring.
    #[inline(never)]
    fn put_checked<R>(
        &mut self,
        pending: &mut Option<(usize, u64)>,
        priority: Priority,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<R, RingError> {
        if let Some(what) = self.failed {
            return Err(RingError::Corrupted(what));
        }
        if len > self.mem.max_message {
            return Err(self.too_large(len));
        }
        let (rec, wrap, need) = self.space_for(len);
        match self.has_room(need) {
            Ok(true) => {}
            Ok(false) => {
                self.count_full();
                return Err(RingError::Full);
            }
            Err(what) => return Err(RingError::Corrupted(what)),
        }
        if wrap {
            // Committed together with the record after it, so the consumer
            // never waits behind a lone wrap.
            let skip = self.mem.capacity - self.offset;
            self.put_header(pending, self.offset, layout::encode_wrap(skip));
            self.tail += skip as u64;
            self.offset = 0;
            self.set_limit(); // before `fill`, which may panic
        }
        let end = self.offset + rec;
        let next = if end == self.mem.capacity { 0 } else { end };
        let out = self.put_at(pending, next, priority, len, fill);
        // A record that ends the area moved `offset` back to 0: recompute.
        self.set_limit();
        Ok(out)
    }

    /// Writes the record of a `len`-byte message at `offset`, for which
    /// there is room (the record and the slot after it are free and inside
    /// the area), and its header; `next` is where the record ends (0 if at
    /// the end of the area).
    #[inline(always)]
    fn put_at<R>(
        &mut self,
        pending: &mut Option<(usize, u64)>,
        next: usize,
        priority: Priority,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> R {
        let off = self.offset;
        let rec = layout::record_size(len);
        debug_assert!(off + rec <= self.mem.capacity && (next == 0 || next == off + rec));
        let start = self.mem.data.as_ptr().wrapping_add(off + RECORD_HEADER_SIZE);
        // SAFETY: [off+8, off+8+len) lies inside the data area (rec <= capacity - off)
        // and inside the free space [tail, head + capacity), which the consumer does not
        // read; this handle is the only writer.
        let payload = unsafe { std::slice::from_raw_parts_mut(start, len) };
        self.mem.touch(off + RECORD_HEADER_SIZE, len, true);
        let out = fill(payload);
        // The slot after the record reads "nothing yet" until a later record
        // fills it: a consumer never sees a header left from the previous lap.
        self.mem.word(next).store(0, Ordering::Relaxed);
        self.put_header(pending, off, layout::encode_message(len, priority));
        self.tail += rec as u64;
        self.offset = next;
        // Counters start from values in shared memory: they wrap, never trap.
        self.messages = self.messages.wrapping_add(1);
        self.bytes = self.bytes.wrapping_add(len as u64);
        out
    }

    /// Publishes everything written since the last commit.
    #[inline]
    pub(crate) fn commit(&mut self, pending: &mut Option<(usize, u64)>) {
        if let Some((offset, word)) = pending.take() {
            // SYNC POINT: the publish. Release orders every payload, header and
            // zeroed slot written before it; pairs with the Acquire load in
            // `RingConsumer::peek`.
            self.mem.word(offset).store(word, Ordering::Release);
            self.publish_tail();
        }
    }

    /// Reserves room for a `len`-byte message, lets `fill` write it in place
    /// and publishes it. If `fill` panics nothing is published.
    ///
    /// # Errors
    /// [`RingError::Full`] when it does not fit now, [`RingError::TooLarge`] when
    /// it never will, [`RingError::Corrupted`] if the peer broke the ring.
    #[inline]
    pub(crate) fn write_with<R>(
        &mut self,
        priority: Priority,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<R, RingError> {
        // The common case as `put` tells it (no wrap, room before `limit`):
        // published at once. Its pending header stays in registers, where a
        // batch's, lent to `put_checked`, lives in memory (8 instructions of
        // every send: `send_recv` in `examples/instructions.rs`). Should
        // `fill` panic, nothing was written to publish.
        if let Some(next) = self.fits_now(len) {
            let mut pending = None;
            let out = self.put_at(&mut pending, next, priority, len, fill);
            self.commit(&mut pending);
            return Ok(out);
        }
        // A batch of one, committed when it drops, also if `fill` panics: a
        // wrap record already written for this message must be published
        // then, or the consumer would wait at it forever.
        self.batch().write_with(priority, len, fill)
    }

    /// Starts a batch: messages written through it become visible together,
    /// with one release store, when it is committed or dropped.
    pub(crate) fn batch(&mut self) -> WriteBatch<'_> {
        WriteBatch {
            producer: self,
            pending: None,
        }
    }

    /// Copies `data` in as one message.
    ///
    /// # Errors
    /// [`RingError::Full`] when it does not fit now, [`RingError::TooLarge`] when
    /// it never will, [`RingError::Corrupted`] if the peer broke the ring.
    #[inline]
    pub(crate) fn write(&mut self, priority: Priority, data: &[u8]) -> Result<(), RingError> {
        self.write_with(priority, data.len(), |buf| buf.copy_from_slice(data))
    }

    #[cold]
    fn too_large(&self, len: usize) -> RingError {
        RingError::TooLarge {
            len,
            max: self.mem.max_message,
        }
    }

    #[inline]
    fn publish_tail(&self) {
        let h = self.mem.header();
        h.tail.store(self.tail, Ordering::Release);
        h.messages_written.store(self.messages, Ordering::Relaxed);
        h.bytes_written.store(self.bytes, Ordering::Relaxed);
    }

    #[cold]
    fn count_full(&mut self) {
        self.full = self.full.wrapping_add(1);
        self.mem.header().full_events.store(self.full, Ordering::Relaxed);
    }

    /// Record size, whether it must wrap, and the free bytes it needs
    /// (wrap padding, the record, and the zeroed header slot after it).
    #[inline]
    fn space_for(&self, len: usize) -> (usize, bool, usize) {
        let rec = layout::record_size(len);
        let to_end = self.mem.capacity - self.offset;
        let wrap = rec > to_end;
        let need = if wrap { to_end + rec } else { rec } + RECORD_HEADER_SIZE;
        (rec, wrap, need)
    }

    /// Whether a message of `len` bytes would fit now.
    ///
    /// # Errors
    /// [`RingError::TooLarge`] for a message that never fits,
    /// [`RingError::Corrupted`] if the consumer's position is impossible.
    pub(crate) fn can_write(&mut self, len: usize) -> Result<bool, RingError> {
        if len > self.mem.max_message {
            return Err(self.too_large(len));
        }
        let need = self.space_for(len).2;
        self.has_room(need).map_err(RingError::Corrupted)
    }

    /// Fraction of the ring in use (0.0 empty .. 1.0 full), from a fresh `head`.
    ///
    /// # Errors
    /// [`RingError::Corrupted`] if the consumer's position is impossible.
    pub(crate) fn occupancy(&mut self) -> Result<f32, RingError> {
        let _ = self.load_head(0).map_err(RingError::Corrupted)?;
        Ok((self.tail - self.head_cache) as f32 / self.mem.capacity as f32)
    }

    /// Data bytes of the ring.
    pub(crate) fn capacity(&self) -> usize {
        self.mem.capacity
    }

    /// Largest message payload.
    pub(crate) fn max_message_size(&self) -> usize {
        self.mem.max_message
    }

    pub(crate) fn memory(&self) -> &RingMemory {
        &self.mem
    }
}

/// Messages written through a batch are published together, with one
/// release store, when it is committed (or dropped, also during a panic:
/// the messages completed before it are published, the one being written
/// is not).
#[derive(Debug)]
pub(crate) struct WriteBatch<'a> {
    producer: &'a mut RingProducer,
    pending: Option<(usize, u64)>,
}

impl WriteBatch<'_> {
    /// Writes a `len`-byte message in place into the batch.
    ///
    /// # Errors
    /// [`RingError::Full`] when it does not fit now, [`RingError::TooLarge`] when
    /// it never will, [`RingError::Corrupted`] if the peer broke the ring.
    #[inline]
    pub(crate) fn write_with<R>(
        &mut self,
        priority: Priority,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<R, RingError> {
        self.producer.put(&mut self.pending, priority, len, fill)
    }

    /// Copies `data` into the batch as one message.
    ///
    /// # Errors
    /// [`RingError::Full`] when it does not fit now, [`RingError::TooLarge`] when
    /// it never will, [`RingError::Corrupted`] if the peer broke the ring.
    #[inline]
    pub(crate) fn write(&mut self, priority: Priority, data: &[u8]) -> Result<(), RingError> {
        self.write_with(priority, data.len(), |b| b.copy_from_slice(data))
    }

    /// Publishes the batch.
    pub(crate) fn commit(mut self) {
        self.producer.commit(&mut self.pending);
    }
}

impl Drop for WriteBatch<'_> {
    fn drop(&mut self) {
        self.producer.commit(&mut self.pending);
    }
}

/// The reading end of a ring. One per ring, ever at a time.
pub(crate) struct RingConsumer {
    mem: RingMemory,
    /// Bytes consumed; only this handle advances it.
    head: u64,
    /// `head % capacity`.
    offset: usize,
    messages: u64,
    bytes: u64,
    failed: Option<Corruption>,
}

impl std::fmt::Debug for RingConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingConsumer")
            .field("capacity", &self.mem.capacity)
            .field("head", &self.head)
            .finish()
    }
}

/// A message found at the consumer's position, not yet consumed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peeked {
    pub(crate) priority: Priority,
    len: usize,
    offset: usize,
}

impl RingConsumer {
    /// Attaches to a ring whose positions were last published consistently.
    pub(crate) fn attach(mem: RingMemory) -> Result<RingConsumer, RingError> {
        let h = mem.header();
        let head = h.head.load(Ordering::Acquire);
        check_position(head, 0, MAX_POSITION, Corruption::HeadIndex).map_err(RingError::Corrupted)?;
        Ok(RingConsumer {
            offset: (head % mem.capacity as u64) as usize,
            head,
            messages: h.messages_read.load(Ordering::Relaxed),
            bytes: h.bytes_read.load(Ordering::Relaxed),
            failed: None,
            mem,
        })
    }

    /// Finds the next message, skipping a wrap record. `Ok(None)`: empty.
    #[inline]
    pub(crate) fn peek(&mut self) -> Result<Option<Peeked>, RingError> {
        let next = self.next_message(true)?;
        Ok(next.map(|(len, priority)| Peeked {
            priority,
            len,
            offset: self.offset,
        }))
    }

    /// Finds the next message from the read position, skipping a wrap record
    /// (handed back to the producer at once if `publish_wrap`, else at the
    /// next publish). An empty ring costs one load.
    #[inline]
    fn next_message(&mut self, publish_wrap: bool) -> Result<Option<(usize, Priority)>, RingError> {
        // At most two rounds: a wrap moves us to offset 0, where `decode` refuses another wrap.
        loop {
            // SYNC POINT: Acquire pairs with the producer's Release store of this
            // header: the payload (and the zeroed slot after it) are visible.
            let word = self.mem.word(self.offset).load(Ordering::Acquire);
            if word == 0 {
                return Ok(None); // empty: one load, even for a failed ring
            }
            if let Some(what) = self.failed {
                return Err(RingError::Corrupted(what));
            }
            match layout::decode(word, self.offset, self.mem.capacity, self.mem.max_message) {
                Ok(None) => return Ok(None),
                Ok(Some(Record::Wrap { skip })) => {
                    self.advance(skip, None);
                    if publish_wrap {
                        self.publish();
                    }
                }
                Ok(Some(Record::Message { len, priority })) => return Ok(Some((len, priority))),
                Err(what) => {
                    self.failed = Some(what);
                    return Err(RingError::Corrupted(what));
                }
            }
        }
    }

    /// One load: false only if the ring is certainly empty (a zero header at
    /// the read position). Lets the priority reader skip empty tiers without
    /// a full `peek`.
    #[inline]
    pub(crate) fn may_have_message(&self) -> bool {
        self.mem.word(self.offset).load(Ordering::Relaxed) != 0
    }

    /// Whether a message is waiting (cheap: one load when the ring is empty).
    #[inline]
    pub(crate) fn has_message(&mut self) -> bool {
        matches!(self.peek(), Ok(Some(_)) | Err(_))
    }

    /// Hands a peeked message to `f`, then consumes it, even if `f` panics:
    /// a message is delivered at most once.
    #[inline]
    pub(crate) fn deliver<R>(&mut self, m: Peeked, f: impl FnOnce(Priority, RingBytes<'_>) -> R) -> R {
        struct ConsumeOnDrop<'a> {
            consumer: &'a mut RingConsumer,
            len: usize,
        }
        impl Drop for ConsumeOnDrop<'_> {
            #[inline]
            fn drop(&mut self) {
                self.consumer.consume(layout::record_size(self.len), Some(self.len));
            }
        }
        let payload = self.payload(m.offset, m.len);
        let _guard = ConsumeOnDrop {
            consumer: self,
            len: m.len,
        };
        f(m.priority, payload)
    }

    /// The payload of the validated record at `offset`, lent until the
    /// record is consumed.
    #[inline(always)]
    fn payload<'a>(&self, offset: usize, len: usize) -> RingBytes<'a> {
        debug_assert!(offset + layout::record_size(len) <= self.mem.capacity);
        self.mem.touch(offset + RECORD_HEADER_SIZE, len, false);
        // SAFETY: `peek`/`next_message` validated the record [offset,
        // offset + record_size(len)) to lie inside the data area, 8-aligned
        // and padded to 8 bytes; the area stays mapped while `self.mem`
        // lives, and every caller consumes the record (and so lets the
        // producer reuse it) only after the lent bytes' last use.
        unsafe { RingBytes::new(self.mem.data.add(offset + RECORD_HEADER_SIZE), len) }
    }

    /// Lends the next message to `f`. `Ok(None)`: empty.
    ///
    /// # Errors
    /// [`RingError::Corrupted`] when the ring holds a value no well-behaved
    /// producer writes; the ring stays failed.
    #[inline]
    pub(crate) fn read_with<R>(
        &mut self,
        f: impl FnOnce(Priority, RingBytes<'_>) -> R,
    ) -> Result<Option<R>, RingError> {
        match self.peek()? {
            Some(m) => Ok(Some(self.deliver(m, f))),
            None => Ok(None),
        }
    }

    /// Copies the next message out. `Ok(None)`: empty.
    ///
    /// # Errors
    /// [`RingError::Corrupted`] when the ring holds a value no well-behaved
    /// producer writes; the ring stays failed.
    pub(crate) fn read(&mut self) -> Result<Option<(Priority, Vec<u8>)>, RingError> {
        self.read_with(|p, b| (p, b.to_vec()))
    }

    #[inline]
    fn consume(&mut self, n: usize, message_len: Option<usize>) {
        self.advance(n, message_len);
        self.publish();
    }

    /// Moves past `n` bytes locally; the producer sees it at `publish`.
    #[inline]
    fn advance(&mut self, n: usize, message_len: Option<usize>) {
        self.head += n as u64;
        self.offset += n;
        if self.offset == self.mem.capacity {
            self.offset = 0;
        }
        if let Some(len) = message_len {
            self.messages = self.messages.wrapping_add(1);
            self.bytes = self.bytes.wrapping_add(len as u64);
        }
    }

    /// Hands consumed bytes back to the producer.
    #[inline]
    fn publish(&mut self) {
        let h = self.mem.header();
        h.messages_read.store(self.messages, Ordering::Relaxed);
        h.bytes_read.store(self.bytes, Ordering::Relaxed);
        // SYNC POINT: Release hands the bytes back; pairs with the producer's
        // Acquire load of `head` in `RingProducer::has_room`.
        h.head.store(self.head, Ordering::Release);
    }

    /// Passes up to `max` waiting messages to `f`, in order, and hands their
    /// space back to the producer once, at the end (also if `f` panics: every
    /// message passed to `f` is consumed exactly once). Returns how many.
    ///
    /// # Errors
    /// [`RingError::Corrupted`] when the ring holds a value no well-behaved
    /// producer writes; the ring stays failed.
    pub(crate) fn read_batch_with(
        &mut self,
        max: usize,
        mut f: impl FnMut(Priority, RingBytes<'_>),
    ) -> Result<usize, RingError> {
        struct PublishOnDrop<'a>(&'a mut RingConsumer);
        impl Drop for PublishOnDrop<'_> {
            fn drop(&mut self) {
                self.0.publish();
            }
        }
        if let Some(what) = self.failed {
            return Err(RingError::Corrupted(what));
        }
        if !self.may_have_message() {
            return Ok(0); // one load; nothing consumed, nothing to publish
        }
        let guard = PublishOnDrop(self);
        let c = &mut *guard.0;
        let mut n = 0;
        while n < max {
            let Some((len, priority)) = c.next_message(false)? else {
                break;
            };
            // Advanced locally only: the producer gets the space back at
            // `publish` (the guard's drop), after the last `f`.
            let payload = c.payload(c.offset, len);
            c.advance(layout::record_size(len), Some(len));
            f(priority, payload);
            n += 1;
        }
        Ok(n)
    }

    /// Data bytes of the ring.
    pub(crate) fn capacity(&self) -> usize {
        self.mem.capacity
    }

    pub(crate) fn memory(&self) -> &RingMemory {
        &self.mem
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::HeapRegion;

    fn ring(capacity: usize, max: usize) -> (RingProducer, RingConsumer) {
        let region = HeapRegion::zeroed(layout::RING_HEADER_SIZE + capacity);
        let base = region.base();
        // SAFETY: the region is 128-aligned, zeroed, large enough, and kept alive by the Arc.
        let mem = unsafe { RingMemory::new(base, capacity, max, Arc::new(region)) };
        (
            RingProducer::attach(mem.clone()).unwrap(),
            RingConsumer::attach(mem).unwrap(),
        )
    }

    #[test]
    fn fifo_with_wraps_and_varied_sizes() {
        let (mut p, mut c) = ring(1024, 200);
        let mut next_read = 0u32;
        let mut next_write = 0u32;
        for round in 0..5000u32 {
            let len = (round as usize * 37) % 201;
            loop {
                let n = next_write;
                match p.write_with(Priority::High, len, |b| {
                    b.fill(n as u8);
                    if len >= 4 {
                        b[..4].copy_from_slice(&n.to_le_bytes());
                    }
                }) {
                    Ok(()) => {
                        next_write += 1;
                        break;
                    }
                    Err(RingError::Full) => {
                        let got = c.read().unwrap().unwrap();
                        let expect_len = (next_read as usize * 37) % 201;
                        assert_eq!(got.1.len(), expect_len);
                        if expect_len >= 4 {
                            assert_eq!(u32::from_le_bytes(got.1[..4].try_into().unwrap()), next_read);
                        }
                        next_read += 1;
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        }
        while let Some(_m) = c.read().unwrap() {
            next_read += 1;
        }
        assert_eq!(next_read, next_write);
        let k = p.memory().counters();
        assert_eq!(k.messages_written, u64::from(next_write));
        assert_eq!(k.messages_read, u64::from(next_read));
        assert!(k.full_events > 0);
    }

    #[test]
    fn a_max_size_message_always_fits_a_drained_ring() {
        let cap = layout::min_ring_capacity(4096);
        let (mut p, mut c) = ring(cap, 4096);
        let big = vec![7u8; 4096];
        for i in 0..600 {
            // Shift the offset by a small message each round so every wrap case is hit.
            let small = (i * 8) % 4096;
            p.write(Priority::Low, &vec![1u8; small]).unwrap();
            assert_eq!(c.read().unwrap().unwrap().1.len(), small);
            p.write(Priority::Low, &big).unwrap();
            assert_eq!(c.read().unwrap().unwrap().1, big);
        }
    }

    #[test]
    fn batches_publish_together_across_wraps() {
        let (mut p, mut c) = ring(1024, 200);
        let mut sent = 0u32;
        for round in 0..200u32 {
            let mut b = p.batch();
            let n = 1 + round % 7;
            for _ in 0..n {
                let v = sent;
                match b.write_with(Priority::High, 4 + (v as usize * 13) % 120, |buf| {
                    buf[..4].copy_from_slice(&v.to_le_bytes())
                }) {
                    Ok(()) => sent += 1,
                    Err(RingError::Full) => break,
                    Err(e) => panic!("{e}"),
                }
            }
            drop(b); // commits
            while let Some((_, m)) = c.read().unwrap() {
                let got = u32::from_le_bytes(m[..4].try_into().unwrap());
                assert_eq!(m.len(), 4 + (got as usize * 13) % 120);
                assert!(got < sent);
            }
        }
        assert_eq!(p.memory().counters().messages_read, u64::from(sent));
    }

    #[test]
    fn a_panic_inside_a_batch_publishes_the_completed_messages_only() {
        let (mut p, mut c) = ring(1024, 100);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut b = p.batch();
            b.write(Priority::High, b"one").unwrap();
            b.write(Priority::High, b"two").unwrap();
            b.write_with(Priority::High, 5, |_| panic!("boom")).unwrap();
        }));
        assert!(r.is_err());
        assert_eq!(c.read().unwrap().unwrap().1, b"one");
        assert_eq!(c.read().unwrap().unwrap().1, b"two");
        assert!(c.read().unwrap().is_none());
        p.write(Priority::High, b"three").unwrap();
        assert_eq!(c.read().unwrap().unwrap().1, b"three");
    }

    #[test]
    fn a_panic_in_a_batch_read_consumes_the_delivered_messages_once() {
        let (mut p, mut c) = ring(1024, 100);
        for i in 0..5u8 {
            p.write(Priority::High, &[i]).unwrap();
        }
        let mut seen = Vec::new();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            c.read_batch_with(10, |_, b| {
                let b = b.to_vec();
                seen.push(b[0]);
                if b[0] == 2 {
                    panic!("boom");
                }
            })
        }));
        assert!(r.is_err());
        assert_eq!(seen, [0, 1, 2]);
        assert_eq!(c.read().unwrap().unwrap().1, [3]);
        assert_eq!(c.read_batch_with(10, |_, _| ()).unwrap(), 1);
        assert_eq!(p.memory().counters().messages_read, 5);
    }

    #[test]
    fn too_large_is_refused() {
        let (mut p, _c) = ring(1024, 100);
        assert!(matches!(
            p.write(Priority::Low, &[0; 101]),
            Err(RingError::TooLarge { len: 101, max: 100 })
        ));
    }

    #[test]
    fn panic_in_fill_publishes_nothing() {
        let (mut p, mut c) = ring(1024, 100);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            p.write_with(Priority::High, 10, |_| panic!("boom")).unwrap();
        }));
        assert!(r.is_err());
        assert!(c.read().unwrap().is_none());
        p.write(Priority::High, b"ok").unwrap();
        assert_eq!(c.read().unwrap().unwrap().1, b"ok");
    }

    /// The producer's fast path trusts a cached limit: check it against a
    /// model queue through every case that moves it (wraps, records ending
    /// the area, reloads of `head`, a fill that panics, even during a wrap).
    #[test]
    fn panicking_fills_wraps_and_reloads_keep_fifo_and_never_overwrite() {
        let (mut p, mut c) = ring(512, 120);
        let mut model = std::collections::VecDeque::new();
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = 0u32;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = 4 + (seed % 117) as usize;
            match seed >> 60 {
                0..=2 => {
                    if let Some((_, got)) = c.read().unwrap() {
                        assert_eq!(Some(got), model.pop_front());
                    }
                }
                3 => {
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        p.write_with(Priority::High, len, |_| panic!("boom"))
                    }));
                    assert!(matches!(r, Err(_) | Ok(Err(RingError::Full))));
                }
                _ => {
                    let mut msg = vec![next as u8; len];
                    msg[..4].copy_from_slice(&next.to_le_bytes());
                    match p.write(Priority::High, &msg) {
                        Ok(()) => {
                            model.push_back(msg);
                            next += 1;
                        }
                        Err(RingError::Full) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        }
        while let Some((_, got)) = c.read().unwrap() {
            assert_eq!(Some(got), model.pop_front());
        }
        assert!(model.is_empty(), "{} messages lost", model.len());
    }

    #[test]
    fn panic_in_reader_consumes_exactly_once() {
        let (mut p, mut c) = ring(1024, 100);
        p.write(Priority::High, b"one").unwrap();
        p.write(Priority::High, b"two").unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            c.read_with(|_, _| panic!("boom")).unwrap();
        }));
        assert!(r.is_err());
        assert_eq!(c.read().unwrap().unwrap().1, b"two");
        assert!(c.read().unwrap().is_none());
    }

    #[test]
    fn corrupt_header_is_an_error_and_sticks() {
        let (mut p, mut c) = ring(1024, 100);
        p.write(Priority::High, b"hello").unwrap();
        c.mem
            .word(0)
            .store(layout::encode_message(5000, Priority::High), Ordering::Release);
        assert!(matches!(c.read(), Err(RingError::Corrupted(_))));
        assert!(matches!(c.read(), Err(RingError::Corrupted(_))));
        // Mended by the peer, it stays failed: nothing from it is delivered.
        c.mem
            .word(0)
            .store(layout::encode_message(5, Priority::High), Ordering::Release);
        assert!(matches!(c.read(), Err(RingError::Corrupted(_))));
        // Emptied, it reads as empty: there is nothing to report or deliver.
        c.mem.word(0).store(0, Ordering::Release);
        assert!(c.read().unwrap().is_none());
    }

    #[test]
    fn corrupt_head_is_an_error() {
        let (mut p, _c) = ring(256, 64);
        p.mem.header().head.store(1 << 40, Ordering::Release);
        let mut r = Ok(());
        for _ in 0..100 {
            r = p.write(Priority::High, &[0; 64]);
            if r.is_err() {
                break;
            }
        }
        assert!(matches!(r, Err(RingError::Corrupted(_))), "{r:?}");
    }
}
