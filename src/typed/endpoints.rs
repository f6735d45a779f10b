//! Typed sends and receives on the endpoints and their halves: a typed
//! record is written in place through `send_with`, so a send costs one
//! encode into the ring; a receive copies the record out of the ring with
//! atomic loads (`copied.rs`: to the stack up to 256 bytes) and decodes the
//! copy, so no decoder ever reads memory a peer can change.

use std::time::Duration;

use delegate::delegate;
use zerocopy::{FromBytes, Immutable, KnownLayout};

use super::envelope::Kind;
use super::{body_if, decode, is, record_len, write_record, Plain, Typed};
use crate::endpoint::{
    Client, ClientId, ClientMessage, ClientReceiver, ClientSender, Daemon, DaemonReceiver, DaemonSender, Message,
};
use crate::endpoint::{Error, TypeError};
use crate::priority::Priority;

/// Passes the plain-data `T` in `record` (a private copy of the ring's
/// record) to `f`: borrowed where it lies in the copy when aligned (a body
/// is at an 8-byte aligned offset of a 16-byte aligned copy), else copied
/// again first.
/// A record that is not a `T` leaves its error in `failed` (so that only
/// `f`'s result travels back through the receive path, as in [`taken`]).
#[inline(always)]
fn with_plain<T, R>(record: &[u8], f: impl FnOnce(&T) -> R, failed: &mut Option<TypeError>) -> Option<R>
where
    T: Typed<Encoding = Plain> + FromBytes + KnownLayout + Immutable,
{
    let Some(body) = body_if::<T>(record) else {
        *failed = decode::<T>(record).err();
        return None;
    };
    if let Ok(value) = T::ref_from_bytes(body) {
        return Some(f(value));
    }
    match T::read_from_bytes(body) {
        Ok(value) => Some(f(&value)),
        Err(_) => {
            *failed = Some(super::encoding::wrong_length::<T>(body.len()));
            None
        }
    }
}

/// The outcome of an in-place receive (see [`with_plain`]).
#[inline(always)]
fn plain_result<R>(r: Option<R>, failed: Option<TypeError>) -> Result<R, Error> {
    match (r, failed) {
        (Some(r), _) => Ok(r),
        (None, Some(e)) => Err(e.into()),
        (None, None) => Err(TypeError::NotTyped { len: 0 }.into()), // not reached
    }
}

/// The value a receive's closure decoded. The closure leaves it here rather
/// than returning it, so that only a unit (or a client id) travels back
/// through the layers of the receive path, not the value and its error.
#[inline(always)]
fn taken<T>(slot: Option<Result<T, TypeError>>) -> Result<T, Error> {
    match slot {
        Some(decoded) => Ok(decoded?),
        None => Err(TypeError::NotTyped { len: 0 }.into()), // not reached: a receive that succeeds ran the closure
    }
}

/// The outcome of a send whose closure left an encoding failure (if any)
/// in a slot, for the same reason as [`taken`].
#[inline(always)]
fn encoded(failed: Option<TypeError>) -> Result<(), Error> {
    match failed {
        None => Ok(()),
        Some(e) => Err(e.into()),
    }
}

impl ClientSender {
    /// Sends `value` as a typed message, encoded straight into the ring,
    /// waiting while the ring is full.
    ///
    /// # Errors
    /// As [`ClientSender::send`], and [`Error::Type`] if the value cannot be
    /// encoded.
    #[inline]
    pub fn send_typed<T: Typed>(&mut self, priority: Priority, value: &T) -> Result<(), Error> {
        let len = record_len(value)?;
        let mut failed = None;
        self.send_with(priority, len, |out| {
            failed = write_record(out, value, Kind::OneWay).err()
        })?;
        encoded(failed)
    }

    /// Sends `value` as a typed message if it fits now.
    ///
    /// # Errors
    /// As [`ClientSender::try_send`], and [`Error::Type`] if the value cannot
    /// be encoded.
    #[inline]
    pub fn try_send_typed<T: Typed>(&mut self, priority: Priority, value: &T) -> Result<(), Error> {
        let len = record_len(value)?;
        let mut failed = None;
        self.try_send_with(priority, len, |out| {
            failed = write_record(out, value, Kind::OneWay).err()
        })?;
        encoded(failed)
    }

