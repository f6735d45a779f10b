//! The daemon side of request/response: take calls of one request type,
//! answer each through its [`Responder`] (now, later, or from another
//! thread), refuse calls of other types so that their callers learn it at
//! once instead of timing out.

use std::marker::PhantomData;
use std::time::{Duration, Instant};

use super::envelope::{self, Kind};
use super::payload::Record;
use super::{Encoding, Request, Typed};
use crate::endpoint::Error;
use crate::endpoint::{ClientId, ClientMessage, Daemon, DaemonSender};
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
        self.send_with(daemon.sender(), response)
    }

    /// [`Responder::send`] through a daemon's sending half.
    ///
    /// # Errors
    /// As [`Responder::send`].
    pub fn send_with(self, sender: &mut DaemonSender, response: &R) -> Result<(), Error> {
        let reply = Record {
            value: response,
            kind: Kind::Reply(self.id),
        };
        sender.send_to(self.client, self.priority, reply)
    }

    /// [`Responder::send`] without blocking the thread.
    ///
    /// # Errors
    /// As [`Responder::send`].
    pub async fn send_async(self, daemon: &mut Daemon, response: &R) -> Result<(), Error> {
        let reply = Record {
            value: response,
            kind: Kind::Reply(self.id),
        };
        daemon.send_to_async(self.client, self.priority, reply).await
    }
}

/// A call of another request type than the one served: who made it, its
/// number and tier, to refuse it.
type Foreign = (ClientId, u64, Priority);

/// Files a received record for a daemon serving `Q`: a call of type `Q` or
/// any other message goes, as `recv_call` returns it, into `got`; a call of
/// another type is returned, to be refused. Nothing large travels back
/// through the receive path.
fn take<Q: Request>(
    got: &mut Option<Result<Incoming<Q>, Error>>,
    from: ClientId,
    priority: Priority,
    record: &[u8],
) -> Option<Foreign> {
    let call = |id, body| {
        let responder = Responder {
            client: from,
            id,
            priority,
            _reply: PhantomData,
        };
        Some(match Q::Encoding::decode(body) {
            Ok(request) => Ok(Incoming::Call(request, responder)),
            Err(e) => Err(e.into()),
        })
    };
    // A call of type `Q`, the common case: told without parsing the kind.
    if let Some((id, body)) = envelope::call_body(record, Q::TAG) {
        *got = call(id, body);
        return None;
    }
    match envelope::read(record) {
        Ok((tag, Kind::Call(id), _)) if tag != Q::TAG => return Some((from, id, priority)),
        Ok((_, Kind::Call(id), body)) => *got = call(id, body),
        _ => *got = Some(Ok(Incoming::Message(ClientMessage::new(from, priority, record)))),
    }
    None
}

impl Daemon {
    /// Takes the next call of request type `Q`, or the next other message,
    /// waiting for one. A call of another request type is refused on the
    /// spot (its caller gets
    /// [`TypeError::Rejected`](crate::endpoint::TypeError::Rejected)) and not
    /// returned.
    ///
    /// # Errors
    /// As [`Daemon::recv`], and [`Error::Type`] for a call of type `Q` whose
    /// body is not a valid `Q` (its caller is left to its timeout).
    pub fn recv_call<Q: Request>(&mut self) -> Result<Incoming<Q>, Error> {
        loop {
            let mut got = None;
            let foreign = self
                .receiver()
                .recv_copied(|from, priority, record| take::<Q>(&mut got, from, priority, record))?;
            match got {
                // Rebuilt from its parts: a move of the call's request and
                // responder, not a copy of the whole 136-byte result (sized
                // for a message) and the drop of what it left.
                Some(Ok(Incoming::Call(request, responder))) => return Ok(Incoming::Call(request, responder)),
                Some(got) => return got,
                None => self.refuse::<Q>(foreign),
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
            let mut got = None;
            let foreign = self.receiver().recv_timeout_copied(left, |from, priority, record| {
                take::<Q>(&mut got, from, priority, record)
            })?;
            if let Some(got) = got {
                return got;
            }
            self.refuse::<Q>(foreign);
        }
    }

    /// [`Daemon::recv_call`] without blocking the thread.
    ///
    /// # Errors
    /// As [`Daemon::recv_call`].
    pub async fn recv_call_async<Q: Request>(&mut self) -> Result<Incoming<Q>, Error> {
        loop {
            let mut got = None;
            let foreign = self
                .receiver()
                .recv_copied_async(|from, priority, record| take::<Q>(&mut got, from, priority, record))
                .await?;
            if let Some(got) = got {
                return got;
            }
            self.refuse::<Q>(foreign);
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

    /// Refuses a call of another request type, best effort: a caller whose
    /// ring is full, or who left, goes without (it times out as it would
    /// have).
    #[cold]
    fn refuse<Q: Request>(&mut self, foreign: Option<Foreign>) {
        if let Some((client, id, priority)) = foreign {
            let mut refusal = [0u8; envelope::HEADER];
            envelope::write(&mut refusal, Q::TAG, Kind::Refusal(id));
            let _ = self.try_send_to(client, priority, &refusal);
        }
    }
}
