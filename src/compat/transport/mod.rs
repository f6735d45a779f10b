//! Daemon/client messaging over a named segment.
//!
//! The daemon creates the segment; each client that connects claims one slot
//! of it, with its own pair of priority rings (client -> daemon and daemon ->
//! client). Rings are single-producer/single-consumer, so clients never
//! contend and a slow or dead client cannot wedge the others.
//!
//! - Client `write` goes to the daemon; daemon `write` goes to every
//!   connected client (all or none), `write_to` to one.
//! - Daemon `read` serves Critical before High before Low across all clients,
//!   round-robin among clients within a tier (bursts of at most 16);
//!   `read_from` also says who sent it.
//! - `write` publishes and wakes a peer sleeping in `wait` (one load when
//!   none sleeps, a syscall only if one does); `signal`, which woke it in
//!   0.1.3, has nothing left to do; `send` is both.
//! - A full ring is [`ShmError::BufferFull`]; `write_timeout` waits for room
//!   (and first wakes the reader, so batching `signal`s cannot deadlock it).
//! - `shutdown` (or dropping the daemon) makes clients' `wait`s return and
//!   their writes fail with [`ShmError::Disconnected`]; they can still read what
//!   was sent before.
//! - Batches: `write_batch` / `write_to_batch` publish many messages with one
//!   release store; `read_batch_with` / `read_from_batch_with` hand the space
//!   back once per burst.
//! - Death is detected through OFD locks on the segment file (byte 0 for the
//!   daemon, 1 + slot for a client): the daemon reclaims a dead client's
//!   slot after delivering what it finished writing; clients of a dead daemon
//!   get [`ShmError::Disconnected`]. A channel found corrupt is poisoned for
//!   both sides ([`ShmError::Poisoned`]).
//!
//! A transport is `Send` but not `Sync`: use it from one thread at a time (or
//! behind a `Mutex`). Calling it from inside one of its own closures on the
//! same side is refused with [`ShmError::Reentrant`]; a reply from inside a
//! daemon read closure (`write_to` in `read_from_with`) is fine.
//!
//! It is written as a downstream crate would write it, on the public API
//! only: a daemon is the owned halves of a [`crate::Daemon`] and its
//! [`crate::DaemonControl`], a client the halves of a [`crate::Client`] and
//! its [`crate::ClientControl`] (`compat-check/` compiles these files as a
//! crate of their own to prove it).

// The 0.1.3 layer implements its own deprecated 0.2 additions.
#![allow(deprecated)]

mod builder;
mod client_role;
mod daemon_role;
mod halves;

use std::time::{Duration, Instant};

use crate::compat::pring::PriorityBatch;
pub use crate::compat::{ShmError, ShmResult};
pub use crate::priority::Priority;
pub use crate::{ClientId, Stats as TransportStats};
#[allow(deprecated)]
pub use builder::{TransportBuilder, DEFAULT_SEGMENT_SIZE};

use client_role::ClientRole;
use daemon_role::DaemonRole;

/// An endpoint's refusal as the 0.1.3 layer reports it.
fn lifted(e: crate::Error) -> ShmError {
    ShmError::from(e)
}

/// The 0.1.3 `wait`: `wait_ready` waits a bounded time, so a wait for ever
/// is a loop of long ones.
fn waited(
    timeout: Option<Duration>,
    mut wait: impl FnMut(Duration) -> ShmResult<Result<(), crate::Error>>,
) -> ShmResult<()> {
    const A_LONG_TIME: Duration = Duration::from_secs(3600);
    loop {
        match wait(timeout.unwrap_or(A_LONG_TIME))? {
            Err(crate::Error::Timeout) if timeout.is_none() => continue,
            r => return r.map_err(lifted),
        }
    }
}

