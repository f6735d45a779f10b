//! Typed values as payloads: `send(priority, &value)` encodes the value
//! straight into the ring (one encode, no intermediate buffer), and a
//! received [`Message`] or [`ClientMessage`] decodes its private copy of the
//! record, so no decoder ever reads memory a peer can change.

use super::envelope::Kind;
use super::{decode, is, record_len, write_record, Typed};
use crate::endpoint::{ClientMessage, Encode, Encoded, Message, TypeError};

/// A typed value and the kind of record it travels in (a message, a call,
/// a reply): the payload the call layer sends.
pub(crate) struct Record<'a, T> {
    pub(crate) value: &'a T,
    pub(crate) kind: Kind,
}

impl<T: Typed> Encode for Record<'_, T> {
    #[inline(always)]
    fn encoded_len(&self) -> Result<usize, TypeError> {
        record_len(self.value)
    }

    type Written = Encoded;

    #[inline(always)]
    fn encode_into(self, out: &mut [u8]) -> Encoded {
        write_record(out, self.value, self.kind)
    }
}

/// A typed value sent as a one-way message.
impl<T: Typed> Encode for &T {
    #[inline(always)]
    fn encoded_len(&self) -> Result<usize, TypeError> {
        record_len(*self)
    }

    type Written = Encoded;

    #[inline(always)]
    fn encode_into(self, out: &mut [u8]) -> Encoded {
        write_record(out, self, Kind::OneWay)
    }
}

/// `decode` and `is` on a received message type.
macro_rules! typed_messages {
    ($($t:ty),*) => {$(
        impl $t {
            /// Decodes this message as a `T` (sent as `send(priority, &value)`).
            ///
            /// # Errors
            /// [`TypeError`] when it is not a `T`.
            #[inline]
            pub fn decode<T: Typed>(&self) -> Result<T, TypeError> {
                decode::<T>(self.payload())
            }

            /// Whether this message is tagged as a `T` (to dispatch on its type).
            pub fn is<T: Typed>(&self) -> bool {
                is::<T>(self.payload())
            }
        }
    )*};
}

typed_messages!(Message, ClientMessage);
