//! Many messages published together, with one wake-up.

use crate::endpoint::Error;
use crate::priority::Priority;
use crate::ring::{PriorityBatch, PriorityProducer};

/// Messages written through a batch become visible to the reader together
/// (one release store per tier) when the closure given to
/// [`crate::Client::send_batch`] or [`crate::Daemon::send_batch_to`] returns,
/// and the reader is woken once. A batch never blocks: a message that does
/// not fit is [`Error::Full`], and those written before it are still sent.
#[derive(Debug)]
pub struct Batch<'a> {
    inner: PriorityBatch<'a>,
    written: usize,
}

impl Batch<'_> {
    /// Runs `f` on a batch over `producer`'s rings; what it added is
    /// published when `f` returns.
    pub(crate) fn run<R>(producer: &mut PriorityProducer, f: impl FnOnce(&mut Batch<'_>) -> R) -> R {
        f(&mut Batch {
            inner: producer.batch(),
            written: 0,
        })
    }

    /// Adds a copy of `data` as one message of `priority`.
    ///
    /// # Errors
    /// [`Error::Full`] when it does not fit now, [`Error::MessageTooLarge`]
    /// when it never will, [`Error::Corrupted`] if the peer broke the ring.
    #[inline]
    pub fn try_send(&mut self, priority: Priority, data: &[u8]) -> Result<(), Error> {
        self.try_send_with(priority, data.len(), |b| b.copy_from_slice(data))
    }

    /// Adds a `len`-byte message of `priority`, written in place by `fill`.
    ///
    /// # Errors
    /// As [`Batch::try_send`]; `fill` is not called then.
    #[inline]
    pub fn try_send_with<R>(
        &mut self,
        priority: Priority,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<R, Error> {
        match self.inner.write_with(priority, len, fill) {
            Ok(r) => {
                self.written += 1;
                Ok(r)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// How many messages this batch holds so far.
    pub fn len(&self) -> usize {
        self.written
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.written == 0
    }
}