/// The operations both sides share (the old crate's trait).
pub trait ShmTransport {
    /// Publishes a message, waking the peer if it sleeps in
    /// [`ShmTransport::wait`] (0.1.3 woke it in [`ShmTransport::signal`]).
    ///
    /// # Errors
    /// [`ShmError::BufferFull`] when the ring has no room now,
    /// [`ShmError::MessageTooLarge`], [`ShmError::Disconnected`] once the peer is
    /// gone, [`ShmError::Poisoned`] / [`ShmError::Corrupted`] for a broken
    /// channel, [`ShmError::Reentrant`] from inside this side's own closure.
    fn write(&self, priority: Priority, data: &[u8]) -> ShmResult<()>;
    /// Takes the next message; [`ShmError::Empty`] if none is waiting.
    ///
    /// # Errors
    /// [`ShmError::Empty`] when nothing is waiting; otherwise
    /// [`ShmError::Disconnected`] once the peer is gone and what it sent has
    /// been read, [`ShmError::Poisoned`] / [`ShmError::Corrupted`] for a broken
    /// channel, [`ShmError::Reentrant`] from inside this side's own closure.
    fn read(&self) -> ShmResult<(Priority, Vec<u8>)>;
    /// Wakes a peer sleeping in [`ShmTransport::wait`]. Every write has
    /// already done so (this layer is written on [`crate::Daemon`] and
    /// [`crate::Client`], whose sends wake a sleeping reader), so this
    /// does nothing; it stays for 0.1.3 code that calls it.
    fn signal(&self);
    /// Blocks until a message is waiting (`Ok`), the peer shuts down
    /// ([`ShmError::Disconnected`]) or `timeout` passes ([`ShmError::Timeout`]).
    /// After `Ok` the next read on this side finds the message: each side is
    /// the only reader of its rings, so nobody else can take it (only a
    /// channel found corrupt meanwhile turns the read into an error).
    ///
    /// # Errors
    /// [`ShmError::Timeout`] when `timeout` passes, [`ShmError::Disconnected`]
    /// when the peer shuts down or dies, [`ShmError::Reentrant`] from inside this
    /// side's own closure.
    fn wait(&self, timeout: Option<Duration>) -> ShmResult<()>;
    /// `write` then `signal`.
    ///
    /// # Errors
    /// [`ShmError::BufferFull`] when the ring has no room now,
    /// [`ShmError::MessageTooLarge`], [`ShmError::Disconnected`] once the peer is
    /// gone, [`ShmError::Poisoned`] / [`ShmError::Corrupted`] for a broken
    /// channel, [`ShmError::Reentrant`] from inside this side's own closure.
    fn send(&self, priority: Priority, data: &[u8]) -> ShmResult<()> {
        self.write(priority, data)?;
        self.signal();
        Ok(())
    }
    /// Whether the other side is (as far as this side knows) still there.
    fn is_connected(&self) -> bool;
    /// Congestion 0.0..=1.0: the fullest ring this side writes to, or the
    /// hint the consumer published, whichever is higher.
    fn backpressure(&self) -> f32;
    /// Publishes a hint (0.0..=1.0) that producers see in `backpressure()`.
    fn set_backpressure(&self, level: f32);
    /// Daemon: tell clients to leave and remove the segment. Client: leave.
    fn shutdown(&self);
}

/// The daemon or a client of a shared-memory segment.
///
/// ```
/// use memlink_shm::transport::{NrelayShmTransport, ShmTransport};
/// use memlink_shm::priority::Priority;
/// use std::time::Duration;
/// # let name = format!("memlink-doc-transport-{}", std::process::id());
///
/// let daemon = NrelayShmTransport::create(&name, 1 << 20, 1)?;
/// let client = NrelayShmTransport::connect(&name, 1)?;
///
/// client.send(Priority::Low, b"log line")?;
/// client.send(Priority::Critical, b"halt")?;
/// // The daemon sees Critical first, and who sent it.
/// let (from, priority, data) = daemon.recv_from(Some(Duration::from_secs(5)))?;
/// assert_eq!((priority, &data[..]), (Priority::Critical, &b"halt"[..]));
/// daemon.write_to(from, Priority::High, b"halted")?;
/// daemon.signal();
/// assert_eq!(client.recv(Some(Duration::from_secs(5)))?.1, b"halted");
///
/// daemon.shutdown();
/// assert!(!client.is_connected());
/// # Ok::<(), memlink_shm::transport::ShmError>(())
/// ```
#[derive(Debug)]
pub struct NrelayShmTransport {
    role: Role,
}

// One value per process, built once: keeping it inline saves a pointer chase
// per message, which matters more than the unused bytes of the daemon variant.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Role {
    Daemon(DaemonRole),
    Client(ClientRole),
}

