//! The daemon's async calls: the same reads, writes and waits as the
//! blocking ones, polled from a future that parks its task instead of the
//! thread (see `crate::wait::park`).

use std::pin::Pin;
use std::task::{Context, Poll};

use delegate::delegate;
use futures_core::Stream;

use super::table::signal_all;
use super::{Daemon, DaemonReceiver, DaemonSender};
use crate::endpoint::channel::Deadline;
use crate::endpoint::fault::Fault;
use crate::endpoint::in_place::trusting_peer;
use crate::endpoint::message::ClientMessage;
use crate::endpoint::outlet::Outlet;
use crate::endpoint::payload::{writer, Payload};
use crate::endpoint::task::{as_task, next_item};
use crate::endpoint::Error;
use crate::priority::Priority;
use crate::ring::RingBytes;
use crate::slot::ClientId;
use crate::wait::Parking;

impl DaemonReceiver {
    /// Takes the next message from any client, waiting without blocking the
    /// thread (same order as [`DaemonReceiver::recv`]).
    ///
    /// Cancellation-safe: a message is taken only in the poll that returns
    /// it, so a dropped future loses none and delivers none twice.
    ///
    /// # Errors
    /// As [`DaemonReceiver::recv`].
    pub async fn recv_async(&mut self) -> Result<ClientMessage, Error> {
        // Built where it is returned from (see `message::received`).
        let mut got = None;
        self.take_async(|c, p, b| ClientMessage::build_in(&mut got, c, p, b))
            .await?;
        got.ok_or(Error::Empty) // filled: the receive returned `Ok`
    }

    /// Waits without blocking the thread for the next message and passes it,
    /// with its sender, to `f` in place (trusting the client, as
    /// [`DaemonReceiver::try_recv_with`] says); `f` runs inside the poll that
    /// completes.
    ///
    /// # Errors
    /// As [`DaemonReceiver::recv`].
    pub async fn recv_with_async<R>(&mut self, f: impl FnOnce(ClientId, Priority, &[u8]) -> R) -> Result<R, Error> {
        self.take_async(|c, p, b| f(c, p, trusting_peer(b))).await
    }

    /// [`DaemonReceiver::recv_with_async`] with the payload as the ring lends
    /// it (for the owned and typed receives, which copy it out).
    pub(crate) async fn take_async<R>(
        &mut self,
        f: impl FnOnce(ClientId, Priority, RingBytes<'_>) -> R,
    ) -> Result<R, Error> {
        let (mut f, mut until) = (Some(f), Deadline::NEVER);
        as_task(|park| self.poll_recv(park, &mut until, &mut f)).await
    }
}

impl DaemonSender {
    /// Sends `payload` to one client, waiting without blocking the thread
    /// while its ring is full, and wakes it.
    ///
    /// Cancellation-safe: a dropped future either sent the whole message or
    /// sent nothing.
    ///
    /// # Errors
    /// As [`DaemonSender::send_to`]: a client that dies while the ring is
    /// full ends the wait with [`Error::UnknownClient`] within about 50 ms.
    pub async fn send_to_async(
        &mut self,
        client: ClientId,
        priority: Priority,
        payload: impl Payload,
    ) -> Result<(), Error> {
        let len = payload.encoded_len()?;
        let (mut fill, mut until) = (Some(writer(payload)), Deadline::NEVER);
        as_task(|park| {
            self.tx
                .to(client)
                .poll_publish(park, priority, len, &mut until, &mut fill)
        })
        .await
    }

    /// Sends `payload` to every connected client, or to none, waiting
    /// without blocking the thread while any of their rings is full (as
    /// [`DaemonSender::broadcast`]).
    ///
    /// # Errors
    /// As [`DaemonSender::broadcast`].
    pub async fn broadcast_async(&mut self, priority: Priority, payload: impl Payload) -> Result<(), Error> {
        let data = payload.bytes()?;
        let mut until = Deadline::NEVER;
        as_task(|park| self.tx.poll_write_all(park, priority, &data, &mut until))
            .await
            .map_err(Fault::into_error)?;
        signal_all(self.tx.segment(), self.tx.shard());
        Ok(())
    }
}

impl Daemon {
    delegate! {
        to self.receiver() {
            /// Takes the next message without blocking the thread
            /// ([`DaemonReceiver::recv_async`]).
            ///
            /// # Errors
            /// As [`DaemonReceiver::recv`].
            pub async fn recv_async(&mut self) -> Result<ClientMessage, Error>;
        }
        to self.sender() {
            /// Sends `payload` to one client without blocking the thread
            /// ([`DaemonSender::send_to_async`]).
            ///
            /// # Errors
            /// As [`DaemonSender::send_to_async`].
            pub async fn send_to_async(&mut self, client: ClientId, priority: Priority, payload: impl Payload) -> Result<(), Error>;
        }
    }
}

impl Daemon {
    /// The messages of every client as a [`Stream`] that borrows the daemon.
    pub fn stream(&mut self) -> DaemonStream<'_> {
        DaemonStream {
            daemon: self,
            parking: Parking::default(),
        }
    }
}

/// The messages of every client as a [`Stream`], from [`Daemon::stream`]:
/// each item is what [`Daemon::recv_async`] returns. The stream ends when
/// the daemon shuts down; other errors are items (a corrupt client's error
/// is yielded once, then the others are served). Dropping it between items
/// loses nothing.
#[derive(Debug)]
pub struct DaemonStream<'a> {
    daemon: &'a mut Daemon,
    parking: Parking,
}

impl Stream for DaemonStream<'_> {
    type Item = Result<ClientMessage, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let DaemonStream { daemon, parking } = self.get_mut();
        next_item(cx, parking, |park| {
            let mut until = Deadline::NEVER;
            daemon
                .receiver()
                .poll_recv(park, &mut until, &mut Some(ClientMessage::from_ring))
        })
    }
}