    /// Sends `value` as a typed message without blocking the thread.
    /// Cancellation-safe as [`ClientSender::send_async`].
    ///
    /// # Errors
    /// As [`ClientSender::send_typed`].
    pub async fn send_typed_async<T: Typed>(&mut self, priority: Priority, value: &T) -> Result<(), Error> {
        let len = record_len(value)?;
        let mut failed = None;
        self.send_with_async(priority, len, |out| {
            failed = write_record(out, value, Kind::OneWay).err()
        })
        .await?;
        encoded(failed)
    }
}

impl ClientReceiver {
    /// Takes the next message and decodes it as a `T`, waiting for one.
    ///
    /// # Errors
    /// As [`ClientReceiver::recv`], and [`Error::Type`] when the message is
    /// not a `T` (it is consumed all the same: use [`ClientReceiver::recv`]
    /// and [`Message::decode`] to receive several types).
    pub fn recv_typed<T: Typed>(&mut self) -> Result<T, Error> {
        let mut slot = None;
        self.recv_copied(|_, record| slot = Some(decode::<T>(record)))?;
        taken(slot)
    }

    /// [`ClientReceiver::recv_typed`], waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`ClientReceiver::recv_timeout`] and [`ClientReceiver::recv_typed`].
    pub fn recv_typed_timeout<T: Typed>(&mut self, timeout: Duration) -> Result<T, Error> {
        let mut slot = None;
        self.recv_timeout_copied(timeout, |_, record| slot = Some(decode::<T>(record)))?;
        taken(slot)
    }

    /// [`ClientReceiver::recv_typed`] if a message is waiting.
    ///
    /// # Errors
    /// As [`ClientReceiver::try_recv`] and [`ClientReceiver::recv_typed`].
    pub fn try_recv_typed<T: Typed>(&mut self) -> Result<T, Error> {
        let mut slot = None;
        self.try_recv_copied(|_, record| slot = Some(decode::<T>(record)))?;
        taken(slot)
    }

    /// Passes the next plain-data `T` to `f` as a reference, waiting for
    /// it. The reference points into a private copy of the record (on the
    /// stack for records up to 256 bytes), never into the ring, so the
    /// daemon cannot change the value while `f` reads it.
    ///
    /// # Errors
    /// As [`ClientReceiver::recv_typed`].
    pub fn recv_typed_with<T, R>(&mut self, f: impl FnOnce(&T) -> R) -> Result<R, Error>
    where
        T: Typed<Encoding = Plain> + FromBytes + KnownLayout + Immutable,
    {
        let mut failed = None;
        let r = self.recv_copied(|_, record| with_plain(record, f, &mut failed))?;
        plain_result(r, failed)
    }

    /// [`ClientReceiver::recv_typed_with`] if a message is waiting.
    ///
    /// # Errors
    /// As [`ClientReceiver::try_recv`] and [`ClientReceiver::recv_typed`].
    pub fn try_recv_typed_with<T, R>(&mut self, f: impl FnOnce(&T) -> R) -> Result<R, Error>
    where
        T: Typed<Encoding = Plain> + FromBytes + KnownLayout + Immutable,
    {
        let mut failed = None;
        let r = self.try_recv_copied(|_, record| with_plain(record, f, &mut failed))?;
        plain_result(r, failed)
    }

    /// [`ClientReceiver::recv_typed`] without blocking the thread.
    /// Cancellation-safe as [`ClientReceiver::recv_async`].
    ///
    /// # Errors
    /// As [`ClientReceiver::recv_typed`].
    pub async fn recv_typed_async<T: Typed>(&mut self) -> Result<T, Error> {
        let mut slot = None;
        self.recv_copied_async(|_, record| slot = Some(decode::<T>(record)))
            .await?;
        taken(slot)
    }
}

