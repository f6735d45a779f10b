//! Receiving on the daemon: every client's rings to it, read Critical
//! before High before Low, round-robin among clients within a tier.

use std::sync::Arc;
use std::task::{ready, Poll};
use std::time::Duration;

use super::handoff::Handoff;
use super::{DaemonControl, DaemonRx, DaemonSender, Owner};
use crate::endpoint::channel::Deadline;
use crate::endpoint::fault::{Fault, Op};
use crate::endpoint::in_place::trusting_peer;
use crate::endpoint::message::{received, ClientMessage, DIRECT};
use crate::endpoint::Error;
use crate::priority::Priority;
use crate::ring::RingBytes;
use crate::slot::ClientId;
use crate::wait::{blocked, Block, Park};

/// The receiving half of a [`crate::Daemon`]: lent by
/// [`crate::Daemon::split`], or owned (`'static`, `Send`) after
/// [`crate::Daemon::into_split`]. The daemon's own receiving calls are this
/// type's.
///
/// Split, the halves free a departed client's slot together: this half
/// drains it and asks, the sending half lets go of it at its next call (or
/// when it is dropped), and this half frees it at its next call after that.
///
/// ```
/// use memlink_shm::{Client, Daemon, Fill, Priority};
/// use std::time::Duration;
/// # let name = format!("memlink-doc-daemon-split-{}", std::process::id());
/// let mut daemon = Daemon::create(&name)?;
/// let mut client = Client::connect(&name)?;
/// client.send(Priority::High, b"hello")?;
///
/// // Answer in place: the request is read from the client's ring and the
/// // reply written into the ring back, with no copy in between.
/// let (rx, tx) = daemon.split();
/// rx.recv_timeout_with(Duration::from_secs(5), |from, priority, request| {
///     let upper = Fill::new(request.len(), |reply| {
///         reply.copy_from_slice(request);
///         reply.make_ascii_uppercase();
///     });
///     tx.send_to(from, priority, upper)
/// })??;
/// assert_eq!(client.recv_timeout(Duration::from_secs(5))?.payload(), b"HELLO");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct DaemonReceiver {
    pub(super) rx: DaemonRx,
    /// How this half frees a departed client's slot.
    pub(super) free: Freeing,
    /// Keeps the segment up until both halves are dropped.
    pub(super) _owner: Arc<Owner>,
    pub(super) control: DaemonControl,
}

/// How a receiving half frees a drained slot: one field, so that the
/// closure each receive lends its reads captures one pointer, not two.
#[derive(Debug)]
pub(super) struct Freeing {
    /// Shared with the sending half: how a departed client's slot is let go.
    pub(super) handoff: Arc<Handoff>,
    /// Set by the daemon for its own calls, which hold both halves (the
    /// sending half is then idle): a drained slot is freed at once, and the
    /// sending half lets go of it before its next write.
    pub(super) joined: bool,
}

impl Freeing {
    /// Whether drained slot `i` may be freed now (see [`Handoff::release`]).
    #[inline(always)]
    fn release(&self, i: u32) -> bool {
        self.handoff.release(i, self.joined)
    }
}

impl DaemonReceiver {
    /// The daemon's queries and controls (clients, counters, congestion,
    /// shutdown), usable from anywhere, even inside this half's closures:
    /// see [`DaemonControl`].
    pub fn control(&self) -> DaemonControl {
        self.control.clone()
    }

    /// Changes how long this half's waits spin before they sleep in the
    /// kernel (set first with [`crate::DaemonBuilder::spin`]).
    pub fn set_spin(&mut self, spin: Duration) {
        self.rx.set_spin(spin);
    }

    /// Frees now the slots of departed clients this half has drained,
    /// with `sender`, this daemon's sending half, lent so that it lets go
    /// of them at once: what the daemon's own calls do, for code that holds
    /// both owned halves in one place (split, a slot is otherwise freed
    /// only after the sending half's next call, see the type's docs). Call
    /// it after a receive: a client that left since this half last looked
    /// at the table (every receive does) is seen at the next receive. One
    /// load when no departed client waits. The sending half of another
    /// daemon changes nothing.
    #[inline(always)]
    pub fn free_departed(&mut self, sender: &mut DaemonSender) {
        if self.rx.may_have_departed() {
            self.free_departed_now(sender);
        }
    }

    /// Whether [`DaemonReceiver::free_departed`] may have a slot to free: a
    /// client this half saw leave waits to be drained or freed. One load.
    /// For code that must lock or borrow the sending half to call
    /// `free_departed` (a `Mutex` or `RefCell` around it), so that a receive
    /// takes it only when there is something to free.
    #[inline(always)]
    pub fn has_departed(&self) -> bool {
        self.rx.may_have_departed()
    }

