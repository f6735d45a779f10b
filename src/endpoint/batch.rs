//! Many messages published together, with one wake-up.

use crate::endpoint::payload::sealed::Written;
use crate::endpoint::payload::{writer, Payload};
use crate::endpoint::Error;
use crate::priority::Priority;
use crate::ring::{PriorityBatch, PriorityProducer};

/// Messages written through a batch become visible to the reader together
/// (one release store per tier) when the closure given to
/// [`crate::ClientSender::send_batch`] or [`crate::DaemonSender::send_batch_to`] returns,
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

    /// Adds `payload` (bytes, a typed value or a [`Fill`](crate::Fill)) as
    /// one message of `priority`.
    ///
    /// # Errors
    /// [`Error::Full`] when it does not fit now, [`Error::MessageTooLarge`]
    /// when it never will, [`Error::Corrupted`] if the peer broke the ring,
    /// [`Error::Type`] when a typed value cannot be encoded.
    #[inline]
    pub fn try_send(&mut self, priority: Priority, payload: impl Payload) -> Result<(), Error> {
        let len = payload.encoded_len()?;
        let written = self.inner.write_with(priority, len, writer(payload))?;
        // Written, untagged if a typed value failed to encode: it counts.
        self.written += 1;
        written.into_result()
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
