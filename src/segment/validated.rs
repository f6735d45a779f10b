//! A mapped, validated segment with typed access to its control region,
//! channel headers and rings.
//!
//! [`Segment::create`] writes the control region (magic last, so openers never
//! see half of it); [`Segment::open`] accepts a segment only if the magic,
//! layout version and every size in the header agree with each other and with
//! the real size of the mapping. After that, all offsets come from the
//! validated local [`Geometry`]; nothing is re-read from shared memory.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::error::{SegmentError, SegmentResult};
use crate::platform;
use crate::priority::Priority;
use crate::segment::layout::{
    client_lock_byte, ChannelHeader, ControlBlock, Direction, Geometry, RingHeader, CONTROL_SIZE, DAEMON_LOCK_BYTE,
    LAYOUT_VERSION, MAGIC, RING_HEADER_SIZE, STATE_ALIVE, STATE_SHUTTING_DOWN,
};
use crate::segment::{SegmentName, SharedMemory};

/// A segment mapped into this process, with its geometry checked.
#[derive(Debug, Clone)]
pub(crate) struct Segment {
    shm: Arc<SharedMemory>,
    /// `shm.base()`, kept here: the start of the mapping, one load away.
    base: NonNull<u8>,
    geometry: Geometry,
    /// The mapping's fault count (`SharedMemory::faults`), one load away.
    faults: &'static AtomicU32,
}

// SAFETY: `base` points into the mapping that `shm` keeps alive for as long
// as this value lives; everything reached through it is atomics (shared with
// other processes anyway) or ring memory whose single-producer and
// single-consumer roles are enforced by `&mut` on the ring ends. A Segment
// is otherwise an Arc and plain data, both Send and Sync.
unsafe impl Send for Segment {}
// SAFETY: as for Send: shared access goes through atomics only.
unsafe impl Sync for Segment {}

/// One channel's header, found once (its index checked against the
/// geometry) and reached from then on with one load: what the message path
/// of an endpoint uses instead of [`Segment::channel`]. It keeps the mapping
/// alive.
#[derive(Clone)]
pub(crate) struct Channel {
    header: NonNull<ChannelHeader>,
    _mapping: Arc<SharedMemory>,
}

// SAFETY: `header` points into the mapping `_mapping` keeps alive, and a
// ChannelHeader is atomics only (shared with other processes anyway).
unsafe impl Send for Channel {}
// SAFETY: as for Send: access goes through atomics only.
unsafe impl Sync for Channel {}

impl std::ops::Deref for Channel {
    type Target = ChannelHeader;

    #[inline(always)]
    fn deref(&self) -> &ChannelHeader {
        // SAFETY: `Segment::channel_handle` took the pointer from a checked
        // `&ChannelHeader` of the mapping that `_mapping` keeps alive.
        unsafe { self.header.as_ref() }
    }
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel").finish_non_exhaustive()
    }
}

/// How long a creator that lost the race to take over a dead daemon's name
/// waits for the winner to show itself under the name.
pub(crate) const TAKEOVER_WAIT: Duration = Duration::from_secs(2);

