//! The daemon side of request/response: take calls of one request type,
//! answer each through its [`Responder`] (now, later, or from another
//! thread), refuse calls of other types so that their callers learn it at
//! once instead of timing out.

use std::marker::PhantomData;
use std::time::{Duration, Instant};

use super::envelope::{self, Kind};
use super::{record_len, write_record, Encoding, Request, Typed};
use crate::endpoint::{ClientId, ClientMessage, Daemon, DaemonSender};
use crate::error::{Error, TypeError};
use crate::priority::Priority;

/// What [`Daemon::recv_call`] took.
#[derive(Debug)]
pub enum Incoming<Q: Request> {
    /// A call: the request and where its response goes.
    Call(Q, Responder<Q::Response>),
    /// Anything else a client sent (a one-way message, typed or raw).
    Message(ClientMessage),
}

/// Where the response of one call goes: the calling client and the call's
/// number. Answer it with [`Responder::send`] (or [`Responder::send_with`]
/// on a [`DaemonSender`], from another thread say); a responder dropped
/// unanswered leaves its caller to its timeout.
#[must_use = "answer the call, or its caller waits until its timeout"]
#[derive(Debug)]
pub struct Responder<R> {
    client: ClientId,
    id: u64,
    priority: Priority,
    _reply: PhantomData<fn(R)>,
}

impl<R: Typed> Responder<R> {
    /// The client that called.
    pub fn client(&self) -> ClientId {
        self.client
    }

    /// The tier of the call, on which the response goes back.
    pub fn priority(&self) -> Priority {
        self.priority
    }

    /// Sends the response, waiting while the client's ring is full.
    ///
    /// # Errors
    /// As [`Daemon::send_to`] ([`Error::UnknownClient`] when the caller left
    /// or died), and [`Error::Type`] if the value cannot be encoded.
    pub fn send(self, daemon: &mut Daemon, response: &R) -> Result<(), Error> {
        self.send_with(&mut daemon.sender(), response)
    }

    /// [`Responder::send`] through a daemon's sending half.
    ///
    /// # Errors
    /// As [`Responder::send`].
    pub fn send_with(self, sender: &mut DaemonSender<'_>, response: &R) -> Result<(), Error> {
        let len = record_len(response)?;
        let kind = Kind::Reply(self.id);
        Ok(sender.send_to_with(self.client, self.priority, len, |out| write_record(out, response, kind))??)
    }

    /// [`Responder::send`] without blocking the thread.
    ///
    /// # Errors
    /// As [`Responder::send`].
    pub async fn send_async(self, daemon: &mut Daemon, response: &R) -> Result<(), Error> {
        let len = record_len(response)?;
        let kind = Kind::Reply(self.id);
        Ok(daemon
            .send_to_with_async(self.client, self.priority, len, |out| write_record(out, response, kind))
            .await??)
    }
}

/// What a received record is, to a daemon serving `Q`: small, so that
/// little travels back through the receive path; the request or message
/// itself is left in a [`Slots`].
#[derive(Clone, Copy)]
enum Taken {
    /// A call of type `Q` (its request is in the slots).
    Call(ClientId, u64, Priority),
    /// A call of another type: refuse it.
    Foreign(ClientId, u64, Priority),
    /// Anything else (its message is in the slots).
    Other,
}

/// Where `take` leaves what it decoded or copied.
struct Slots<Q> {
    request: Option<Result<Q, TypeError>>,
    message: Option<ClientMessage>,
}

impl<Q: Request> Slots<Q> {
    fn new() -> Slots<Q> {
        Slots {
            request: None,
            message: None,
        }
    }

    fn take(&mut self, from: ClientId, priority: Priority, record: &[u8]) -> Taken {
        match envelope::read(record) {
            Ok((tag, Kind::Call(id), body)) => {
                if tag != Q::TAG {
                    return Taken::Foreign(from, id, priority);
                }
                self.request = Some(Q::Encoding::decode(body));
                Taken::Call(from, id, priority)
            }
            _ => {
                self.message = Some(ClientMessage::new(from, priority, record));
                Taken::Other
            }
        }
    }
}

