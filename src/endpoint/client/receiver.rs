//! The receiving half of a client: the reading ends of its rings from the daemon.

use std::cell::Cell;
use std::sync::Arc;
use std::task::{ready, Poll};
use std::time::{Duration, Instant};

use super::connection::{Connection, DAEMON_CHECK_INTERVAL};
use super::ClientControl;
use crate::doorbell;
use crate::endpoint::channel::{deadline, Deadline, Flow, NotifyOnDrop, Throttle};
use crate::endpoint::fault::{Fault, Op};
use crate::endpoint::in_place::trusting_peer;
use crate::endpoint::message::{received, taken, Message, DIRECT};
use crate::endpoint::Error;
use crate::priority::Priority;
use crate::ring::{PriorityConsumer, RingBytes};
use crate::wait::{blocked, Block, Park};

/// The receiving half of a [`crate::Client`], from [`crate::Client::split`]:
/// it owns the reading ends of the rings from the daemon. See
/// [`crate::ClientSender`] for an example.
pub struct ClientReceiver {
    rx: PriorityConsumer,
    liveness: Throttle,
    spin: Duration,
    conn: Arc<Connection>,
    flow: Flow,
}

impl std::fmt::Debug for ClientReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientReceiver")
            .field("id", &self.conn.id())
            .finish_non_exhaustive()
    }
}

impl ClientReceiver {
    pub(crate) fn new(rx: PriorityConsumer, conn: Arc<Connection>, spin: Duration) -> ClientReceiver {
        ClientReceiver {
            rx,
            liveness: Throttle::new(DAEMON_CHECK_INTERVAL),
            spin,
            conn,
            flow: Flow::default(),
        }
    }

    /// Changes how long blocking calls spin before they sleep in the kernel.
    pub fn set_spin(&mut self, spin: Duration) {
        self.spin = spin;
    }

    /// The client's queries and controls (counters, congestion, the
    /// daemon's heartbeat, leaving), usable from anywhere, even inside this
    /// half's closures: see [`ClientControl`].
    pub fn control(&self) -> ClientControl {
        ClientControl::new(&self.conn)
    }

    /// Waits up to `timeout` until a message is waiting, and leaves it
    /// there: the next receive of this half finds it (this half is the only
    /// reader of its rings, so nobody else can take it). For a loop that
    /// waits in one place and receives in another (an event loop, a batch
    /// reader).
    ///
    /// # Errors
    /// [`Error::Timeout`] when none came in time, [`Error::Disconnected`]
    /// when the daemon shut down or died (or the client left).
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<(), Error> {
        self.wait(deadline(Some(timeout))).map_err(Fault::into_error)
    }

    // ---- the engine.

