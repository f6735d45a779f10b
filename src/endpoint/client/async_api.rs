//! The client's async calls: the same reads, writes and waits as the
//! blocking ones, polled from a future that parks its task instead of the
//! thread (see `crate::wait::park`).

use std::pin::Pin;
use std::task::{Context, Poll};

use delegate::delegate;
use futures_core::Stream;

use super::{Client, ClientReceiver, ClientSender};
use crate::endpoint::channel::Deadline;
use crate::endpoint::in_place::trusting_peer;
use crate::endpoint::message::Message;
use crate::endpoint::outlet::Outlet;
use crate::endpoint::payload::{writer, Payload};
use crate::endpoint::task::{as_task, next_item};
use crate::endpoint::Error;
use crate::priority::Priority;
use crate::ring::RingBytes;
use crate::wait::Parking;

impl ClientSender {
    /// Sends `payload`, waiting without blocking the thread while the ring
    /// to the daemon is full, and wakes the daemon if it sleeps. A
    /// [`Fill`](crate::Fill)'s closure runs once, when there is room, inside
    /// the poll that completes.
    ///
    /// Cancellation-safe: a dropped future either sent the whole message
    /// (the poll that completed it) or sent nothing.
    ///
    /// # Errors
    /// As [`ClientSender::send`].
    pub async fn send_async(&mut self, priority: Priority, payload: impl Payload) -> Result<(), Error> {
        let len = payload.encoded_len()?;
        let (mut fill, mut until) = (Some(writer(payload)), Deadline::NEVER);
        as_task(|park| self.poll_publish(park, priority, len, &mut until, &mut fill)).await
    }
}

impl ClientReceiver {
    /// Takes the next message, waiting without blocking the thread:
    /// Critical before High before Low, FIFO within a tier.
    ///
    /// Cancellation-safe: a message is taken only in the poll that returns
    /// it, so a dropped future loses none and delivers none twice.
    ///
    /// # Errors
    /// As [`ClientReceiver::recv`]: [`Error::Disconnected`] within about
    /// 50 ms of the daemon's death or shutdown, once every message it sent
    /// has been received.
    pub async fn recv_async(&mut self) -> Result<Message, Error> {
        // Built where it is returned from (see `message::received`).
        let mut got = None;
        self.take_async(|p, b| Message::build_in(&mut got, p, b)).await?;
        got.ok_or(Error::Empty) // filled: the receive returned `Ok`
    }

    /// Waits without blocking the thread for the next message and passes it
    /// to `f` in place (zero-copy, trusting the daemon as
    /// [`ClientReceiver::try_recv_with`] says); `f` runs inside the poll that
    /// completes.
    ///
    /// # Errors
    /// As [`ClientReceiver::recv_async`].
    pub async fn recv_with_async<R>(&mut self, f: impl FnOnce(Priority, &[u8]) -> R) -> Result<R, Error> {
        self.take_async(|p, b| f(p, trusting_peer(b))).await
    }

    /// [`ClientReceiver::recv_with_async`] with the payload as the ring lends
    /// it (for the owned and typed receives, which copy it out).
    pub(crate) async fn take_async<R>(&mut self, f: impl FnOnce(Priority, RingBytes<'_>) -> R) -> Result<R, Error> {
        let (mut f, mut until) = (Some(f), Deadline::NEVER);
        as_task(|park| self.poll_recv(park, &mut until, &mut f)).await
    }

    /// The messages from the daemon as a [`Stream`] that borrows this half.
    pub fn stream(&mut self) -> ClientStream<'_> {
        ClientStream {
            rx: self,
            parking: Parking::default(),
        }
    }
}

/// The messages from the daemon as a [`Stream`], from
/// [`ClientReceiver::stream`] or [`Client::stream`]: each item is what
/// [`ClientReceiver::recv_async`] returns. The stream ends once the daemon is
/// gone and everything it sent has been received; other errors are items
/// (a poisoned channel yields its error every time: stop at the first `Err`).
/// Dropping it between items loses nothing.
///
/// ```
/// use futures_core::Stream;
/// # use memlink_shm::{Client, Daemon, Priority};
/// # fn is_stream(_: impl Stream<Item = Result<memlink_shm::Message, memlink_shm::Error>>) {}
/// # let name = format!("memlink-doc-stream-{}", std::process::id());
/// # let _daemon = Daemon::create(&name)?;
/// let mut client = Client::connect(&name)?;
/// is_stream(client.stream());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ClientStream<'a> {
    rx: &'a mut ClientReceiver,
    parking: Parking,
}

impl Stream for ClientStream<'_> {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let ClientStream { rx, parking } = self.get_mut();
        next_item(cx, parking, |park| {
            let mut until = Deadline::NEVER;
            rx.poll_recv(park, &mut until, &mut Some(Message::from_ring))
        })
    }
}

impl Client {
    delegate! {
        to self.tx {
            /// Sends `payload` without blocking the thread
            /// ([`ClientSender::send_async`]).
            ///
            /// # Errors
            /// As [`ClientSender::send`].
            pub async fn send_async(&mut self, priority: Priority, payload: impl Payload) -> Result<(), Error>;
        }
        to self.rx {
            /// Takes the next message without blocking the thread
            /// ([`ClientReceiver::recv_async`]).
            ///
            /// # Errors
            /// As [`ClientReceiver::recv_async`].
            pub async fn recv_async(&mut self) -> Result<Message, Error>;

            /// The messages from the daemon as a [`Stream`] ([`ClientReceiver::stream`]).
            pub fn stream(&mut self) -> ClientStream<'_>;
        }
    }
}
