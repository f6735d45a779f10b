//! The client side of request/response: [`Caller`] numbers each call, sends
//! it, and matches replies to calls by number, so that many calls can be
//! outstanding and replies can come back in any order.

use std::collections::{HashMap, VecDeque};
use std::future::{poll_fn, Future};
use std::hash::{BuildHasherDefault, Hasher};
use std::marker::PhantomData;
use std::pin::pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use super::envelope::{self, Kind, MAX_CALL_ID};
use super::payload::Record;
use super::{Encoding, Request, Typed};
use crate::endpoint::{Client, Message};
use crate::endpoint::{Error, TypeError};
use crate::priority::Priority;

/// How long a send that finds the ring full waits before it takes in the
/// replies that came meanwhile (so that a daemon blocked on a full reply
/// ring is never waited for by a caller blocked on a full request ring).
const DRAIN_EVERY: Duration = Duration::from_millis(5);

/// Hashes a call id for the table of outstanding calls: ids are a counter
/// chosen here, not input, so a multiply (Fibonacci hashing, good high bits
/// for the table's tags) does what SipHash would at a tenth of the cost.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Outstanding calls, with their reply once it came.
type Calls = HashMap<u64, Option<Reply>, BuildHasherDefault<IdHasher>>;

/// A call that was sent and whose reply (an `R`) is still to be taken with
/// [`Caller::finish`], or given up with [`Caller::cancel`].
#[must_use = "finish or cancel the call, or its reply is kept until the Caller drops"]
#[derive(Debug)]
pub struct Pending<R> {
    id: u64,
    _reply: PhantomData<fn() -> R>,
}

impl<R> Pending<R> {
    /// The call's number (unique among this caller's outstanding calls).
    pub fn id(&self) -> u64 {
        self.id
    }
}

/// What came back for a call.
#[derive(Debug)]
enum Reply {
    /// The reply record.
    Value(Message),
    /// The daemon serves requests with this tag.
    Refused(u64),
}

/// A client that makes calls: requests answered by the daemon's
/// [`Daemon::serve`](crate::Daemon::serve) or
/// [`Daemon::recv_call`](crate::Daemon::recv_call).
///
/// Each call carries a number; replies are matched to calls by it, so calls
/// can be pipelined ([`Caller::start`] several, then [`Caller::finish`] each)
/// and answered out of order. A reply to a call that timed out, was
/// cancelled or whose future was dropped is discarded when it arrives, never
/// handed to another call. One-way messages that arrive while a call waits
/// are kept, in order, for [`Caller::recv`].
///
/// ```
/// use memlink_shm::typed::{Caller, Plain, Request, Typed};
/// use memlink_shm::{Client, Daemon, Priority};
/// use std::time::Duration;
/// # use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
///
/// #[derive(FromBytes, IntoBytes, KnownLayout, Immutable)]
/// #[repr(C)]
/// struct Square(u64);
/// impl Typed for Square {
///     const NAME: &'static str = "calc.Square";
///     type Encoding = Plain;
/// }
/// impl Request for Square {
///     type Response = u64; // u64 is Typed already
/// }
///
/// # let name = format!("memlink-doc-caller-{}", std::process::id());
/// let mut daemon = Daemon::create(&name)?;
/// let server = std::thread::spawn(move || {
///     // Answers the three calls below, then ends (dropping the daemon).
///     let mut answered = 0;
///     while answered < 3 {
///         let memlink_shm::typed::Incoming::Call(Square(x), reply) = daemon.recv_call::<Square>()? else {
///             continue;
///         };
///         reply.send(&mut daemon, &(x * x))?;
///         answered += 1;
///     }
///     Ok::<_, memlink_shm::Error>(())
/// });
/// let mut caller = Caller::new(Client::connect(&name)?);
/// let timeout = Duration::from_secs(5);
/// assert_eq!(caller.call(Priority::High, &Square(7), timeout)?, 49);
/// // Two calls in flight at once.
/// let (a, b) = (caller.start(Priority::High, &Square(2))?, caller.start(Priority::High, &Square(3))?);
/// assert_eq!((caller.finish(b, timeout)?, caller.finish(a, timeout)?), (9, 4));
/// server.join().unwrap()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Caller {
    client: Client,
    last_id: u64,
    /// Whether call ids have wrapped around (then a new id is checked
    /// against the outstanding ones).
    wrapped: bool,
    /// Outstanding calls, with their reply once it came.
    pending: Calls,
    /// Messages that are not replies, in arrival order.
    inbox: VecDeque<Message>,
}

