//! Wakes async tasks parked on event words: one thread per word that has
//! parked tasks, asleep in the OS on that word.
//!
//! A task that finds nothing to do registers in the word's `waiters` (as a
//! blocking waiter does), notes its `seq`, and hands its waker to the
//! word's watcher ([`watch`]). The watcher sleeps in `futex_wait` on `seq`
//! (the platform's wait: futex, ulock, named semaphore), so a notifier in
//! any process reaches it exactly as it reaches a blocked thread. When
//! `seq` moves past what a task saw, or the task's tick is due, the watcher
//! wakes it and forgets it; the task looks again and parks anew.
//!
//! One thread per word keeps the watcher on the same OS primitive as the
//! blocking API on every platform (macOS has no wait on several words;
//! Windows would need a second mechanism for more than 64 handles). A
//! process typically parks tasks on one or two words per endpoint. A
//! watcher with nothing to watch waits on a condition variable and ends
//! after [`IDLE_EXIT`]; no thread exists while no task has ever parked.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::ptr::NonNull;
use std::sync::atomic::AtomicPtr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::{Duration, Instant};

use crate::platform::{self, futex_wait, futex_wake};
use crate::segment::layout::EventWord;
use crate::segment::SharedMemory;
use crate::sync::{AtomicU32, Ordering};

/// How long a watcher with nothing to watch lives on.
pub(crate) const IDLE_EXIT: Duration = Duration::from_secs(10);

/// An event word inside a mapping, with the mapping kept alive: a watcher
/// may sleep on it after the task and the endpoint that parked are gone.
#[derive(Clone)]
pub(crate) struct WordRef {
    word: NonNull<EventWord>,
    _mapping: Arc<SharedMemory>,
}

// SAFETY: `word` points to atomics inside the mapping `_mapping` keeps
// alive; atomics may be used from any thread (other processes use them too).
unsafe impl Send for WordRef {}
// SAFETY: as for Send: only shared (atomic) access is ever made through it.
unsafe impl Sync for WordRef {}

impl std::fmt::Debug for WordRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WordRef")
            .field("at", &self.word)
            .finish_non_exhaustive()
    }
}

impl WordRef {
    /// `event`, which must lie inside `mapping` (else `None`).
    pub(crate) fn new(mapping: &Arc<SharedMemory>, event: &EventWord) -> Option<WordRef> {
        let (start, len) = (mapping.base().as_ptr() as usize, mapping.len());
        let at = event as *const EventWord as usize;
        let inside = at >= start && at.checked_add(std::mem::size_of::<EventWord>())? <= start + len;
        inside.then(|| WordRef {
            word: NonNull::from(event),
            _mapping: Arc::clone(mapping),
        })
    }

    pub(crate) fn get(&self) -> &EventWord {
        // SAFETY: checked in `new` to lie inside the mapping, which `_mapping`
        // keeps mapped for as long as this value lives.
        unsafe { self.word.as_ref() }
    }

    /// Whether this is `event`.
    pub(crate) fn is(&self, event: &EventWord) -> bool {
        std::ptr::eq(self.word.as_ptr(), event)
    }

    fn key(&self) -> usize {
        self.word.as_ptr() as usize
    }

    fn seq(&self) -> &AtomicU32 {
        &self.get().seq
    }
}

/// A parked task's registration with a watcher; dropping it unregisters.
#[derive(Debug)]
pub(crate) struct Watch {
    watcher: Arc<Watcher>,
    id: u64,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.watcher.lock().parked.retain(|p| p.id != self.id);
    }
}

/// What [`watch`] did.
#[derive(Debug)]
pub(crate) enum Watched {
    /// The watcher will wake the task.
    Parked(Watch),
    /// `seq` has already moved past what the task saw: look again now.
    Moved,
    /// No watcher thread could be started: the task must poll.
    Unavailable,
}

/// Hands `waker` to the watcher of `word`, to be woken once `seq` differs
/// from `seen` or at `wake_at`, whichever comes first.
pub(crate) fn watch(word: &WordRef, seen: u32, waker: &Waker, wake_at: Instant) -> Watched {
    let mut all = watchers();
    let watcher = match all.by_word.get(&word.key()) {
        Some(w) => Arc::clone(w),
        None => {
            let w = Arc::new(Watcher::default());
            let run = Arc::clone(&w);
            let key = word.key();
            let spawned = std::thread::Builder::new()
                .name("memlink-watcher".into())
                .spawn(move || run.run(key));
            if spawned.is_err() {
                return Watched::Unavailable;
            }
            all.by_word.insert(key, Arc::clone(&w));
            w
        }
    };
    let mut st = watcher.lock();
    drop(all);
    if word.seq().load(Ordering::SeqCst) != seen {
        return Watched::Moved;
    }
    // Set only while tasks are parked, and only by this function: an
    // existing one is the same word of the same (live) mapping.
    st.word.get_or_insert_with(|| word.clone());
    let id = st.next_id;
    st.next_id += 1;
    st.parked.push(Parked {
        id,
        seen,
        waker: waker.clone(),
        wake_at,
    });
    match st.sleeping_until {
        None => watcher.cv.notify_one(),
        // Asleep past this task's tick (rare: ticks are per endpoint kind):
        // wake it early. Other sleepers on the word just look again.
        Some(until) if wake_at < until => {
            futex_wake(word.seq(), u32::MAX);
        }
        Some(_) => {}
    }
    drop(st);
    Watched::Parked(Watch { watcher, id })
}

