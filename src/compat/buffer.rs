//! The 0.1.3 API's ring on the heap: [`RingBuffer`] (`write_slot`,
//! `read_slot`, plus zero-copy calls), and the ends [`RingBuffer::split`]
//! turns it into, [`RingProducer`] and [`RingConsumer`], for two threads. The
//! same ring code runs inside shared-memory segments, six rings per client.
//! Messages are stored compactly: a 64-byte message takes 72 bytes of ring,
//! not a fixed slot.

use std::cell::RefCell;

use super::heap_ends::own;
pub use super::heap_ends::{RingConsumer, RingProducer, WriteBatch};
use super::shm_error::{ShmError, ShmResult};
pub use crate::priority::Priority;
use crate::ring;
use crate::ring::heap::{self, SizeError};
pub use crate::ring::RingError;

/// A ring on the heap, used from one thread (it is `Send`, not `Sync`).
///
/// Each message keeps the [`Priority`] it was written with, but a single ring
/// is FIFO; use [`crate::pring::PriorityRingBuffer`] for priority order.
///
/// ```
/// use memlink_shm::buffer::{RingBuffer, Priority};
///
/// let rb = RingBuffer::new(256)?; // room for at least 256 messages of 4 KiB
/// rb.write_slot(Priority::High, b"Hello, World!")?;
/// // Zero-copy: write in place, read in place.
/// rb.write_with(Priority::Low, 4, |buf| buf.copy_from_slice(&7u32.to_le_bytes()))?;
///
/// assert_eq!(rb.read_slot(), Some((Priority::High, b"Hello, World!".to_vec())));
/// let n = rb.read_with(|_, bytes| u32::from_le_bytes(bytes.try_into().unwrap()))?;
/// assert_eq!(n, Some(7));
/// assert_eq!(rb.read_slot(), None);
/// # Ok::<(), memlink_shm::transport::ShmError>(())
/// ```
#[derive(Debug)]
pub struct RingBuffer {
    producer: RefCell<ring::RingProducer>,
    consumer: RefCell<ring::RingConsumer>,
}

impl RingBuffer {
    /// A ring with room for at least `slots` messages of the default maximum
    /// size (4 KiB); many more fit when messages are smaller.
    ///
    /// # Errors
    /// [`ShmError::InvalidConfig`] for zero slots or a size that overflows.
    pub fn new(slots: usize) -> ShmResult<RingBuffer> {
        if slots == 0 {
            return Err(ShmError::InvalidConfig("a ring needs at least one slot".into()));
        }
        // That many 4 KiB messages always fit a drained ring.
        let bytes = heap::single_bytes_for(slots)
            .ok_or_else(|| ShmError::InvalidConfig(format!("{slots} slots of 4 KiB overflow memory")))?;
        Self::with_capacity(bytes, heap::DEFAULT_MAX_MESSAGE)
    }

    /// A ring of `bytes` data bytes (rounded up to 128) for messages of up to
    /// `max_message` bytes.
    ///
    /// # Errors
    /// [`ShmError::InvalidConfig`] for a `max_message` over 256 MiB or a size
    /// that overflows, [`ShmError::TooSmall`] (with the minimum) when two
    /// maximum messages do not fit.
    pub fn with_capacity(bytes: usize, max_message: usize) -> ShmResult<RingBuffer> {
        let (producer, consumer) = heap::single(bytes, max_message).map_err(|e| size_error(bytes, e))?;
        Ok(RingBuffer {
            producer: RefCell::new(producer),
            consumer: RefCell::new(consumer),
        })
    }

    /// Copies `data` into the ring. [`ShmError::BufferFull`] when it does not fit now.
    ///
    /// # Errors
    /// [`ShmError::BufferFull`] when it does not fit now,
    /// [`ShmError::MessageTooLarge`] when it never will, [`ShmError::Reentrant`]
    /// when called from inside one of this buffer's own closures.
    pub fn write_slot(&self, priority: Priority, data: &[u8]) -> ShmResult<()> {
        self.write_with(priority, data.len(), |buf| buf.copy_from_slice(data))
    }

    /// Reserves `len` bytes, lets `fill` write them in place, then publishes.
    ///
    /// # Errors
    /// [`ShmError::BufferFull`] when it does not fit now,
    /// [`ShmError::MessageTooLarge`] when it never will, [`ShmError::Reentrant`]
    /// when called from inside one of this buffer's own closures.
    pub fn write_with<R>(&self, priority: Priority, len: usize, fill: impl FnOnce(&mut [u8]) -> R) -> ShmResult<R> {
        let mut p = self.producer.try_borrow_mut().map_err(|_| ShmError::Reentrant)?;
        p.write_with(priority, len, fill).map_err(ShmError::from)
    }

