//! Received messages and client ids.

use std::fmt;
use std::mem::MaybeUninit;

use crate::endpoint::fault::Op;
use crate::endpoint::Error;
use crate::priority::Priority;
use crate::ring::RingBytes;
use crate::slot::ClientId;

/// Payloads up to this size are stored inline: receiving them does not
/// allocate. Chosen so that a `Message` is 128 bytes (two cache lines).
const INLINE: usize = 118;

/// Invariant: the first `len` bytes of an inline payload are initialised
/// (`len <= INLINE`); the others are never read. Not zeroed first: a
/// receive writes each byte once, with the copy out of the ring.
#[derive(Clone)]
enum Payload {
    Inline { len: u8, bytes: [MaybeUninit<u8>; INLINE] },
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

    /// Builds a message of the bytes lent by the ring in `slot` (see
    /// [`received`]), copying them out with atomic loads: a `Message` never
    /// points into memory a peer can write.
    #[inline]
    pub(crate) fn build_in(slot: &mut Option<Message>, priority: Priority, bytes: RingBytes<'_>) {
        empty_slot(slot, Message::empty(priority)).copy_from_ring(bytes);
    }

    /// A message of the bytes the ring lent, copied out (as `build_in`).
    #[cfg(not(loom))]
    #[inline]
    pub(crate) fn from_ring(priority: Priority, bytes: RingBytes<'_>) -> Message {
        let mut m = Message::empty(priority);
        m.copy_from_ring(bytes);
        m
    }

    /// Sets the bytes of a message [`Message::empty`] made to a copy of
    /// those the ring lent.
    #[inline(always)]
    fn copy_from_ring(&mut self, bytes: RingBytes<'_>) {
        match &mut self.payload {
            Payload::Inline { len, bytes: inline } if bytes.len() <= INLINE => {
                bytes.copy_to_uninit(inline);
                *len = bytes.len() as u8;
            }
            payload => *payload = Payload::Heap(bytes.to_boxed()),
        }
    }

    /// An empty message, to be filled in place by [`Message::set`].
    #[inline(always)]
    fn empty(priority: Priority) -> Message {
        Message {
            priority,
            payload: Payload::Inline {
                len: 0,
                // Not `[MaybeUninit::uninit(); INLINE]`: that repeat is
                // compiled to a fill of all 118 bytes with whatever a
                // register holds, as costly as zeroing them.
                // SAFETY: an array of `MaybeUninit` needs no initialisation.
                bytes: unsafe { MaybeUninit::<[MaybeUninit<u8>; INLINE]>::uninit().assume_init() },
            },
        }
    }

    /// Sets the bytes of a message [`Message::empty`] made.
    #[inline(always)]
    fn set(&mut self, bytes: &[u8]) {
        match &mut self.payload {
            Payload::Inline { len, bytes: inline } if bytes.len() <= INLINE => {
                // SAFETY: `bytes` fits in `inline` (checked above), a buffer
                // of its own; `MaybeUninit<u8>` has the layout of `u8`.
                unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), inline.as_mut_ptr().cast::<u8>(), bytes.len()) };
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
            Payload::Inline { len, bytes } => {
                let bytes = &bytes[..usize::from(*len)];
                // SAFETY: the first `len` inline bytes are initialised (the
                // type's invariant), and `MaybeUninit<u8>` has the layout of `u8`.
                unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<u8>(), bytes.len()) }
            }
            Payload::Heap(b) => b,
        }
    }

    /// Its bytes, owned.
    pub fn into_payload(self) -> Vec<u8> {
        match self.payload {
            Payload::Inline { .. } => self.payload().to_vec(),
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
    /// A message from `client` of `bytes` (for the typed layer's calls).
    #[cfg(not(loom))]
    #[inline]
    pub(crate) fn new(client: ClientId, priority: Priority, bytes: &[u8]) -> ClientMessage {
        ClientMessage {
            client,
            message: Message::new(priority, bytes),
        }
    }

    /// A message from `client` of the bytes the ring lent, copied out.
    #[cfg(not(loom))]
    #[inline]
    pub(crate) fn from_ring(client: ClientId, priority: Priority, bytes: RingBytes<'_>) -> ClientMessage {
        ClientMessage {
            client,
            message: Message::from_ring(priority, bytes),
        }
    }

    /// Builds a message from `client` in `slot` (see [`received`]), copied
    /// out of the ring as [`Message::build_in`] does.
    #[inline]
    pub(crate) fn build_in(
        slot: &mut Option<ClientMessage>,
        client: ClientId,
        priority: Priority,
        bytes: RingBytes<'_>,
    ) {
        empty_slot(
            slot,
            ClientMessage {
                client,
                message: Message::empty(priority),
            },
        )
        .message
        .copy_from_ring(bytes);
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

/// Puts `value` in `slot`, which the receive passed empty, and returns it
/// there: `Option::insert` without its drop of what the slot held (an
/// owned receive costs 5 instructions less: `send_recv_owned` in
/// `examples/instructions.rs`). Every receive passes a fresh `None`
/// (`received`, `taken`, the daemon's `try_recv`, the async receives), so
/// nothing is leaked by forgetting it.
#[inline(always)]
fn empty_slot<T>(slot: &mut Option<T>, value: T) -> &mut T {
    debug_assert!(slot.is_none());
    std::mem::forget(slot.replace(value));
    match slot {
        Some(value) => value,
        None => unreachable!("filled just above"),
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

/// [`received`] for a receive that does not wait, on the engine's result
/// (`Ok(None)`: nothing waiting), which comes back in registers where an
/// [`Error`] would come back through memory.
#[inline(always)]
pub(crate) fn taken<T>(recv: impl FnOnce(&mut Option<T>) -> Op<Option<()>>) -> Result<T, Error> {
    let mut slot = None;
    match recv(&mut slot) {
        // `Some`: the closure ran and filled the slot; `None`: nothing waiting.
        Ok(_) => slot.ok_or(Error::Empty),
        Err(f) => Err(f.into_error()),
    }
}

/// Results of a receive's closure up to this size come back through every
/// layer's result as they are (in registers, or a copy or two); a larger
/// one is written into a slot once and moved out of it once (returned, an
/// 80-byte result was copied four times on its way up).
pub(crate) const DIRECT: usize = 64;

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

    /// Eight-byte aligned storage standing for a record in a ring.
    #[repr(align(8))]
    struct Record([u8; 4104]);

    #[test]
    fn a_received_message_is_a_copy_the_peer_cannot_change() {
        for len in [1, 7, 64, INLINE, INLINE + 1, 4096] {
            let mut rec = Record([0; 4104]);
            rec.0[..len].fill(0xA5);
            let start = std::ptr::NonNull::from(&mut rec.0).cast::<u8>();
            // SAFETY: `rec` is 8-aligned and holds `len` bytes padded to 8;
            // it outlives `bytes`, and nothing writes it while `bytes` is used.
            let bytes = unsafe { RingBytes::new(start, len) };
            let mut m = None;
            Message::build_in(&mut m, Priority::High, bytes);
            let m = m.expect("built");
            let mut slot = None;
            ClientMessage::build_in(&mut slot, ClientId { slot: 3, generation: 1 }, Priority::Low, bytes);
            // The "peer" rewrites the record after the receive.
            rec.0.fill(0x5A);
            assert!(m.payload().iter().all(|&b| b == 0xA5) && m.payload().len() == len);
            let cm = slot.expect("built");
            assert!(cm.payload().iter().all(|&b| b == 0xA5) && cm.payload().len() == len);
        }
    }
}