impl Caller {
    /// Makes calls through `client`.
    pub fn new(client: Client) -> Caller {
        Caller {
            client,
            last_id: 0,
            wrapped: false,
            pending: Calls::default(),
            inbox: VecDeque::new(),
        }
    }

    /// The client (to send one-way messages, read its id or stats). Receive
    /// through the caller ([`Caller::recv`]), not through the client, or
    /// replies would be taken as messages.
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// Gives the client back. Outstanding calls are forgotten; messages
    /// kept for [`Caller::recv`] are returned with it.
    pub fn into_client(self) -> (Client, Vec<Message>) {
        (self.client, self.inbox.into())
    }

    /// How many calls are outstanding (started, not finished or cancelled).
    pub fn outstanding(&self) -> usize {
        self.pending.len()
    }

    /// Sends `request` and waits at most `timeout` for its response.
    ///
    /// # Errors
    /// [`Error::Timeout`] (a late reply is discarded), [`Error::Disconnected`]
    /// when the daemon dies or shuts down (within its detection time),
    /// [`Error::Type`] when the reply is not a `Q::Response` or the daemon
    /// refused the request type ([`TypeError::Rejected`]); and the errors of
    /// [`Client::send`].
    pub fn call<Q: Request>(
        &mut self,
        priority: Priority,
        request: &Q,
        timeout: Duration,
    ) -> Result<Q::Response, Error> {
        let pending = self.start(priority, request)?;
        self.finish(pending, timeout)
    }

