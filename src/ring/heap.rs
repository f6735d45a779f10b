//! Rings on the heap, for the threads of one process: what the 0.1.3 heap
//! rings (`compat/buffer.rs`, `compat/pring.rs`) wrap. The same ring code
//! as in a segment, on a zeroed allocation this module makes, so that no
//! caller handles the raw memory.

use std::sync::Arc;

use super::{three, Backing, HeapRegion, PriorityConsumer, PriorityProducer, RingConsumer, RingMemory, RingProducer};
use crate::priority::Priority;
use crate::segment::layout::{self, LINE, RING_HEADER_SIZE};
pub(crate) use crate::segment::layout::{DEFAULT_MAX_MESSAGE, MAX_MESSAGE_LIMIT};

/// Why a heap ring of the asked size cannot be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SizeError {
    /// A largest message over [`MAX_MESSAGE_LIMIT`].
    MessageLimit {
        /// What was asked.
        max_message: usize,
    },
    /// The size does not fit in memory.
    Overflow,
    /// Two largest messages do not fit.
    TooSmall {
        /// Bytes asked for.
        requested: usize,
        /// The least that works.
        minimum: usize,
    },
}

/// Data bytes for a single ring that always holds `slots` messages of the
/// default maximum size (4 KiB) once drained: one more record for the wrap
/// padding, and the header slack.
pub(crate) fn single_bytes_for(slots: usize) -> Option<usize> {
    slots
        .checked_add(1)?
        .checked_mul(layout::record_size(DEFAULT_MAX_MESSAGE))?
        .checked_add(layout::RECORD_HEADER_SIZE)
}

/// Data bytes, shared by the three tiers, for about `slots` messages of the
/// default maximum size in all.
pub(crate) fn tiers_bytes_for(slots: usize) -> Option<usize> {
    slots.checked_mul(layout::record_size(DEFAULT_MAX_MESSAGE))
}

/// A ring of `bytes` data bytes (rounded up to a line) for messages of up
/// to `max_message` bytes, and its two ends.
pub(crate) fn single(bytes: usize, max_message: usize) -> Result<(RingProducer, RingConsumer), SizeError> {
    if max_message > MAX_MESSAGE_LIMIT {
        return Err(SizeError::MessageLimit { max_message });
    }
    let minimum = layout::min_ring_capacity(max_message);
    let capacity = bytes.checked_add(LINE - 1).ok_or(SizeError::Overflow)? & !(LINE - 1);
    if capacity < minimum {
        return Err(SizeError::TooSmall {
            requested: bytes,
            minimum,
        });
    }
    let size = capacity.checked_add(RING_HEADER_SIZE).ok_or(SizeError::Overflow)?;
    let region = HeapRegion::zeroed(size);
    let base = region.base();
    let backing: Backing = Arc::new(region);
    // SAFETY: the region is LINE-aligned, zeroed (an empty ring), RING_HEADER_SIZE +
    // capacity bytes long, and kept alive by `backing`; capacity >= min_ring_capacity.
    let mem = unsafe { RingMemory::new(base, capacity, max_message, backing) };
    // A zeroed header is a valid empty ring: attaching to it cannot fail.
    let attached = RingProducer::attach(mem.clone()).and_then(|p| Ok((p, RingConsumer::attach(mem)?)));
    Ok(attached.unwrap_or_else(|e| unreachable!("a fresh heap ring failed to attach: {e}")))
}

/// The three tiers on the heap, `bytes` shared 20/50/30 (each holding at
/// least two largest messages), and their two ends.
pub(crate) fn tiers(bytes: usize, max_message: usize) -> Result<(PriorityProducer, PriorityConsumer), SizeError> {
    let minimum = layout::min_ring_capacity(max_message);
    let mut producers = Vec::with_capacity(3);
    let mut consumers = Vec::with_capacity(3);
    for p in Priority::ALL {
        let share = (bytes / 100).saturating_mul(p.share_percent() as usize).max(minimum);
        let (tx, rx) = single(share, max_message)?;
        producers.push(tx);
        consumers.push(rx);
    }
    Ok((
        PriorityProducer::new(three(producers)),
        PriorityConsumer::new(three(consumers)),
    ))
}
