//! What a client's halves share: the connection's queries and controls,
//! which never wait and work from any thread, even inside a closure of
//! either half.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::connection::Connection;
use crate::endpoint::stats::Stats;
use crate::slot::ClientId;

/// A client's queries and controls, shared by its halves: its id, whether
/// it is connected, its counters and congestion hints, the daemon's
/// heartbeat, and leaving. From [`crate::Client::control`],
/// [`crate::ClientSender::control`] or [`crate::ClientReceiver::control`];
/// cheap to clone, `Send` and `Sync`. None of its calls waits or takes a
/// half, so they also work inside a send or receive closure, and on a
/// thread of their own.
///
/// A control does not keep the client connected: once both halves are
/// dropped the client has left, and the control reports it so (not
/// connected, zero counters).
///
/// ```
/// use memlink_shm::{Client, Daemon, Fill, Priority};
/// # let name = format!("memlink-doc-client-control-{}", std::process::id());
/// let daemon = Daemon::create(&name)?;
/// let mut client = Client::connect(&name)?;
/// let control = client.control();
/// client.try_send(Priority::High, Fill::new(4, |buf| {
///     // Inside the send: the control answers without the halves.
///     assert!(control.is_connected());
///     control.set_backpressure(0.25);
///     buf.copy_from_slice(b"ping");
/// }))?;
/// let sent: u64 = control.stats().to_daemon.iter().map(|tier| tier.messages_written).sum();
/// assert_eq!(sent, 1);
/// control.disconnect();
/// assert!(!client.control().is_connected());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ClientControl {
    /// The halves' connection; not this one's to keep.
    conn: Weak<Connection>,
    id: ClientId,
    max_message_size: usize,
}

impl ClientControl {
    pub(super) fn new(conn: &Arc<Connection>) -> ClientControl {
        ClientControl {
            conn: Arc::downgrade(conn),
            id: conn.id(),
            max_message_size: conn.segment().geometry().max_message_size as usize,
        }
    }

    /// This client's id, as the daemon sees it.
    pub fn id(&self) -> ClientId {
        self.id
    }

    /// The largest message the segment carries.
    pub fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// Whether the daemon is there and this connection is usable: false once
    /// the daemon shut down or died, the channel was poisoned, or the client
    /// left.
    pub fn is_connected(&self) -> bool {
        self.conn.upgrade().is_some_and(|c| c.is_connected())
    }

    /// Congestion from 0.0 to 1.0: the fullest of the rings to the daemon, or
    /// the hint the daemon published, whichever is higher; 0.0 once the
    /// client left.
    pub fn backpressure(&self) -> f32 {
        self.conn.upgrade().map_or(0.0, |c| c.backpressure())
    }

    /// Publishes a congestion hint (0.0 to 1.0) that the daemon sees in
    /// [`crate::DaemonControl::backpressure`].
    pub fn set_backpressure(&self, level: f32) {
        if let Some(c) = self.conn.upgrade() {
            c.set_backpressure(level);
        }
    }

    /// How long ago the daemon last checked on its clients: a hint that it
    /// is making progress (a daemon busy elsewhere is not dead; its death is
    /// seen through a lock, in [`ClientControl::is_connected`]).
    /// [`Duration::MAX`] once the client left.
    pub fn daemon_heartbeat_age(&self) -> Duration {
        self.conn.upgrade().map_or(Duration::MAX, |c| c.daemon_heartbeat_age())
    }

    /// Counters of this client's rings and of the daemon's wake-ups; zero
    /// once the client left.
    pub fn stats(&self) -> Stats {
        self.conn.upgrade().map_or_else(Stats::default, |c| c.stats())
    }

    /// Leaves the segment now, as dropping both halves would: the daemon
    /// reads what was sent, then frees the slot. The halves' sends then fail
    /// with [`crate::Error::Disconnected`]; what the daemon sent before can
    /// still be received.
    pub fn disconnect(&self) {
        if let Some(c) = self.conn.upgrade() {
            c.disconnect();
        }
    }
}