    /// Takes the oldest message, or `None` if the ring is empty (or failed: see
    /// [`RingBuffer::try_read_slot`] for the error).
    pub fn read_slot(&self) -> Option<(Priority, Vec<u8>)> {
        self.try_read_slot().ok().flatten()
    }

    /// Takes the oldest message; errors if the ring is corrupted.
    ///
    /// # Errors
    /// [`ShmError::Corrupted`] if a ring holds an impossible value,
    /// [`ShmError::Reentrant`] when called from inside one of this buffer's own
    /// closures.
    pub fn try_read_slot(&self) -> ShmResult<Option<(Priority, Vec<u8>)>> {
        let mut c = self.consumer.try_borrow_mut().map_err(|_| ShmError::Reentrant)?;
        c.read().map_err(ShmError::from)
    }

    /// Passes the oldest message to `f` in place, without copying.
    ///
    /// # Errors
    /// [`ShmError::Corrupted`] if a ring holds an impossible value,
    /// [`ShmError::Reentrant`] when called from inside one of this buffer's own
    /// closures.
    pub fn read_with<R>(&self, f: impl FnOnce(Priority, &[u8]) -> R) -> ShmResult<Option<R>> {
        let mut c = self.consumer.try_borrow_mut().map_err(|_| ShmError::Reentrant)?;
        c.read_with(|p, b| f(p, own(b))).map_err(ShmError::from)
    }

    /// Whether no message is waiting.
    pub fn is_empty(&self) -> bool {
        match self.consumer.try_borrow_mut() {
            Ok(mut c) => !c.has_message(),
            Err(_) => false,
        }
    }

    /// Data bytes of the ring.
    pub fn capacity(&self) -> usize {
        self.producer.borrow().capacity()
    }

    /// Largest message payload.
    pub fn max_message_size(&self) -> usize {
        self.producer.borrow().max_message_size()
    }

    /// Splits into the two ends, to be moved to two threads.
    ///
    /// ```
    /// use memlink_shm::buffer::{RingBuffer, Priority};
    /// let (mut tx, mut rx) = RingBuffer::new(4)?.split();
    /// let t = std::thread::spawn(move || {
    ///     for i in 0..1000u32 {
    ///         while tx.write(Priority::High, &i.to_le_bytes()).is_err() { std::hint::spin_loop() }
    ///     }
    /// });
    /// let mut next = 0u32;
    /// while next < 1000 {
    ///     if let Some((_, b)) = rx.read()? {
    ///         assert_eq!(b, next.to_le_bytes());
    ///         next += 1;
    ///     }
    /// }
    /// t.join().unwrap();
    /// # Ok::<(), memlink_shm::transport::ShmError>(())
    /// ```
    pub fn split(self) -> (RingProducer, RingConsumer) {
        (
            RingProducer(self.producer.into_inner()),
            RingConsumer(self.consumer.into_inner()),
        )
    }
}

/// Why a heap ring of `bytes` cannot be made, as the 0.1.3 API said it.
pub(super) fn size_error(bytes: usize, e: SizeError) -> ShmError {
    match e {
        SizeError::MessageLimit { max_message } => ShmError::InvalidConfig(format!(
            "max_message_size {max_message} is over the limit of {} bytes",
            heap::MAX_MESSAGE_LIMIT
        )),
        SizeError::Overflow => ShmError::InvalidConfig(format!("ring of {bytes} bytes overflows memory")),
        SizeError::TooSmall { requested, minimum } => ShmError::TooSmall { requested, minimum },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_readme_basic_usage() {
        let rb = RingBuffer::new(256).unwrap();
        rb.write_slot(Priority::High, b"Hello, World!").unwrap();
        if let Some((priority, data)) = rb.read_slot() {
            assert_eq!(priority, Priority::High);
            assert_eq!(String::from_utf8_lossy(&data), "Hello, World!");
        } else {
            panic!("message lost");
        }
    }

    #[test]
    fn small_messages_are_stored_compactly() {
        // Room for one 4 KiB slot holds dozens of 64-byte messages.
        let rb = RingBuffer::new(1).unwrap();
        let mut n = 0;
        while rb.write_slot(Priority::Low, &[0; 64]).is_ok() {
            n += 1;
        }
        assert!(n >= 4096 / 72, "only {n} 64-byte messages fit");
    }

    #[test]
    fn reentrant_use_is_an_error_not_a_panic() {
        let rb = RingBuffer::new(1).unwrap();
        let inner = rb
            .write_with(Priority::High, 1, |_| rb.write_slot(Priority::High, b"x"))
            .unwrap();
        assert!(matches!(inner, Err(ShmError::Reentrant)));
    }

    #[test]
    fn bad_sizes_are_refused() {
        assert!(RingBuffer::new(0).is_err());
        assert!(RingBuffer::new(usize::MAX).is_err());
        assert!(matches!(
            RingBuffer::with_capacity(100, 4096),
            Err(ShmError::TooSmall { .. })
        ));
    }
}
