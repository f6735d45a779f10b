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
//! assert_eq!((me.id, me.state), (client.id(), inspect::SlotState::Connected));
//! assert_eq!(me.to_daemon[Priority::High.index()].counters.messages_written, 1);
//! assert!(me.to_daemon[Priority::High.index()].fill > 0.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::buffer::RingCounters;
use crate::endpoint;
use crate::error::OpenError;
use crate::platform;
use crate::priority::Priority;
use crate::segment::layout::{Direction, SLOT_CLAIMED, SLOT_CLOSED, SLOT_CONNECTED, STATE_SHUTTING_DOWN};
use crate::segment::Segment;
use crate::segment::SegmentName;
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
        .and_then(|n| Segment::open(&n))
        .map_err(|e| OpenError::from_shm(e, name))?;
    Ok(read(&seg, name))
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
        backpressure: endpoint::load_hint(&c.daemon_backpressure),
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
        let mem = seg.ring(i, d, p);
        RingInfo {
            capacity: seg.geometry().ring_capacity[p.index()],
            fill: mem.fill_level(),
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
        backpressure: endpoint::load_hint(&ch.client_backpressure),
    })
}