impl NrelayShmTransport {
    /// Creates the segment `name` of `size` bytes and returns the daemon side.
    ///
    /// A name without `/` is a POSIX shared-memory name; with `/` it is a file
    /// path. Client slots: as many as fit, up to 8 (65536 bytes fit one with
    /// 4 KiB messages); use [`NrelayShmTransport::builder`] for more settings.
    ///
    /// # Errors
    /// As [`crate::DaemonBuilder::create`], as a [`ShmError`].
    pub fn create(name: &str, size: usize, protocol_version: u32) -> ShmResult<NrelayShmTransport> {
        Self::builder(name)
            .size(size)
            .protocol_version(protocol_version)
            .create()
    }

    /// Connects to the segment `name` as a client.
    ///
    /// # Errors
    /// As [`crate::ClientBuilder::connect`], as a [`ShmError`].
    pub fn connect(name: &str, protocol_version: u32) -> ShmResult<NrelayShmTransport> {
        Self::builder(name).protocol_version(protocol_version).connect()
    }

    /// All settings.
    #[deprecated(since = "0.2.0", note = "use Daemon::builder or Client::builder")]
    pub fn builder(name: &str) -> TransportBuilder {
        TransportBuilder::new(name)
    }

    /// Changes how long `wait` and blocking writes spin before sleeping in
    /// the kernel (see [`TransportBuilder::spin`]).
    #[deprecated(since = "0.2.0", note = "set the spin on Daemon::builder or Client::builder")]
    pub fn set_spin(&self, spin: Duration) {
        match &self.role {
            Role::Daemon(d) => d.set_spin(spin),
            Role::Client(c) => c.set_spin(spin),
        }
    }

    /// Whether this is the daemon side.
    #[deprecated(since = "0.2.0", note = "a Daemon and a Client are distinct types")]
    pub fn is_daemon(&self) -> bool {
        matches!(self.role, Role::Daemon(_))
    }

    /// This client's id (`None` on the daemon).
    #[deprecated(since = "0.2.0", note = "use ClientControl::id")]
    pub fn client_id(&self) -> Option<ClientId> {
        match &self.role {
            Role::Daemon(_) => None,
            Role::Client(c) => Some(c.id()),
        }
    }

    /// Connected clients (daemon; empty on a client).
    #[deprecated(since = "0.2.0", note = "use DaemonControl::clients")]
    pub fn clients(&self) -> Vec<ClientId> {
        match &self.role {
            Role::Daemon(d) => d.clients(),
            Role::Client(_) => Vec::new(),
        }
    }

    /// Number of connected clients. A client reads it from the segment
    /// through [`crate::inspect::segment`] (0 if that fails).
    #[deprecated(since = "0.2.0", note = "use DaemonControl::client_count")]
    pub fn client_count(&self) -> u32 {
        let count = match &self.role {
            Role::Daemon(d) => d.control().client_count(),
            Role::Client(c) => c.client_count(),
        };
        u32::try_from(count).unwrap_or(u32::MAX)
    }

    /// The protocol version of the segment.
    #[deprecated(since = "0.2.0", note = "use DaemonControl::protocol_version or inspect::segment")]
    pub fn protocol_version(&self) -> u32 {
        match &self.role {
            Role::Daemon(d) => d.control().protocol_version(),
            Role::Client(c) => c.protocol_version(),
        }
    }

    /// Largest message payload.
    #[deprecated(since = "0.2.0", note = "use max_message_size on DaemonControl or ClientControl")]
    pub fn max_message_size(&self) -> usize {
        match &self.role {
            Role::Daemon(d) => d.control().max_message_size(),
            Role::Client(c) => c.control().max_message_size(),
        }
    }

