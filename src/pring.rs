//! Three rings, one per [`Priority`], read in priority order.
//!
//! [`PriorityRingBuffer`] is the heap version with the old API. The transport
//! uses [`PriorityProducer`] / [`PriorityConsumer`] over rings in a segment.

use std::cell::RefCell;

use crate::buffer::{heap_ring, RingConsumer, RingCounters, RingError, RingProducer};
use crate::error::{ShmError, ShmResult};
use crate::priority::Priority;
use crate::segment::layout::{self, DEFAULT_MAX_MESSAGE};

/// Turns the per-tier vector built in tier order into an array.
pub(crate) fn three<T>(v: Vec<T>) -> [T; 3] {
    v.try_into().unwrap_or_else(|_| unreachable!("exactly three tiers"))
}

/// Writing ends of the three tiers.
#[derive(Debug)]
pub struct PriorityProducer {
    tiers: [RingProducer; 3],
}

impl PriorityProducer {
    pub(crate) fn new(tiers: [RingProducer; 3]) -> PriorityProducer {
        PriorityProducer { tiers }
    }

    /// Reserves `len` bytes in `priority`'s ring, lets `fill` write them, publishes.
    ///
    /// # Errors
    /// [`RingError::Full`] when it does not fit now, [`RingError::TooLarge`] when
    /// it never will, [`RingError::Corrupted`] if the peer broke the ring.
    #[inline(always)]
    pub fn write_with<R>(
        &mut self,
        priority: Priority,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<R, RingError> {
        self.tiers[priority.index()].write_with(priority, len, fill)
    }

    /// Copies `data` into `priority`'s ring.
    ///
    /// # Errors
    /// [`RingError::Full`] when it does not fit now, [`RingError::TooLarge`] when
    /// it never will, [`RingError::Corrupted`] if the peer broke the ring.
    #[inline]
    pub fn write(&mut self, priority: Priority, data: &[u8]) -> Result<(), RingError> {
        self.tiers[priority.index()].write(priority, data)
    }

    /// Starts a batch over the three tiers: what is written through it is
    /// published, one release store per tier, when it is committed or dropped.
    pub fn batch(&mut self) -> PriorityBatch<'_> {
        PriorityBatch {
            producer: self,
            pending: [None; 3],
        }
    }

    /// Whether a `len`-byte message of `priority` fits now.
    ///
    /// # Errors
    /// [`RingError::TooLarge`] for a message that never fits,
    /// [`RingError::Corrupted`] if the consumer's position is impossible.
    pub fn can_write(&mut self, priority: Priority, len: usize) -> Result<bool, RingError> {
        self.tiers[priority.index()].can_write(len)
    }

    /// Occupancy of the fullest tier, 0.0..=1.0.
    ///
    /// # Errors
    /// [`RingError::Corrupted`] if a consumer's position is impossible.
    pub fn occupancy(&mut self) -> Result<f32, RingError> {
        let mut max = 0f32;
        for t in &mut self.tiers {
            max = max.max(t.occupancy()?);
        }
        Ok(max)
    }

    /// Fill level of the fullest tier, 0.0..=1.0, from the rings' published
    /// positions (1.0 for a ring whose positions are impossible).
    pub(crate) fn fill_level(&self) -> f32 {
        self.tiers.iter().map(|t| t.memory().fill_level()).fold(0.0, f32::max)
    }

    /// Counters of each tier.
    pub fn counters(&self) -> [RingCounters; 3] {
        [0, 1, 2].map(|i| self.tiers[i].memory().counters())
    }
}

/// Messages of any tier, published together (one release store per tier)
/// on commit or drop.
#[derive(Debug)]
pub struct PriorityBatch<'a> {
    producer: &'a mut PriorityProducer,
    pending: [Option<(usize, u64)>; 3],
}

impl PriorityBatch<'_> {
    /// Writes a `len`-byte message of `priority` in place.
    ///
    /// # Errors
    /// [`RingError::Full`] when it does not fit now, [`RingError::TooLarge`] when
    /// it never will, [`RingError::Corrupted`] if the peer broke the ring.
    #[inline]
    pub fn write_with<R>(
        &mut self,
        priority: Priority,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<R, RingError> {
        let i = priority.index();
        self.producer.tiers[i].put(&mut self.pending[i], priority, len, fill)
    }

    /// Copies `data` in as one message of `priority`.
    ///
    /// # Errors
    /// [`RingError::Full`] when it does not fit now, [`RingError::TooLarge`] when
    /// it never will, [`RingError::Corrupted`] if the peer broke the ring.
    #[inline]
    pub fn write(&mut self, priority: Priority, data: &[u8]) -> Result<(), RingError> {
        self.write_with(priority, data.len(), |b| b.copy_from_slice(data))
    }

    /// Publishes the batch.
    pub fn commit(self) {}
}

impl Drop for PriorityBatch<'_> {
    fn drop(&mut self) {
        for (ring, pending) in self.producer.tiers.iter_mut().zip(&mut self.pending) {
            ring.commit(pending);
        }
    }
}

