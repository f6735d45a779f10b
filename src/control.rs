//! A mapped, validated segment with typed access to its control region,
//! channel headers and rings.
//!
//! [`Segment::create`] writes the control region (magic last, so openers never
//! see half of it); [`Segment::open`] accepts a segment only if the magic,
//! layout version and every size in the header agree with each other and with
//! the real size of the mapping. After that, all offsets come from the
//! validated local [`Geometry`]; nothing is re-read from shared memory.

use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::buffer::{Backing, RingMemory};
use crate::error::{ShmError, ShmResult};
use crate::layout::{
    ChannelHeader, ControlBlock, Direction, Geometry, CONTROL_SIZE, LAYOUT_VERSION, MAGIC,
    STATE_ALIVE, STATE_SHUTTING_DOWN,
};
use crate::mmap::{SegmentName, SharedMemory};
use crate::platform;
use crate::priority::Priority;

/// A segment mapped into this process, with its geometry checked.
#[derive(Debug, Clone)]
pub struct Segment {
    shm: Arc<SharedMemory>,
    geometry: Geometry,
}

impl Segment {
    /// Creates and initialises a segment with `geometry`.
    pub fn create(
        name: &SegmentName,
        geometry: Geometry,
        protocol_version: u32,
        mode: u32,
    ) -> ShmResult<Segment> {
        let shm = Arc::new(SharedMemory::create(name, geometry.total_size, mode)?);
        let seg = Segment { shm, geometry };
        let c = seg.control();
        c.layout_version.store(LAYOUT_VERSION, Ordering::Relaxed);
        c.protocol_version
            .store(protocol_version, Ordering::Relaxed);
        c.total_size
            .store(geometry.total_size as u64, Ordering::Relaxed);
        c.max_clients.store(geometry.max_clients, Ordering::Relaxed);
        c.max_message_size
            .store(geometry.max_message_size, Ordering::Relaxed);
        c.channel_offset
            .store(CONTROL_SIZE as u64, Ordering::Relaxed);
        c.channel_stride
            .store(geometry.channel_stride as u64, Ordering::Relaxed);
        for (w, cap) in c.ring_capacity.iter().zip(geometry.ring_capacity) {
            w.store(cap as u64, Ordering::Relaxed);
        }
        c.daemon_pid
            .store(platform::current_pid(), Ordering::Relaxed);
        c.creator_uid
            .store(platform::current_uid(), Ordering::Relaxed);
        c.state.store(STATE_ALIVE, Ordering::Relaxed);
        // Rings need no initialisation: a zero-filled ring is an empty ring.
        // SYNC POINT: Release publishes every field above; pairs with the Acquire in `open`.
        c.magic.store(MAGIC, Ordering::Release);
        Ok(seg)
    }

    /// Maps an existing segment and validates its header.
    pub fn open(name: &SegmentName) -> ShmResult<Segment> {
        let shm = Arc::new(SharedMemory::open(name)?);
        let invalid = |reason: String| ShmError::InvalidSegment {
            name: name.to_string(),
            reason,
        };
        if shm.len() < CONTROL_SIZE {
            return Err(invalid(format!(
                "{} bytes is smaller than the control region",
                shm.len()
            )));
        }
        // SAFETY: the mapping is at least CONTROL_SIZE bytes, page-aligned, and
        // ControlBlock is made of atomics, valid for any bit pattern.
        let c = unsafe { shm.base().cast::<ControlBlock>().as_ref() };
        // SYNC POINT: Acquire pairs with the Release store of `magic` in `create`.
        match c.magic.load(Ordering::Acquire) {
            MAGIC => {}
            0 => {
                return Err(invalid(
                    "not initialised (its daemon may still be starting: retry)".into(),
                ))
            }
            _ => return Err(invalid("not a memlink segment (bad magic number)".into())),
        }
        let layout = c.layout_version.load(Ordering::Relaxed);
        if layout != LAYOUT_VERSION {
            return Err(ShmError::LayoutMismatch {
                expected: LAYOUT_VERSION,
                found: layout,
            });
        }
        let total = c.total_size.load(Ordering::Relaxed);
        let clients = c.max_clients.load(Ordering::Relaxed);
        let max_message = c.max_message_size.load(Ordering::Relaxed);
        if total > shm.len() as u64 {
            return Err(invalid(format!(
                "header claims {total} bytes but only {} are mapped",
                shm.len()
            )));
        }
        let geometry = Geometry::compute(total as usize, clients, max_message as usize)
            .map_err(|e| invalid(format!("header geometry is impossible: {e}")))?;
        let caps = c
            .ring_capacity
            .each_ref()
            .map(|w| w.load(Ordering::Relaxed) as usize);
        if geometry.total_size as u64 != total
            || c.channel_offset.load(Ordering::Relaxed) != CONTROL_SIZE as u64
            || c.channel_stride.load(Ordering::Relaxed) != geometry.channel_stride as u64
            || caps != geometry.ring_capacity
        {
            return Err(invalid("header sizes disagree with each other".into()));
        }
        Ok(Segment { shm, geometry })
    }

    /// The validated geometry.
    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    /// The segment's name.
    pub fn name(&self) -> &SegmentName {
        self.shm.name()
    }

    /// The control region.
    pub fn control(&self) -> &ControlBlock {
        // SAFETY: the mapping holds at least CONTROL_SIZE bytes (checked on open,
        // sized by geometry on create), is page-aligned and lives as long as self.
        unsafe { self.shm.base().cast::<ControlBlock>().as_ref() }
    }

    /// Header of channel `index`.
    ///
    /// # Panics
    /// If `index >= max_clients` (a bug in the caller, never input-driven).
    pub fn channel(&self, index: u32) -> &ChannelHeader {
        assert!(
            index < self.geometry.max_clients,
            "channel index out of range"
        );
        let off = self.geometry.channel_offset(index);
        // SAFETY: the validated geometry places channel `index` inside the mapping,
        // 128-aligned; ChannelHeader is atomics only.
        unsafe { self.shm.base().add(off).cast::<ChannelHeader>().as_ref() }
    }

    /// One ring of channel `index`.
    pub(crate) fn ring(&self, index: u32, direction: Direction, priority: Priority) -> RingMemory {
        assert!(
            index < self.geometry.max_clients,
            "channel index out of range"
        );
        let off = self.geometry.ring_offset(index, direction, priority);
        // SAFETY: the validated geometry places the ring header and its data inside
        // the mapping, 128-aligned; the data size meets min_ring_capacity by
        // construction of Geometry; the Arc keeps the mapping alive.
        unsafe {
            let header: NonNull<u8> = self.shm.base().add(off);
            let backing: Backing = self.shm.clone();
            RingMemory::new(
                header,
                self.geometry.ring_capacity[priority.index()],
                self.geometry.max_message_size as usize,
                backing,
            )
        }
    }

    /// Whether the daemon has started shutting down.
    #[inline]
    pub fn is_shutting_down(&self) -> bool {
        self.control().state.load(Ordering::Acquire) & STATE_SHUTTING_DOWN != 0
    }
}
