//! The client endpoint: one connection to a daemon's segment.

use std::time::{Duration, Instant};

use super::batch::Batch;
use super::channel::deadline;
use super::client_engine::ClientEngine;
use super::message::{ClientId, Message};
use super::settings::Settings;
use super::stats::Stats;
use crate::error::{Error, OpenError, ShmError};
use crate::priority::Priority;

/// A connection to a [`crate::Daemon`]: one slot of its segment, with a
/// pair of priority rings (to the daemon and back).
///
/// Methods that move messages take `&mut self`: each ring has one writer and
/// one reader, and the type system keeps it so. A `Client` is `Send`; give it
/// to the thread that talks to the daemon. Dropping it leaves the segment
/// (the daemon still reads what was sent before).
///
/// ```
/// use memlink_shm::{Client, Daemon, Priority};
/// use std::time::Duration;
/// # let name = format!("memlink-doc-client-{}", std::process::id());
///
/// let mut daemon = Daemon::create(&name)?;
/// let mut client = Client::connect(&name)?;
///
/// // Blocking, non-blocking and zero-copy sends; each wakes a sleeping daemon.
/// client.send(Priority::Low, b"log line")?;
/// client.try_send(Priority::Critical, b"halt")?;
/// client.send_with(Priority::High, 8, |buf| buf.copy_from_slice(&42u64.to_le_bytes()))?;
///
/// // The daemon reads Critical first, then High, then Low.
/// let first = daemon.recv_timeout(Duration::from_secs(5))?;
/// assert_eq!((first.priority(), first.payload()), (Priority::Critical, &b"halt"[..]));
/// daemon.send_to(first.client(), Priority::High, b"halted")?;
///
/// assert_eq!(client.recv_timeout(Duration::from_secs(5))?.payload(), b"halted");
/// // Zero-copy receive: the closure sees the bytes in the ring.
/// assert!(client.try_recv_with(|_, bytes| bytes.len()).unwrap_err().is_transient());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Client {
    engine: ClientEngine,
    name: String,
    max_message: usize,
}

/// Settings for [`Client::connect`]; from [`Client::builder`].
///
/// ```
/// use memlink_shm::{Client, Daemon};
/// use std::time::Duration;
/// # let name = format!("memlink-doc-client-builder-{}", std::process::id());
/// let _daemon = Daemon::builder(&name).protocol_version(7).create()?;
/// let client = Client::builder(&name)
///     .protocol_version(7)
///     .spin(Duration::from_micros(20))
///     .connect()?;
/// assert!(client.is_connected());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    settings: Settings,
}

impl ClientBuilder {
    /// The application's protocol version; the daemon's must be the same.
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

    /// The user expected to own the segment (default: this process's
    /// effective user). Set it to the daemon's uid when the daemon shares its
    /// segment with a group ([`crate::DaemonBuilder::mode`]); any other owner
    /// is refused, so a segment squatted under the name is never used.
    /// Ignored on Windows.
    pub fn owner(mut self, uid: u32) -> Self {
        self.settings.owner = Some(uid);
        self
    }

    /// Connects.
    ///
    /// # Errors
    /// [`OpenError::NotFound`] when no daemon created the name,
    /// [`OpenError::OwnerDead`] / [`OpenError::ShuttingDown`] when its daemon
    /// is gone or going, [`OpenError::ProtocolMismatch`],
    /// [`OpenError::TableFull`] when every slot is taken, and the validation
    /// and permission errors of [`OpenError`].
    pub fn connect(self) -> Result<Client, OpenError> {
        let engine = self
            .settings
            .connect()
            .map_err(|e| OpenError::from_shm(e, &self.settings.name))?;
        Ok(Client::from_engine(engine, self.settings.name))
    }
}

impl Client {
    /// Connects to the daemon of `name` with the default settings
    /// (protocol version 1).
    ///
    /// # Errors
    /// See [`ClientBuilder::connect`].
    pub fn connect(name: &str) -> Result<Client, OpenError> {
        Client::builder(name).connect()
    }

    /// All the settings of a connection.
    pub fn builder(name: &str) -> ClientBuilder {
        ClientBuilder {
            settings: Settings::new(name),
        }
    }

    pub(crate) fn from_engine(engine: ClientEngine, name: String) -> Client {
        let max_message = engine.segment().geometry().max_message_size as usize;
        Client {
            engine,
            name,
            max_message,
        }
    }

    pub(crate) fn engine(&self) -> &ClientEngine {
        &self.engine
    }

    /// This connection's id, as the daemon sees it.
    pub fn id(&self) -> ClientId {
        self.engine.id()
    }

