//! A received payload where it lies in the ring: [`RingBytes`].
//!
//! A peer that breaks the ring's protocol can rewrite a payload while this
//! process reads it. Nothing here then reads or writes outside the record
//! (every index that locates it was validated), but a `&[u8]` over those
//! bytes would promise the compiler that they do not change, which is false
//! under such a peer. So the ring hands its readers a `RingBytes`, not a
//! slice, and the reader picks one of two ways:
//!
//! - [`RingBytes::copy_to`] / [`RingBytes::to_vec`]: a copy made with
//!   atomic 8-byte loads. Every access of this process to the bytes is then
//!   atomic, so no data race exists whatever the peer does: it can only
//!   choose which bytes the copy holds, and every byte value is valid. Owned
//!   receives and typed decodes read this way, and inspect only the copy.
//! - [`RingBytes::trusting_peer`]: the slice in place, zero-copy, under the
//!   precondition that the peer keeps the protocol (it does not write a
//!   record until the reader hands it back). The borrowed receive forms
//!   (`recv_with` and its kin) say so in their docs; the 0.1.3 heap rings,
//!   whose both ends are this process's own handles, always meet it.
//!
//! Why atomics and not `read_volatile`: a volatile read that races with
//! another access is still a data race in Rust's memory model; a relaxed
//! atomic load is not. The records are 8-byte aligned and padded to 8
//! bytes (`layout::record_size`), so whole-word loads never leave the
//! record.

use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ptr::NonNull;

use crate::segment::layout::RECORD_ALIGN;

/// A payload in the ring, lent to the reader until it hands the record
/// back (see the module docs).
///
/// Invariant: `start` is 8-byte aligned and `[start, start +
/// round_up(len, 8))` lies inside one record of a ring's data area, which
/// stays mapped for `'a`; the consumer that made it does not hand the
/// record back before `'a` ends.
#[derive(Clone, Copy)]
pub(crate) struct RingBytes<'a> {
    start: NonNull<u8>,
    len: usize,
    _ring: PhantomData<&'a [u8]>,
}

impl std::fmt::Debug for RingBytes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingBytes").field("len", &self.len).finish()
    }
}

impl<'a> RingBytes<'a> {
    /// The payload of `len` bytes at `start`.
    ///
    /// # Safety
    /// `start` and `len` meet the type's invariant for `'a`.
    #[inline(always)]
    pub(crate) unsafe fn new(start: NonNull<u8>, len: usize) -> RingBytes<'a> {
        debug_assert!(start.as_ptr() as usize % RECORD_ALIGN == 0);
        RingBytes {
            start,
            len,
            _ring: PhantomData,
        }
    }

    /// The payload's length (validated when the record was read).
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Copies the payload into the front of `dst` (at least `len` bytes) and
    /// returns the copy.
    ///
    /// # Panics
    /// If `dst` is shorter than the payload (a caller's bug, never input).
    #[inline]
    #[cfg(test)]
    pub(crate) fn copy_to<'b>(&self, dst: &'b mut [u8]) -> &'b mut [u8] {
        let dst = &mut dst[..self.len];
        // SAFETY: `dst` is `len` writable bytes.
        unsafe { self.copy_raw(dst.as_mut_ptr()) };
        dst
    }

    /// [`RingBytes::copy_to`] into memory not yet initialised (a stack
    /// buffer that need not be zeroed first).
    ///
    /// # Panics
    /// If `dst` is shorter than the payload (a caller's bug, never input).
    #[inline]
    pub(crate) fn copy_to_uninit<'b>(&self, dst: &'b mut [MaybeUninit<u8>]) -> &'b [u8] {
        let dst = &mut dst[..self.len];
        // SAFETY: `dst` is `len` writable bytes (`MaybeUninit<u8>` has the
        // layout of `u8`).
        unsafe { self.copy_raw(dst.as_mut_ptr().cast()) };
        // SAFETY: `copy_raw` initialised all `len` bytes of `dst`.
        unsafe { std::slice::from_raw_parts(dst.as_ptr().cast(), self.len) }
    }

    /// Copies the payload to `dst` (see [`copy_words`]).
    ///
    /// # Safety
    /// `dst` is valid for `len` bytes of writes and does not overlap the ring.
    #[inline(always)]
    unsafe fn copy_raw(&self, dst: *mut u8) {
        // SAFETY: the record holds `len` bytes padded to 8 at `start`, an
        // aligned address (type invariant); `dst` is the caller's.
        unsafe { copy_words(self.start.as_ptr().cast::<u64>().cast_const(), dst, self.len) }
    }

    /// The payload copied into a new allocation.
    #[inline]
    pub(crate) fn to_boxed(self) -> Box<[u8]> {
        self.to_vec().into_boxed_slice()
    }

    /// The payload copied into a vector of exactly its length (written
    /// once: the copy, not zeroes first).
    #[inline]
    pub(crate) fn to_vec(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len);
        self.copy_to_uninit(out.spare_capacity_mut());
        // SAFETY: `copy_to_uninit` initialised the first `len` bytes of the
        // spare capacity, which holds at least `len`.
        unsafe { out.set_len(self.len) };
        out
    }

    /// The payload in place, zero-copy.
    ///
    /// # Safety
    /// The producer keeps the ring's protocol for `'a`: it does not write
    /// the record before this reader hands it back. This process cannot
    /// check that of another process: a caller passes the precondition on
    /// to its own caller in its docs (the borrowed receive forms), or knows
    /// the producer is one of its own handles (the 0.1.3 heap rings).
    #[inline(always)]
    pub(crate) unsafe fn trusting_peer(self) -> &'a [u8] {
        // SAFETY: `len` bytes at `start` are inside the record, mapped for
        // 'a (type invariant), and unchanged for 'a (caller's contract).
        unsafe { std::slice::from_raw_parts(self.start.as_ptr(), self.len) }
    }
}

