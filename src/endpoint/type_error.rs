//! What a typed send, receive or call reports about the value itself.

use thiserror::Error as ThisError;

/// A typed message could not be encoded, or a received one is not the type
/// asked for. Carried by [`crate::Error::Type`].
///
/// A peer's bytes are untrusted: every way they can fail to be a `T` is one
/// of these, never a panic.
#[derive(Clone, PartialEq, Eq, ThisError)]
#[non_exhaustive]
pub enum TypeError {
    /// The message was not sent as a typed message (it is shorter than the
    /// 16-byte typed header, or its header is not one).
    #[error(
        "a message of {len} bytes is not a typed message: the peer sent raw bytes \
         (send(priority, bytes) rather than send(priority, &value)); read its payload()"
    )]
    NotTyped {
        /// Length of the message.
        len: usize,
    },

    /// The message carries another type.
    #[error(
        "expected a {expected} (tag {expected_tag:#018x}) but the message is tagged {found_tag:#018x}: \
         both sides must use the same type, with the same Typed::NAME and encoding"
    )]
    WrongType {
        /// The name of the type asked for.
        expected: &'static str,
        /// Its tag.
        expected_tag: u64,
        /// The tag the message carries.
        found_tag: u64,
    },

    /// A plain-data message whose length is not the type's size.
    #[error(
        "a {name} is {expected} bytes but the message holds {found}: the two sides disagree on \
         its layout (rebuild both from the same definition)"
    )]
    WrongLength {
        /// The type's name.
        name: &'static str,
        /// The type's size.
        expected: usize,
        /// The body's length.
        found: usize,
    },

    /// The body is not a valid encoding of the type.
    #[error("the message is not a valid {name}: {reason}; the peer is faulty or uses another definition")]
    Decode {
        /// The type's name.
        name: &'static str,
        /// What the decoder found.
        reason: String,
    },

    /// The value could not be encoded (its `Serialize` failed).
    #[error("a {name} could not be encoded: {reason}")]
    Encode {
        /// The type's name.
        name: &'static str,
        /// What the encoder said.
        reason: String,
    },

    /// The daemon answered the call with a refusal: it serves another
    /// request type.
    #[error(
        "the daemon refused the call (whose reply would be a {response}): it serves requests \
         tagged {served_tag:#018x}; call it with the request type it serves"
    )]
    Rejected {
        /// The response type the call expected.
        response: &'static str,
        /// The tag of the request type the daemon serves.
        served_tag: u64,
    },
}

debug_is_the_message!(TypeError);
