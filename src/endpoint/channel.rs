//! A client slot: attaching ring ends, resetting, and small shared helpers.

use std::cell::Cell;
use std::sync::Arc;
use std::task::{ready, Poll};
use std::time::{Duration, Instant};

use super::fault::{Fault, Op};
use crate::platform;
use crate::priority::Priority;
use crate::ring::RingError;
use crate::ring::{three, PriorityConsumer, PriorityProducer};
use crate::ring::{RingConsumer, RingProducer};
use crate::segment::layout::{Direction, EventWord};
use crate::segment::{Segment, SharedMemory};
use crate::wait::Park;

/// Attaches the writing ends of one direction of channel `index`.
pub(crate) fn producer(seg: &Segment, index: u32, direction: Direction) -> Result<PriorityProducer, RingError> {
    let mut rings = Vec::with_capacity(3);
    for p in Priority::ALL {
        rings.push(RingProducer::attach(crate::ring::on_segment(seg, index, direction, p))?);
    }
    Ok(PriorityProducer::new(three(rings)))
}

/// Attaches the reading ends of one direction of channel `index`.
pub(crate) fn consumer(seg: &Segment, index: u32, direction: Direction) -> Result<PriorityConsumer, RingError> {
    let mut rings = Vec::with_capacity(3);
    for p in Priority::ALL {
        rings.push(RingConsumer::attach(crate::ring::on_segment(seg, index, direction, p))?);
    }
    Ok(PriorityConsumer::new(three(rings)))
}

/// Absolute deadline for an optional timeout.
pub(crate) fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.map(|t| {
        Instant::now()
            .checked_add(t)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365))
    })
}

/// When a blocking call gives up, read from the clock only once the call
/// first has to wait: a call that finds its message or its room at once
/// costs no clock read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    timeout: Option<Duration>,
    at: Option<Option<Instant>>,
}

impl Deadline {
    /// Waits as long as it takes.
    pub(crate) const NEVER: Deadline = Deadline {
        timeout: None,
        at: Some(None),
    };

    /// Gives up `timeout` after the first wait begins (`None`: never).
    #[inline]
    pub(crate) fn after(timeout: Option<Duration>) -> Deadline {
        Deadline { timeout, at: None }
    }

    /// The instant to give up at (`None`: never), fixed at the first call.
    pub(crate) fn instant(&mut self) -> Option<Instant> {
        let timeout = self.timeout;
        *self.at.get_or_insert_with(|| deadline(timeout))
    }
}

/// Where a blocked writer waits: the event a reader notifies when it frees
/// room, and the event that wakes that reader.
pub(crate) struct Lacking<'a> {
    pub(crate) space: &'a EventWord,
    pub(crate) reader: &'a EventWord,
}

/// Waits through `park` (a thread blocks; a task's park may return
/// `Pending` instead) until `lacking()` finds room (`Ok`), fails (the peer is
/// gone, the client unknown: its error), or `until` passes (`Timeout`).
/// Before sleeping it wakes the reader, which may itself be asleep waiting
/// for a signal not sent yet (or the two would wait for each other); it
/// re-checks at least every `tick`, so `lacking` also sees what nobody
/// announces (a peer dying), and it spins for `spin` first.
pub(crate) fn wait_for_room<'a>(
    park: &mut impl Park,
    mapping: &Arc<SharedMemory>,
    spin: Duration,
    until: Option<Instant>,
    tick: Duration,
    mut lacking: impl FnMut() -> Op<Option<Lacking<'a>>>,
) -> Poll<Op<()>> {
    loop {
        let Some(Lacking { space, reader }) = lacking()? else {
            return Poll::Ready(Ok(()));
        };
        reader.notify();
        // Each look at the reader's position is paced by the ring (see
        // `ring::spsc::RELOAD_PACE_CYCLES`).
        let changed = || !matches!(lacking(), Ok(Some(l)) if std::ptr::eq(l.space, space));
        if !ready!(park.park(mapping, space, changed, spin, until, Some(tick))) {
            return Poll::Ready(Err(Fault::Timeout));
        }
    }
}

/// How long (in cycles of [`platform::cycle_count`]: about 100-200 ns) a
/// blocking receive that has just run out of messages lets pass before it
/// looks again (see [`Flow`]).
const RUN_DRY_PACE_CYCLES: u64 = 400;