    /// Passes the next message to `f` in place. `Ok(None)`: none waiting.
    #[inline(always)]
    pub(crate) fn read_with<R>(&mut self, f: impl FnOnce(Priority, RingBytes<'_>) -> R) -> Op<Option<R>> {
        self.conn.poisoned()?;
        let consumed = Cell::new(false);
        let got = {
            // Wake a blocked daemon writer only if a message was consumed (even
            // if `f` panicked), so an empty poll costs no fence.
            let _wake = NotifyOnDrop::when(&self.conn.channel().to_client_space, &consumed);
            self.rx.read_with(|p, b| {
                consumed.set(true);
                f(p, b)
            })
        };
        let got = got.map_err(|e| self.conn.read_failed(e))?;
        if got.is_none() {
            self.read_empty()?;
        }
        Ok(got)
    }

    /// A read found nothing. Messages sent before a shutdown or death are
    /// still delivered; after them, the reason is reported.
    fn read_empty(&mut self) -> Op<()> {
        if self.liveness.due() {
            self.conn.check_daemon();
        }
        self.conn.status()
    }

    /// Reads up to `max` messages, waking a blocked daemon writer once at the end.
    pub(crate) fn read_batch_with(&mut self, max: usize, mut f: impl FnMut(Priority, RingBytes<'_>)) -> Op<usize> {
        self.conn.poisoned()?;
        let consumed = Cell::new(false);
        let result = {
            let _wake = NotifyOnDrop::when(&self.conn.channel().to_client_space, &consumed);
            self.rx.read_batch_with(max, |p, b| {
                consumed.set(true);
                f(p, b)
            })
        };
        let n = result.map_err(|e| self.conn.read_failed(e))?;
        if n == 0 {
            self.read_empty()?;
        }
        Ok(n)
    }

    /// Blocks until a message is waiting (`Ok`), the daemon is gone
    /// ([`Fault::Disconnected`]) or `until` passes.
    pub(crate) fn wait(&mut self, until: Option<Instant>) -> Op<()> {
        blocked(self.poll_wait(&mut Block, until))
    }

    /// [`ClientReceiver::wait`] through `park`.
    fn poll_wait(&mut self, park: &mut impl Park, until: Option<Instant>) -> Poll<Op<()>> {
        let ClientReceiver {
            rx,
            liveness,
            conn,
            spin,
            ..
        } = self;
        let ready = || {
            if liveness.due() {
                conn.check_daemon();
            }
            rx.has_message() || conn.status().is_err()
        };
        // Tick so that the daemon's death, which nobody signals, is seen within an interval.
        let (seg, event) = (conn.segment(), &conn.channel().client_wake);
        // Marked a sleeper while registered: a daemon waking every client
        // looks at the sleepers only (see `crate::doorbell`).
        let sleeper = Some(doorbell::sleeper(seg, conn.id().slot));
        let waited = ready!(park.park_marked(
            seg.shared_memory(),
            event,
            sleeper,
            ready,
            *spin,
            until,
            Some(DAEMON_CHECK_INTERVAL)
        ));
        if !waited {
            return Poll::Ready(Err(Fault::Timeout));
        }
        if rx.has_message() {
            Poll::Ready(Ok(()))
        } else {
            conn.status()?;
            Poll::Ready(Err(Fault::Disconnected))
        }
    }

    /// Takes the next message, waiting through `park` until `until`; `f`
    /// is taken when it runs.
    pub(crate) fn poll_recv<R, F: FnOnce(Priority, RingBytes<'_>) -> R>(
        &mut self,
        park: &mut impl Park,
        until: &mut Deadline,
        f: &mut Option<F>,
    ) -> Poll<Result<R, Error>> {
        loop {
            // `f` runs only when a message is there, so an empty read hands it back.
            match self.read_with(|p, b| f.take().map(|f| f(p, b))) {
                Ok(Some(Some(r))) => {
                    self.flow.took();
                    return Poll::Ready(Ok(r));
                }
                Ok(_) => {}
                Err(e) => return Poll::Ready(Err(e.into_error())),
            }
            if self.flow.ran_dry() {
                continue;
            }
            ready!(self.poll_wait(park, until.instant())).map_err(Fault::into_error)?;
        }
    }

    // ---- the API.

    /// Takes the next message, waiting for one: Critical before High before
    /// Low, FIFO within a tier.
    ///
    /// # Errors
    /// [`Error::Disconnected`] once the daemon is gone and every message it
    /// sent before has been received; [`Error::Poisoned`] / [`Error::Corrupted`].
    pub fn recv(&mut self) -> Result<Message, Error> {
        received(|got| self.recv_until(Deadline::NEVER, |p, b| Message::build_in(got, p, b)))
    }

    /// Like [`ClientReceiver::recv`], waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`ClientReceiver::recv`], and [`Error::Timeout`].
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Message, Error> {
        received(|got| self.recv_until(Deadline::after(Some(timeout)), |p, b| Message::build_in(got, p, b)))
    }

    /// Takes the next message if one is waiting.
    ///
    /// # Errors
    /// [`Error::Empty`] when none is; otherwise as [`ClientReceiver::recv`].
    #[inline]
    pub fn try_recv(&mut self) -> Result<Message, Error> {
        taken(|got| self.read_with(|p, b| Message::build_in(got, p, b)))
    }

    /// Passes the next waiting message to `f` in place, without copying.
    ///
    /// In place means in memory the daemon's process can write: sound while
    /// the daemon keeps the ring's protocol, which this process cannot
    /// check. With a daemon you do not trust, use [`ClientReceiver::try_recv`]
    /// (or a typed receive), which copies the message out first.
    ///
    /// # Errors
    /// As [`ClientReceiver::try_recv`].
    #[inline]
    pub fn try_recv_with<R>(&mut self, f: impl FnOnce(Priority, &[u8]) -> R) -> Result<R, Error> {
        self.try_take(|p, b| f(p, trusting_peer(b)))
    }

    /// [`ClientReceiver::try_recv_with`] with the payload as the ring lends
    /// it (for the owned and typed receives, which copy it out).
    #[inline(always)]
    pub(crate) fn try_take<R>(&mut self, f: impl FnOnce(Priority, RingBytes<'_>) -> R) -> Result<R, Error> {
        if std::mem::size_of::<R>() <= DIRECT {
            return match self.read_with(f) {
                Ok(Some(r)) => Ok(r),
                Ok(None) => Err(Error::Empty),
                Err(e) => Err(e.into_error()),
            };
        }
        let mut slot = None;
        match self.read_with(|p, b| slot = Some(f(p, b))) {
            // `Some`: the closure ran and filled the slot.
            Ok(Some(())) => slot.ok_or(Error::Empty),
            Ok(None) => Err(Error::Empty),
            Err(e) => Err(e.into_error()),
        }
    }

    /// Waits for the next message and passes it to `f` in place (trusting
    /// the daemon, as [`ClientReceiver::try_recv_with`] says).
    ///
    /// # Errors
    /// As [`ClientReceiver::recv`].
    pub fn recv_with<R>(&mut self, f: impl FnOnce(Priority, &[u8]) -> R) -> Result<R, Error> {
        self.recv_until(Deadline::NEVER, |p, b| f(p, trusting_peer(b)))
    }

    /// Like [`ClientReceiver::recv_with`], waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`ClientReceiver::recv_timeout`].
    pub fn recv_timeout_with<R>(
        &mut self,
        timeout: Duration,
        f: impl FnOnce(Priority, &[u8]) -> R,
    ) -> Result<R, Error> {
        self.recv_until(Deadline::after(Some(timeout)), |p, b| f(p, trusting_peer(b)))
    }

    /// Takes the next message, waiting until `until`, with the payload as
    /// the ring lends it. A message already waiting takes the short way: one
    /// read, none of the waiting machinery.
    #[inline]
    pub(crate) fn recv_until<R>(
        &mut self,
        until: Deadline,
        f: impl FnOnce(Priority, RingBytes<'_>) -> R,
    ) -> Result<R, Error> {
        let mut f = Some(f);
        match self.read_with(|p, b| f.take().map(|f| f(p, b))) {
            Ok(Some(Some(r))) => {
                self.flow.took();
                Ok(r)
            }
            Ok(_) => self.recv_when_there(until, f),
            Err(e) => Err(e.into_error()),
        }
    }

    /// [`ClientReceiver::recv_until`] once the first read found nothing.
    #[inline(never)]
    fn recv_when_there<R, F: FnOnce(Priority, RingBytes<'_>) -> R>(
        &mut self,
        mut until: Deadline,
        mut f: Option<F>,
    ) -> Result<R, Error> {
        blocked(self.poll_recv(&mut Block, &mut until, &mut f))
    }

    /// Passes up to `max` waiting messages to `f` in place (trusting the
    /// daemon, as [`ClientReceiver::try_recv_with`] says), in the order
    /// `recv` would return them, and hands their space back once. Returns how
    /// many (at least one).
    ///
    /// # Errors
    /// [`Error::Empty`] when none is waiting; otherwise as [`ClientReceiver::recv`].
    pub fn try_recv_batch(&mut self, max: usize, mut f: impl FnMut(Priority, &[u8])) -> Result<usize, Error> {
        match self.read_batch_with(max, |p, b| f(p, trusting_peer(b))) {
            Ok(0) if max > 0 => Err(Error::Empty),
            Ok(n) => Ok(n),
            Err(e) => Err(e.into_error()),
        }
    }
}
