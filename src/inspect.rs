//! Read-only inspection of a segment, for tools and monitoring: who serves
//! it, who is connected, how full their rings are, what they counted.
//!
//! Inspecting maps the segment and reads it; it takes no lock, claims no
//! slot and writes nothing, so it never disturbs the daemon or its clients.
//! What it reads is a snapshot of values other processes keep changing (and
//! a hostile peer may have written): numbers to report, not to act on.
//!
//! ```
//! use memlink_shm::{inspect, Client, Daemon, Priority};
//! # let name = format!("memlink-doc-inspect-{}", std::process::id());
//! let _daemon = Daemon::create(&name)?;
//! let mut client = Client::connect(&name)?;
//! client.send(Priority::High, b"waiting")?;
//!
//! let info = inspect::segment(&name)?;
//! assert!(info.daemon.alive);
//! assert_eq!(info.daemon.pid, std::process::id());
//! let me = &info.clients[0];
//! assert_eq!((me.id, me.state), (client.control().id(), inspect::SlotState::Connected));
//! assert_eq!(me.to_daemon[Priority::High.index()].counters.messages_written, 1);
//! assert!(me.to_daemon[Priority::High.index()].fill > 0.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::endpoint::OpenError;
use crate::platform;
use crate::priority::Priority;
use crate::ring::RingCounters;
use crate::segment::layout::{self, Direction, SLOT_CLAIMED, SLOT_CLOSED, SLOT_CONNECTED, STATE_SHUTTING_DOWN};
use crate::segment::Segment;
use crate::segment::{SegmentName, TEMP_SUFFIX};
use crate::slot::{self, ClientId, Poison};

/// A segment as [`segment`] found it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SegmentInfo {
    /// The name, as given.
    pub name: String,
    /// Bytes of the segment in use.
    pub size: usize,
    /// The application protocol version its daemon speaks.
    pub protocol_version: u32,
    /// Client slots.
    pub max_clients: u32,
    /// Largest message.
    pub max_message_size: usize,
    /// Its daemon.
    pub daemon: DaemonInfo,
    /// The slots in use (connected, connecting or being drained), in slot order.
    pub clients: Vec<ClientInfo>,
    /// Slots the daemon reclaimed from clients that died, ever.
    pub recovered_clients: u32,
}

/// The daemon of a segment.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DaemonInfo {
    /// Its process id, as it recorded it.
    pub pid: u32,
    /// Whether it holds its liveness lock (the kernel releases it when the
    /// process dies).
    pub alive: bool,
    /// Whether it has begun shutting down.
    pub shutting_down: bool,
    /// How long ago it last swept its clients (every 50 ms while it waits or
    /// reads; a busy daemon may be later).
    pub heartbeat_age: Duration,
    /// Wake-up syscalls made for it.
    pub wakeups: u64,
    /// The congestion hint it published, 0.0 to 1.0.
    pub backpressure: f32,
}

/// Where a slot is in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SlotState {
    /// A client is connecting.
    Claimed,
    /// A client is connected.
    Connected,
    /// The client left or died; the daemon reads what it sent, then frees the slot.
    Closing,
}

/// Which side found a channel corrupt and poisoned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoisonedBy {
    /// The daemon found the client's rings corrupt.
    Daemon,
    /// The client found the daemon's rings corrupt.
    Client,
}

/// A slot in use and its client.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientInfo {
    /// The client's id (slot and generation).
    pub id: ClientId,
    /// Its process id, as it recorded it.
    pub pid: u32,
    /// Whether it holds its liveness lock.
    pub alive: bool,
    /// Where the slot is in its life cycle.
    pub state: SlotState,
    /// Set if the channel was poisoned.
    pub poisoned: Option<PoisonedBy>,
    /// Its rings to the daemon, indexed by [`Priority::index`].
    pub to_daemon: [RingInfo; 3],
    /// The daemon's rings to it.
    pub to_client: [RingInfo; 3],
    /// Wake-up syscalls made for it.
    pub wakeups: u64,
    /// The congestion hint it published, 0.0 to 1.0.
    pub backpressure: f32,
}

/// One ring of a channel.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct RingInfo {
    /// Data bytes.
    pub capacity: usize,
    /// Fraction in use, 0.0 to 1.0 (1.0 if its positions are impossible).
    pub fill: f32,
    /// Whether its published positions are possible; if not (a corrupt or
    /// hostile peer), `fill` says 1.0 and means nothing.
    pub positions_valid: bool,
    /// What its writer and reader counted.
    pub counters: RingCounters,
}

/// Reads the segment `name` (a segment of this user, as [`crate::Client`]
/// would accept it).
///
/// # Errors
/// As opening for [`crate::Client::connect`]: [`OpenError::NotFound`],
/// [`OpenError::InvalidSegment`], [`OpenError::LayoutMismatch`],
/// [`OpenError::PermissionDenied`], ...
pub fn segment(name: &str) -> Result<SegmentInfo, OpenError> {
    let seg = SegmentName::parse(name)
        .and_then(|n| Segment::open_read_only(&n))
        .map_err(OpenError::from)?;
    Ok(read(&seg, name))
}

/// The file that backs the segment `name`: a bare name lives in
/// [`default_dir`], a name with a `/` is that path.
///
/// ```
/// use memlink_shm::inspect;
/// assert_eq!(inspect::segment_path("/tmp/bus")?, std::path::Path::new("/tmp/bus"));
/// assert_eq!(inspect::segment_path("bus")?, inspect::default_dir().join("bus"));
/// # Ok::<(), memlink_shm::OpenError>(())
/// ```
///
/// # Errors
/// [`OpenError::InvalidName`] for a name no segment can have.
pub fn segment_path(name: &str) -> Result<PathBuf, OpenError> {
    Ok(SegmentName::parse(name)?.path())
}

