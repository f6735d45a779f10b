//! The daemon endpoint: creates a named segment and serves its clients.

mod receiving;
mod sending;
mod table;

use std::time::{Duration, Instant};

use super::batch::Batch;
use super::channel::deadline;
use super::fault::Fault;
use super::message::ClientMessage;
use super::settings::Settings;
use super::stats::Stats;
use crate::control::Segment;
use crate::error::{Error, OpenError};
use crate::priority::Priority;
use crate::slot::{self, ClientId};

pub(crate) use receiving::DaemonRx;
pub(crate) use sending::DaemonTx;
pub(crate) use table::{backpressure, signal_all, signal_client, stats, sweep, Owner};

/// The owner of a named segment, serving every [`crate::Client`] that
/// connects to it.
///
/// It reads Critical before High before Low across all clients, round-robin
/// among clients within a tier (bursts of at most 16 from one client), and
/// answers one client ([`Daemon::send_to`]) or all of them
/// ([`Daemon::broadcast`]). Clients that die are detected through a lock
/// the kernel releases (within 50 ms while the daemon waits), and their slots
/// are reclaimed after what they sent has been read.
///
/// A `Daemon` is `Send`. Dropping it shuts the segment down: clients' calls
/// then fail with [`Error::Disconnected`] once they have read what was sent,
/// and the name is removed.
///
/// ```
/// use memlink_shm::{Client, Daemon, Priority};
/// use std::time::Duration;
/// # let name = format!("memlink-doc-daemon-{}", std::process::id());
///
/// let mut daemon = Daemon::create(&name)?;
/// let mut a = Client::connect(&name)?;
/// let mut b = Client::connect(&name)?;
/// assert_eq!(daemon.client_count(), 2);
///
/// a.send(Priority::High, b"from a")?;
/// let msg = daemon.recv_timeout(Duration::from_secs(5))?;
/// assert_eq!(msg.client(), a.id());
/// daemon.send_to(msg.client(), Priority::High, b"for a only")?;
/// daemon.broadcast(Priority::Low, b"for everyone")?;
///
/// assert_eq!(a.recv_timeout(Duration::from_secs(5))?.payload(), b"for a only");
/// assert_eq!(b.recv_timeout(Duration::from_secs(5))?.payload(), b"for everyone");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Daemon {
    rx: DaemonRx,
    tx: DaemonTx,
    owner: Owner,
    name: String,
    max_message: usize,
}

/// Settings for [`Daemon::create`]; from [`Daemon::builder`].
///
/// ```
/// use memlink_shm::Daemon;
/// use std::time::Duration;
/// # let name = format!("memlink-doc-daemon-builder-{}", std::process::id());
/// let daemon = Daemon::builder(&name)
///     .size(4 << 20)
///     .max_clients(4)
///     .max_message_size(64 * 1024)
///     .protocol_version(7)
///     .spin(Duration::from_micros(20))
///     .create()?;
/// assert_eq!((daemon.max_clients(), daemon.max_message_size()), (4, 64 * 1024));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct DaemonBuilder {
    settings: Settings,
}

impl DaemonBuilder {
    /// Total size of the segment in bytes. Default 1 MiB.
    pub fn size(mut self, bytes: usize) -> Self {
        self.settings.size = bytes;
        self
    }

    /// Client slots, 1 to 1024. Default: as many as fit, up to 8.
    pub fn max_clients(mut self, n: u32) -> Self {
        self.settings.max_clients = Some(n);
        self
    }

    /// Largest message payload, 1 byte to 256 MiB. Default 4 KiB.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.settings.max_message_size = bytes;
        self
    }

    /// The application's protocol version: clients must ask for the same.
    /// Default 1.
    pub fn protocol_version(mut self, version: u32) -> Self {
        self.settings.protocol_version = version;
        self
    }

    /// How long blocking calls spin before they sleep in the kernel. Zero
    /// sleeps at once. Default 50 µs.
    pub fn spin(mut self, spin: Duration) -> Self {
        self.settings.spin = spin;
        self
    }

    /// Permission bits of the segment. Default 0o600 (this user only).
    /// Ignored on Windows, where the directory's access control list decides.
    pub fn mode(mut self, mode: u32) -> Self {
        self.settings.mode = mode & 0o777;
        self
    }

    /// Creates the segment. A name without `/` is a shared-memory name
    /// (`/dev/shm` on Linux); with `/`, a file path. A name left by a dead
    /// daemon is taken over.
    ///
    /// # Errors
    /// [`OpenError::AlreadyRunning`] when a live daemon serves the name,
    /// [`OpenError::InvalidName`], [`OpenError::InvalidConfig`],
    /// [`OpenError::TooSmall`], and the OS's refusals as
    /// [`OpenError::PermissionDenied`] or [`OpenError::Io`].
    pub fn create(self) -> Result<Daemon, OpenError> {
        let seg = self
            .settings
            .create()
            .map_err(|e| OpenError::from_shm(e, &self.settings.name))?;
        let (rx, tx, owner) = parts(seg, self.settings.spin);
        Ok(Daemon {
            max_message: tx.segment().geometry().max_message_size as usize,
            rx,
            tx,
            owner,
            name: self.settings.name,
        })
    }
}

