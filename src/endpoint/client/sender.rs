//! The sending half of a client: the writing ends of its rings to the daemon.

use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use super::connection::{Connection, DAEMON_CHECK_INTERVAL};
use super::ClientControl;
use crate::endpoint::batch::Batch;
use crate::endpoint::channel::{wait_for_room, Deadline, Lacking, Throttle};
use crate::endpoint::fault::{Fault, Op};
use crate::endpoint::outlet::Outlet;
use crate::endpoint::payload::{writer, Payload};
use crate::endpoint::Error;
use crate::priority::Priority;
use crate::ring::PriorityProducer;
use crate::ring::RingError;
use crate::wait::Park;

/// The sending half of a [`crate::Client`], from [`crate::Client::split`]:
/// it owns the writing ends of the rings to the daemon and can move to
/// another thread than the receiving half. The client leaves the segment
/// when both halves are dropped.
///
/// ```
/// use memlink_shm::{Client, Daemon, Priority};
/// use std::time::Duration;
/// # let name = format!("memlink-doc-sender-{}", std::process::id());
/// let mut daemon = Daemon::create(&name)?;
/// let (mut tx, mut rx) = Client::connect(&name)?.split();
/// let writer = std::thread::spawn(move || {
///     for i in 0..100u32 {
///         tx.send(Priority::High, &i.to_le_bytes())?;
///     }
///     Ok::<(), memlink_shm::Error>(())
/// });
/// for i in 0..100u32 {
///     let msg = daemon.recv_timeout(Duration::from_secs(5))?;
///     assert_eq!(msg.payload(), i.to_le_bytes());
///     daemon.send_to(msg.client(), Priority::High, msg.payload())?;
/// }
/// writer.join().unwrap()?;
/// for i in 0..100u32 {
///     assert_eq!(rx.recv_timeout(Duration::from_secs(5))?.payload(), i.to_le_bytes());
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ClientSender {
    tx: PriorityProducer,
    liveness: Throttle,
    spin: Duration,
    conn: Arc<Connection>,
}

impl std::fmt::Debug for ClientSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSender")
            .field("id", &self.conn.id())
            .finish_non_exhaustive()
    }
}

impl ClientSender {
    pub(crate) fn new(tx: PriorityProducer, conn: Arc<Connection>, spin: Duration) -> ClientSender {
        ClientSender {
            tx,
            liveness: Throttle::new(DAEMON_CHECK_INTERVAL),
            spin,
            conn,
        }
    }

    /// The client's queries and controls (counters, congestion, the
    /// daemon's heartbeat, leaving), usable from anywhere, even inside this
    /// half's closures: see [`ClientControl`].
    pub fn control(&self) -> ClientControl {
        ClientControl::new(&self.conn)
    }

    /// Changes how long blocking calls spin before they sleep in the kernel.
    pub fn set_spin(&mut self, spin: Duration) {
        self.spin = spin;
    }

    // ---- the engine.

    /// Why a write failed: a full ring may mean nobody reads any more.
    #[cold]
    fn write_failed(&mut self, e: RingError) -> Fault {
        if e == RingError::Full && self.liveness.due() {
            self.conn.check_daemon();
        }
        match self.conn.status() {
            Err(f) if e == RingError::Full => f,
            _ => Fault::Ring(e),
        }
    }

    /// Lends the writing ends, once the client is known to be usable, then
    /// rings every bell (whatever `f` published).
    pub(crate) fn with_producer<R>(&mut self, f: impl FnOnce(&mut PriorityProducer) -> R) -> Op<R> {
        if self.liveness.tick() {
            self.conn.check_daemon();
        }
        self.conn.status()?;
        let r = f(&mut self.tx);
        self.conn.ring_all();
        Ok(r)
    }

    // ---- the API.