    /// Sends `request` and returns at once: take its response with
    /// [`Caller::finish`]. While the ring to the daemon is full, replies
    /// that arrive are taken in and kept, so a pipeline of any depth never
    /// deadlocks against a daemon blocked on replying.
    ///
    /// # Errors
    /// As [`Client::send`], and [`Error::Type`] if the request cannot be
    /// encoded.
    pub fn start<Q: Request>(&mut self, priority: Priority, request: &Q) -> Result<Pending<Q::Response>, Error> {
        let id = self.next_id();
        let call = || Record {
            value: request,
            kind: Kind::Call(id),
        };
        loop {
            match self.client.sender().send_timeout(priority, call(), DRAIN_EVERY) {
                Ok(()) => {
                    self.pending.insert(id, None);
                    return Ok(Pending {
                        id,
                        _reply: PhantomData,
                    });
                }
                Err(Error::Timeout) => self.drain()?,
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits at most `timeout` for the response of `pending`.
    ///
    /// # Errors
    /// As [`Caller::call`].
    pub fn finish<R: Typed>(&mut self, pending: Pending<R>, timeout: Duration) -> Result<R, Error> {
        let id = pending.id;
        // The clock is read only once the reply is not already there.
        let mut deadline = None;
        let result = loop {
            if let Some(reply) = take_reply::<R>(&mut self.pending, id) {
                break reply.map_err(Error::from);
            }
            let (pending, inbox, mut mine) = (&mut self.pending, &mut self.inbox, None);
            let route = |priority, record: &[u8]| route::<R>(pending, inbox, id, &mut mine, priority, record);
            let got = match deadline {
                None => match self.client.receiver().try_recv_copied(route) {
                    Err(Error::Empty) => {
                        deadline = Some(Instant::now() + timeout);
                        continue;
                    }
                    got => got,
                },
                Some(at) => self
                    .client
                    .receiver()
                    .recv_timeout_copied(Instant::saturating_duration_since(&at, Instant::now()), route),
            };
            match (got, mine) {
                (Ok(()), Some(reply)) => break reply.map_err(Error::from),
                (Ok(()), None) => {}
                (Err(e), _) => break Err(e),
            }
        };
        self.pending.remove(&id);
        result
    }

    /// Gives up a call: its reply is discarded when it arrives.
    pub fn cancel<R>(&mut self, pending: Pending<R>) {
        self.pending.remove(&pending.id);
    }

    /// [`Caller::call`] without blocking the thread: awaits room to send and
    /// the response. Bound it with your runtime's timeout; a dropped future
    /// discards the call's reply when it arrives.
    ///
    /// # Errors
    /// As [`Caller::call`], without [`Error::Timeout`].
    pub async fn call_async<Q: Request>(&mut self, priority: Priority, request: &Q) -> Result<Q::Response, Error> {
        let pending = self.start_async(priority, request).await?;
        self.finish_async(pending).await
    }

    /// [`Caller::start`] without blocking the thread. Cancellation-safe: a
    /// dropped future sent the request whole (then the call is outstanding
    /// with a reply nobody will take: it is discarded on arrival) or did not
    /// send it.
    ///
    /// # Errors
    /// As [`Caller::start`].
    pub async fn start_async<Q: Request>(
        &mut self,
        priority: Priority,
        request: &Q,
    ) -> Result<Pending<Q::Response>, Error> {
        let id = self.next_id();
        loop {
            let sent = {
                let (tx, rx) = self.client.halves_mut();
                let (pending, inbox) = (&mut self.pending, &mut self.inbox);
                let call = Record {
                    value: request,
                    kind: Kind::Call(id),
                };
                let mut send = pin!(tx.send_async(priority, call));
                // Wait for room and, at the same time, take in what arrives (a
                // reply is filed for its call): the daemon may be waiting for
                // room in this client's ring before it reads more requests.
                let mut arrive = pin!(rx.recv_copied_async(|priority, record| {
                    route::<u8>(pending, inbox, 0, &mut None, priority, record)
                }));
                poll_fn(|cx| {
                    if let Poll::Ready(sent) = send.as_mut().poll(cx) {
                        return Poll::Ready(Some(sent));
                    }
                    match arrive.as_mut().poll(cx) {
                        Poll::Ready(Ok(_)) => Poll::Ready(None), // filed: wait again
                        Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
                        Poll::Pending => Poll::Pending,
                    }
                })
                .await
            };
            match sent {
                Some(Ok(())) => {
                    self.pending.insert(id, None);
                    return Ok(Pending {
                        id,
                        _reply: PhantomData,
                    });
                }
                Some(Err(e)) => return Err(e),
                None => {}
            }
        }
    }

    /// [`Caller::finish`] without blocking the thread. Dropping the future
    /// cancels the call (its reply is discarded on arrival).
    ///
    /// # Errors
    /// As [`Caller::call_async`].
    pub async fn finish_async<R: Typed>(&mut self, pending: Pending<R>) -> Result<R, Error> {
        let id = pending.id;
        // Removes the call however the future ends: done, failed or dropped.
        struct Forget<'a>(&'a mut Calls, u64);
        impl Drop for Forget<'_> {
            fn drop(&mut self) {
                self.0.remove(&self.1);
            }
        }
        let forget = Forget(&mut self.pending, id);
        loop {
            if let Some(reply) = take_reply::<R>(forget.0, id) {
                return reply.map_err(Error::from);
            }
            let (pending, inbox, mut mine) = (&mut *forget.0, &mut self.inbox, None);
            self.client
                .receiver()
                .recv_copied_async(|priority, record| route::<R>(pending, inbox, id, &mut mine, priority, record))
                .await?;
            if let Some(reply) = mine {
                return reply.map_err(Error::from);
            }
        }
    }

    /// Takes the next message that is not a reply, waiting for one: messages
    /// kept while calls waited come first, in arrival order.
    ///
    /// # Errors
    /// As [`Client::recv`].
    pub fn recv(&mut self) -> Result<Message, Error> {
        self.recv_before(None)
    }

    /// [`Caller::recv`], waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Client::recv_timeout`].
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Message, Error> {
        self.recv_before(Some(Instant::now() + timeout))
    }

    /// [`Caller::recv`] if a message is waiting.
    ///
    /// # Errors
    /// As [`Client::try_recv`].
    pub fn try_recv(&mut self) -> Result<Message, Error> {
        loop {
            if let Some(m) = self.inbox.pop_front() {
                return Ok(m);
            }
            let (pending, inbox) = (&mut self.pending, &mut self.inbox);
            self.client
                .receiver()
                .try_recv_copied(|priority, record| route::<u8>(pending, inbox, 0, &mut None, priority, record))?;
        }
    }

    fn recv_before(&mut self, deadline: Option<Instant>) -> Result<Message, Error> {
        loop {
            if let Some(m) = self.inbox.pop_front() {
                return Ok(m);
            }
            let (pending, inbox) = (&mut self.pending, &mut self.inbox);
            let route = |priority, record: &[u8]| route::<u8>(pending, inbox, 0, &mut None, priority, record);
            match deadline {
                None => self.client.receiver().recv_copied(route)?,
                Some(d) => self
                    .client
                    .receiver()
                    .recv_timeout_copied(d.saturating_duration_since(Instant::now()), route)?,
            };
        }
    }

    /// Takes in every message waiting now.
    fn drain(&mut self) -> Result<(), Error> {
        loop {
            let (pending, inbox) = (&mut self.pending, &mut self.inbox);
            match self
                .client
                .receiver()
                .try_recv_copied(|priority, record| route::<u8>(pending, inbox, 0, &mut None, priority, record))
            {
                Ok(_) => {}
                Err(Error::Empty) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    fn next_id(&mut self) -> u64 {
        loop {
            if self.last_id >= MAX_CALL_ID {
                self.last_id = 0;
                self.wrapped = true;
            }
            self.last_id += 1;
            // Before the first wrap (2^62 calls) no id can be in use twice.
            if !self.wrapped || !self.pending.contains_key(&self.last_id) {
                return self.last_id;
            }
        }
    }
}

/// The reply of call `id`, decoded, if it came.
fn take_reply<R: Typed>(pending: &mut Calls, id: u64) -> Option<Result<R, TypeError>> {
    let reply = pending.get_mut(&id)?.take()?;
    Some(match reply {
        Reply::Value(m) => super::decode::<R>(m.payload()),
        Reply::Refused(served_tag) => Err(refusal::<R>(served_tag)),
    })
}

fn refusal<R: Typed>(served_tag: u64) -> TypeError {
    TypeError::Rejected {
        response: R::NAME,
        served_tag,
    }
}

/// Files a received record: the reply of call `waiting` is decoded into
/// `mine`; the reply of another outstanding call is kept for it; a reply
/// nobody waits for (timed out, cancelled) is dropped; anything else goes to
/// the inbox. Returns nothing, so that no decoded value travels back through
/// the receive path (see `typed::endpoints::taken`).
#[inline]
fn route<R: Typed>(
    pending: &mut Calls,
    inbox: &mut VecDeque<Message>,
    waiting: u64,
    mine: &mut Option<Result<R, TypeError>>,
    priority: Priority,
    record: &[u8],
) {
    // The reply awaited, of the type awaited: decoded at once (what the
    // first arm below does for it, without parsing the header twice).
    if let Some(body) = envelope::reply_body(record, R::TAG, waiting) {
        *mine = Some(R::Encoding::decode(body));
        return;
    }
    match envelope::read(record) {
        Ok((tag, Kind::Reply(id), _)) if id == waiting && waiting != 0 => {
            *mine = Some(super::decode::<R>(record).map_err(|e| match e {
                TypeError::WrongType { .. } => TypeError::WrongType {
                    expected: R::NAME,
                    expected_tag: R::TAG,
                    found_tag: tag,
                },
                e => e,
            }));
        }
        Ok((tag, Kind::Refusal(id), _)) if id == waiting && waiting != 0 => *mine = Some(Err(refusal::<R>(tag))),
        Ok((tag, kind @ (Kind::Reply(id) | Kind::Refusal(id)), _)) => {
            if let Some(slot) = pending.get_mut(&id) {
                *slot = Some(match kind {
                    Kind::Refusal(_) => Reply::Refused(tag),
                    _ => Reply::Value(Message::new(priority, record)),
                });
            }
        }
        _ => inbox.push_back(Message::new(priority, record)),
    }
}