    /// Writes a message of `len` bytes in place: `fill` gets the ring memory.
    /// On the daemon this is a broadcast: `fill` runs once, into a buffer
    /// copied to every client.
    ///
    /// # Errors
    /// [`ShmError::BufferFull`] when the ring has no room now,
    /// [`ShmError::MessageTooLarge`], [`ShmError::Disconnected`] once the peer is
    /// gone, [`ShmError::Poisoned`] / [`ShmError::Corrupted`] for a broken
    /// channel, [`ShmError::Reentrant`] from inside this side's own closure.
    #[deprecated(
        since = "0.2.0",
        note = "use Client::try_send with a Fill (it wakes the daemon if it sleeps)"
    )]
    pub fn write_with(&self, priority: Priority, len: usize, mut fill: impl FnMut(&mut [u8])) -> ShmResult<()> {
        match &self.role {
            Role::Daemon(d) => d.write_with(priority, len, fill),
            Role::Client(c) => c.write_with(priority, len, |b| fill(b)),
        }
    }

    /// Like `write`, but waits up to `timeout` (`None`: for ever) for room.
    ///
    /// # Errors
    /// [`ShmError::Timeout`] when no room came in time,
    /// [`ShmError::MessageTooLarge`], [`ShmError::Disconnected`] once the peer is
    /// gone, [`ShmError::Poisoned`] / [`ShmError::Corrupted`] for a broken
    /// channel, [`ShmError::Reentrant`] from inside this side's own closure.
    #[deprecated(
        since = "0.2.0",
        note = "use Client::send_timeout or DaemonSender::broadcast_timeout"
    )]
    pub fn write_timeout(&self, priority: Priority, data: &[u8], timeout: Option<Duration>) -> ShmResult<()> {
        match &self.role {
            Role::Daemon(d) => d.write_timeout(priority, data, timeout),
            Role::Client(c) => c.write_timeout(priority, data, timeout),
        }
    }

    /// Daemon: writes to one client.
    ///
    /// # Errors
    /// [`ShmError::BufferFull`] when the ring has no room now,
    /// [`ShmError::MessageTooLarge`], [`ShmError::Disconnected`] once the peer is
    /// gone, [`ShmError::Poisoned`] / [`ShmError::Corrupted`] for a broken
    /// channel, [`ShmError::Reentrant`] from inside this side's own closure.
    /// [`ShmError::UnknownClient`] when the client left; [`ShmError::DaemonOnly`] on a client.
    #[deprecated(since = "0.2.0", note = "use Daemon::try_send_to (it wakes the client if it sleeps)")]
    #[inline]
    pub fn write_to(&self, client: ClientId, priority: Priority, data: &[u8]) -> ShmResult<()> {
        match &self.role {
            Role::Daemon(d) => d.write_to(client, priority, data),
            Role::Client(_) => Err(ShmError::DaemonOnly("write_to")),
        }
    }

    /// Daemon: writes `len` bytes in place to one client.
    ///
    /// # Errors
    /// [`ShmError::BufferFull`] when the ring has no room now,
    /// [`ShmError::MessageTooLarge`], [`ShmError::Disconnected`] once the peer is
    /// gone, [`ShmError::Poisoned`] / [`ShmError::Corrupted`] for a broken
    /// channel, [`ShmError::Reentrant`] from inside this side's own closure.
    /// [`ShmError::UnknownClient`] when the client left; [`ShmError::DaemonOnly`] on a client.
    #[deprecated(since = "0.2.0", note = "use Daemon::try_send_to or Daemon::send_to with a Fill")]
    #[inline]
    pub fn write_to_with<R>(
        &self,
        client: ClientId,
        priority: Priority,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> ShmResult<R> {
        match &self.role {
            Role::Daemon(d) => d.write_to_with(client, priority, len, fill),
            Role::Client(_) => Err(ShmError::DaemonOnly("write_to")),
        }
    }

    /// Daemon: writes to one client, waiting up to `timeout` for room.
    ///
    /// # Errors
    /// [`ShmError::Timeout`] when no room came in time,
    /// [`ShmError::MessageTooLarge`], [`ShmError::Disconnected`] once the peer is
    /// gone, [`ShmError::Poisoned`] / [`ShmError::Corrupted`] for a broken
    /// channel, [`ShmError::Reentrant`] from inside this side's own closure.
    /// [`ShmError::UnknownClient`] when the client left or died; [`ShmError::DaemonOnly`] on a client.
    #[deprecated(since = "0.2.0", note = "use Daemon::send_to_timeout")]
    pub fn write_to_timeout(
        &self,
        client: ClientId,
        priority: Priority,
        data: &[u8],
        timeout: Option<Duration>,
    ) -> ShmResult<()> {
        match &self.role {
            Role::Daemon(d) => d.write_to_timeout(client, priority, data, timeout),
            Role::Client(_) => Err(ShmError::DaemonOnly("write_to_timeout")),
        }
    }

    /// Daemon: `write_to` then wakes that client.
    ///
    /// # Errors
    /// [`ShmError::BufferFull`] when the ring has no room now,
    /// [`ShmError::MessageTooLarge`], [`ShmError::Disconnected`] once the peer is
    /// gone, [`ShmError::Poisoned`] / [`ShmError::Corrupted`] for a broken
    /// channel, [`ShmError::Reentrant`] from inside this side's own closure.
    /// [`ShmError::UnknownClient`] when the client left; [`ShmError::DaemonOnly`] on a client.
    #[deprecated(since = "0.2.0", note = "use Daemon::try_send_to")]
    pub fn send_to(&self, client: ClientId, priority: Priority, data: &[u8]) -> ShmResult<()> {
        // `write_to` wakes the client if it sleeps.
        self.write_to(client, priority, data)
    }

    /// Passes the next message to `f` without copying. `Ok(None)`: none waiting.
    ///
    /// The bytes are lent where they lie in the ring, memory the peer can
    /// write: this trusts the peer, as [`crate::ClientReceiver::try_recv_with`]
    /// says. `read` and `recv_from` copy the message out first (through
    /// `try_recv`).
    ///
    /// # Errors
    /// [`ShmError::Disconnected`] once the peer is gone and what it sent has
    /// been read, [`ShmError::Poisoned`] / [`ShmError::Corrupted`] for a broken
    /// channel, [`ShmError::Reentrant`] from inside this side's own closure.
    #[deprecated(since = "0.2.0", note = "use try_recv_with on DaemonReceiver or ClientReceiver")]
    #[inline]
    pub fn read_with<R>(&self, f: impl FnOnce(Priority, &[u8]) -> R) -> ShmResult<Option<R>> {
        match &self.role {
            Role::Daemon(d) => d.read_from_with(|_, p, b| f(p, b)),
            Role::Client(c) => c.read_with(f),
        }
    }

    /// The next message, copied out of the ring (the owned reads never
    /// look at ring memory in place).
    fn read_copied(&self) -> ShmResult<Option<(Priority, Vec<u8>)>> {
        match &self.role {
            Role::Daemon(d) => Ok(d.read_from_copied()?.map(|(_, p, b)| (p, b))),
            Role::Client(c) => c.read_copied(),
        }
    }

    /// Daemon: the next message and its sender, copied out.
    fn read_from_copied(&self) -> ShmResult<Option<(ClientId, Priority, Vec<u8>)>> {
        match &self.role {
            Role::Daemon(d) => d.read_from_copied(),
            Role::Client(_) => Err(ShmError::DaemonOnly("read_from")),
        }
    }

    /// Reads up to `max` waiting messages in place, in the order `read` would
    /// return them, and returns how many. Cheaper per message than `read_with`
    /// (a blocked writer is woken once, at the end).
    ///
    /// # Errors
    /// [`ShmError::Disconnected`] once the peer is gone and what it sent has
    /// been read, [`ShmError::Poisoned`] / [`ShmError::Corrupted`] for a broken
    /// channel, [`ShmError::Reentrant`] from inside this side's own closure.
    #[deprecated(since = "0.2.0", note = "use try_recv_batch on DaemonReceiver or ClientReceiver")]
    pub fn read_batch_with(&self, max: usize, mut f: impl FnMut(Priority, &[u8])) -> ShmResult<usize> {
        match &self.role {
            Role::Daemon(d) => d.read_from_batch_with(max, |_, p, b| f(p, b)),
            Role::Client(c) => c.read_batch_with(max, f),
        }
    }

    /// Daemon: `read_batch_with`, also passing each message's sender.
    ///
    /// # Errors
    /// [`ShmError::Disconnected`] once the peer is gone and what it sent has
    /// been read, [`ShmError::Poisoned`] / [`ShmError::Corrupted`] for a broken
    /// channel, [`ShmError::Reentrant`] from inside this side's own closure.
    /// [`ShmError::DaemonOnly`] on a client.
    #[deprecated(since = "0.2.0", note = "use DaemonReceiver::try_recv_batch")]
    pub fn read_from_batch_with(&self, max: usize, f: impl FnMut(ClientId, Priority, &[u8])) -> ShmResult<usize> {
        match &self.role {
            Role::Daemon(d) => d.read_from_batch_with(max, f),
            Role::Client(_) => Err(ShmError::DaemonOnly("read_from_batch_with")),
        }
    }

    /// Client: writes several messages that become visible together (one
    /// release store per tier), when `f` returns. Errors of single writes
    /// come back through `f`'s own result.
    ///
    /// ```
    /// use memlink_shm::transport::{NrelayShmTransport, ShmTransport};
    /// use memlink_shm::priority::Priority;
    /// # let name = format!("memlink-doc-batch-{}", std::process::id());
    /// let daemon = NrelayShmTransport::create(&name, 1 << 20, 1)?;
    /// let client = NrelayShmTransport::connect(&name, 1)?;
    /// client.write_batch(|batch| -> Result<(), memlink_shm::ShmError> {
    ///     for i in 0..100u32 {
    ///         batch.write(Priority::High, &i.to_le_bytes())?;
    ///     }
    ///     Ok(())
    /// })??;
    /// client.signal();
    /// let mut sum = 0;
    /// let n = daemon.read_batch_with(1000, |_, b| sum += u32::from_le_bytes(b.try_into().unwrap()))?;
    /// assert_eq!((n, sum), (100, 4950));
    /// # Ok::<(), memlink_shm::ShmError>(())
    /// ```
    ///
    /// # Errors
    /// [`ShmError::Disconnected`], [`ShmError::Poisoned`],
    /// [`ShmError::Reentrant`]; [`ShmError::ClientOnly`] on the daemon. Errors of
    /// single messages come back through `f`'s own result.
    #[deprecated(since = "0.2.0", note = "use ClientSender::send_batch")]
    pub fn write_batch<R>(&self, f: impl FnOnce(&mut PriorityBatch<'_>) -> R) -> ShmResult<R> {
        match &self.role {
            Role::Daemon(_) => Err(ShmError::ClientOnly("write_batch (the daemon has write_to_batch)")),
            Role::Client(c) => c.write_batch(f),
        }
    }

    /// Daemon: writes several messages to one client, visible together.
    ///
    /// # Errors
    /// [`ShmError::UnknownClient`], [`ShmError::Disconnected`],
    /// [`ShmError::Reentrant`]; [`ShmError::DaemonOnly`] on a client.
    #[deprecated(since = "0.2.0", note = "use DaemonSender::send_batch_to")]
    pub fn write_to_batch<R>(&self, client: ClientId, f: impl FnOnce(&mut PriorityBatch<'_>) -> R) -> ShmResult<R> {
        match &self.role {
            Role::Daemon(d) => d.write_to_batch(client, f),
            Role::Client(_) => Err(ShmError::DaemonOnly("write_to_batch")),
        }
    }

    /// Daemon: like `read_with`, also passing the sender.
    ///
    /// # Errors
    /// [`ShmError::Disconnected`] once the peer is gone and what it sent has
    /// been read, [`ShmError::Poisoned`] / [`ShmError::Corrupted`] for a broken
    /// channel, [`ShmError::Reentrant`] from inside this side's own closure.
    /// [`ShmError::DaemonOnly`] on a client.
    #[deprecated(since = "0.2.0", note = "use DaemonReceiver::try_recv_with")]
    pub fn read_from_with<R>(&self, f: impl FnOnce(ClientId, Priority, &[u8]) -> R) -> ShmResult<Option<R>> {
        match &self.role {
            Role::Daemon(d) => d.read_from_with(f),
            Role::Client(_) => Err(ShmError::DaemonOnly("read_from")),
        }
    }

    /// Daemon: takes the next message and its sender.
    ///
    /// # Errors
    /// [`ShmError::Empty`] when nothing is waiting; otherwise
    /// [`ShmError::Disconnected`] once the peer is gone and what it sent has
    /// been read, [`ShmError::Poisoned`] / [`ShmError::Corrupted`] for a broken
    /// channel, [`ShmError::Reentrant`] from inside this side's own closure.
    /// [`ShmError::DaemonOnly`] on a client.
    #[deprecated(since = "0.2.0", note = "use Daemon::try_recv")]
    pub fn read_from(&self) -> ShmResult<(ClientId, Priority, Vec<u8>)> {
        self.read_from_copied()?.ok_or(ShmError::Empty)
    }

    /// `wait` then `read`.
    ///
    /// # Errors
    /// [`ShmError::Timeout`] when `timeout` passes; otherwise
    /// [`ShmError::Disconnected`] once the peer is gone and what it sent has
    /// been read, [`ShmError::Poisoned`] / [`ShmError::Corrupted`] for a broken
    /// channel, [`ShmError::Reentrant`] from inside this side's own closure.
    #[deprecated(since = "0.2.0", note = "use recv_timeout or recv on Daemon or Client")]
    pub fn recv(&self, timeout: Option<Duration>) -> ShmResult<(Priority, Vec<u8>)> {
        self.read_within(timeout, Self::read_copied)
    }

    /// Daemon: `wait` then `read_from`.
    ///
    /// # Errors
    /// [`ShmError::Timeout`] when `timeout` passes; otherwise
    /// [`ShmError::Disconnected`] once the peer is gone and what it sent has
    /// been read, [`ShmError::Poisoned`] / [`ShmError::Corrupted`] for a broken
    /// channel, [`ShmError::Reentrant`] from inside this side's own closure.
    /// [`ShmError::DaemonOnly`] on a client.
    #[deprecated(since = "0.2.0", note = "use Daemon::recv_timeout or Daemon::recv")]
    pub fn recv_from(&self, timeout: Option<Duration>) -> ShmResult<(ClientId, Priority, Vec<u8>)> {
        self.read_within(timeout, Self::read_from_copied)
    }

    /// `read` until it finds a message, waiting in between, for at most
    /// `timeout` in all (`None`: for ever).
    fn read_within<M>(&self, timeout: Option<Duration>, read: impl Fn(&Self) -> ShmResult<Option<M>>) -> ShmResult<M> {
        let until = timeout.map(|t| Instant::now().checked_add(t));
        loop {
            if let Some(m) = read(self)? {
                return Ok(m);
            }
            // An instant past the clock's range is a wait for ever.
            self.wait(until.and_then(|u| u.map(|u| u.saturating_duration_since(Instant::now()))))?;
        }
    }

    /// Daemon: reclaims the slots of clients whose process died (their
    /// published messages are still delivered first). Runs by itself every
    /// 50 ms while the daemon waits; call it to force one now. Returns how
    /// many slots were reclaimed.
    #[deprecated(
        since = "0.2.0",
        note = "use DaemonControl::reclaim_dead (a waiting Daemon does it by itself)"
    )]
    pub fn sweep(&self) -> u32 {
        match &self.role {
            Role::Daemon(d) => d.sweep(),
            Role::Client(_) => 0,
        }
    }

    /// Client: how long ago the daemon last swept its clients. A hint that
    /// it is making progress; a daemon that is busy elsewhere is not dead.
    #[deprecated(since = "0.2.0", note = "use ClientControl::daemon_heartbeat_age")]
    pub fn daemon_heartbeat_age(&self) -> Option<Duration> {
        match &self.role {
            Role::Daemon(_) => None,
            Role::Client(c) => Some(c.daemon_heartbeat_age()),
        }
    }

    /// Counters of the rings and wake-ups, read from the segment.
    #[deprecated(since = "0.2.0", note = "use stats on DaemonControl or ClientControl")]
    pub fn stats(&self) -> TransportStats {
        match &self.role {
            Role::Daemon(d) => d.stats(),
            Role::Client(c) => c.stats(),
        }
    }
}