impl DaemonSender {
    /// Sends `value` to `client` as a typed message, waiting while its ring
    /// is full.
    ///
    /// # Errors
    /// As [`DaemonSender::send_to`], and [`Error::Type`] if the value cannot
    /// be encoded.
    #[inline]
    pub fn send_typed_to<T: Typed>(&mut self, client: ClientId, priority: Priority, value: &T) -> Result<(), Error> {
        let len = record_len(value)?;
        let mut failed = None;
        self.send_to_with(client, priority, len, |out| {
            failed = write_record(out, value, Kind::OneWay).err()
        })?;
        encoded(failed)
    }

    /// Sends `value` to `client` as a typed message if it fits now.
    ///
    /// # Errors
    /// As [`DaemonSender::try_send_to`] and [`DaemonSender::send_typed_to`].
    #[inline]
    pub fn try_send_typed_to<T: Typed>(
        &mut self,
        client: ClientId,
        priority: Priority,
        value: &T,
    ) -> Result<(), Error> {
        let len = record_len(value)?;
        let mut failed = None;
        self.try_send_to_with(client, priority, len, |out| {
            failed = write_record(out, value, Kind::OneWay).err()
        })?;
        encoded(failed)
    }

    /// Sends `value` to every connected client as a typed message (encoded
    /// once).
    ///
    /// # Errors
    /// As [`DaemonSender::broadcast`] and [`DaemonSender::send_typed_to`].
    pub fn broadcast_typed<T: Typed>(&mut self, priority: Priority, value: &T) -> Result<(), Error> {
        let mut record = vec![0u8; record_len(value)?];
        write_record(&mut record, value, Kind::OneWay)?;
        self.broadcast(priority, &record)
    }

    /// [`DaemonSender::send_typed_to`] without blocking the thread.
    ///
    /// # Errors
    /// As [`DaemonSender::send_typed_to`].
    pub async fn send_typed_to_async<T: Typed>(
        &mut self,
        client: ClientId,
        priority: Priority,
        value: &T,
    ) -> Result<(), Error> {
        let len = record_len(value)?;
        let mut failed = None;
        self.send_to_with_async(client, priority, len, |out| {
            failed = write_record(out, value, Kind::OneWay).err()
        })
        .await?;
        encoded(failed)
    }
}

impl DaemonReceiver {
    /// Takes the next message and decodes it as a `T`: who sent it, and the
    /// value.
    ///
    /// # Errors
    /// As [`DaemonReceiver::recv`], and [`Error::Type`] when the message is
    /// not a `T` (consumed all the same).
    pub fn recv_typed<T: Typed>(&mut self) -> Result<(ClientId, T), Error> {
        let mut slot = None;
        let from = self.recv_copied(|from, _, record| {
            slot = Some(decode::<T>(record));
            from
        })?;
        Ok((from, taken(slot)?))
    }

    /// [`DaemonReceiver::recv_typed`], waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`DaemonReceiver::recv_timeout`] and [`DaemonReceiver::recv_typed`].
    pub fn recv_typed_timeout<T: Typed>(&mut self, timeout: Duration) -> Result<(ClientId, T), Error> {
        let mut slot = None;
        let from = self.recv_timeout_copied(timeout, |from, _, record| {
            slot = Some(decode::<T>(record));
            from
        })?;
        Ok((from, taken(slot)?))
    }

    /// [`DaemonReceiver::recv_typed`] if a message is waiting.
    ///
    /// # Errors
    /// As [`DaemonReceiver::try_recv`] and [`DaemonReceiver::recv_typed`].
    pub fn try_recv_typed<T: Typed>(&mut self) -> Result<(ClientId, T), Error> {
        let mut slot = None;
        let from = self.try_recv_copied(|from, _, record| {
            slot = Some(decode::<T>(record));
            from
        })?;
        Ok((from, taken(slot)?))
    }

    /// Passes the next plain-data `T` and its sender to `f` as a reference
    /// into a private copy of the record, as
    /// [`ClientReceiver::recv_typed_with`] does.
    ///
    /// # Errors
    /// As [`DaemonReceiver::recv_typed`].
    pub fn recv_typed_with<T, R>(&mut self, f: impl FnOnce(ClientId, &T) -> R) -> Result<R, Error>
    where
        T: Typed<Encoding = Plain> + FromBytes + KnownLayout + Immutable,
    {
        let mut failed = None;
        let r = self.recv_copied(|from, _, record| with_plain(record, |value| f(from, value), &mut failed))?;
        plain_result(r, failed)
    }

