//! The JSON documents of `ls --json` and `inspect --json`: a stable schema
//! (field names and meanings change only with `schema`), built from
//! `memlink_shm::inspect`'s snapshot.

use serde::Serialize;

use memlink_shm::inspect::{ClientInfo, Found, PoisonedBy, RingInfo, SegmentInfo, SlotState};
use memlink_shm::Priority;

/// The version of this schema.
pub const SCHEMA: u32 = 1;

/// `inspect --json`.
#[derive(Debug, Serialize)]
pub struct Segment {
    pub schema: u32,
    pub name: String,
    pub size: usize,
    pub protocol_version: u32,
    pub max_clients: u32,
    pub max_message_size: usize,
    pub daemon: Daemon,
    /// Slots the daemon reclaimed from clients that died, ever.
    pub recovered_clients: u32,
    /// How many slots are in use (= `clients.len()`).
    pub client_count: usize,
    pub clients: Vec<Client>,
}

#[derive(Debug, Serialize)]
pub struct Daemon {
    pub pid: u32,
    pub alive: bool,
    pub shutting_down: bool,
    pub heartbeat_age_ms: u64,
    pub wakeups: u64,
    pub backpressure: f32,
}

#[derive(Debug, Serialize)]
pub struct Client {
    pub slot: u32,
    pub generation: u32,
    pub pid: u32,
    pub alive: bool,
    /// "claimed", "connected" or "closing".
    pub state: &'static str,
    /// null, "daemon" (the daemon found this client's rings corrupt) or
    /// "client" (the client found the daemon's rings corrupt).
    pub poisoned: Option<&'static str>,
    pub wakeups: u64,
    pub backpressure: f32,
    /// The client's rings to the daemon, by tier.
    pub to_daemon: Tiers,
    /// The daemon's rings to the client, by tier.
    pub to_client: Tiers,
}

#[derive(Debug, Serialize)]
pub struct Tiers {
    pub critical: Ring,
    pub high: Ring,
    pub low: Ring,
}

#[derive(Debug, Serialize)]
pub struct Ring {
    pub capacity: usize,
    /// 0.0 to 1.0; 1.0 also when `positions_valid` is false.
    pub fill: f32,
    /// False when the ring's published positions are impossible (a corrupt
    /// or hostile peer): then `fill` means nothing.
    pub positions_valid: bool,
    pub messages_written: u64,
    pub bytes_written: u64,
    pub messages_read: u64,
    pub bytes_read: u64,
    pub full_events: u64,
}

/// `ls --json`.
#[derive(Debug, Serialize)]
pub struct Listing {
    pub schema: u32,
    pub segments: Vec<Listed>,
}

/// One segment of `ls`: what could be read, or why not (`error`).
#[derive(Debug, Serialize)]
pub struct Listed {
    pub name: String,
    pub path: String,
    pub owner_uid: u32,
    pub size: Option<usize>,
    pub protocol_version: Option<u32>,
    pub daemon_pid: Option<u32>,
    pub daemon_alive: Option<bool>,
    pub clients: Option<usize>,
    pub poisoned: Option<usize>,
    pub heartbeat_age_ms: Option<u64>,
    pub error: Option<String>,
}

pub fn state(s: SlotState) -> &'static str {
    match s {
        SlotState::Claimed => "claimed",
        SlotState::Connected => "connected",
        SlotState::Closing => "closing",
        _ => "unknown",
    }
}

pub fn poisoned(p: Option<PoisonedBy>) -> Option<&'static str> {
    p.map(|by| match by {
        PoisonedBy::Daemon => "daemon",
        PoisonedBy::Client => "client",
        _ => "unknown",
    })
}

fn ring(r: &RingInfo) -> Ring {
    Ring {
        capacity: r.capacity,
        fill: r.fill,
        positions_valid: r.positions_valid,
        messages_written: r.counters.messages_written,
        bytes_written: r.counters.bytes_written,
        messages_read: r.counters.messages_read,
        bytes_read: r.counters.bytes_read,
        full_events: r.counters.full_events,
    }
}

fn tiers(rings: &[RingInfo; 3]) -> Tiers {
    Tiers {
        critical: ring(&rings[Priority::Critical.index()]),
        high: ring(&rings[Priority::High.index()]),
        low: ring(&rings[Priority::Low.index()]),
    }
}

fn client(c: &ClientInfo) -> Client {
    Client {
        slot: c.id.slot(),
        generation: c.id.generation(),
        pid: c.pid,
        alive: c.alive,
        state: state(c.state),
        poisoned: poisoned(c.poisoned),
        wakeups: c.wakeups,
        backpressure: c.backpressure,
        to_daemon: tiers(&c.to_daemon),
        to_client: tiers(&c.to_client),
    }
}

pub fn segment(s: &SegmentInfo) -> Segment {
    Segment {
        schema: SCHEMA,
        name: s.name.clone(),
        size: s.size,
        protocol_version: s.protocol_version,
        max_clients: s.max_clients,
        max_message_size: s.max_message_size,
        daemon: Daemon {
            pid: s.daemon.pid,
            alive: s.daemon.alive,
            shutting_down: s.daemon.shutting_down,
            heartbeat_age_ms: s.daemon.heartbeat_age.as_millis() as u64,
            wakeups: s.daemon.wakeups,
            backpressure: s.daemon.backpressure,
        },
        recovered_clients: s.recovered_clients,
        client_count: s.clients.len(),
        clients: s.clients.iter().map(client).collect(),
    }
}

/// The name `ls` shows: the file name for the default directory (what
/// `Client::connect` takes), else the path.
pub fn listed(f: &Found, bare: bool) -> Listed {
    let name = if bare {
        f.path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    } else {
        f.path.to_string_lossy().into_owned()
    };
    let mut l = Listed {
        name,
        path: f.path.to_string_lossy().into_owned(),
        owner_uid: f.owner_uid,
        size: None,
        protocol_version: None,
        daemon_pid: None,
        daemon_alive: None,
        clients: None,
        poisoned: None,
        heartbeat_age_ms: None,
        error: None,
    };
    match &f.info {
        Ok(s) => {
            l.size = Some(s.size);
            l.protocol_version = Some(s.protocol_version);
            l.daemon_pid = Some(s.daemon.pid);
            l.daemon_alive = Some(s.daemon.alive);
            l.clients = Some(s.clients.len());
            l.poisoned = Some(s.clients.iter().filter(|c| c.poisoned.is_some()).count());
            l.heartbeat_age_ms = Some(s.daemon.heartbeat_age.as_millis() as u64);
        }
        Err(e) => l.error = Some(e.to_string()),
    }
    l
}

/// A duration in ms, short: "12 ms", "3.4 s", "2 h".
pub fn age(ms: u64) -> String {
    match ms {
        0..=9_999 => format!("{ms} ms"),
        10_000..=599_999 => format!("{:.1} s", ms as f64 / 1e3),
        600_000..=35_999_999 => format!("{} min", ms / 60_000),
        _ => format!("{} h", ms / 3_600_000),
    }
}
