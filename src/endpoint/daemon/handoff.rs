//! How the two halves of a split daemon agree to free a departed client's
//! slot, without a lock on any message's path.
//!
//! The receiving half frees a slot once it has read everything the client
//! sent, but the sending half may still hold the writing ends of that
//! client's rings. Freed while held, the slot could be claimed by a new
//! client whose rings the old writing ends would then write into. An
//! unsplit daemon's own calls hold both halves, so the receiving part makes
//! the sending part let go directly. Split, the halves may run on two
//! threads, so they hand the slot over through this process-local record:
//!
//! 1. The receiving half *asks* for slot `i` (a count per slot, and a flag
//!    that some request waits) and keeps the slot.
//! 2. The sending half looks at the flag at every call (one load; also
//!    while it waits for room), lets go of every slot asked for, and
//!    *answers* each request by storing its count.
//! 3. At a later call the receiving half sees the answer and frees the slot.
//!
//! A sending half that is dropped lets go of everything at once; the
//! receiving half then frees without asking. So a split daemon frees a
//! departed client's slot at the sending half's next call (or its drop);
//! until then the slot counts as draining (see [`crate::OpenError::TableFull`]).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// The record the two halves of one daemon share (see the module docs).
#[derive(Debug)]
pub(crate) struct Handoff {
    /// Per slot: the receiving half's requests so far (only it writes).
    asked: Box<[AtomicU32]>,
    /// Per slot: the request the sending half last answered (only it writes).
    answered: Box<[AtomicU32]>,
    /// Per slot: whether the receiving half waits for an answer (only it
    /// reads and writes this; atomic so that the record is `Sync`).
    waiting: Box<[AtomicBool]>,
    /// Some request may be unanswered: what the sending half looks at.
    pending: AtomicBool,
    /// The sending half is gone and holds nothing.
    sender_gone: AtomicBool,
}

impl Handoff {
    /// A record for `slots` client slots, with nothing asked.
    pub(crate) fn new(slots: usize) -> Handoff {
        let counts = || (0..slots).map(|_| AtomicU32::new(0)).collect();
        Handoff {
            asked: counts(),
            answered: counts(),
            waiting: (0..slots).map(|_| AtomicBool::new(false)).collect(),
            pending: AtomicBool::new(false),
            sender_gone: AtomicBool::new(false),
        }
    }

    /// Receiving half: whether slot `i`, drained, may be freed now. If not,
    /// the sending half has been asked, and a later call gets `true`.
    /// `joined`: the sending half is idle and makes no write before it
    /// answers (the daemon's own call holds both halves): free at once, and
    /// the sending half lets go at its next call.
    pub(crate) fn release(&self, i: u32, joined: bool) -> bool {
        // SYNC POINT: Acquire pairs with the Release in `sender_dropped`: the
        // dropped half's writes to the slot's rings happened before.
        if self.sender_gone.load(Ordering::Acquire) {
            return true;
        }
        let i = i as usize;
        let (Some(asked), Some(answered), Some(waiting)) =
            (self.asked.get(i), self.answered.get(i), self.waiting.get(i))
        else {
            return false; // not a slot of this segment: never freed
        };
        let request = asked.load(Ordering::Relaxed);
        if joined {
            asked.store(request.wrapping_add(1), Ordering::Relaxed);
            waiting.store(false, Ordering::Relaxed);
            self.pending.store(true, Ordering::Release);
            return true;
        }
        // SYNC POINT: Acquire pairs with the Release in `answer`: the sending
        // half's last write to the slot's rings happened before its answer.
        if answered.load(Ordering::Acquire) != request {
            return false; // asked, not answered yet
        }
        if waiting.swap(false, Ordering::Relaxed) {
            return true; // this episode's request was answered
        }
        asked.store(request.wrapping_add(1), Ordering::Relaxed);
        waiting.store(true, Ordering::Relaxed);
        // SYNC POINT: Release publishes the request; pairs with the Acquire
        // swap in `answer`.
        self.pending.store(true, Ordering::Release);
        false
    }

    /// [`Handoff::release`] of a split daemon.
    #[cfg(test)]
    fn release_split(&self, i: u32) -> bool {
        self.release(i, false)
    }

    /// Sending half, at every call: whether some request may wait (one load).
    #[inline(always)]
    pub(crate) fn has_requests(&self) -> bool {
        self.pending.load(Ordering::Relaxed)
    }

    /// Sending half: lets go of every slot asked for (`let_go(i)`), then
    /// answers each request.
    #[cold]
    pub(crate) fn answer(&self, mut let_go: impl FnMut(u32)) {
        if !self.pending.swap(false, Ordering::Acquire) {
            return;
        }
        for (i, (asked, answered)) in self.asked.iter().zip(self.answered.iter()).enumerate() {
            let request = asked.load(Ordering::Relaxed);
            if answered.load(Ordering::Relaxed) != request {
                let_go(i as u32);
                answered.store(request, Ordering::Release);
            }
        }
    }

    /// Sending half, dropped, after it let go of every slot.
    pub(crate) fn sender_dropped(&self) {
        self.sender_gone.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_is_released_only_after_the_sender_answers() {
        let h = Handoff::new(4);
        assert!(!h.has_requests());
        assert!(!h.release_split(2), "first call asks");
        assert!(h.has_requests());
        assert!(!h.release_split(2), "asked, not answered");
        let mut let_go = Vec::new();
        h.answer(|i| let_go.push(i));
        assert_eq!(let_go, [2]);
        assert!(!h.has_requests());
        assert!(h.release_split(2), "answered");
        // Joined: freed at once, and the sending half still lets go.
        assert!(h.release(1, true));
        let mut let_go = Vec::new();
        h.answer(|i| let_go.push(i));
        assert_eq!(let_go, [1]);
        // A later departure from the same slot asks again.
        assert!(!h.release_split(2));
        h.answer(|_| {});
        assert!(h.release_split(2));
        // Nothing asked: nothing to let go of.
        h.answer(|i| panic!("slot {i} was not asked for"));
    }

    #[test]
    fn a_dropped_sender_releases_everything() {
        let h = Handoff::new(2);
        assert!(!h.release_split(0));
        h.sender_dropped();
        assert!(h.release_split(0) && h.release_split(1));
    }

    #[test]
    fn a_slot_outside_the_table_is_never_released() {
        let h = Handoff::new(2);
        assert!(!h.release_split(2));
        assert!(!h.release_split(u32::MAX));
    }
}