    /// [`DaemonReceiver::recv_typed_with`] if a message is waiting.
    ///
    /// # Errors
    /// As [`DaemonReceiver::try_recv`] and [`DaemonReceiver::recv_typed`].
    pub fn try_recv_typed_with<T, R>(&mut self, f: impl FnOnce(ClientId, &T) -> R) -> Result<R, Error>
    where
        T: Typed<Encoding = Plain> + FromBytes + KnownLayout + Immutable,
    {
        let mut failed = None;
        let r = self.try_recv_copied(|from, _, record| with_plain(record, |value| f(from, value), &mut failed))?;
        plain_result(r, failed)
    }

    /// [`DaemonReceiver::recv_typed`] without blocking the thread.
    ///
    /// # Errors
    /// As [`DaemonReceiver::recv_typed`].
    pub async fn recv_typed_async<T: Typed>(&mut self) -> Result<(ClientId, T), Error> {
        let mut slot = None;
        let from = self
            .recv_copied_async(|from, _, record| {
                slot = Some(decode::<T>(record));
                from
            })
            .await?;
        Ok((from, taken(slot)?))
    }
}

impl Client {
    delegate! {
        to self.sender_mut() {
            /// Sends `value` as a typed message ([`ClientSender::send_typed`]).
            ///
            /// # Errors
            /// As [`ClientSender::send_typed`].
            pub fn send_typed<T: Typed>(&mut self, priority: Priority, value: &T) -> Result<(), Error>;

            /// [`ClientSender::try_send_typed`].
            ///
            /// # Errors
            /// As [`ClientSender::try_send_typed`].
            pub fn try_send_typed<T: Typed>(&mut self, priority: Priority, value: &T) -> Result<(), Error>;

            /// [`ClientSender::send_typed_async`].
            ///
            /// # Errors
            /// As [`ClientSender::send_typed`].
            pub async fn send_typed_async<T: Typed>(&mut self, priority: Priority, value: &T) -> Result<(), Error>;
        }
        to self.receiver_mut() {
            /// Takes the next message as a `T` ([`ClientReceiver::recv_typed`]).
            ///
            /// # Errors
            /// As [`ClientReceiver::recv_typed`].
            pub fn recv_typed<T: Typed>(&mut self) -> Result<T, Error>;

            /// [`ClientReceiver::recv_typed_timeout`].
            ///
            /// # Errors
            /// As [`ClientReceiver::recv_typed_timeout`].
            pub fn recv_typed_timeout<T: Typed>(&mut self, timeout: Duration) -> Result<T, Error>;

            /// [`ClientReceiver::try_recv_typed`].
            ///
            /// # Errors
            /// As [`ClientReceiver::try_recv_typed`].
            pub fn try_recv_typed<T: Typed>(&mut self) -> Result<T, Error>;

            /// Passes the next plain-data `T` to `f` by reference
            /// ([`ClientReceiver::recv_typed_with`]).
            ///
            /// # Errors
            /// As [`ClientReceiver::recv_typed`].
            pub fn recv_typed_with<T: Typed<Encoding = Plain> + FromBytes + KnownLayout + Immutable, R>(&mut self, f: impl FnOnce(&T) -> R) -> Result<R, Error>;

            /// [`ClientReceiver::try_recv_typed_with`].
            ///
            /// # Errors
            /// As [`ClientReceiver::try_recv_typed_with`].
            pub fn try_recv_typed_with<T: Typed<Encoding = Plain> + FromBytes + KnownLayout + Immutable, R>(&mut self, f: impl FnOnce(&T) -> R) -> Result<R, Error>;

            /// [`ClientReceiver::recv_typed_async`].
            ///
            /// # Errors
            /// As [`ClientReceiver::recv_typed`].
            pub async fn recv_typed_async<T: Typed>(&mut self) -> Result<T, Error>;
        }
    }
}

