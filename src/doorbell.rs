//! The daemon's doorbell: per tier, one bit per client slot in the control
//! region, so that a daemon's poll costs what its *active* clients cost, not
//! what its connected ones do.
//!
//! A client rings (sets its bit of a tier) after it publishes on that tier;
//! the daemon looks only at the rings whose bit is set, a tier at a time,
//! most urgent first. Once a ring has been found empty [`QUIET_LOOKS`] times
//! in a row, the daemon silences it: it clears the bit, then looks at the
//! ring once more.
//!
//! No message is ever left unseen. The client publishes, then issues a
//! `SeqCst` fence, then loads its bit (and sets it if clear); the daemon
//! clears the bit, issues a `SeqCst` fence, then loads the ring. Of two
//! processes that each store, fence and then load, at least one sees the
//! other's store: either the client finds its bit clear and sets it, or the
//! daemon's second look finds the message. A bit set with nothing behind it (a stale
//! or hostile one) costs the daemon one look, nothing more. The loom models
//! at the end of this file (`loom_models`) check [`ring_bell`] and
//! [`silence_bell`].
//!
//! The other way, the control region keeps one bit per slot whose client
//! sleeps (`ControlBlock::sleepers`): a client sets its bit before it
//! registers as a waiter on its wake word and clears it when its wait ends,
//! so a daemon that wakes every client ([`sleeping`]) looks at the sleepers
//! only. No wake-up is lost: the bit is set before the waiter's fence of
//! the event count's protocol (`crate::wait`), as its registration is, so a
//! notifier that reads the bits after its own fence sees the bit whenever
//! it would see the registration. A bit left set (a client that died
//! asleep, or a hostile one) costs the daemon one look at a wake word.

use crate::sync::{fence, AtomicU64, Ordering};

use crate::priority::Priority;
use crate::segment::layout::DOORBELL_WORDS;
use crate::segment::Segment;
use crate::wait::Mark;

/// Empty looks in a row after which the daemon silences a ring's bit. A
/// client in a busy exchange is looked at many times between two messages;
/// this keeps its bit set (no read-modify-write per message), while a client
/// that went quiet stops costing the daemon anything within a few polls.
pub(crate) const QUIET_LOOKS: u8 = 64;

/// Where a slot's bells are: its word of each tier's bells, and its bit
/// there (worked out once, when the client connects).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bell {
    word: usize,
    bit: u64,
}

impl Bell {
    /// Slot `slot`'s bell.
    pub(crate) fn of(slot: u32) -> Bell {
        let (word, bit) = position(slot);
        Bell { word, bit }
    }

    /// Rings it for tier `priority`, after the client published: see
    /// [`ring_bell`].
    #[inline]
    pub(crate) fn ring(self, seg: &Segment, priority: Priority) {
        ring_bell(&seg.control().doorbell[priority.index()][self.word], self.bit);
    }

    /// Rings it for every tier (after a batch, which may have published on
    /// any tier).
    #[inline]
    pub(crate) fn ring_all(self, seg: &Segment) {
        fence(Ordering::SeqCst);
        for p in Priority::ALL {
            ring_bell_after_fence(&seg.control().doorbell[p.index()][self.word], self.bit);
        }
    }
}

/// Rings slot `slot`'s bell of tier `priority` again from the daemon's
/// side, after [`silence`] found the ring not empty.
pub(crate) fn ring_again(seg: &Segment, slot: u32, priority: Priority) {
    let (w, bit) = position(slot);
    ring_bell_after_fence(&seg.control().doorbell[priority.index()][w], bit);
}

/// Clears slot `slot`'s bit of tier `priority`: see [`silence_bell`]. The
/// caller must look at that ring again afterwards.
pub(crate) fn silence(seg: &Segment, slot: u32, priority: Priority) {
    let (w, bit) = position(slot);
    silence_bell(&seg.control().doorbell[priority.index()][w], bit);
}

/// The producer's half of the protocol, on one word of bells: after
/// publishing, a `SeqCst` fence, then one load of `bit`, and a
/// read-modify-write only if it was clear.
#[inline]
pub(crate) fn ring_bell(word: &AtomicU64, bit: u64) {
    // SYNC POINT: pairs with the read-modify-write in `silence_bell` (module docs).
    fence(Ordering::SeqCst);
    ring_bell_after_fence(word, bit);
}