impl ShmTransport for NrelayShmTransport {
    // Always inlined: `send` calls it too, and out of line it costs a call
    // and a copy of the role match per message.
    #[inline(always)]
    fn write(&self, priority: Priority, data: &[u8]) -> ShmResult<()> {
        match &self.role {
            Role::Daemon(d) => d.write(priority, data),
            Role::Client(c) => c.write(priority, data),
        }
    }

    fn read(&self) -> ShmResult<(Priority, Vec<u8>)> {
        self.read_copied()?.ok_or(ShmError::Empty)
    }

    /// Every write already woke a peer sleeping in `wait` (the endpoints'
    /// sends do, at the cost of one load when nobody sleeps), so there is
    /// nothing left to wake.
    #[inline]
    fn signal(&self) {}

    fn wait(&self, timeout: Option<Duration>) -> ShmResult<()> {
        match &self.role {
            Role::Daemon(d) => d.wait(timeout),
            Role::Client(c) => c.wait(timeout),
        }
    }

    fn is_connected(&self) -> bool {
        match &self.role {
            Role::Daemon(d) => !d.control().is_shut_down(),
            Role::Client(c) => c.is_connected(),
        }
    }

    fn backpressure(&self) -> f32 {
        match &self.role {
            Role::Daemon(d) => d.backpressure(),
            Role::Client(c) => c.backpressure(),
        }
    }

    fn set_backpressure(&self, level: f32) {
        match &self.role {
            Role::Daemon(d) => d.set_backpressure(level),
            Role::Client(c) => c.set_backpressure(level),
        }
    }

    fn shutdown(&self) {
        match &self.role {
            Role::Daemon(d) => d.shutdown(),
            Role::Client(c) => c.disconnect(),
        }
    }
}
