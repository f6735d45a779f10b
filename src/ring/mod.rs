//! The engine's rings: lock-free single-producer/single-consumer rings of
//! variable-length records over memory they do not own (`spsc.rs`), and the
//! three of a channel read in priority order (`priority.rs`); `heap.rs`
//! makes both on the heap, for the threads of one process.
//!
//! The ring code runs in shared-memory segments, six rings per client, and
//! on the heap for the 0.1.3 API's [`crate::buffer::RingBuffer`]. Messages
//! are stored compactly: a 64-byte message takes 72 bytes of ring, not a
//! fixed slot. The segment hands out raw regions (`segment::RingRegion`);
//! this layer builds the rings on them.

mod bytes;
mod error;
pub(crate) mod heap;
mod priority;
mod region;
mod spsc;

pub(crate) use bytes::RingBytes;
pub use error::{Corruption, RingError};
pub(crate) use priority::{PriorityBatch, PriorityConsumer, PriorityProducer};
pub use spsc::RingCounters;
pub(crate) use spsc::{RingConsumer, RingProducer, WriteBatch};

pub(crate) use priority::three;
pub(crate) use region::HeapRegion;
pub(crate) use spsc::{Backing, RingMemory};

/// The ring of channel `index`, `direction`, `priority` of `seg`.
///
/// # Panics
/// If `index` is not a slot of the segment (a caller's bug, never input).
pub(crate) fn on_segment(
    seg: &crate::segment::Segment,
    index: u32,
    direction: crate::segment::layout::Direction,
    priority: crate::priority::Priority,
) -> RingMemory {
    RingMemory::on(seg.ring_region(index, direction, priority))
}