    /// Sends `payload` (bytes, a typed value or a [`Fill`](crate::Fill)), waiting while
    /// the ring to the daemon is full, and wakes the daemon if it sleeps.
    ///
    /// # Errors
    /// [`Error::Disconnected`] when the daemon is gone (also while waiting),
    /// [`Error::MessageTooLarge`], [`Error::Poisoned`] / [`Error::Corrupted`],
    /// [`Error::Type`] when a typed value cannot be encoded.
    #[inline]
    pub fn send(&mut self, priority: Priority, payload: impl Payload) -> Result<(), Error> {
        let len = payload.encoded_len()?;
        self.publish_until(priority, len, Deadline::NEVER, writer(payload))
    }

    /// Like [`ClientSender::send`], waiting at most `timeout` for room.
    ///
    /// # Errors
    /// As [`ClientSender::send`], and [`Error::Timeout`] (a [`Fill`](crate::Fill)'s
    /// closure is not called then).
    pub fn send_timeout(&mut self, priority: Priority, payload: impl Payload, timeout: Duration) -> Result<(), Error> {
        let len = payload.encoded_len()?;
        self.publish_until(priority, len, Deadline::after(Some(timeout)), writer(payload))
    }

    /// Sends `payload` if it fits now.
    ///
    /// # Errors
    /// [`Error::Full`] when it does not fit now (a [`Fill`](crate::Fill)'s closure is not
    /// called then); otherwise as [`ClientSender::send`].
    #[inline(always)]
    pub fn try_send(&mut self, priority: Priority, payload: impl Payload) -> Result<(), Error> {
        let len = payload.encoded_len()?;
        self.publish(priority, len, writer(payload))
    }

    /// Sends every message `f` adds to the batch, published together with
    /// one wake-up when `f` returns. The batch never blocks (see [`Batch`]).
    ///
    /// # Errors
    /// [`Error::Disconnected`] (nothing is sent) or a poisoned channel;
    /// errors of single messages come back through `f`'s own result.
    pub fn send_batch<R>(&mut self, f: impl FnOnce(&mut Batch<'_>) -> R) -> Result<R, Error> {
        let r = self.with_producer(|p| Batch::run(p, f)).map_err(Fault::into_error)?;
        self.wake();
        Ok(r)
    }
}

/// The engine: publishes without waking (the 0.1.3 layer's `write`).
impl Outlet for ClientSender {
    /// Writes a `len`-byte message in place and publishes it, without a
    /// wake-up.
    #[inline(always)]
    fn write<R>(&mut self, priority: Priority, len: usize, fill: impl FnOnce(&mut [u8]) -> R) -> Op<R> {
        if self.liveness.tick() {
            self.conn.check_daemon();
        }
        self.conn.status()?;
        match self.tx.write_with(priority, len, fill) {
            Ok(r) => {
                // A write into pages that went away meanwhile reached nobody.
                self.conn.intact()?;
                self.conn.ring(priority);
                Ok(r)
            }
            Err(e) => Err(self.write_failed(e)),
        }
    }

    /// Waits until a `len`-byte message of `priority` fits (`Ok`), the
    /// daemon is gone ([`Fault::Disconnected`]) or `until` passes
    /// ([`Fault::Timeout`]). Room found stays: this is the ring's only
    /// writer.
    fn poll_room(
        &mut self,
        park: &mut impl Park,
        priority: Priority,
        len: usize,
        until: Option<Instant>,
    ) -> Poll<Op<()>> {
        let ClientSender {
            tx,
            liveness,
            conn,
            spin,
            ..
        } = self;
        let conn: &Connection = conn;
        let mapping = conn.segment().shared_memory();
        wait_for_room(park, mapping, *spin, until, DAEMON_CHECK_INTERVAL, move || {
            if liveness.due() {
                conn.check_daemon();
            }
            conn.status()?;
            Ok((!tx.can_write(priority, len)?).then(|| Lacking {
                space: &conn.channel().to_daemon_space,
                reader: &conn.segment().control().daemon_wake,
            }))
        })
    }

    /// Wakes the daemon if it sleeps (every write rang the doorbell, with
    /// the fence this relies on).
    #[inline]
    fn wake(&self) {
        self.conn.signal();
    }
}
