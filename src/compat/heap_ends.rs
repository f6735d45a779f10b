//! The ends of a split heap ring, [`crate::buffer::RingBuffer::split`] and
//! [`crate::pring::PriorityRingBuffer::split`]: thin wrappers over the
//! engine's ring ends, which stay private so that the engine can change
//! without changing this API.
//!
//! Both ends of a heap ring are this process's own handles, which keep the
//! ring's protocol, so the in-place reads here lend a plain `&[u8]` (the
//! precondition of `RingBytes::trusting_peer` holds by construction).

use crate::priority::Priority;
use crate::ring::{self, RingBytes, RingCounters, RingError};
use crate::{Batch, Error, Fill};

/// The precondition of [`RingBytes::trusting_peer`] always holds on a heap
/// ring: its only producer is a handle of this module's types (or of the
/// unsplit buffer), which writes a record only after the consumer handed it
/// back.
#[inline(always)]
pub(super) fn own(bytes: RingBytes<'_>) -> &[u8] {
    // SAFETY: see above: the producer is one of this process's handles,
    // which keeps the protocol; no other process maps a heap ring.
    unsafe { bytes.trusting_peer() }
}

/// `write_with` and `write`, forwarded to the engine's end or batch: the
/// same two calls on all four writing types.
macro_rules! writes {
    () => {
        /// Reserves room for a `len`-byte message of `priority`, lets `fill`
        /// write it in place, and adds it (published at once by an end, at
        /// the commit by a batch). If `fill` panics nothing is added.
        ///
        /// # Errors
        /// [`RingError::Full`] when it does not fit now,
        /// [`RingError::TooLarge`] when it never will.
        #[inline]
        pub fn write_with<R>(
            &mut self,
            priority: Priority,
            len: usize,
            fill: impl FnOnce(&mut [u8]) -> R,
        ) -> Result<R, RingError> {
            self.0.write_with(priority, len, fill)
        }

        /// Copies `data` in as one message of `priority`.
        ///
        /// # Errors
        /// As `write_with`.
        #[inline]
        pub fn write(&mut self, priority: Priority, data: &[u8]) -> Result<(), RingError> {
            self.0.write(priority, data)
        }
    };
}

/// `read_with`, `read`, `read_batch_with` and `has_message`, forwarded to
/// the engine's reading end: the same calls on both reading types.
macro_rules! reads {
    () => {
        /// Passes the next message (the most urgent, on a priority ring) to
        /// `f` in place, without copying. `Ok(None)`: empty.
        ///
        /// # Errors
        /// [`RingError::Corrupted`] when a ring holds a value no well-behaved
        /// producer writes; the ring stays failed.
        #[inline]
        pub fn read_with<R>(&mut self, f: impl FnOnce(Priority, &[u8]) -> R) -> Result<Option<R>, RingError> {
            self.0.read_with(|p, b| f(p, own(b)))
        }

        /// Copies the next message out. `Ok(None)`: empty.
        ///
        /// # Errors
        /// As `read_with`.
        pub fn read(&mut self) -> Result<Option<(Priority, Vec<u8>)>, RingError> {
            self.0.read()
        }

        /// Passes up to `max` waiting messages to `f`, in the order `read`
        /// takes them, and hands their space back once per ring. Returns how
        /// many.
        ///
        /// # Errors
        /// As `read_with`.
        pub fn read_batch_with(&mut self, max: usize, mut f: impl FnMut(Priority, &[u8])) -> Result<usize, RingError> {
            self.0.read_batch_with(max, |p, b| f(p, own(b)))
        }

        /// Whether a message is waiting (one load per empty ring).
        pub fn has_message(&mut self) -> bool {
            self.0.has_message()
        }
    };
}

/// The writing end of a heap ring, from [`crate::buffer::RingBuffer::split`].
#[derive(Debug)]
pub struct RingProducer(pub(super) ring::RingProducer);

impl RingProducer {
    writes!();

    /// Starts a batch: messages written through it become visible together,
    /// with one release store, when it is committed or dropped.
    ///
    /// ```
    /// use memlink_shm::buffer::{RingBuffer, Priority};
    /// let (mut tx, mut rx) = RingBuffer::new(4)?.split();
    /// let mut batch = tx.batch();
    /// for i in 0..10u8 {
    ///     batch.write(Priority::Low, &[i])?;
    /// }
    /// assert!(rx.read()?.is_none(), "nothing is visible before the commit");
    /// batch.commit();
    /// assert_eq!(rx.read()?.unwrap().1, [0]);
    /// # Ok::<(), memlink_shm::transport::ShmError>(())
    /// ```
    pub fn batch(&mut self) -> WriteBatch<'_> {
        WriteBatch(self.0.batch())
    }

    /// Whether a message of `len` bytes would fit now.
    ///
    /// # Errors
    /// [`RingError::TooLarge`] for a message that never fits.
    pub fn can_write(&mut self, len: usize) -> Result<bool, RingError> {
        self.0.can_write(len)
    }

    /// Fraction of the ring in use (0.0 empty .. 1.0 full).
    ///
    /// # Errors
    /// [`RingError::Corrupted`] if the consumer's position is impossible.
    pub fn occupancy(&mut self) -> Result<f32, RingError> {
        self.0.occupancy()
    }

    /// Data bytes of the ring.
    pub fn capacity(&self) -> usize {
        self.0.capacity()
    }

    /// Largest message payload.
    pub fn max_message_size(&self) -> usize {
        self.0.max_message_size()
    }
}

