//! Received messages and client ids.

use std::fmt;

use crate::endpoint::Error;
use crate::priority::Priority;
use crate::slot::ClientId;

/// Payloads up to this size are stored inline: receiving them does not
/// allocate. Chosen so that a `Message` is 128 bytes (two cache lines).
const INLINE: usize = 118;

#[derive(Clone)]
enum Payload {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<[u8]>),
}

/// A message a [`crate::Client`] received: its tier and its bytes.
///
/// Payloads of up to 118 bytes are kept inline, so receiving a small message
/// does not allocate.
#[derive(Clone)]
pub struct Message {
    priority: Priority,
    payload: Payload,
}

impl Message {
    /// A message of `bytes` on tier `priority`, as [`crate::Client::recv`]
    /// returns it: for endpoints built on other transports (the Zenoh bridge's
    /// remote client) and for tests.
    ///
    /// ```
    /// use memlink_shm::{Message, Priority};
    /// let m = Message::new(Priority::Low, b"hi");
    /// assert_eq!((m.priority(), m.payload()), (Priority::Low, &b"hi"[..]));
    /// ```
    #[inline]
    pub fn new(priority: Priority, bytes: &[u8]) -> Message {
        let mut m = Message::empty(priority);
        m.set(bytes);
        m
    }

    /// Builds a message of `bytes` in `slot` (see [`received`]).
    #[inline]
    pub(crate) fn build_in(slot: &mut Option<Message>, priority: Priority, bytes: &[u8]) {
        slot.insert(Message::empty(priority)).set(bytes);
    }

    /// An empty message, to be filled in place by [`Message::set`].
    #[inline(always)]
    fn empty(priority: Priority) -> Message {
        Message {
            priority,
            payload: Payload::Inline {
                len: 0,
                bytes: [0; INLINE],
            },
        }
    }

    /// Sets the bytes of a message [`Message::empty`] made.
    #[inline(always)]
    fn set(&mut self, bytes: &[u8]) {
        match &mut self.payload {
            Payload::Inline { len, bytes: inline } if bytes.len() <= INLINE => {
                inline[..bytes.len()].copy_from_slice(bytes);
                *len = bytes.len() as u8;
            }
            payload => *payload = Payload::Heap(bytes.into()),
        }
    }

    /// The tier it was sent on.
    pub fn priority(&self) -> Priority {
        self.priority
    }

    /// Its bytes.
    pub fn payload(&self) -> &[u8] {
        match &self.payload {
            Payload::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Payload::Heap(b) => b,
        }
    }

    /// Its bytes, owned.
    pub fn into_payload(self) -> Vec<u8> {
        match self.payload {
            Payload::Inline { len, bytes } => bytes[..usize::from(len)].to_vec(),
            Payload::Heap(b) => b.into_vec(),
        }
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("priority", &self.priority)
            .field("len", &self.payload().len())
            .finish()
    }
}

/// A message the [`crate::Daemon`] received, and who sent it: answer with
/// [`crate::Daemon::send_to`]`(msg.client(), ..)`.
#[derive(Debug, Clone)]
pub struct ClientMessage {
    client: ClientId,
    message: Message,
}

impl ClientMessage {
    #[inline]
    pub(crate) fn new(client: ClientId, priority: Priority, bytes: &[u8]) -> ClientMessage {
        ClientMessage {
            client,
            message: Message::new(priority, bytes),
        }
    }

    /// Builds a message from `client` in `slot` (see [`received`]).
    #[inline]
    pub(crate) fn build_in(slot: &mut Option<ClientMessage>, client: ClientId, priority: Priority, bytes: &[u8]) {
        slot.insert(ClientMessage {
            client,
            message: Message::empty(priority),
        })
        .message
        .set(bytes);
    }

    /// The client that sent it.
    pub fn client(&self) -> ClientId {
        self.client
    }

    /// The tier it was sent on.
    pub fn priority(&self) -> Priority {
        self.message.priority()
    }

    /// Its bytes.
    pub fn payload(&self) -> &[u8] {
        self.message.payload()
    }

    /// The message without its sender.
    pub fn into_message(self) -> Message {
        self.message
    }

    /// Its bytes, owned.
    pub fn into_payload(self) -> Vec<u8> {
        self.message.into_payload()
    }
}

/// Runs a receive of an owned message: `recv` hands the message it finds
/// to the closure it was given, which builds it with `build_in` in the slot
/// passed here. (Returned up through every layer's result instead, a
/// 128-byte message was copied five times.)
#[inline(always)]
pub(crate) fn received<T>(recv: impl FnOnce(&mut Option<T>) -> Result<(), Error>) -> Result<T, Error> {
    let mut slot = None;
    recv(&mut slot)?;
    // `recv` returned `Ok`: its closure ran and filled the slot.
    slot.ok_or(Error::Empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_two_cache_lines() {
        assert!(
            std::mem::size_of::<Message>() <= 128,
            "{}",
            std::mem::size_of::<Message>()
        );
    }

    #[test]
    fn payloads_round_trip_inline_and_on_the_heap() {
        for len in [0, 1, INLINE - 1, INLINE, INLINE + 1, 4096] {
            let bytes: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let m = Message::new(Priority::Low, &bytes);
            assert_eq!(m.payload(), &bytes[..]);
            assert_eq!(matches!(m.payload, Payload::Inline { .. }), len <= INLINE);
            assert_eq!(m.into_payload(), bytes);
        }
    }
}