impl Segment {
    /// Creates and initialises a segment with `geometry` and publishes it
    /// under `name`, holding the daemon's liveness lock from before it is
    /// visible. A name left by a dead daemon is taken over; a live daemon's
    /// is refused with [`SegmentError::AlreadyRunning`].
    ///
    /// The segment is built under a hidden name and made visible with one
    /// `link` (or, over a dead daemon's segment, one `rename`), so every segment
    /// anyone can open is complete and already locked by its creator. Of several
    /// processes taking over the same dead segment, only the one that locks the
    /// dead daemon's byte on that file proceeds; it re-checks that the name
    /// still names that file before replacing it. The others look again until
    /// the name shows the winner (for up to [`TAKEOVER_WAIT`]), so their
    /// [`SegmentError::AlreadyRunning`] names the winner, not the dead daemon.
    pub(crate) fn create(
        name: &SegmentName,
        geometry: Geometry,
        protocol_version: u32,
        mode: u32,
    ) -> SegmentResult<Segment> {
        let shm = Arc::new(SharedMemory::create_hidden(name, geometry.total_size, mode)?);
        // The hidden file arrives locked with the daemon's liveness byte.
        let seg = Segment::new(shm, geometry);
        seg.init(protocol_version);
        let mut attempts = 0;
        let mut takeover_deadline = None;
        while attempts < 8 {
            attempts += 1;
            match seg.shm.publish() {
                Ok(()) => {
                    lifecycle!(INFO, "segment created", seg, pid = platform::current_pid());
                    return Ok(seg);
                }
                Err(SegmentError::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
            // Another creator is replacing a dead daemon's segment: look again
            // until the name shows it (it takes microseconds), so that this
            // creator's AlreadyRunning names the winner, not the dead daemon.
            let mut wait_for_winner = || {
                let until = *takeover_deadline.get_or_insert_with(|| Instant::now() + TAKEOVER_WAIT);
                if Instant::now() < until {
                    attempts -= 1;
                    std::thread::yield_now();
                    Ok(())
                } else {
                    Err(SegmentError::AlreadyRunning {
                        name: name.to_string(),
                        pid: 0, // the winner did not show itself in time: unknown
                    })
                }
            };
            match owner(name)? {
                Owner::Missing => continue,
                Owner::TakingOver => wait_for_winner()?,
                Owner::Alive { pid } => {
                    return Err(SegmentError::AlreadyRunning {
                        name: name.to_string(),
                        pid,
                    })
                }
                Owner::Dead { file, pid: dead_pid } => {
                    if !platform::try_lock_byte(&file, DAEMON_LOCK_BYTE).map_err(|e| name.io_error("lock", e))? {
                        wait_for_winner()?;
                        continue;
                    }
                    if !matches!(platform::same_file(&file, &name.path()), Ok(true)) {
                        continue; // replaced meanwhile: look again
                    }
                    match seg.shm.publish_replacing() {
                        Ok(()) => {
                            let pid = platform::current_pid();
                            lifecycle!(INFO, "segment taken over", seg, pid = pid, dead_pid = dead_pid);
                            return Ok(seg);
                        }
                        // Windows replaces in two steps; a creator got in between: look again.
                        Err(SegmentError::AlreadyExists { .. }) => continue,
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Err(name.io_error(
            "publish",
            std::io::Error::other("the name kept changing; gave up after 8 attempts"),
        ))
    }

    fn init(&self, protocol_version: u32) {
        let (c, g) = (self.control(), self.geometry);
        c.layout_version.store(LAYOUT_VERSION, Ordering::Relaxed);
        c.protocol_version.store(protocol_version, Ordering::Relaxed);
        c.total_size.store(g.total_size as u64, Ordering::Relaxed);
        c.max_clients.store(g.max_clients, Ordering::Relaxed);
        c.max_message_size.store(g.max_message_size, Ordering::Relaxed);
        c.channel_offset.store(CONTROL_SIZE as u64, Ordering::Relaxed);
        c.channel_stride.store(g.channel_stride as u64, Ordering::Relaxed);
        for (w, cap) in c.ring_capacity.iter().zip(g.ring_capacity) {
            w.store(cap as u64, Ordering::Relaxed);
        }
        let pid = platform::current_pid();
        c.daemon_pid.store(pid, Ordering::Relaxed);
        c.daemon_start_time
            .store(platform::process_start_time(pid).unwrap_or(0), Ordering::Relaxed);
        c.creator_uid.store(platform::current_uid(), Ordering::Relaxed);
        c.heartbeat.store(platform::monotonic_nanos(), Ordering::Relaxed);
        c.state.store(STATE_ALIVE, Ordering::Relaxed);
        // Rings need no initialisation: a zero-filled ring is an empty ring.
        // SYNC POINT: Release publishes every field above; pairs with the Acquire in `open`.
        c.magic.store(MAGIC, Ordering::Release);
    }

    /// Maps an existing segment of this user and validates its header.
    pub(crate) fn open(name: &SegmentName) -> SegmentResult<Segment> {
        Self::open_owned_by(name, platform::current_uid())
    }

    /// Maps an existing segment owned by user `owner` and validates its header.
    pub(crate) fn open_owned_by(name: &SegmentName, owner: u32) -> SegmentResult<Segment> {
        Self::validated(Arc::new(SharedMemory::open_owned_by(name, owner)?), name)
    }

    /// Maps an existing segment of this user read-only and validates its
    /// header: for inspection only. Every write through the result would
    /// fault, so only read paths (loads of atomics) may be used on it.
    pub(crate) fn open_read_only(name: &SegmentName) -> SegmentResult<Segment> {
        let shm = SharedMemory::open_read_only(name, platform::current_uid())?;
        Self::validated(Arc::new(shm), name)
    }

    /// Checks the header of a mapped segment against itself and the mapping.
    fn validated(shm: Arc<SharedMemory>, name: &SegmentName) -> SegmentResult<Segment> {
        let invalid = |reason: String| SegmentError::InvalidSegment {
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
            0 => return Err(SegmentError::Starting { name: name.to_string() }),
            _ => return Err(invalid("not a memlink segment (bad magic number)".into())),
        }
        let layout = c.layout_version.load(Ordering::Relaxed);
        if layout != LAYOUT_VERSION {
            return Err(SegmentError::LayoutMismatch {
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
        let caps = c.ring_capacity.each_ref().map(|w| w.load(Ordering::Relaxed) as usize);
        if geometry.total_size as u64 != total
            || c.channel_offset.load(Ordering::Relaxed) != CONTROL_SIZE as u64
            || c.channel_stride.load(Ordering::Relaxed) != geometry.channel_stride as u64
            || caps != geometry.ring_capacity
        {
            return Err(invalid("header sizes disagree with each other".into()));
        }
        Ok(Segment::new(shm, geometry))
    }

    fn new(shm: Arc<SharedMemory>, geometry: Geometry) -> Segment {
        let faults = shm.faults();
        Segment {
            base: shm.base(),
            shm,
            geometry,
            faults,
        }
    }

    /// Whether part of the mapping was found gone: the file shrank under it
    /// (a peer truncated it) and zero pages now stand in for what was cut.
    /// One load of a static word while no mapping of the process lost a page.
    #[inline]
    pub(crate) fn truncated(&self) -> bool {
        platform::faults_anywhere() != 0 && self.faults.load(Ordering::Relaxed) != 0
    }

    /// How many leading bytes of the mapping are still shared with the
    /// other processes: all of it while the segment is whole, else the
    /// lesser of the file's size now and the lowest page found gone (a file
    /// cut and then grown again does not share its new pages).
    pub(crate) fn intact_len(&self) -> usize {
        let file = usize::try_from(self.shm.file_len()).unwrap_or(usize::MAX);
        let lowest = self.shm.lowest_fault().unwrap_or(usize::MAX);
        self.shm.len().min(file).min(lowest)
    }

    /// The validated geometry.
    pub(crate) fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    /// The segment's name.
    pub(crate) fn name(&self) -> &SegmentName {
        self.shm.name()
    }

    /// The control region.
    #[inline]
    pub(crate) fn control(&self) -> &ControlBlock {
        // SAFETY: the mapping holds at least CONTROL_SIZE bytes (checked on open,
        // sized by geometry on create), is page-aligned and lives as long as self.
        unsafe { self.base.cast::<ControlBlock>().as_ref() }
    }

    /// Header of channel `index`.
    ///
    /// # Panics
    /// If `index >= max_clients` (a bug in the caller, never input-driven).
    #[inline]
    pub(crate) fn channel(&self, index: u32) -> &ChannelHeader {
        assert!(index < self.geometry.max_clients, "channel index out of range");
        let off = self.geometry.channel_offset(index);
        // SAFETY: the validated geometry places channel `index` inside the mapping,
        // 128-aligned; ChannelHeader is atomics only.
        unsafe { self.base.add(off).cast::<ChannelHeader>().as_ref() }
    }

    /// Channel `index`'s header as a handle that needs no check later.
    ///
    /// # Panics
    /// As [`Segment::channel`].
    pub(crate) fn channel_handle(&self, index: u32) -> Channel {
        Channel {
            header: NonNull::from(self.channel(index)),
            _mapping: self.shm.clone(),
        }
    }

    /// The raw region of one ring of channel `index`, on which the ring
    /// layer builds the ring (`ring::RingMemory::on`).
    ///
    /// # Panics
    /// As [`Segment::channel`].
    pub(crate) fn ring_region(&self, index: u32, direction: Direction, priority: Priority) -> RingRegion {
        assert!(index < self.geometry.max_clients, "channel index out of range");
        let off = self.geometry.ring_offset(index, direction, priority);
        RingRegion {
            // SAFETY: the validated geometry places the ring (header and data)
            // inside the mapping, so the offset stays in the same allocation.
            header: unsafe { self.base.add(off) },
            capacity: self.geometry.ring_capacity[priority.index()],
            max_message: self.geometry.max_message_size as usize,
            mapping: self.shm.clone(),
        }
    }

    /// Empties one ring of channel `index`: its positions and counters go
    /// to zero, and so does the first record header (a zero-filled ring is
    /// an empty ring). Only for a channel that no other process uses now
    /// (a slot its client has just claimed).
    ///
    /// # Panics
    /// As [`Segment::channel`].
    pub(crate) fn reset_ring(&self, index: u32, direction: Direction, priority: Priority) {
        let region = self.ring_region(index, direction, priority);
        // SAFETY: the region's header is a 128-aligned RingHeader inside the
        // mapping (see `RingRegion`); it is made of atomics only.
        let h = unsafe { region.header.cast::<RingHeader>().as_ref() };
        for w in [
            &h.tail,
            &h.head,
            &h.messages_written,
            &h.bytes_written,
            &h.full_events,
            &h.messages_read,
            &h.bytes_read,
        ] {
            w.store(0, Ordering::Relaxed);
        }
        // SAFETY: the data area follows the header, 128-aligned and at least
        // one record long, inside the mapping; its first word is the first
        // record header, which ring ends access as an atomic.
        let first = unsafe { region.header.add(RING_HEADER_SIZE).cast::<AtomicU64>().as_ref() };
        first.store(0, Ordering::Release);
    }

    /// Whether the daemon process holds its liveness lock (is alive). A
    /// syscall; errors count as alive, so a failing check never reclaims.
    pub(crate) fn daemon_alive(&self) -> bool {
        platform::byte_locked_elsewhere(self.shm.file(), DAEMON_LOCK_BYTE).unwrap_or(true)
    }

    /// Whether the client process of slot `index` holds its liveness lock.
    pub(crate) fn client_alive(&self, index: u32) -> bool {
        platform::byte_locked_elsewhere(self.shm.file(), client_lock_byte(index)).unwrap_or(true)
    }

    pub(crate) fn shared_memory(&self) -> &Arc<SharedMemory> {
        &self.shm
    }

    /// Whether the daemon has started shutting down.
    #[inline]
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.control().state.load(Ordering::Acquire) & STATE_SHUTTING_DOWN != 0
    }
}

/// Where one ring lies in a mapped segment: a 128-aligned header of
/// `RING_HEADER_SIZE` bytes followed by `capacity` data bytes (at least
/// `layout::min_ring_capacity(max_message)`, a multiple of 128), all inside
/// the mapping that `mapping` keeps alive. Handed out by the segment; the
/// ring layer builds a ring on it.
#[derive(Debug, Clone)]
pub(crate) struct RingRegion {
    /// The ring's header.
    pub(crate) header: NonNull<u8>,
    /// Data bytes after the header.
    pub(crate) capacity: usize,
    /// The segment's largest message.
    pub(crate) max_message: usize,
    /// The mapping the region lies in.
    pub(crate) mapping: Arc<SharedMemory>,
}

/// Who owns the segment file at a name.
#[derive(Debug)]
pub(crate) enum Owner {
    /// No file has the name.
    Missing,
    /// A live daemon holds the segment.
    Alive {
        /// Its process id (as recorded in the segment).
        pid: u32,
    },
    /// The daemon recorded in the segment is gone, yet its lock is held:
    /// another process is taking the name over right now.
    TakingOver,
    /// The segment's daemon is dead; the file is open here (not locked).
    Dead {
        /// The open segment file.
        file: std::fs::File,
        /// The dead daemon's process id.
        pid: u32,
    },
}

/// The daemon's pid and start time recorded in `file`, read without mapping
/// it; `None` if the file does not start with a memlink header (its magic
/// number).
pub(crate) fn daemon_of(file: &std::fs::File) -> Option<(u32, u64)> {
    // Read through the layout's own offsets: no second copy of the wire format.
    let mut head = [0u8; std::mem::offset_of!(ControlBlock, daemon_start_time) + 8];
    let magic = std::mem::offset_of!(ControlBlock, magic);
    platform::read_exact_at(file, &mut head, 0).ok()?;
    if head[magic..magic + 8] != MAGIC.to_le_bytes() {
        return None;
    }
    let at = std::mem::offset_of!(ControlBlock, daemon_pid);
    let pid = u32::from_le_bytes(head[at..at + 4].try_into().ok()?);
    let at = std::mem::offset_of!(ControlBlock, daemon_start_time);
    Some((pid, u64::from_le_bytes(head[at..at + 8].try_into().ok()?)))
}

/// Finds out, without mapping or locking it, whether the segment at `name` is
/// a memlink segment of this user and whether its daemon lives. Files that
/// are not memlink segments are refused with [`SegmentError::AlreadyExists`].
pub(crate) fn owner(name: &SegmentName) -> SegmentResult<Owner> {
    let file = match platform::open_segment_file(&name.path()) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Owner::Missing),
        Err(e) => return Err(name.io_error("open", e)),
    };
    super::check_owner(name, &file, platform::current_uid())?;
    let Some((pid, start)) = daemon_of(&file) else {
        return Err(SegmentError::AlreadyExists { name: name.to_string() });
    };
    if platform::byte_locked_elsewhere(&file, DAEMON_LOCK_BYTE).map_err(|e| name.io_error("lock", e))? {
        // The recorded daemon (pid and start time) is gone but somebody holds
        // its lock: a creator replacing it. A start time of 0 is unknown.
        if start != 0 && platform::process_start_time(pid) != Some(start) {
            return Ok(Owner::TakingOver);
        }
        Ok(Owner::Alive { pid })
    } else {
        Ok(Owner::Dead { file, pid })
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use crate::segment::layout::Geometry;

    /// The permissions of the mappings in this process of files whose name
    /// holds `stem` (the creator's is of the hidden build file), as
    /// `/proc/self/maps` shows them ("rw-s", "r--s").
    fn mapping_perms(stem: &str) -> Vec<String> {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        maps.lines()
            .filter(|l| l.contains(stem))
            .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
            .collect()
    }

    #[test]
    fn a_read_only_open_maps_without_write_permission() {
        let stem = format!("memlink-ro-{}", std::process::id());
        let path = std::env::temp_dir().join(&stem);
        let name = SegmentName::parse(path.to_str().unwrap()).unwrap();
        let _ = name.remove();
        let g = Geometry::compute(1 << 16, 2, 256).unwrap();
        let created = Segment::create(&name, g, 3, 0o600).unwrap();
        assert_eq!(mapping_perms(&stem), ["rw-s"], "the creator maps read-write");
        let ro = Segment::open_read_only(&name).unwrap();
        assert_eq!(ro.geometry().max_clients, 2);
        assert_eq!(ro.control().protocol_version.load(Ordering::Relaxed), 3);
        let mut perms = mapping_perms(&stem);
        perms.sort();
        assert_eq!(perms, ["r--s", "rw-s"], "the inspector's mapping cannot be written");
        drop((ro, created));
        let _ = name.remove();
    }
}