/// Messages written through a batch are published together when it is
/// committed or dropped (also during a panic: the messages completed before
/// it are published, the one being written is not).
#[derive(Debug)]
pub struct WriteBatch<'a>(ring::WriteBatch<'a>);

impl WriteBatch<'_> {
    writes!();

    /// Publishes the batch.
    pub fn commit(self) {
        self.0.commit();
    }
}

/// The reading end of a heap ring, from [`crate::buffer::RingBuffer::split`].
#[derive(Debug)]
pub struct RingConsumer(pub(super) ring::RingConsumer);

impl RingConsumer {
    reads!();

    /// Data bytes of the ring.
    pub fn capacity(&self) -> usize {
        self.0.capacity()
    }
}

/// The writing end of a heap priority ring, from
/// [`crate::pring::PriorityRingBuffer::split`].
#[derive(Debug)]
pub struct PriorityProducer(pub(super) ring::PriorityProducer);

impl PriorityProducer {
    writes!();

    /// Starts a batch over the three tiers, published (one release store per
    /// tier) when it is committed or dropped.
    pub fn batch(&mut self) -> PriorityBatch<'_> {
        PriorityBatch(Inner::Heap(self.0.batch()))
    }

    /// Whether a `len`-byte message of `priority` fits now.
    ///
    /// # Errors
    /// [`RingError::TooLarge`] for a message that never fits.
    pub fn can_write(&mut self, priority: Priority, len: usize) -> Result<bool, RingError> {
        self.0.can_write(priority, len)
    }

    /// Occupancy of the fullest tier, 0.0..=1.0.
    ///
    /// # Errors
    /// [`RingError::Corrupted`] if a consumer's position is impossible.
    pub fn occupancy(&mut self) -> Result<f32, RingError> {
        self.0.occupancy()
    }

    /// Counters of each tier, in tier order.
    pub fn counters(&self) -> [RingCounters; 3] {
        self.0.counters()
    }
}

/// A batch over the three tiers of a heap priority ring, or of the 0.1.3
/// transport's `write_batch` / `write_to_batch` (an endpoint's
/// [`crate::Batch`], from `From`): what it adds is published when it is
/// committed or dropped (a transport's, when the closure returns).
#[derive(Debug)]
pub struct PriorityBatch<'a>(Inner<'a>);

#[derive(Debug)]
enum Inner<'a> {
    Heap(ring::PriorityBatch<'a>),
    Endpoint(&'a mut (dyn Adds + 'a)),
}

/// What an endpoint's batch does for this one: add a message written in
/// place (an object, so that the batch's own lifetime stays out of this
/// type's).
trait Adds: std::fmt::Debug {
    fn add(&mut self, priority: Priority, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> Result<(), RingError>;
}

impl Adds for Batch<'_> {
    fn add(&mut self, priority: Priority, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> Result<(), RingError> {
        self.try_send(priority, Fill::new(len, fill)).map_err(|e| match e {
            Error::MessageTooLarge { len, max } => RingError::TooLarge { len, max },
            Error::Corrupted(c) => RingError::Corrupted(c),
            // Bytes, never a typed value: the one refusal left is "no room now".
            _ => RingError::Full,
        })
    }
}

impl<'a, 'b> From<&'a mut Batch<'b>> for PriorityBatch<'a> {
    /// The 0.1.3 batch over an endpoint's batch (what the transport's
    /// `write_batch` hands its closure).
    fn from(batch: &'a mut Batch<'b>) -> PriorityBatch<'a> {
        PriorityBatch(Inner::Endpoint(batch))
    }
}

impl PriorityBatch<'_> {
    /// Reserves room for a `len`-byte message of `priority`, lets `fill`
    /// write it in place, and adds it (published at the commit). If `fill`
    /// panics nothing is added.
    ///
    /// # Errors
    /// [`RingError::Full`] when it does not fit now,
    /// [`RingError::TooLarge`] when it never will.
    #[inline]
    pub fn write_with<R>(
        &mut self,
        priority: Priority,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<R, RingError> {
        match &mut self.0 {
            Inner::Heap(b) => b.write_with(priority, len, fill),
            Inner::Endpoint(b) => {
                let (mut fill, mut out) = (Some(fill), None);
                b.add(priority, len, &mut |buf| out = fill.take().map(|f| f(buf)))?;
                // Added, so written: `fill` ran.
                Ok(out.expect("an added message was written"))
            }
        }
    }

    /// Copies `data` in as one message of `priority`.
    ///
    /// # Errors
    /// As `write_with`.
    #[inline]
    pub fn write(&mut self, priority: Priority, data: &[u8]) -> Result<(), RingError> {
        self.write_with(priority, data.len(), |b| b.copy_from_slice(data))
    }

    /// Publishes the batch (a transport's is published when its closure
    /// returns: then this does nothing more).
    pub fn commit(self) {
        if let Inner::Heap(b) = self.0 {
            b.commit();
        }
    }
}

/// The reading end of a heap priority ring, from
/// [`crate::pring::PriorityRingBuffer::split`]: Critical before High before
/// Low, FIFO within a tier.
#[derive(Debug)]
pub struct PriorityConsumer(pub(super) ring::PriorityConsumer);

impl PriorityConsumer {
    reads!();

    /// Counters of each tier, in tier order.
    pub fn counters(&self) -> [RingCounters; 3] {
        self.0.counters()
    }
}