/// Paces a blocking receiver's first look after its messages ran out.
///
/// A receiver that keeps up with a stream finds the ring empty after almost
/// every message, at the very record the writer is filling. Looking again at
/// once takes that cache line from the writer, which must fetch it back for
/// its next store. So when a blocking read finds nothing right after one
/// that took a message, the receiver waits out [`RUN_DRY_PACE_CYCLES`] and
/// looks once more before it starts its usual wait: by then several
/// messages are usually there, and it reads them one after another.
/// Measured between two processes with their vCPUs far apart, the writer
/// of a stream went 1.4x faster.
///
/// The cost: a message that arrives within the pace of the run drying up
/// is delivered up to the pace late. A reply to this side's own message
/// comes a round trip after the send (400-500 ns between the two vCPUs
/// here, 140 ns at best), so it is delayed only where a round trip is
/// shorter than the send plus the pace. Only the first empty read after a
/// message is paced; the wait after it is not. The pace is counted from
/// the empty read, not from the message taken, because reading the cycle
/// counter on every message cost the daemon's receive about 10 ns, a fifth
/// of its time per message.
#[derive(Debug, Default)]
pub(crate) struct Flow {
    flowing: bool,
}

impl Flow {
    /// A read took a message.
    #[inline(always)]
    pub(crate) fn took(&mut self) {
        self.flowing = true;
    }

    /// A read found nothing. If the one before took a message, waits out the
    /// pace and returns true: look once more before waiting.
    #[inline]
    pub(crate) fn ran_dry(&mut self) -> bool {
        if !std::mem::take(&mut self.flowing) {
            return false;
        }
        if let Some(now) = platform::cycle_count() {
            platform::spin_until_cycles(now, RUN_DRY_PACE_CYCLES);
        }
        true
    }
}

/// Rate-limits a periodic check on a hot path: `tick` costs an increment and
/// reads the (coarse) clock only every 256 calls; `due` reads it every time.
#[derive(Debug)]
pub(crate) struct Throttle {
    every_ns: u64,
    last: u64,
    calls: u32,
}

impl Throttle {
    pub(crate) fn new(every: Duration) -> Throttle {
        Throttle {
            every_ns: every.as_nanos() as u64,
            last: crate::platform::coarse_monotonic_nanos(),
            calls: 0,
        }
    }

    /// True at most once per period.
    pub(crate) fn due(&mut self) -> bool {
        let now = crate::platform::coarse_monotonic_nanos();
        if now.saturating_sub(self.last) >= self.every_ns {
            self.last = now;
            true
        } else {
            false
        }
    }

    /// Like `due`, but looks at the clock only every 256 calls.
    #[inline]
    pub(crate) fn tick(&mut self) -> bool {
        self.calls = self.calls.wrapping_add(1);
        self.calls % 256 == 0 && self.due()
    }
}

/// Tells a blocked writer that room was freed, even if a read closure panicked.
pub(crate) struct NotifyOnDrop<'a> {
    event: &'a EventWord,
    armed: Option<&'a Cell<bool>>,
}

impl<'a> NotifyOnDrop<'a> {
    /// Notifies on drop.
    pub(crate) fn always(event: &'a EventWord) -> Self {
        NotifyOnDrop { event, armed: None }
    }

    /// Notifies on drop if `armed` is then true.
    pub(crate) fn when(event: &'a EventWord, armed: &'a Cell<bool>) -> Self {
        NotifyOnDrop {
            event,
            armed: Some(armed),
        }
    }
}

impl Drop for NotifyOnDrop<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.armed.map_or(true, Cell::get) {
            self.event.notify();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Flow;

    #[test]
    fn only_the_first_empty_read_after_a_message_is_paced() {
        let mut flow = Flow::default();
        assert!(
            !flow.ran_dry(),
            "a wait that begins without a message before is not paced"
        );
        flow.took();
        assert!(flow.ran_dry(), "the first empty read after a message is paced");
        assert!(!flow.ran_dry(), "the next ones wait as usual");
        flow.took();
        flow.took();
        assert!(flow.ran_dry());
        assert!(!flow.ran_dry());
    }
}