impl Daemon {
    delegate! {
        to self.sender() {
            /// Sends `value` to `client` as a typed message
            /// ([`DaemonSender::send_typed_to`]).
            ///
            /// # Errors
            /// As [`DaemonSender::send_typed_to`].
            pub fn send_typed_to<T: Typed>(&mut self, client: ClientId, priority: Priority, value: &T) -> Result<(), Error>;

            /// [`DaemonSender::try_send_typed_to`].
            ///
            /// # Errors
            /// As [`DaemonSender::try_send_typed_to`].
            pub fn try_send_typed_to<T: Typed>(&mut self, client: ClientId, priority: Priority, value: &T) -> Result<(), Error>;

            /// [`DaemonSender::broadcast_typed`].
            ///
            /// # Errors
            /// As [`DaemonSender::broadcast_typed`].
            pub fn broadcast_typed<T: Typed>(&mut self, priority: Priority, value: &T) -> Result<(), Error>;

            /// [`DaemonSender::send_typed_to_async`].
            ///
            /// # Errors
            /// As [`DaemonSender::send_typed_to`].
            pub async fn send_typed_to_async<T: Typed>(&mut self, client: ClientId, priority: Priority, value: &T) -> Result<(), Error>;
        }
        to self.receiver() {
            /// Takes the next message as a `T`, with its sender
            /// ([`DaemonReceiver::recv_typed`]).
            ///
            /// # Errors
            /// As [`DaemonReceiver::recv_typed`].
            pub fn recv_typed<T: Typed>(&mut self) -> Result<(ClientId, T), Error>;

            /// [`DaemonReceiver::recv_typed_timeout`].
            ///
            /// # Errors
            /// As [`DaemonReceiver::recv_typed_timeout`].
            pub fn recv_typed_timeout<T: Typed>(&mut self, timeout: Duration) -> Result<(ClientId, T), Error>;

            /// [`DaemonReceiver::try_recv_typed`].
            ///
            /// # Errors
            /// As [`DaemonReceiver::try_recv_typed`].
            pub fn try_recv_typed<T: Typed>(&mut self) -> Result<(ClientId, T), Error>;

            /// [`DaemonReceiver::recv_typed_with`].
            ///
            /// # Errors
            /// As [`DaemonReceiver::recv_typed`].
            pub fn recv_typed_with<T: Typed<Encoding = Plain> + FromBytes + KnownLayout + Immutable, R>(&mut self, f: impl FnOnce(ClientId, &T) -> R) -> Result<R, Error>;

            /// [`DaemonReceiver::try_recv_typed_with`].
            ///
            /// # Errors
            /// As [`DaemonReceiver::try_recv_typed_with`].
            pub fn try_recv_typed_with<T: Typed<Encoding = Plain> + FromBytes + KnownLayout + Immutable, R>(&mut self, f: impl FnOnce(ClientId, &T) -> R) -> Result<R, Error>;

            /// [`DaemonReceiver::recv_typed_async`].
            ///
            /// # Errors
            /// As [`DaemonReceiver::recv_typed`].
            pub async fn recv_typed_async<T: Typed>(&mut self) -> Result<(ClientId, T), Error>;
        }
    }
}

impl Message {
    /// Decodes this message as a `T` (sent with `send_typed`).
    ///
    /// # Errors
    /// [`TypeError`] when it is not a `T`.
    pub fn decode<T: Typed>(&self) -> Result<T, TypeError> {
        decode::<T>(self.payload())
    }

    /// Whether this message is tagged as a `T` (to dispatch on its type).
    pub fn is<T: Typed>(&self) -> bool {
        is::<T>(self.payload())
    }
}

impl ClientMessage {
    /// Decodes this message as a `T` (sent with `send_typed`).
    ///
    /// # Errors
    /// [`TypeError`] when it is not a `T`.
    pub fn decode<T: Typed>(&self) -> Result<T, TypeError> {
        decode::<T>(self.payload())
    }

    /// Whether this message is tagged as a `T` (to dispatch on its type).
    pub fn is<T: Typed>(&self) -> bool {
        is::<T>(self.payload())
    }
}
