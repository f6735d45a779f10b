//! What a daemon's halves share: the segment's queries and controls, which
//! never wait and work from any thread, even inside a closure of either
//! half.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};

use super::table::{self, Owner, Shard};
use crate::endpoint::stats::Stats;
use crate::segment::Segment;
use crate::slot::{self, ClientId};

/// A daemon's queries and controls, shared by its halves: the clients, the
/// segment's limits, counters and congestion hints, reclaiming the slots of
/// dead clients, and shutting down. From [`crate::Daemon::control`],
/// [`crate::DaemonReceiver::control`] or [`crate::DaemonSender::control`];
/// cheap to clone, `Send` and `Sync`. None of its calls waits or takes a
/// half, so they also work inside a receive or send closure, and on a
/// thread of their own (a monitor next to the serving threads). A
/// control of a shard (see [`crate::Daemon::shard`]) counts that shard's
/// clients.
///
/// A control does not keep the segment up: once every half of the daemon
/// is dropped, the segment is shut down (clients told, name removed) and
/// the control reports it so; it keeps only its own mapping of the memory,
/// for its queries, until it is dropped.
///
/// ```
/// use memlink_shm::{Client, Daemon, Priority};
/// use std::time::Duration;
/// # let name = format!("memlink-doc-daemon-control-{}", std::process::id());
/// let (mut rx, _tx) = Daemon::create(&name)?.into_split();
/// let control = rx.control();
/// let mut client = Client::connect(&name)?;
/// client.send(Priority::High, b"hello")?;
/// rx.recv_timeout_with(Duration::from_secs(5), |from, _, _| {
///     // Inside the receive: the control answers without the halves.
///     assert_eq!(control.clients(), [from]);
///     control.set_backpressure(0.5);
/// })?;
/// assert_eq!(client.control().backpressure(), 0.5);
/// let read: u64 = control.stats().to_daemon.iter().map(|tier| tier.messages_read).sum();
/// assert_eq!(read, 1);
/// control.shutdown();
/// assert!(control.is_shut_down());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct DaemonControl {
    seg: Segment,
    /// The halves' hold on the segment; not this one's.
    owner: Weak<Owner>,
    shard: Shard,
    /// Counters of the clients whose slots the receiving half freed: the
    /// half adds to them as it frees a slot, under the lock that `stats`
    /// takes too, so a client is never counted twice nor missed.
    retired: Arc<Mutex<Stats>>,
}

impl DaemonControl {
    pub(super) fn new(seg: Segment, owner: &Arc<Owner>, shard: Shard, retired: Arc<Mutex<Stats>>) -> DaemonControl {
        DaemonControl {
            seg,
            owner: Arc::downgrade(owner),
            shard,
            retired,
        }
    }

    /// The connected clients (of this shard, on a shard).
    pub fn clients(&self) -> Vec<ClientId> {
        let mut clients = slot::connected(&self.seg);
        clients.retain(|id| self.shard.owns(id.slot));
        clients
    }

    /// How many clients are connected (to this shard, on a shard).
    pub fn client_count(&self) -> usize {
        self.clients().len()
    }

    /// Client slots of the segment.
    pub fn max_clients(&self) -> u32 {
        self.seg.geometry().max_clients
    }

    /// The largest message the segment carries.
    pub fn max_message_size(&self) -> usize {
        self.seg.geometry().max_message_size as usize
    }

    /// The protocol version the segment was created with (clients of
    /// another version are refused).
    pub fn protocol_version(&self) -> u32 {
        self.seg.control().protocol_version.load(Ordering::Relaxed)
    }

    /// Congestion from 0.0 to 1.0: the fullest ring to a client, or the
    /// highest hint a client published, whichever is higher.
    pub fn backpressure(&self) -> f32 {
        table::backpressure(&self.seg, self.shard)
    }

    /// Publishes a congestion hint (0.0 to 1.0) that clients see in
    /// [`crate::ClientControl::backpressure`].
    pub fn set_backpressure(&self, level: f32) {
        table::set_backpressure(&self.seg, level);
    }

    /// Counters of the rings and of wake-ups: summed over the clients
    /// connected now and every client that left (or died) since the daemon
    /// started.
    pub fn stats(&self) -> Stats {
        // A panic elsewhere leaves the counters whole: each update is one
        // addition.
        let retired = self.retired.lock().unwrap_or_else(|p| p.into_inner());
        table::stats(&self.seg, self.shard, &retired)
    }

    /// Checks now whether each client's process is alive, and reclaims the
    /// slots of the dead: what they published is still received first, then
    /// their slots are freed. Returns how many it found dead. A daemon that
    /// waits does this by itself every 50 ms; one that only polls
    /// (`try_recv`) can call this on its own schedule. Also beats the
    /// daemon's heartbeat, which clients see in
    /// [`crate::ClientControl::daemon_heartbeat_age`].
    pub fn reclaim_dead(&self) -> usize {
        table::sweep(&self.seg) as usize
    }

    /// Shuts the segment down now, as dropping every part of the daemon
    /// would: clients are told and woken, and the name is removed. The
    /// halves' calls then fail with [`crate::Error::Disconnected`]. On a
    /// shard this shuts down every shard.
    pub fn shutdown(&self) {
        // Gone: the last half's drop has shut the segment down already.
        if let Some(owner) = self.owner.upgrade() {
            owner.shutdown();
        }
    }

    /// Whether the segment is shut down (by [`DaemonControl::shutdown`], or
    /// because every part of the daemon was dropped).
    pub fn is_shut_down(&self) -> bool {
        self.seg.is_shutting_down()
    }
}