    /// The segment's name, as given to `connect`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The largest message the segment carries.
    pub fn max_message_size(&self) -> usize {
        self.max_message
    }

    /// Whether the daemon is there and this connection is usable: false once
    /// the daemon shut down or died, or the channel was poisoned.
    pub fn is_connected(&self) -> bool {
        self.engine.is_connected()
    }

    #[inline]
    fn check_len(&self, len: usize) -> Result<(), Error> {
        if len > self.max_message {
            return Err(Error::MessageTooLarge {
                len,
                max: self.max_message,
            });
        }
        Ok(())
    }

    /// Sends a copy of `data`, waiting while the ring to the daemon is full.
    ///
    /// # Errors
    /// [`Error::Disconnected`] when the daemon is gone (also while waiting),
    /// [`Error::MessageTooLarge`], [`Error::Poisoned`] / [`Error::Corrupted`].
    #[inline]
    pub fn send(&mut self, priority: Priority, data: &[u8]) -> Result<(), Error> {
        self.send_with_until(priority, data.len(), None, |b| b.copy_from_slice(data))
    }

    /// Like [`Client::send`], waiting at most `timeout` for room.
    ///
    /// # Errors
    /// As [`Client::send`], and [`Error::Timeout`].
    pub fn send_timeout(&mut self, priority: Priority, data: &[u8], timeout: Duration) -> Result<(), Error> {
        self.send_with_until(priority, data.len(), deadline(Some(timeout)), |b| {
            b.copy_from_slice(data)
        })
    }

    /// Sends a copy of `data` if it fits now.
    ///
    /// # Errors
    /// [`Error::Full`] when it does not fit now; otherwise as [`Client::send`].
    #[inline]
    pub fn try_send(&mut self, priority: Priority, data: &[u8]) -> Result<(), Error> {
        self.try_send_with(priority, data.len(), |b| b.copy_from_slice(data))
    }

