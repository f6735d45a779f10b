//! How a caller waits for an event word: a thread blocks ([`Block`]); an
//! async task registers its waker and returns `Pending` ([`TaskPark`]).
//!
//! Every wait of the endpoints is written once, generic over [`Park`], and
//! returns `Poll`: the blocking API passes [`Block`], which is always
//! ready, and takes the value out with [`blocked`]; the async API polls the
//! same code from a future with a [`TaskPark`].

use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use super::Mark;
use crate::segment::layout::EventWord;
use crate::segment::SharedMemory;

/// A way to wait until `ready()` holds.
pub(crate) trait Park {
    /// Waits until `ready()` returns true (`Ready(true)`) or `until` passes
    /// (`Ready(false)`), spinning for `spin` first and looking again at least
    /// every `tick`. An async park may instead return `Pending`, having
    /// arranged for its task to be woken when `event` is notified or the
    /// tick is due. `event` lies in `mapping`; `ready` must observe state
    /// that notifiers publish before they notify `event`.
    #[inline]
    fn park(
        &mut self,
        mapping: &Arc<SharedMemory>,
        event: &EventWord,
        ready: impl FnMut() -> bool,
        spin: Duration,
        until: Option<Instant>,
        tick: Option<Duration>,
    ) -> Poll<bool> {
        self.park_marked(mapping, event, None, ready, spin, until, tick)
    }

    /// [`Park::park`], holding `mark` (which lies in `mapping`) set for as
    /// long as it is registered on `event`.
    #[allow(clippy::too_many_arguments)]
    fn park_marked(
        &mut self,
        mapping: &Arc<SharedMemory>,
        event: &EventWord,
        mark: Option<Mark<'_>>,
        ready: impl FnMut() -> bool,
        spin: Duration,
        until: Option<Instant>,
        tick: Option<Duration>,
    ) -> Poll<bool>;
}

/// Blocks the calling thread (see [`EventWord::wait_marked`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Block;

impl Park for Block {
    #[inline]
    fn park_marked(
        &mut self,
        _mapping: &Arc<SharedMemory>,
        event: &EventWord,
        mark: Option<Mark<'_>>,
        ready: impl FnMut() -> bool,
        spin: Duration,
        until: Option<Instant>,
        tick: Option<Duration>,
    ) -> Poll<bool> {
        Poll::Ready(event.wait_marked(ready, spin, until, tick, mark))
    }
}

/// The value of a wait made with [`Block`], which is never pending.
#[inline(always)]
pub(crate) fn blocked<T>(waited: Poll<T>) -> T {
    match waited {
        Poll::Ready(v) => v,
        Poll::Pending => unreachable!("a blocking park is never pending"),
    }
}

#[cfg(not(loom))]
pub(crate) use task::{Parking, TaskPark};

#[cfg(not(loom))]
mod task {
    use std::mem::ManuallyDrop;
    use std::ptr::NonNull;
    use std::sync::Arc;
    use std::task::{Context, Poll};
    use std::time::{Duration, Instant};

    use super::{Mark, Park};
    use crate::segment::layout::EventWord;
    use crate::segment::SharedMemory;
    use crate::sync::{AtomicU64, Ordering};
    use crate::wait::spin_until;
    use crate::wait::watcher::{watch, Watch, Watched, WordRef};

    /// Longest a parked task sleeps when its wait has no tick.
    const NO_TICK: Duration = Duration::from_secs(3600);

    /// Longest a task spins within one poll before it yields to the
    /// executor (its spin budget may go on over several polls).
    const SPIN_SLICE: Duration = Duration::from_micros(5);

    /// Where a future's wait stands, kept in the future between polls.
    /// Dropping it (the future completed or was dropped) unregisters.
    #[derive(Debug, Default)]
    pub(crate) struct Parking {
        /// Dropped by hand: `Drop` resets it to `Fresh`, which owns nothing,
        /// so the common case (never parked) costs one comparison.
        phase: ManuallyDrop<Phase>,
    }

    #[derive(Debug, Default)]
    enum Phase {
        #[default]
        Fresh,
        /// Spinning until then, in slices between which the task yields to
        /// the executor.
        Spinning(Instant),
        /// Registered in `word`'s waiters, holding `mark` set; `watch` is
        /// the watcher's promise to wake the task.
        Parked {
            word: WordRef,
            mark: Option<MarkRef>,
            watch: Option<Watch>,
        },
    }

    /// A [`Mark`] kept between polls: a bit of a word inside the mapping
    /// that the [`WordRef`] beside it keeps alive.
    #[derive(Debug)]
    struct MarkRef {
        word: NonNull<AtomicU64>,
        bit: u64,
    }