/// The receiving and sending parts over a created segment, and its owner.
pub(crate) fn parts(seg: Segment, spin: Duration) -> (DaemonRx, DaemonTx, Owner) {
    (
        DaemonRx::new(seg.clone(), spin),
        DaemonTx::new(seg.clone(), spin),
        Owner::new(seg),
    )
}

impl Daemon {
    /// Creates the segment `name` with the default settings: 1 MiB, up to 8
    /// clients, 4 KiB messages, protocol version 1.
    ///
    /// # Errors
    /// See [`DaemonBuilder::create`].
    pub fn create(name: &str) -> Result<Daemon, OpenError> {
        Daemon::builder(name).create()
    }

    /// All the settings of a segment.
    pub fn builder(name: &str) -> DaemonBuilder {
        DaemonBuilder {
            settings: Settings::new(name),
        }
    }

    /// Frees the slots of departed clients that the receiving part has
    /// drained, once the sending part saw the table move (at its last send):
    /// a daemon that only sends still frees the slots of clients that left.
    /// Runs before a send, so the send's result is returned as it is.
    #[inline]
    fn tidy(&mut self) {
        if self.tx.take_moved() {
            let Daemon { rx, tx, .. } = self;
            rx.refresh(&mut |i| {
                tx.detach(i);
                true
            });
        }
    }

    /// The segment's name, as given to `create`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The largest message the segment carries.
    pub fn max_message_size(&self) -> usize {
        self.max_message
    }

    /// Client slots of the segment.
    pub fn max_clients(&self) -> u32 {
        self.tx.segment().geometry().max_clients
    }

    /// The connected clients.
    pub fn clients(&self) -> Vec<ClientId> {
        slot::connected(self.tx.segment())
    }

    /// How many clients are connected.
    pub fn client_count(&self) -> usize {
        slot::connected(self.tx.segment()).len()
    }

    /// Takes the next message, waiting for one (see the type's docs for the
    /// order).
    ///
    /// # Errors
    /// [`Error::Corrupted`] when a client's rings hold impossible values: that
    /// client's channel is poisoned and the others go on.
    pub fn recv(&mut self) -> Result<ClientMessage, Error> {
        self.recv_until(None, ClientMessage::new)
    }

    /// Like [`Daemon::recv`], waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Daemon::recv`], and [`Error::Timeout`].
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<ClientMessage, Error> {
        self.recv_until(deadline(Some(timeout)), ClientMessage::new)
    }

    /// Takes the next message if one is waiting.
    ///
    /// # Errors
    /// [`Error::Empty`] when none is; otherwise as [`Daemon::recv`].
    #[inline]
    pub fn try_recv(&mut self) -> Result<ClientMessage, Error> {
        self.try_recv_with(ClientMessage::new)
    }

    /// Passes the next waiting message, with its sender, to `f` in place.
    ///
    /// # Errors
    /// As [`Daemon::try_recv`].
    #[inline]
    pub fn try_recv_with<R>(&mut self, f: impl FnOnce(ClientId, Priority, &[u8]) -> R) -> Result<R, Error> {
        let Daemon { rx, tx, .. } = self;
        let mut release = |i| {
            tx.detach(i);
            true
        };
        match rx.read_from_with(&mut release, f) {
            Ok(Some(r)) => Ok(r),
            Ok(None) => Err(Error::Empty),
            Err(e) => Err(e.into_error()),
        }
    }

    /// Waits for the next message and passes it to `f` in place.
    ///
    /// # Errors
    /// As [`Daemon::recv`].
    pub fn recv_with<R>(&mut self, f: impl FnOnce(ClientId, Priority, &[u8]) -> R) -> Result<R, Error> {
        self.recv_until(None, f)
    }

