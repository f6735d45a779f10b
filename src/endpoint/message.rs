//! Received messages and client ids.

use std::fmt;

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
        let payload = if bytes.len() <= INLINE {
            let mut inline = [0u8; INLINE];
            inline[..bytes.len()].copy_from_slice(bytes);
            Payload::Inline {
                len: bytes.len() as u8,
                bytes: inline,
            }
        } else {
            Payload::Heap(bytes.into())
        };
        Message { priority, payload }
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