/// The watchers of this process, by address of their word.
struct Watchers {
    by_word: HashMap<usize, Arc<Watcher>>,
}

/// The watchers of one process.
struct ForkLocal {
    /// `platform::fork_generation` when the map was made: a forked child
    /// has none of the parent's watcher threads, so it makes a map afresh.
    generation: u32,
    watchers: Mutex<Watchers>,
}

/// The map of this process. Not a `static Mutex`: a fork while one of the
/// parent's threads held it would leave the child's copy locked forever. A
/// child makes a map of its own instead (seeing the generation, which is
/// read without the lock) and leaves the parent's, which it never locks.
static MAP: AtomicPtr<ForkLocal> = AtomicPtr::new(std::ptr::null_mut());

fn watchers() -> MutexGuard<'static, Watchers> {
    let generation = platform::fork_generation();
    loop {
        let current = MAP.load(std::sync::atomic::Ordering::Acquire);
        // SAFETY: a non-null pointer in MAP came from `Box::into_raw` below
        // and is never freed (a replaced map is leaked), so it is valid for
        // 'static.
        if let Some(local) = unsafe { current.as_ref() } {
            if local.generation == generation {
                return local.watchers.lock().unwrap_or_else(PoisonError::into_inner);
            }
        }
        let fresh = Box::into_raw(Box::new(ForkLocal {
            generation,
            watchers: Mutex::new(Watchers {
                by_word: HashMap::new(),
            }),
        }));
        let swapped = MAP.compare_exchange(
            current,
            fresh,
            std::sync::atomic::Ordering::AcqRel,
            std::sync::atomic::Ordering::Acquire,
        );
        if swapped.is_err() {
            // SAFETY: `fresh` was never published; this is its only owner.
            drop(unsafe { Box::from_raw(fresh) });
        }
    }
}

#[derive(Debug)]
struct Parked {
    id: u64,
    seen: u32,
    waker: Waker,
    wake_at: Instant,
}

#[derive(Default)]
struct State {
    /// The word, while tasks are parked on it.
    word: Option<WordRef>,
    parked: Vec<Parked>,
    next_id: u64,
    /// When the watcher's sleep on the word ends; `None` while it waits for
    /// tasks instead.
    sleeping_until: Option<Instant>,
}

#[derive(Default)]
struct Watcher {
    state: Mutex<State>,
    cv: Condvar,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher").finish_non_exhaustive()
    }
}

impl Watcher {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The watcher thread: sleeps on the word while tasks are parked,
    /// wakes the ones whose event moved or whose tick is due.
    fn run(self: Arc<Watcher>, key: usize) {
        let mut due: Vec<Waker> = Vec::new();
        let mut st = self.lock();
        loop {
            if st.parked.is_empty() {
                st.word = None; // lets the mapping go
                st.sleeping_until = None;
                let (guard, waited) = self
                    .cv
                    .wait_timeout(st, IDLE_EXIT)
                    .unwrap_or_else(PoisonError::into_inner);
                st = guard;
                if waited.timed_out() && st.parked.is_empty() {
                    // Leave the map first (its lock comes before ours), then
                    // make sure nobody parked meanwhile.
                    drop(st);
                    let mut all = watchers();
                    st = self.lock();
                    if st.parked.is_empty() {
                        all.by_word.remove(&key);
                        return;
                    }
                }
                continue;
            }
            let Some(word) = st.word.clone() else {
                // Unreachable: `watch` sets the word before it parks a task.
                st.parked.clear();
                continue;
            };
            let now_seq = word.seq().load(Ordering::SeqCst);
            let now = Instant::now();
            st.parked.retain(|p| {
                let keep = p.seen == now_seq && p.wake_at > now;
                if !keep {
                    due.push(p.waker.clone());
                }
                keep
            });
            let until = st.parked.iter().map(|p| p.wake_at).min();
            st.sleeping_until = until;
            drop(st);
            // A waker is the executor's code: if one panics, this thread
            // must go on serving the others.
            for w in due.drain(..) {
                let _ = std::panic::catch_unwind(AssertUnwindSafe(|| w.wake()));
            }
            if let Some(until) = until {
                futex_wait(word.seq(), now_seq, Some(until.saturating_duration_since(now)));
            }
            drop(word);
            st = self.lock();
        }
    }
}