/// The directory that bare segment names live in: `/dev/shm` on Linux,
/// `/tmp` on macOS, `%TEMP%\memlink` on Windows.
pub fn default_dir() -> PathBuf {
    platform::shm_dir()
}

/// A memlink segment found in a directory by [`segments_in`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Found {
    /// Its path (give it to [`segment`] to look again).
    pub path: PathBuf,
    /// The user id that owns the file (0 on Windows).
    pub owner_uid: u32,
    /// What [`segment`] found; another user's segment is
    /// [`OpenError::PermissionDenied`].
    pub info: Result<SegmentInfo, OpenError>,
}

/// Every memlink segment in `dir` (a file whose header carries the memlink
/// magic number and that this process can read), in name order. Half-built
/// segments and PID files are left out; so are the files of other users
/// that this user cannot read.
///
/// # Errors
/// When `dir` cannot be listed.
pub fn segments_in(dir: &Path) -> std::io::Result<Vec<Found>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)?.flatten() {
        let path = entry.path();
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let skipped = [TEMP_SUFFIX, platform::REMOVED_SUFFIX, ".pid"];
        if !entry.file_type().is_ok_and(|t| t.is_file()) || skipped.iter().any(|s| file_name.ends_with(s)) {
            continue;
        }
        let Ok(file) = platform::open_segment_file_read_only(&path) else {
            continue;
        };
        if crate::segment::daemon_of(&file).is_none() {
            continue;
        }
        let owner_uid = platform::file_owner_and_size(&file).map_or(0, |(uid, _)| uid);
        drop(file);
        let info = segment(&path.to_string_lossy());
        found.push(Found { path, owner_uid, info });
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}

fn read(seg: &Segment, name: &str) -> SegmentInfo {
    let c = seg.control();
    let g = seg.geometry();
    let beat = c.heartbeat.load(Ordering::Relaxed);
    let daemon = DaemonInfo {
        pid: c.daemon_pid.load(Ordering::Relaxed),
        alive: seg.daemon_alive(),
        shutting_down: c.state.load(Ordering::Acquire) & STATE_SHUTTING_DOWN != 0,
        heartbeat_age: Duration::from_nanos(platform::monotonic_nanos().saturating_sub(beat)),
        wakeups: c.daemon_wake.wakeups.load(Ordering::Relaxed),
        backpressure: layout::load_hint(&c.daemon_backpressure),
    };
    let clients = (0..g.max_clients).filter_map(|i| client(seg, i)).collect();
    SegmentInfo {
        name: name.to_owned(),
        size: g.total_size,
        protocol_version: c.protocol_version.load(Ordering::Relaxed),
        max_clients: g.max_clients,
        max_message_size: g.max_message_size as usize,
        daemon,
        clients,
        recovered_clients: c.recovered_clients.load(Ordering::Relaxed),
    }
}

fn client(seg: &Segment, i: u32) -> Option<ClientInfo> {
    let ch = seg.channel(i);
    let state = match ch.state.load(Ordering::Acquire) {
        SLOT_CLAIMED => SlotState::Claimed,
        SLOT_CONNECTED => SlotState::Connected,
        SLOT_CLOSED => SlotState::Closing,
        _ => return None,
    };
    let ring = |d, p: Priority| {
        let mem = crate::ring::on_segment(seg, i, d, p);
        let occupancy = mem.occupancy();
        RingInfo {
            capacity: seg.geometry().ring_capacity[p.index()],
            fill: occupancy.unwrap_or(1.0),
            positions_valid: occupancy.is_some(),
            counters: mem.counters(),
        }
    };
    Some(ClientInfo {
        id: slot::view(seg, i).id,
        pid: ch.client_pid.load(Ordering::Relaxed),
        alive: seg.client_alive(i),
        state,
        poisoned: slot::poisoned(seg, i).map(|by| match by {
            Poison::ByDaemon => PoisonedBy::Daemon,
            Poison::ByClient => PoisonedBy::Client,
        }),
        to_daemon: Priority::ALL.map(|p| ring(Direction::ToDaemon, p)),
        to_client: Priority::ALL.map(|p| ring(Direction::ToClient, p)),
        wakeups: ch.client_wake.wakeups.load(Ordering::Relaxed),
        backpressure: layout::load_hint(&ch.client_backpressure),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Client, Daemon};

    #[test]
    fn segments_in_lists_memlink_segments_only_live_or_dead() {
        let _no_spawn = platform::spawn_exclusion().read().unwrap_or_else(|p| p.into_inner());
        let dir = std::env::temp_dir().join(format!("memlink-list-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let at = |n: &str| dir.join(n).to_string_lossy().into_owned();
        let live = Daemon::create(&at("live")).unwrap();
        let _client = Client::connect(&at("live")).unwrap();
        drop(Segment::create(
            &SegmentName::parse(&at("dead")).unwrap(),
            crate::segment::layout::Geometry::compute(1 << 16, 1, 256).unwrap(),
            1,
            0o600,
        ));
        std::fs::write(dir.join("foreign"), vec![0u8; 4096]).unwrap();
        std::fs::write(dir.join("live.pid"), b"1 1 memlink\n").unwrap();
        let found = segments_in(&dir).unwrap();
        let names: Vec<_> = found.iter().map(|f| f.path.file_name().unwrap().to_owned()).collect();
        assert_eq!(names, ["dead", "live"]);
        let dead = found[0].info.as_ref().unwrap();
        let live_info = found[1].info.as_ref().unwrap();
        assert!(!dead.daemon.alive);
        assert!(live_info.daemon.alive);
        assert_eq!(live_info.clients.len(), 1);
        assert_eq!(found[1].owner_uid, platform::current_uid());
        drop(live);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