    /// Like [`Daemon::recv_with`], waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Daemon::recv_timeout`].
    pub fn recv_timeout_with<R>(
        &mut self,
        timeout: Duration,
        f: impl FnOnce(ClientId, Priority, &[u8]) -> R,
    ) -> Result<R, Error> {
        self.recv_until(deadline(Some(timeout)), f)
    }

    fn recv_until<R>(
        &mut self,
        until: Option<Instant>,
        f: impl FnOnce(ClientId, Priority, &[u8]) -> R,
    ) -> Result<R, Error> {
        // `f` runs only when a message is there, so an empty read hands it back.
        let mut f = Some(f);
        let Daemon { rx, tx, .. } = self;
        let mut release = |i| {
            tx.detach(i);
            true
        };
        loop {
            match rx.read_from_with(&mut release, |c, p, b| f.take().map(|f| f(c, p, b))) {
                Ok(Some(Some(r))) => return Ok(r),
                Ok(_) => {}
                Err(e) => return Err(e.into_error()),
            }
            let left = until.map(|u| u.saturating_duration_since(Instant::now()));
            rx.wait(&mut release, left).map_err(Fault::into_error)?;
        }
    }

    /// Passes up to `max` waiting messages to `f` in place, in the order
    /// `recv` would return them; a blocked client writer is woken once per
    /// client, at the end. Returns how many (at least one).
    ///
    /// # Errors
    /// [`Error::Empty`] when none is waiting; otherwise as [`Daemon::recv`].
    pub fn try_recv_batch(&mut self, max: usize, f: impl FnMut(ClientId, Priority, &[u8])) -> Result<usize, Error> {
        let Daemon { rx, tx, .. } = self;
        let mut release = |i| {
            tx.detach(i);
            true
        };
        match rx.read_from_batch_with(&mut release, max, f) {
            Ok(0) if max > 0 => Err(Error::Empty),
            Ok(n) => Ok(n),
            Err(e) => Err(e.into_error()),
        }
    }

    /// Sends a copy of `data` to one client, waiting while its ring is full,
    /// and wakes it.
    ///
    /// # Errors
    /// [`Error::UnknownClient`] when the client left or died (also while
    /// waiting: a dead client is noticed within 50 ms),
    /// [`Error::MessageTooLarge`], [`Error::Corrupted`].
    #[inline]
    pub fn send_to(&mut self, client: ClientId, priority: Priority, data: &[u8]) -> Result<(), Error> {
        self.send_to_with_until(client, priority, data.len(), None, |b| b.copy_from_slice(data))
    }

    /// Like [`Daemon::send_to`], waiting at most `timeout` for room.
    ///
    /// # Errors
    /// As [`Daemon::send_to`], and [`Error::Timeout`].
    pub fn send_to_timeout(
        &mut self,
        client: ClientId,
        priority: Priority,
        data: &[u8],
        timeout: Duration,
    ) -> Result<(), Error> {
        self.send_to_with_until(client, priority, data.len(), deadline(Some(timeout)), |b| {
            b.copy_from_slice(data)
        })
    }

    /// Sends a copy of `data` to one client if it fits now.
    ///
    /// # Errors
    /// [`Error::Full`] when it does not fit now; otherwise as [`Daemon::send_to`].
    #[inline]
    pub fn try_send_to(&mut self, client: ClientId, priority: Priority, data: &[u8]) -> Result<(), Error> {
        self.try_send_to_with(client, priority, data.len(), |b| b.copy_from_slice(data))
    }