    impl MarkRef {
        /// `mark`, if its word lies inside `mapping`.
        fn new(mapping: &Arc<SharedMemory>, mark: Mark<'_>) -> Option<MarkRef> {
            let (start, len) = (mapping.base().as_ptr() as usize, mapping.len());
            let at = mark.word as *const AtomicU64 as usize;
            let inside = at >= start && at.checked_add(std::mem::size_of::<AtomicU64>())? <= start + len;
            inside.then(|| MarkRef {
                word: NonNull::from(mark.word),
                bit: mark.bit,
            })
        }

        fn get(&self) -> Mark<'_> {
            Mark {
                // SAFETY: checked in `new` to lie inside the mapping, which the
                // `WordRef` of the same `Phase::Parked` keeps mapped; an atomic.
                word: unsafe { self.word.as_ref() },
                bit: self.bit,
            }
        }
    }

    // SAFETY: the pointer targets an atomic in a mapping kept alive beside it
    // (see `MarkRef::get`); atomics may be used from any thread.
    unsafe impl Send for MarkRef {}
    // SAFETY: as for Send: only atomic access is made through it.
    unsafe impl Sync for MarkRef {}

    impl Drop for Parking {
        #[inline]
        fn drop(&mut self) {
            // Most calls find their message or room at once: nothing to undo.
            if !matches!(*self.phase, Phase::Fresh) {
                self.reset();
            }
        }
    }

    impl Parking {
        /// Back to fresh: leaves the watcher and the word's waiters.
        #[inline(never)]
        fn reset(&mut self) {
            if let Phase::Parked { word, mark, watch } = std::mem::take(&mut *self.phase) {
                drop(watch);
                word.get().waiters.fetch_sub(1, Ordering::Relaxed);
                if let Some(mark) = mark {
                    mark.get().clear();
                }
            }
        }

        /// Registers in `event`'s waiters (once per word), `mark` set first;
        /// false if `event` or `mark` is not in `mapping` (it cannot be
        /// watched then).
        fn register(&mut self, mapping: &Arc<SharedMemory>, event: &EventWord, mark: Option<Mark<'_>>) -> bool {
            if matches!(&*self.phase, Phase::Parked { word, .. } if word.is(event)) {
                return true;
            }
            self.reset();
            let Some(word) = WordRef::new(mapping, event) else {
                return false;
            };
            let mark = match mark {
                None => None,
                Some(m) => match MarkRef::new(mapping, m) {
                    Some(m) => Some(m),
                    None => return false,
                },
            };
            if let Some(m) = &mark {
                m.get().set();
            }
            event.waiters.fetch_add(1, Ordering::SeqCst);
            *self.phase = Phase::Parked {
                word,
                mark,
                watch: None,
            };
            true
        }
    }

    /// An async task's park: spins in slices of at most [`SPIN_SLICE`],
    /// yielding to the executor between them, then hands its waker to the
    /// word's watcher thread (`crate::wait::watcher`).
    #[derive(Debug)]
    pub(crate) struct TaskPark<'a, 'b> {
        pub(crate) cx: &'a mut Context<'b>,
        pub(crate) parking: &'a mut Parking,
    }

    impl Park for TaskPark<'_, '_> {
        fn park_marked(
            &mut self,
            mapping: &Arc<SharedMemory>,
            event: &EventWord,
            mark: Option<Mark<'_>>,
            mut ready: impl FnMut() -> bool,
            spin: Duration,
            until: Option<Instant>,
            tick: Option<Duration>,
        ) -> Poll<bool> {
            if ready() {
                self.parking.reset();
                return Poll::Ready(true);
            }
            let now = Instant::now();
            if until.is_some_and(|u| now >= u) {
                self.parking.reset();
                return Poll::Ready(false);
            }
            let end = match *self.parking.phase {
                Phase::Fresh if !spin.is_zero() => Some(now + spin),
                Phase::Spinning(end) if now < end => Some(end),
                _ => None,
            };
            if let Some(end) = end {
                // Spin in slices: a few microseconds in this poll, then let
                // the executor run its other tasks before the next slice.
                *self.parking.phase = Phase::Spinning(end);
                if spin_until(&mut ready, SPIN_SLICE.min(end - now), until) {
                    self.parking.reset();
                    return Poll::Ready(true);
                }
                return self.yield_now();
            }
            // As a blocking waiter does (see the module docs of `crate::wait`):
            // register, note `seq`, fence, look once more.
            if !self.parking.register(mapping, event, mark) {
                return self.yield_now();
            }
            let (seen, fenced) = event.seen();
            if ready() {
                self.parking.reset();
                return Poll::Ready(true);
            }
            let tick = crate::wait::barrier::slice(fenced, tick);
            let wake_at = tick.map_or(now + NO_TICK, |t| now + t);
            let wake_at = until.map_or(wake_at, |u| u.min(wake_at));
            let Phase::Parked { word, watch: slot, .. } = &mut *self.parking.phase else {
                return self.yield_now();
            };
            match watch(word, seen, self.cx.waker(), wake_at) {
                Watched::Parked(w) => {
                    // Replaces (and so leaves) the watch of an earlier poll.
                    *slot = Some(w);
                    Poll::Pending
                }
                Watched::Moved | Watched::Unavailable => self.yield_now(),
            }
        }
    }

    impl TaskPark<'_, '_> {
        /// Pending, with the task scheduled to run again at once.
        fn yield_now(&mut self) -> Poll<bool> {
            self.cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::future::{poll_fn, Future};
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Poll};
    use std::time::Duration;

    use super::{Park, Parking, TaskPark};
    use crate::segment::layout::Geometry;
    use crate::segment::{Segment, SegmentName};

    /// A fresh segment (removed by the guard) whose daemon wake word the tests park on.
    struct Scratch(Segment, SegmentName);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = self.1.remove();
        }
    }

    fn scratch(tag: &str) -> Scratch {
        let path = std::env::temp_dir().join(format!("memlink-park-{tag}-{}", std::process::id()));
        let name = SegmentName::parse(path.to_str().unwrap()).unwrap();
        let _ = name.remove();
        let g = Geometry::compute(1 << 16, 1, 256).unwrap();
        Scratch(Segment::create(&name, g, 1, 0o600).unwrap(), name)
    }

    /// A future that parks on the segment's daemon wake word until `ready`.
    fn parked<'a>(
        seg: &'a Segment,
        parking: &'a mut Parking,
        mut ready: impl FnMut() -> bool + 'a,
        tick: Option<Duration>,
    ) -> impl Future<Output = bool> + 'a {
        poll_fn(move |cx| {
            let mut park = TaskPark {
                cx,
                parking: &mut *parking,
            };
            let event = &seg.control().daemon_wake;
            park.park(seg.shared_memory(), event, &mut ready, Duration::ZERO, None, tick)
        })
    }

    #[test]
    fn a_parked_task_is_woken_by_a_notify_from_another_thread() {
        let s = scratch("notify");
        let seg = s.0.clone();
        let flag = Arc::new(AtomicBool::new(false));
        let (seg2, flag2) = (seg.clone(), Arc::clone(&flag));
        let notifier = std::thread::spawn(move || {
            let event = &seg2.control().daemon_wake;
            // Bounded: the task registers within the first poll.
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while event.waiters.load(Ordering::SeqCst) == 0 && std::time::Instant::now() < deadline {
                std::thread::yield_now();
            }
            flag2.store(true, Ordering::Release);
            event.notify()
        });
        let mut parking = Parking::default();
        let woke = futures::executor::block_on(parked(&seg, &mut parking, || flag.load(Ordering::Acquire), None));
        assert!(woke);
        assert!(
            notifier.join().unwrap(),
            "the parked task counts as a waiter: notify makes the syscall"
        );
        assert_eq!(seg.control().daemon_wake.waiters.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_dropped_wait_leaves_the_waiters() {
        let s = scratch("drop");
        let seg = s.0.clone();
        let event = &seg.control().daemon_wake;
        let mut parking = Parking::default();
        {
            let mut fut = std::pin::pin!(parked(&seg, &mut parking, || false, None));
            let waker = futures::task::noop_waker();
            let mut cx = Context::from_waker(&waker);
            assert_eq!(fut.as_mut().poll(&mut cx), Poll::Pending);
            assert_eq!(event.waiters.load(Ordering::SeqCst), 1, "parked: one waiter");
        }
        drop(parking);
        assert_eq!(event.waiters.load(Ordering::SeqCst), 0, "dropped: none");
        assert!(!event.notify(), "nobody to wake");
    }

    #[test]
    fn a_tick_wakes_a_task_nobody_notifies() {
        let s = scratch("tick");
        let seg = s.0.clone();
        let looks = AtomicU32::new(0);
        let mut parking = Parking::default();
        // Ready at the fourth look; only the tick brings the looks after the first poll.
        let ready = || looks.fetch_add(1, Ordering::Relaxed) >= 3;
        let woke = futures::executor::block_on(parked(&seg, &mut parking, ready, Some(Duration::from_millis(5))));
        assert!(woke);
        assert!(looks.load(Ordering::Relaxed) >= 4);
    }
}