/// [`ring_bell`] without its fence, for a caller that has issued one since
/// the publish (or since clearing the bit). Alone, after a publish, it can
/// strand a message: the loom models use it as their negative control.
#[inline]
pub(crate) fn ring_bell_after_fence(word: &AtomicU64, bit: u64) {
    if word.load(Ordering::Relaxed) & bit == 0 {
        word.fetch_or(bit, Ordering::Relaxed);
    }
}

/// The daemon's half: clears `bit`, then a `SeqCst` fence; the caller then
/// looks at the ring once more. (The fence is what the language's memory
/// model needs for the look to see a publish the client fenced before it
/// found its bit still set; x86's locked read-modify-write would do alone,
/// the model does not promise it.)
pub(crate) fn silence_bell(word: &AtomicU64, bit: u64) {
    word.fetch_and(!bit, Ordering::Relaxed);
    // SYNC POINT: pairs with the fence in `ring_bell` (module docs).
    fence(Ordering::SeqCst);
}

/// Slot `slot`'s sleeper bit, which its client holds set while it is
/// registered as a waiter on its wake word (see the module docs).
#[inline]
pub(crate) fn sleeper(seg: &Segment, slot: u32) -> Mark<'_> {
    let (w, bit) = position(slot);
    Mark {
        word: &seg.control().sleepers[w],
        bit,
    }
}

/// The slots of `seg` whose client may sleep, lowest first: call after the
/// notifier's fence. Costs one load per 64 slots, and a bit per sleeper.
pub(crate) fn sleeping(seg: &Segment) -> impl Iterator<Item = u32> + '_ {
    let max = seg.geometry().max_clients;
    let words = words_for(max);
    seg.control().sleepers[..words]
        .iter()
        .enumerate()
        .flat_map(move |(w, word)| {
            let mut bits = word.load(Ordering::Relaxed);
            std::iter::from_fn(move || {
                (bits != 0).then(|| {
                    let b = bits.trailing_zeros();
                    bits &= bits - 1;
                    (w * 64) as u32 + b
                })
            })
        })
        .filter(move |&i| i < max)
}

/// The bells of tier `priority`, one bit per slot.
#[inline]
pub(crate) fn bells(seg: &Segment, priority: Priority) -> &[AtomicU64; DOORBELL_WORDS] {
    &seg.control().doorbell[priority.index()]
}

/// Words a segment with `max_clients` slots uses.
pub(crate) fn words_for(max_clients: u32) -> usize {
    (max_clients as usize).div_ceil(64).clamp(1, DOORBELL_WORDS)
}

#[inline]
fn position(slot: u32) -> (usize, u64) {
    ((slot as usize / 64) % DOORBELL_WORDS, 1u64 << (slot % 64))
}

/// A set of slots, one bit each: the slots one daemon part has attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlotSet {
    words: [u64; DOORBELL_WORDS],
    /// Words in use (those of the segment's slots).
    len: usize,
}

impl SlotSet {
    /// An empty set of slots below `64 * words`.
    pub(crate) fn with_words(words: usize) -> SlotSet {
        SlotSet {
            words: [0; DOORBELL_WORDS],
            len: words.clamp(1, DOORBELL_WORDS),
        }
    }

    /// Adds `slot` (below `64 * words`; others are ignored).
    pub(crate) fn insert(&mut self, slot: u32) {
        let (w, bit) = position(slot);
        if w < self.len {
            self.words[w] |= bit;
        }
    }

    /// Word by word, the members whose bell in `bells` is rung (each bell
    /// word loaded as the iteration reaches it).
    #[inline]
    pub(crate) fn rung<'a>(&'a self, bells: &'a [AtomicU64; DOORBELL_WORDS]) -> impl Iterator<Item = u64> + 'a {
        (0..self.words()).map(|w| self.rung_in(bells, w))
    }

    /// Words in use: at most [`DOORBELL_WORDS`].
    #[inline(always)]
    pub(crate) fn words(&self) -> usize {
        self.len.min(DOORBELL_WORDS)
    }