impl Daemon {
    /// Takes the next call of request type `Q`, or the next other message,
    /// waiting for one. A call of another request type is refused on the
    /// spot (its caller gets [`TypeError::Rejected`]) and not returned.
    ///
    /// # Errors
    /// As [`Daemon::recv`], and [`Error::Type`] for a call of type `Q` whose
    /// body is not a valid `Q` (its caller is left to its timeout).
    pub fn recv_call<Q: Request>(&mut self) -> Result<Incoming<Q>, Error> {
        loop {
            let mut slots = Slots::new();
            let taken = self.recv_with(|from, priority, record| slots.take(from, priority, record))?;
            if let Some(incoming) = self.settle(taken, slots)? {
                return Ok(incoming);
            }
        }
    }

    /// [`Daemon::recv_call`], waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Daemon::recv_call`], and [`Error::Timeout`].
    pub fn recv_call_timeout<Q: Request>(&mut self, timeout: Duration) -> Result<Incoming<Q>, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut slots = Slots::new();
            let taken = self.recv_timeout_with(left, |from, priority, record| slots.take(from, priority, record))?;
            if let Some(incoming) = self.settle(taken, slots)? {
                return Ok(incoming);
            }
        }
    }

    /// [`Daemon::recv_call`] without blocking the thread.
    ///
    /// # Errors
    /// As [`Daemon::recv_call`].
    pub async fn recv_call_async<Q: Request>(&mut self) -> Result<Incoming<Q>, Error> {
        loop {
            let mut slots = Slots::new();
            let taken = self
                .recv_with_async(|from, priority, record| slots.take(from, priority, record))
                .await?;
            if let Some(incoming) = self.settle(taken, slots)? {
                return Ok(incoming);
            }
        }
    }

    /// Answers every call of request type `Q` with `handler` (client, request)
    /// -> response, on the call's tier, until an error ends it. One-way
    /// messages are dropped (use [`Daemon::recv_call`] to keep them); calls
    /// of other types are refused; a malformed request or a caller that left
    /// before its answer is skipped.
    ///
    /// # Errors
    /// The first error of [`Daemon::recv`] or of a response send that is not
    /// about one caller (a poisoned or shut-down segment).
    pub fn serve<Q: Request>(&mut self, mut handler: impl FnMut(ClientId, Q) -> Q::Response) -> Result<(), Error> {
        loop {
            match self.recv_call::<Q>() {
                Ok(Incoming::Call(request, responder)) => {
                    let response = handler(responder.client(), request);
                    match responder.send(self, &response) {
                        Ok(()) | Err(Error::UnknownClient(_) | Error::Type(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(Incoming::Message(_)) | Err(Error::Type(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn settle<Q: Request>(&mut self, taken: Taken, slots: Slots<Q>) -> Result<Option<Incoming<Q>>, Error> {
        match (taken, slots.request, slots.message) {
            (Taken::Call(client, id, priority), Some(request), _) => {
                let responder = Responder {
                    client,
                    id,
                    priority,
                    _reply: PhantomData,
                };
                Ok(Some(Incoming::Call(request?, responder)))
            }
            (Taken::Other, _, Some(message)) => Ok(Some(Incoming::Message(message))),
            (Taken::Foreign(client, id, priority), _, _) => {
                // Best effort: a caller whose ring is full, or who left, goes
                // without (it times out as it would have).
                let mut refusal = [0u8; envelope::HEADER];
                envelope::write(&mut refusal, Q::TAG, Kind::Refusal(id));
                let _ = self.try_send_to(client, priority, &refusal);
                Ok(None)
            }
            _ => Ok(None), // not reached: `take` fills the slot its answer names
        }
    }
}