/// Copies `len` bytes from `src` to `dst`, a word at a time, eight words
/// per round.
///
/// Why it is shaped so: the loads are atomic, so the compiler cannot merge
/// them into the wide loads a `memcpy` uses, and every word costs a load and
/// a store. Unrolled eight times, a payload that is a whole number of rounds
/// (64 bytes, 128, ...) costs those, one test per round and one at the end;
/// what is left after the rounds (up to seven words and seven bytes) takes
/// at most four more steps. Out of line, so that the receive it serves
/// keeps its registers (inlined, the copy's spilled them: measured, more
/// instructions than the call).
///
/// # Safety
/// `src` is an aligned word inside a record lent by the ring, which holds
/// `len` bytes from `src` padded to 8 (see [`RingBytes`]); `dst` is valid
/// for `len` bytes of writes and does not overlap the ring.
#[inline(never)]
unsafe fn copy_words(mut src: *const u64, dst: *mut u8, len: usize) {
    let mut out = dst.cast::<u64>();
    // SAFETY: `len / 64 * 8` words end at or before `len` bytes, inside the record.
    let end = unsafe { src.add(len / (8 * RECORD_ALIGN) * 8) };
    while src != end {
        // SAFETY: the 8 words at `src` lie in the record (`src` < `end`),
        // and the 8 at `out` in `dst`, as far from its start.
        unsafe {
            let a = [load(src), load(src.add(1)), load(src.add(2)), load(src.add(3))];
            out.cast::<[u64; 4]>().write_unaligned(a);
            let b = [load(src.add(4)), load(src.add(5)), load(src.add(6)), load(src.add(7))];
            out.add(4).cast::<[u64; 4]>().write_unaligned(b);
            src = src.add(8);
            out = out.add(8);
        }
    }
    let left = len % (8 * RECORD_ALIGN);
    if left == 0 {
        return;
    }
    if left & 32 != 0 {
        // SAFETY: 4 more whole words lie in the record and in `dst`.
        unsafe {
            let a = [load(src), load(src.add(1)), load(src.add(2)), load(src.add(3))];
            out.cast::<[u64; 4]>().write_unaligned(a);
            src = src.add(4);
            out = out.add(4);
        }
    }
    if left & 16 != 0 {
        // SAFETY: 2 more whole words lie in the record and in `dst`.
        unsafe {
            out.cast::<[u64; 2]>().write_unaligned([load(src), load(src.add(1))]);
            src = src.add(2);
            out = out.add(2);
        }
    }
    if left & 8 != 0 {
        // SAFETY: 1 more whole word lies in the record and in `dst`.
        unsafe {
            out.write_unaligned(load(src));
            src = src.add(1);
            out = out.add(1);
        }
    }
    let rest = left % RECORD_ALIGN;
    if rest > 0 {
        // The record is padded to 8 bytes: the whole last word is in it.
        // SAFETY: the word at `src` lies in the padded record.
        let last = unsafe { load(src) }.to_ne_bytes();
        // Its first `rest` bytes in pieces of 4, 2 and 1, each a plain
        // move (a copy of `rest` bytes would call `memcpy`).
        let (out, mut k) = (out.cast::<u8>(), 0);
        if rest & 4 != 0 {
            // SAFETY: bytes 0..4 of the `rest` at `out`, which end at `len`
            // bytes of `dst`.
            unsafe { std::ptr::copy_nonoverlapping(last.as_ptr(), out, 4) };
            k = 4;
        }
        if rest & 2 != 0 {
            // SAFETY: bytes k..k+2 <= rest of those at `out`, and of `last`.
            unsafe { std::ptr::copy_nonoverlapping(last.as_ptr().add(k), out.add(k), 2) };
            k += 2;
        }
        if rest & 1 != 0 {
            // SAFETY: byte k < rest of those at `out`.
            unsafe { out.add(k).write(last[k]) };
        }
    }
}