/// Reading ends of the three tiers.
#[derive(Debug)]
pub struct PriorityConsumer {
    tiers: [RingConsumer; 3],
}

impl PriorityConsumer {
    pub(crate) fn new(tiers: [RingConsumer; 3]) -> PriorityConsumer {
        PriorityConsumer { tiers }
    }

    /// The ring of one tier.
    #[inline]
    pub fn tier(&mut self, priority: Priority) -> &mut RingConsumer {
        &mut self.tiers[priority.index()]
    }

    /// Passes the most urgent waiting message to `f`: Critical, then High,
    /// then Low; FIFO within a tier. `Ok(None)`: all tiers empty.
    ///
    /// # Errors
    /// [`RingError::Corrupted`] when the ring holds a value no well-behaved
    /// producer writes; the ring stays failed.
    #[inline]
    pub fn read_with<R>(&mut self, f: impl FnOnce(Priority, &[u8]) -> R) -> Result<Option<R>, RingError> {
        for ring in &mut self.tiers {
            // An empty tier costs `peek` one load.
            if let Some(m) = ring.peek()? {
                return Ok(Some(ring.deliver(m, f)));
            }
        }
        Ok(None)
    }

    /// Passes up to `max` waiting messages to `f`: the Critical ring drained
    /// first, then High, then Low, each handed back to its producer once.
    /// A message of a higher tier that arrives during the call is read by the
    /// next call. Returns how many.
    ///
    /// # Errors
    /// [`RingError::Corrupted`] when the ring holds a value no well-behaved
    /// producer writes; the ring stays failed.
    pub fn read_batch_with(&mut self, max: usize, mut f: impl FnMut(Priority, &[u8])) -> Result<usize, RingError> {
        let mut n = 0;
        for ring in &mut self.tiers {
            if n == max {
                break;
            }
            n += ring.read_batch_with(max - n, &mut f)?;
        }
        Ok(n)
    }

    /// Copies the most urgent waiting message out.
    ///
    /// # Errors
    /// [`RingError::Corrupted`] when the ring holds a value no well-behaved
    /// producer writes; the ring stays failed.
    pub fn read(&mut self) -> Result<Option<(Priority, Vec<u8>)>, RingError> {
        self.read_with(|p, b| (p, b.to_vec()))
    }

    /// Whether any tier has a message (or an error to report).
    #[inline]
    pub fn has_message(&mut self) -> bool {
        self.tiers.iter_mut().any(|r| r.has_message())
    }

    /// Counters of each tier.
    pub fn counters(&self) -> [RingCounters; 3] {
        [0, 1, 2].map(|i| self.tiers[i].memory().counters())
    }
}

/// A priority queue of messages on the heap, used from one thread.
///
/// ```
/// use memlink_shm::priority::Priority;
/// use memlink_shm::pring::PriorityRingBuffer;
///
/// let prb = PriorityRingBuffer::new(256)?;
/// prb.write(Priority::Low, b"telemetry")?;
/// prb.write(Priority::High, b"request")?;
/// prb.write(Priority::Critical, b"alarm")?;
///
/// // Reads return in priority order.
/// assert_eq!(prb.read(), Some((Priority::Critical, b"alarm".to_vec())));
/// assert_eq!(prb.read(), Some((Priority::High, b"request".to_vec())));
/// assert_eq!(prb.read(), Some((Priority::Low, b"telemetry".to_vec())));
/// assert_eq!(prb.read(), None);
/// # Ok::<(), memlink_shm::transport::ShmError>(())
/// ```
#[derive(Debug)]
pub struct PriorityRingBuffer {
    producer: RefCell<PriorityProducer>,
    consumer: RefCell<PriorityConsumer>,
}

impl PriorityRingBuffer {
    /// Room for about `slots` messages of 4 KiB in all, shared 20/50/30
    /// between the tiers; each tier holds at least one 4 KiB message.
    ///
    /// # Errors
    /// [`ShmError::InvalidConfig`] for zero slots or a size that overflows.
    pub fn new(slots: usize) -> ShmResult<PriorityRingBuffer> {
        if slots == 0 {
            return Err(ShmError::InvalidConfig("a ring needs at least one slot".into()));
        }
        let bytes = slots
            .checked_mul(layout::record_size(DEFAULT_MAX_MESSAGE))
            .ok_or_else(|| ShmError::InvalidConfig(format!("{slots} slots of 4 KiB overflow memory")))?;
        Self::with_capacity(bytes, DEFAULT_MAX_MESSAGE)
    }