    #[cold]
    #[inline(never)]
    fn free_departed_now(&mut self, sender: &mut DaemonSender) {
        if !Arc::ptr_eq(&self.free.handoff, sender.tx.handoff()) {
            return;
        }
        let DaemonReceiver { rx, free, .. } = self;
        // Both halves are here and idle: free at once, as a joined daemon
        // does, and have the sending half let go before it writes again.
        rx.refresh(&mut |i| free.handoff.release(i, true));
        sender.tx.release_departed();
    }

    /// Waits up to `timeout` until a message is waiting, and leaves it
    /// there: the next receive of this half finds it (this half is the only
    /// reader of the rings, so nobody else can take it). For a loop that
    /// waits in one place and receives in another (an event loop, a
    /// batch reader).
    ///
    /// # Errors
    /// [`Error::Timeout`] when none came in time, [`Error::Disconnected`]
    /// when the segment was shut down.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<(), Error> {
        let DaemonReceiver { rx, free, .. } = self;
        let mut release = |i| free.release(i);
        let mut until = Deadline::after(Some(timeout));
        rx.wait(&mut release, until.instant()).map_err(Fault::into_error)
    }

    /// Takes the next message, waiting for one (see the type's docs for the
    /// order).
    ///
    /// # Errors
    /// [`Error::Corrupted`] when a client's rings hold impossible values: that
    /// client's channel is poisoned and the others go on.
    pub fn recv(&mut self) -> Result<ClientMessage, Error> {
        received(|got| self.recv_until(Deadline::NEVER, |c, p, b| ClientMessage::build_in(got, c, p, b)))
    }

    /// Like [`DaemonReceiver::recv`], waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`DaemonReceiver::recv`], and [`Error::Timeout`].
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<ClientMessage, Error> {
        received(|got| {
            self.recv_until(Deadline::after(Some(timeout)), |c, p, b| {
                ClientMessage::build_in(got, c, p, b)
            })
        })
    }

    /// Takes the next message if one is waiting.
    ///
    /// # Errors
    /// [`Error::Empty`] when none is; otherwise as [`DaemonReceiver::recv`].
    #[inline(always)]
    pub fn try_recv(&mut self) -> Result<ClientMessage, Error> {
        // `try_take`'s result written out by hand, and inlined: so that the
        // receive is inlined whole into its caller (through a closure it
        // stayed a function of its own: `empty_poll_1` in
        // `examples/instructions.rs`). The message is still built where it
        // is returned from.
        let mut got = None;
        self.try_take(|c, p, b| ClientMessage::build_in(&mut got, c, p, b))?;
        got.ok_or(Error::Empty)
    }

    /// Passes the next waiting message, with its sender, to `f` in place,
    /// without copying.
    ///
    /// In place means in memory the client's process can write: sound while
    /// the client keeps the ring's protocol, which this process cannot
    /// check. With clients you do not trust, use [`DaemonReceiver::try_recv`]
    /// (or a typed receive), which copies the message out first.
    ///
    /// # Errors
    /// As [`DaemonReceiver::try_recv`].
    #[inline]
    pub fn try_recv_with<R>(&mut self, f: impl FnOnce(ClientId, Priority, &[u8]) -> R) -> Result<R, Error> {
        self.try_take(|c, p, b| f(c, p, trusting_peer(b)))
    }

    /// [`DaemonReceiver::try_recv_with`] with the payload as the ring lends
    /// it (for the owned and typed receives, which copy it out).
    #[inline(always)]
    pub(crate) fn try_take<R>(&mut self, f: impl FnOnce(ClientId, Priority, RingBytes<'_>) -> R) -> Result<R, Error> {
        if std::mem::size_of::<R>() <= DIRECT {
            return match self.take_now(f) {
                Ok(Some(r)) => Ok(r),
                Ok(None) => Err(Error::Empty),
                Err(e) => Err(e.into_error()),
            };
        }
        let mut slot = None;
        match self.take_now(|c, p, b| slot = Some(f(c, p, b))) {
            // `Some`: the closure ran and filled the slot.
            Ok(Some(())) => slot.ok_or(Error::Empty),
            Ok(None) => Err(Error::Empty),
            Err(e) => Err(e.into_error()),
        }
    }

    /// Passes the next waiting message to `f`, on the engine's result
    /// (`Ok(None)`: none is waiting).
    #[inline(always)]
    fn take_now<R>(&mut self, f: impl FnOnce(ClientId, Priority, RingBytes<'_>) -> R) -> Op<Option<R>> {
        let DaemonReceiver { rx, free, .. } = self;
        let mut release = |i| free.release(i);
        rx.read_from_with(&mut release, f)
    }

    /// Waits for the next message and passes it to `f` in place (trusting
    /// the client, as [`DaemonReceiver::try_recv_with`] says).
    ///
    /// # Errors
    /// As [`DaemonReceiver::recv`].
    pub fn recv_with<R>(&mut self, f: impl FnOnce(ClientId, Priority, &[u8]) -> R) -> Result<R, Error> {
        self.recv_until(Deadline::NEVER, |c, p, b| f(c, p, trusting_peer(b)))
    }

    /// Like [`DaemonReceiver::recv_with`], waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`DaemonReceiver::recv_timeout`].
    pub fn recv_timeout_with<R>(
        &mut self,
        timeout: Duration,
        f: impl FnOnce(ClientId, Priority, &[u8]) -> R,
    ) -> Result<R, Error> {
        self.recv_until(Deadline::after(Some(timeout)), |c, p, b| f(c, p, trusting_peer(b)))
    }

    /// Takes the next message, waiting until `until`, with the payload as
    /// the ring lends it. A message already waiting takes the short way: one
    /// read, none of the waiting machinery.
    #[inline]
    pub(crate) fn recv_until<R>(
        &mut self,
        until: Deadline,
        f: impl FnOnce(ClientId, Priority, RingBytes<'_>) -> R,
    ) -> Result<R, Error> {
        let DaemonReceiver { rx, free, .. } = self;
        let mut release = |i| free.release(i);
        let mut f = Some(f);
        match rx.read_from_with(&mut release, |c, p, b| f.take().map(|f| f(c, p, b))) {
            Ok(Some(Some(r))) => {
                rx.flow.took();
                Ok(r)
            }
            Ok(_) => self.recv_when_there(until, f),
            Err(e) => Err(e.into_error()),
        }
    }

    /// [`DaemonReceiver::recv_until`] once the first read found nothing.
    #[inline(never)]
    fn recv_when_there<R, F: FnOnce(ClientId, Priority, RingBytes<'_>) -> R>(
        &mut self,
        mut until: Deadline,
        mut f: Option<F>,
    ) -> Result<R, Error> {
        blocked(self.poll_recv(&mut Block, &mut until, &mut f))
    }

    /// Takes the next message, waiting through `park` until `until`; `f`
    /// is taken when it runs.
    pub(crate) fn poll_recv<R, F: FnOnce(ClientId, Priority, RingBytes<'_>) -> R>(
        &mut self,
        park: &mut impl Park,
        until: &mut Deadline,
        f: &mut Option<F>,
    ) -> Poll<Result<R, Error>> {
        let DaemonReceiver { rx, free, .. } = self;
        let mut release = |i| free.release(i);
        loop {
            // `f` runs only when a message is there, so an empty read hands it back.
            match rx.read_from_with(&mut release, |c, p, b| f.take().map(|f| f(c, p, b))) {
                Ok(Some(Some(r))) => {
                    rx.flow.took();
                    return Poll::Ready(Ok(r));
                }
                Ok(_) => {}
                Err(e) => return Poll::Ready(Err(e.into_error())),
            }
            if rx.flow.ran_dry() {
                continue;
            }
            ready!(rx.poll_wait(park, &mut release, until.instant())).map_err(Fault::into_error)?;
        }
    }

    /// Passes up to `max` waiting messages to `f` in place (trusting the
    /// clients, as [`DaemonReceiver::try_recv_with`] says), in the order
    /// `recv` would return them; a blocked client writer is woken once per
    /// client, at the end. Returns how many (at least one).
    ///
    /// # Errors
    /// [`Error::Empty`] when none is waiting; otherwise as [`DaemonReceiver::recv`].
    pub fn try_recv_batch(&mut self, max: usize, mut f: impl FnMut(ClientId, Priority, &[u8])) -> Result<usize, Error> {
        let DaemonReceiver { rx, free, .. } = self;
        let mut release = |i| free.release(i);
        match rx.read_from_batch_with(&mut release, max, |c, p, b| f(c, p, trusting_peer(b))) {
            Ok(0) if max > 0 => Err(Error::Empty),
            Ok(n) => Ok(n),
            Err(e) => Err(e.into_error()),
        }
    }
}