    /// Sends a `len`-byte message written in place by `fill` (zero-copy),
    /// waiting while the ring is full. `fill` runs once, when there is room.
    ///
    /// # Errors
    /// As [`Client::send`].
    #[inline]
    pub fn send_with<R>(
        &mut self,
        priority: Priority,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<R, Error> {
        self.send_with_until(priority, len, None, fill)
    }

    /// Like [`Client::send_with`], but only if it fits now.
    ///
    /// # Errors
    /// As [`Client::try_send`]; `fill` is not called then.
    #[inline]
    pub fn try_send_with<R>(
        &mut self,
        priority: Priority,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<R, Error> {
        self.check_len(len)?;
        match self.engine.write_with(priority, len, fill) {
            Ok(r) => {
                self.engine.signal();
                Ok(r)
            }
            Err(e) => Err(Error::from_shm(e)),
        }
    }

    #[inline]
    fn send_with_until<R>(
        &mut self,
        priority: Priority,
        len: usize,
        until: Option<Instant>,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<R, Error> {
        self.check_len(len)?;
        // `fill` runs only when the write has room, so a full ring hands it back.
        let mut fill = Some(fill);
        loop {
            match self.engine.write_with(priority, len, |b| fill.take().map(|f| f(b))) {
                Ok(r) => {
                    self.engine.signal();
                    if let Some(r) = r {
                        return Ok(r);
                    }
                }
                Err(ShmError::BufferFull) => {}
                Err(e) => return Err(Error::from_shm(e)),
            }
            self.engine
                .wait_for_room(priority, len, until)
                .map_err(Error::from_shm)?;
        }
    }

    /// Sends every message `f` adds to the batch, published together with
    /// one wake-up when `f` returns. The batch never blocks (see [`Batch`]).
    ///
    /// ```
    /// use memlink_shm::{Client, Daemon, Priority};
    /// # let name = format!("memlink-doc-client-batch-{}", std::process::id());
    /// let mut daemon = Daemon::create(&name)?;
    /// let mut client = Client::connect(&name)?;
    /// client.send_batch(|batch| {
    ///     for i in 0..100u32 {
    ///         batch.try_send(Priority::High, &i.to_le_bytes())?;
    ///     }
    ///     Ok::<(), memlink_shm::Error>(())
    /// })??;
    /// let mut sum = 0;
    /// let n = daemon.try_recv_batch(1000, |_, _, b| sum += u32::from_le_bytes(b.try_into().unwrap()))?;
    /// assert_eq!((n, sum), (100, 4950));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Disconnected`] (nothing is sent) or a poisoned channel;
    /// errors of single messages come back through `f`'s own result.
    pub fn send_batch<R>(&mut self, f: impl FnOnce(&mut Batch<'_>) -> R) -> Result<R, Error> {
        let max = self.max_message;
        let r = self
            .engine
            .with_producer(|p| f(&mut Batch::new(p.batch(), max)))
            .map_err(Error::from_shm)?;
        self.engine.signal();
        Ok(r)
    }

    /// Takes the next message, waiting for one: Critical before High before
    /// Low, FIFO within a tier.
    ///
    /// # Errors
    /// [`Error::Disconnected`] once the daemon is gone and every message it
    /// sent before has been received; [`Error::Poisoned`] / [`Error::Corrupted`].
    pub fn recv(&mut self) -> Result<Message, Error> {
        self.recv_until(None, Message::new)
    }

    /// Like [`Client::recv`], waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Client::recv`], and [`Error::Timeout`].
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Message, Error> {
        self.recv_until(deadline(Some(timeout)), Message::new)
    }

    /// Takes the next message if one is waiting.
    ///
    /// # Errors
    /// [`Error::Empty`] when none is; otherwise as [`Client::recv`].
    #[inline]
    pub fn try_recv(&mut self) -> Result<Message, Error> {
        self.try_recv_with(Message::new)
    }

    /// Passes the next waiting message to `f` in place, without copying.
    ///
    /// # Errors
    /// As [`Client::try_recv`].
    #[inline]
    pub fn try_recv_with<R>(&mut self, f: impl FnOnce(Priority, &[u8]) -> R) -> Result<R, Error> {
        match self.engine.read_with(f) {
            Ok(Some(r)) => Ok(r),
            Ok(None) => Err(Error::Empty),
            Err(e) => Err(Error::from_shm(e)),
        }
    }

    /// Waits for the next message and passes it to `f` in place.
    ///
    /// # Errors
    /// As [`Client::recv`].
    pub fn recv_with<R>(&mut self, f: impl FnOnce(Priority, &[u8]) -> R) -> Result<R, Error> {
        self.recv_until(None, f)
    }

    /// Like [`Client::recv_with`], waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Client::recv_timeout`].
    pub fn recv_timeout_with<R>(
        &mut self,
        timeout: Duration,
        f: impl FnOnce(Priority, &[u8]) -> R,
    ) -> Result<R, Error> {
        self.recv_until(deadline(Some(timeout)), f)
    }

    fn recv_until<R>(&mut self, until: Option<Instant>, f: impl FnOnce(Priority, &[u8]) -> R) -> Result<R, Error> {
        // `f` runs only when a message is there, so an empty read hands it back.
        let mut f = Some(f);
        loop {
            match self.engine.read_with(|p, b| f.take().map(|f| f(p, b))) {
                Ok(Some(Some(r))) => return Ok(r),
                Ok(_) => {}
                Err(e) => return Err(Error::from_shm(e)),
            }
            let left = until.map(|u| u.saturating_duration_since(Instant::now()));
            self.engine.wait(left).map_err(Error::from_shm)?;
        }
    }

    /// Passes up to `max` waiting messages to `f` in place, in the order
    /// `recv` would return them, and hands their space back once. Returns how
    /// many (at least one).
    ///
    /// # Errors
    /// [`Error::Empty`] when none is waiting; otherwise as [`Client::recv`].
    pub fn try_recv_batch(&mut self, max: usize, f: impl FnMut(Priority, &[u8])) -> Result<usize, Error> {
        match self.engine.read_batch_with(max, f) {
            Ok(0) if max > 0 => Err(Error::Empty),
            Ok(n) => Ok(n),
            Err(e) => Err(Error::from_shm(e)),
        }
    }

    /// Congestion from 0.0 to 1.0: the fullest of this client's rings to the
    /// daemon, or the hint the daemon published, whichever is higher.
    pub fn backpressure(&self) -> f32 {
        self.engine.backpressure()
    }

    /// Publishes a congestion hint (0.0 to 1.0) that the daemon sees in
    /// [`crate::Daemon::backpressure`].
    pub fn set_backpressure(&mut self, level: f32) {
        self.engine.set_backpressure(level);
    }

    /// How long ago the daemon last swept its clients: a hint that it makes
    /// progress (a daemon busy elsewhere is not dead; death is detected
    /// through its lock, not this).
    pub fn daemon_heartbeat_age(&self) -> Duration {
        self.engine.daemon_heartbeat_age()
    }

    /// Counters of this client's rings and wake-ups.
    pub fn stats(&self) -> Stats {
        self.engine.stats()
    }

    /// Leaves the segment, as dropping does: the daemon reads what was sent,
    /// then frees the slot.
    pub fn disconnect(self) {}
}