    /// The members of word `w` (below [`SlotSet::words`]) whose bell in
    /// `bells` is rung.
    #[inline(always)]
    pub(crate) fn rung_in(&self, bells: &[AtomicU64; DOORBELL_WORDS], w: usize) -> u64 {
        bells[w].load(Ordering::Acquire) & self.words[w]
    }

    /// The members whose bell in `bells` is rung, lowest first.
    pub(crate) fn rung_slots<'a>(&'a self, bells: &'a [AtomicU64; DOORBELL_WORDS]) -> impl Iterator<Item = u32> + 'a {
        self.rung(bells).enumerate().flat_map(|(w, mut bits)| {
            std::iter::from_fn(move || {
                (bits != 0).then(|| {
                    let b = bits.trailing_zeros();
                    bits &= bits - 1;
                    (w * 64) as u32 + b
                })
            })
        })
    }

    /// Empties the set.
    pub(crate) fn clear(&mut self) {
        self.words = [0; DOORBELL_WORDS];
    }

    pub(crate) fn remove(&mut self, slot: u32) {
        let (w, bit) = position(slot);
        self.words[w] &= !bit;
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn set(slots: &[u32]) -> SlotSet {
        let mut s = SlotSet::with_words(16);
        slots.iter().for_each(|&i| s.insert(i));
        s
    }

    fn rung_in(bells: &SlotSet, attached: &SlotSet) -> Vec<u32> {
        let bells: [AtomicU64; DOORBELL_WORDS] = bells.words.map(AtomicU64::new);
        attached.rung_slots(&bells).collect()
    }

    #[test]
    fn rung_members_are_those_in_both_lowest_first() {
        let mut attached = set(&[1, 2, 63, 64, 70, 1023]);
        attached.remove(2);
        assert_eq!(rung_in(&set(&[1, 2, 64, 70, 900, 1023]), &attached), [1, 64, 70, 1023]);
        assert!(rung_in(&set(&[]), &attached).is_empty());
    }

    #[test]
    fn a_small_set_ignores_slots_past_its_words() {
        let mut small = SlotSet::with_words(1);
        small.insert(2);
        small.insert(64);
        assert_eq!(rung_in(&set(&[2, 64]), &small), [2]);
    }
}

/// Loom models of the shipped bells, run with
/// `RUSTFLAGS="--cfg loom" cargo test --release --lib -- loom_models`
/// (under `--cfg loom` the bells are loom's atomics, `src/sync.rs`).
#[cfg(all(test, loom))]
mod loom_models {
    use super::{ring_bell, ring_bell_after_fence, silence_bell};
    use loom::sync::atomic::AtomicU64;
    use loom::sync::atomic::Ordering::{Acquire, Relaxed, Release};
    use loom::sync::Arc;
    use loom::thread;

    /// A client publishes (here, one word stands for its ring) and rings a
    /// bell that was already set, so it may skip the read-modify-write; the
    /// daemon, having found the ring empty, silences the bell and looks once
    /// more. Whatever the interleaving, the message is not stranded: the
    /// daemon saw it, or the bell is set for its next poll. Without the
    /// client's fence it can be (the negative control).
    fn doorbell_model(fenced: bool) {
        loom::model(move || {
            let bell = Arc::new(AtomicU64::new(1));
            let ring = Arc::new(AtomicU64::new(0));
            let client = {
                let (bell, ring) = (Arc::clone(&bell), Arc::clone(&ring));
                thread::spawn(move || {
                    ring.store(1, Release);
                    if fenced {
                        ring_bell(&bell, 1);
                    } else {
                        ring_bell_after_fence(&bell, 1);
                    }
                })
            };
            let seen = ring.load(Acquire) != 0 || {
                silence_bell(&bell, 1);
                ring.load(Acquire) != 0
            };
            client.join().unwrap();
            assert!(seen || bell.load(Relaxed) & 1 != 0, "a published message is stranded");
        });
    }

    #[test]
    fn shipped_doorbell_never_strands_a_message() {
        doorbell_model(true);
    }

    #[test]
    #[should_panic(expected = "stranded")]
    fn doorbell_without_the_fence_is_caught() {
        doorbell_model(false);
    }
}