    /// Sends one client a `len`-byte message written in place by `fill`
    /// (zero-copy), waiting while its ring is full.
    ///
    /// # Errors
    /// As [`Daemon::send_to`].
    #[inline]
    pub fn send_to_with<R>(
        &mut self,
        client: ClientId,
        priority: Priority,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<R, Error> {
        self.send_to_with_until(client, priority, len, None, fill)
    }

    /// Like [`Daemon::send_to_with`], but only if it fits now.
    ///
    /// # Errors
    /// As [`Daemon::try_send_to`]; `fill` is not called then.
    #[inline]
    pub fn try_send_to_with<R>(
        &mut self,
        client: ClientId,
        priority: Priority,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<R, Error> {
        self.tidy();
        match self.tx.write_to_with(client, priority, len, fill) {
            Ok(r) => {
                signal_client(self.tx.segment(), client);
                Ok(r)
            }
            Err(e) => Err(e.into_error()),
        }
    }

    #[inline]
    fn send_to_with_until<R>(
        &mut self,
        client: ClientId,
        priority: Priority,
        len: usize,
        until: Option<Instant>,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<R, Error> {
        self.tidy();
        // `fill` runs only when the write has room, so a full ring hands it back.
        let mut fill = Some(fill);
        loop {
            match self
                .tx
                .write_to_with(client, priority, len, |b| fill.take().map(|f| f(b)))
            {
                Ok(r) => {
                    signal_client(self.tx.segment(), client);
                    if let Some(r) = r {
                        return Ok(r);
                    }
                }
                Err(Fault::FULL) => {}
                Err(e) => return Err(e.into_error()),
            }
            self.tx
                .wait_for_room_to(client, priority, len, until)
                .map_err(Fault::into_error)?;
        }
    }

    /// Sends every message `f` adds to the batch to one client, published
    /// together with one wake-up when `f` returns (see [`Batch`]).
    ///
    /// # Errors
    /// [`Error::UnknownClient`] (nothing is sent); errors of single messages
    /// come back through `f`'s own result.
    pub fn send_batch_to<R>(&mut self, client: ClientId, f: impl FnOnce(&mut Batch<'_>) -> R) -> Result<R, Error> {
        self.tidy();
        let max = self.max_message;
        let r = self
            .tx
            .with_producer_to(client, |p| f(&mut Batch::new(p.batch(), max)))
            .map_err(Fault::into_error)?;
        signal_client(self.tx.segment(), client);
        Ok(r)
    }

    /// Sends a copy of `data` to every connected client, or to none, waiting
    /// while any of their rings is full; clients that leave or die meanwhile
    /// are skipped, not waited for. Wakes them all.
    ///
    /// # Errors
    /// [`Error::MessageTooLarge`], [`Error::Corrupted`] (that client is
    /// poisoned and dropped from the broadcast; retry for the others).
    pub fn broadcast(&mut self, priority: Priority, data: &[u8]) -> Result<(), Error> {
        self.broadcast_until(priority, data, None)
    }

    /// Like [`Daemon::broadcast`], waiting at most `timeout` for room.
    ///
    /// # Errors
    /// As [`Daemon::broadcast`], and [`Error::Timeout`] (nothing was sent).
    pub fn broadcast_timeout(&mut self, priority: Priority, data: &[u8], timeout: Duration) -> Result<(), Error> {
        self.broadcast_until(priority, data, deadline(Some(timeout)))
    }

    /// Sends a copy of `data` to every connected client if it fits in all
    /// their rings now, else to none.
    ///
    /// # Errors
    /// [`Error::Full`] when some client's ring lacks room; otherwise as
    /// [`Daemon::broadcast`].
    pub fn try_broadcast(&mut self, priority: Priority, data: &[u8]) -> Result<(), Error> {
        self.tidy();
        self.tx
            .write_with(priority, data.len(), |b| b.copy_from_slice(data))
            .map_err(Fault::into_error)?;
        signal_all(self.tx.segment());
        Ok(())
    }

    fn broadcast_until(&mut self, priority: Priority, data: &[u8], until: Option<Instant>) -> Result<(), Error> {
        self.tidy();
        loop {
            match self.tx.write_with(priority, data.len(), |b| b.copy_from_slice(data)) {
                Ok(()) => {
                    signal_all(self.tx.segment());
                    return Ok(());
                }
                Err(Fault::FULL) => {}
                Err(e) => return Err(e.into_error()),
            }
            self.tx
                .wait_for_room_all(priority, data.len(), until)
                .map_err(Fault::into_error)?;
        }
    }

    /// Congestion from 0.0 to 1.0: the fullest ring to a client, or the
    /// highest hint a client published, whichever is higher.
    pub fn backpressure(&self) -> f32 {
        backpressure(self.tx.segment())
    }

    /// Publishes a congestion hint (0.0 to 1.0) that clients see in
    /// [`crate::Client::backpressure`].
    pub fn set_backpressure(&mut self, level: f32) {
        self.tx.set_backpressure(level);
    }

    /// Counters of the connected clients' rings and of wake-ups.
    pub fn stats(&self) -> Stats {
        stats(self.tx.segment())
    }

    /// Shuts the segment down, as dropping does: clients are told and woken,
    /// and the name is removed.
    pub fn shutdown(self) {
        self.owner.shutdown();
    }
}