    /// `bytes` of ring space in all, shared 20/50/30, for messages of up to
    /// `max_message` bytes.
    ///
    /// # Errors
    /// [`ShmError::InvalidConfig`] for a `max_message` over 256 MiB or a size
    /// that overflows, [`ShmError::TooSmall`] (with the minimum) when two
    /// maximum messages do not fit.
    pub fn with_capacity(bytes: usize, max_message: usize) -> ShmResult<PriorityRingBuffer> {
        let min = layout::min_ring_capacity(max_message);
        let mut producers = Vec::with_capacity(3);
        let mut consumers = Vec::with_capacity(3);
        for p in Priority::ALL {
            let share = (bytes / 100).saturating_mul(p.share_percent() as usize).max(min);
            let (tx, rx) = heap_ring(share, max_message)?;
            producers.push(tx);
            consumers.push(rx);
        }
        Ok(PriorityRingBuffer {
            producer: RefCell::new(PriorityProducer::new(three(producers))),
            consumer: RefCell::new(PriorityConsumer::new(three(consumers))),
        })
    }

    /// Copies `data` into `priority`'s ring.
    ///
    /// # Errors
    /// [`RingError::Full`] when it does not fit now, [`RingError::TooLarge`] when
    /// it never will, [`RingError::Corrupted`] if the peer broke the ring.
    pub fn write(&self, priority: Priority, data: &[u8]) -> ShmResult<()> {
        self.producer
            .try_borrow_mut()
            .map_err(|_| ShmError::Reentrant)?
            .write(priority, data)
            .map_err(ShmError::from)
    }

    /// Writes a `len`-byte message in place.
    ///
    /// # Errors
    /// [`RingError::Full`] when it does not fit now, [`RingError::TooLarge`] when
    /// it never will, [`RingError::Corrupted`] if the peer broke the ring.
    pub fn write_with<R>(&self, priority: Priority, len: usize, fill: impl FnOnce(&mut [u8]) -> R) -> ShmResult<R> {
        self.producer
            .try_borrow_mut()
            .map_err(|_| ShmError::Reentrant)?
            .write_with(priority, len, fill)
            .map_err(ShmError::from)
    }

    /// Takes the most urgent message, or `None` when empty (or failed: see
    /// [`PriorityRingBuffer::try_read`]).
    pub fn read(&self) -> Option<(Priority, Vec<u8>)> {
        self.try_read().ok().flatten()
    }

    /// Takes the most urgent message; errors if a ring is corrupted.
    ///
    /// # Errors
    /// [`ShmError::Corrupted`] if a ring holds an impossible value,
    /// [`ShmError::Reentrant`] when called from inside one of this buffer's own
    /// closures.
    pub fn try_read(&self) -> ShmResult<Option<(Priority, Vec<u8>)>> {
        self.read_with(|p, b| (p, b.to_vec()))
    }

    /// Passes the most urgent message to `f` in place.
    ///
    /// # Errors
    /// [`RingError::Corrupted`] when the ring holds a value no well-behaved
    /// producer writes; the ring stays failed.
    pub fn read_with<R>(&self, f: impl FnOnce(Priority, &[u8]) -> R) -> ShmResult<Option<R>> {
        self.consumer
            .try_borrow_mut()
            .map_err(|_| ShmError::Reentrant)?
            .read_with(f)
            .map_err(ShmError::from)
    }

    /// Splits into the two ends, to be moved to two threads.
    pub fn split(self) -> (PriorityProducer, PriorityConsumer) {
        (self.producer.into_inner(), self.consumer.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_order_and_fifo_within_tier() {
        let prb = PriorityRingBuffer::new(16).unwrap();
        let order = [
            Priority::Low,
            Priority::High,
            Priority::Critical,
            Priority::Low,
            Priority::High,
            Priority::Critical,
        ];
        for (i, p) in order.iter().enumerate() {
            prb.write(*p, &[i as u8]).unwrap();
        }
        let got: Vec<_> = std::iter::from_fn(|| prb.read()).collect();
        assert_eq!(
            got,
            vec![
                (Priority::Critical, vec![2]),
                (Priority::Critical, vec![5]),
                (Priority::High, vec![1]),
                (Priority::High, vec![4]),
                (Priority::Low, vec![0]),
                (Priority::Low, vec![3]),
            ]
        );
    }

    #[test]
    fn tiers_get_20_50_30_shares() {
        let (mut tx, _rx) = PriorityRingBuffer::with_capacity(1 << 20, 64).unwrap().split();
        let caps: Vec<usize> = Priority::ALL.iter().map(|p| tx.tiers[p.index()].capacity()).collect();
        let total: usize = caps.iter().sum();
        for (p, c) in Priority::ALL.iter().zip(&caps) {
            let pct = *c as f64 * 100.0 / total as f64;
            assert!((pct - p.share_percent() as f64).abs() < 0.5, "{p}: {pct:.2} %");
        }
        assert!(tx.can_write(Priority::Low, 64).unwrap());
    }

    #[test]
    fn a_full_tier_does_not_block_the_others() {
        let prb = PriorityRingBuffer::new(1).unwrap();
        while prb.write(Priority::Low, &[0; 4096]).is_ok() {}
        prb.write(Priority::Critical, b"still fine").unwrap();
        assert_eq!(prb.read().unwrap().0, Priority::Critical);
    }
}
