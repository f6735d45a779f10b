//! Three rings, one per [`Priority`], read in priority order: the two
//! ends of a channel's direction, and batches over its three tiers.

use super::{RingBytes, RingConsumer, RingCounters, RingError, RingProducer};
use crate::priority::Priority;

/// Turns the per-tier vector built in tier order into an array.
pub(crate) fn three<T>(v: Vec<T>) -> [T; 3] {
    v.try_into().unwrap_or_else(|_| unreachable!("exactly three tiers"))
}

/// Writing ends of the three tiers.
#[derive(Debug)]
pub(crate) struct PriorityProducer {
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
    pub(crate) fn write_with<R>(
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
    pub(crate) fn write(&mut self, priority: Priority, data: &[u8]) -> Result<(), RingError> {
        self.tiers[priority.index()].write(priority, data)
    }

    /// Starts a batch over the three tiers: what is written through it is
    /// published, one release store per tier, when it is committed or dropped.
    pub(crate) fn batch(&mut self) -> PriorityBatch<'_> {
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
    pub(crate) fn can_write(&mut self, priority: Priority, len: usize) -> Result<bool, RingError> {
        self.tiers[priority.index()].can_write(len)
    }

    /// Occupancy of the fullest tier, 0.0..=1.0.
    ///
    /// # Errors
    /// [`RingError::Corrupted`] if a consumer's position is impossible.
    pub(crate) fn occupancy(&mut self) -> Result<f32, RingError> {
        let mut max = 0f32;
        for t in &mut self.tiers {
            max = max.max(t.occupancy()?);
        }
        Ok(max)
    }

    /// Counters of each tier.
    pub(crate) fn counters(&self) -> [RingCounters; 3] {
        [0, 1, 2].map(|i| self.tiers[i].memory().counters())
    }

    /// Data bytes of `priority`'s ring.
    #[cfg(test)]
    pub(crate) fn tier_capacity(&self, priority: Priority) -> usize {
        self.tiers[priority.index()].capacity()
    }
}

/// Messages of any tier, published together (one release store per tier)
/// on commit or drop.
#[derive(Debug)]
pub(crate) struct PriorityBatch<'a> {
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
    pub(crate) fn write_with<R>(
        &mut self,
        priority: Priority,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<R, RingError> {
        let i = priority.index();
        self.producer.tiers[i].put(&mut self.pending[i], priority, len, fill)
    }

    /// Publishes the batch.
    pub(crate) fn commit(self) {}
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
pub(crate) struct PriorityConsumer {
    tiers: [RingConsumer; 3],
}

impl PriorityConsumer {
    pub(crate) fn new(tiers: [RingConsumer; 3]) -> PriorityConsumer {
        PriorityConsumer { tiers }
    }

    /// The ring of one tier.
    #[inline]
    pub(crate) fn tier(&mut self, priority: Priority) -> &mut RingConsumer {
        &mut self.tiers[priority.index()]
    }

    /// Passes the most urgent waiting message to `f`: Critical, then High,
    /// then Low; FIFO within a tier. `Ok(None)`: all tiers empty.
    ///
    /// # Errors
    /// [`RingError::Corrupted`] when the ring holds a value no well-behaved
    /// producer writes; the ring stays failed.
    #[inline]
    pub(crate) fn read_with<R>(
        &mut self,
        f: impl FnOnce(Priority, RingBytes<'_>) -> R,
    ) -> Result<Option<R>, RingError> {
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
    pub(crate) fn read_batch_with(
        &mut self,
        max: usize,
        mut f: impl FnMut(Priority, RingBytes<'_>),
    ) -> Result<usize, RingError> {
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
    pub(crate) fn read(&mut self) -> Result<Option<(Priority, Vec<u8>)>, RingError> {
        self.read_with(|p, b| (p, b.to_vec()))
    }

    /// Whether any tier has a message (or an error to report).
    #[inline]
    pub(crate) fn has_message(&mut self) -> bool {
        self.tiers.iter_mut().any(|r| r.has_message())
    }

    /// Counters of each tier.
    pub(crate) fn counters(&self) -> [RingCounters; 3] {
        [0, 1, 2].map(|i| self.tiers[i].memory().counters())
    }
}
