//! The 0.1.3 API's priority queue on the heap, [`PriorityRingBuffer`], and
//! the ends of a split one: three rings, one per [`Priority`], read in
//! priority order.

use std::cell::RefCell;

use super::buffer::size_error;
use super::heap_ends::own;
pub use super::heap_ends::{PriorityBatch, PriorityConsumer, PriorityProducer};
use super::shm_error::{ShmError, ShmResult};
use crate::priority::Priority;
use crate::ring::{self, heap};

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
    producer: RefCell<ring::PriorityProducer>,
    consumer: RefCell<ring::PriorityConsumer>,
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
        let bytes = heap::tiers_bytes_for(slots)
            .ok_or_else(|| ShmError::InvalidConfig(format!("{slots} slots of 4 KiB overflow memory")))?;
        Self::with_capacity(bytes, heap::DEFAULT_MAX_MESSAGE)
    }

    /// `bytes` of ring space in all, shared 20/50/30, for messages of up to
    /// `max_message` bytes.
    ///
    /// # Errors
    /// [`ShmError::InvalidConfig`] for a `max_message` over 256 MiB or a size
    /// that overflows, [`ShmError::TooSmall`] (with the minimum) when two
    /// maximum messages do not fit.
    pub fn with_capacity(bytes: usize, max_message: usize) -> ShmResult<PriorityRingBuffer> {
        let (producer, consumer) = heap::tiers(bytes, max_message).map_err(|e| size_error(bytes, e))?;
        Ok(PriorityRingBuffer {
            producer: RefCell::new(producer),
            consumer: RefCell::new(consumer),
        })
    }

    /// Copies `data` into `priority`'s ring.
    ///
    /// # Errors
    /// [`ShmError::BufferFull`] when it does not fit now, [`ShmError::MessageTooLarge`]
    /// when it never will, [`ShmError::Reentrant`] from inside this buffer's own
    /// closures.
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
    /// [`ShmError::BufferFull`] when it does not fit now, [`ShmError::MessageTooLarge`]
    /// when it never will, [`ShmError::Reentrant`] from inside this buffer's own
    /// closures.
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
        self.consumer
            .try_borrow_mut()
            .map_err(|_| ShmError::Reentrant)?
            .read()
            .map_err(ShmError::from)
    }

    /// Passes the most urgent message to `f` in place.
    ///
    /// # Errors
    /// [`ShmError::Corrupted`] when the ring holds a value no well-behaved
    /// producer writes (the ring stays failed), [`ShmError::Reentrant`] from
    /// inside this buffer's own closures.
    pub fn read_with<R>(&self, f: impl FnOnce(Priority, &[u8]) -> R) -> ShmResult<Option<R>> {
        self.consumer
            .try_borrow_mut()
            .map_err(|_| ShmError::Reentrant)?
            .read_with(|p, b| f(p, own(b)))
            .map_err(ShmError::from)
    }

    /// Splits into the two ends, to be moved to two threads.
    pub fn split(self) -> (PriorityProducer, PriorityConsumer) {
        (
            PriorityProducer(self.producer.into_inner()),
            PriorityConsumer(self.consumer.into_inner()),
        )
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
        let caps: Vec<usize> = Priority::ALL.iter().map(|p| tx.0.tier_capacity(*p)).collect();
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