/// One word of a payload, loaded atomically: every access of this process
/// to bytes a peer may write is then atomic, so it races with nothing here.
///
/// # Safety
/// `word` is an aligned u64 inside a record lent by the ring (see
/// [`RingBytes`]), mapped while the load runs.
#[cfg(not(loom))]
#[inline(always)]
unsafe fn load(word: *const u64) -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    // SAFETY: aligned and mapped (caller's contract); every access of this
    // process to it while lent is atomic (this load) or happened before the
    // producer's release of the record, so the atomic view races with
    // nothing in this process. The ring's Acquire of the record header
    // already ordered these bytes after the producer's writes: Relaxed.
    unsafe { (*word.cast::<AtomicU64>()).load(Ordering::Relaxed) }
}

/// Under loom the data area is plain memory beside the model's words (see
/// `spsc.rs`), whose cells check the accesses: a plain read.
///
/// # Safety
/// As above; in a loom model both ends are this process's handles.
#[cfg(loom)]
unsafe fn load(word: *const u64) -> u64 {
    // SAFETY: aligned and mapped (caller's contract).
    unsafe { word.read() }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Eight-byte aligned storage for a record of up to 200 bytes.
    #[repr(align(8))]
    struct Record([u8; 200]);

    #[test]
    fn a_copy_holds_every_byte_of_any_length() {
        let mut rec = Record(std::array::from_fn(|i| i as u8 + 1));
        let expected = rec.0;
        // Atomic loads need a pointer that may write (as the mapping's is).
        let start = NonNull::from(&mut rec.0).cast::<u8>();
        // Every mix of whole rounds, remaining words and remaining bytes.
        for len in 0..=200 {
            // SAFETY: `rec` is 8-aligned and 200 bytes, which holds a
            // payload of up to 200 bytes padded to 8; it outlives `bytes`
            // and is not touched but through `start` meanwhile.
            let bytes = unsafe { RingBytes::new(start, len) };
            let mut dst = [0xEE; 210];
            assert_eq!(bytes.copy_to(&mut dst), &expected[..len]);
            assert_eq!(&*bytes.to_boxed(), &expected[..len]);
            assert_eq!(bytes.to_vec(), &expected[..len]);
            let mut uninit = [MaybeUninit::uninit(); 210];
            assert_eq!(bytes.copy_to_uninit(&mut uninit), &expected[..len]);
            // The copy stops at `len`: the byte after it is untouched.
            assert_eq!(dst[len], 0xEE);
        }
    }
}
