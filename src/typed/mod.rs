//! Typed messages and request/response, over the byte endpoints.
//!
//! A type travels as a typed message once it implements [`Typed`]: a name
//! both sides agree on and an [`Encoding`], either [`Plain`] (a `#[repr(C)]`
//! type deriving zerocopy's traits, written in place, read from a copy) or
//! `Postcard` (any serde type, feature `serde`). Each record starts with a
//! 16-byte header: a 64-bit tag made from the name and the encoding's shape
//! (for plain data, the size and alignment), then the record's kind and call
//! id. A receiver checks the tag before it decodes, so a peer that sends
//! another type, or the same name with another layout, is caught at the
//! first message as [`TypeError::WrongType`], never misread. The body
//! follows at an 8-byte aligned offset.
//!
//! - A typed value is a [`Payload`](crate::Payload): every send takes
//!   `&value` as it takes bytes (`client.send(priority, &value)`,
//!   `daemon.send_to(..)`, `broadcast`, batches, every waiting mode), and
//!   every receive returns a message that
//!   [`Message::decode`](crate::Message::decode)s it (dispatch on the type
//!   with [`Message::is`](crate::Message::is)); [`decode`] reads one from
//!   bytes taken in place with `recv_with`.
//! - Request/response: a [`Request`] names its response type. A client
//!   wraps itself in a [`Caller`] for [`Caller::call`] (many calls may be
//!   outstanding: [`Caller::start`] / [`Caller::finish`]); the daemon answers
//!   with [`Daemon::serve`](crate::Daemon::serve), or takes calls one by one
//!   with [`Daemon::recv_call`](crate::Daemon::recv_call) and answers through
//!   a [`Responder`], later or from another thread.
//!
//! ```
//! use memlink_shm::typed::{Plain, Typed};
//! use memlink_shm::{Client, Daemon, Priority};
//! use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
//!
//! #[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Debug, PartialEq)]
//! #[repr(C)]
//! struct Reading {
//!     sensor: u32,
//!     flags: u32,
//!     value: f64,
//! }
//!
//! impl Typed for Reading {
//!     const NAME: &'static str = "example.Reading";
//!     type Encoding = Plain;
//! }
//!
//! # let name = format!("memlink-doc-typed-{}", std::process::id());
//! let mut daemon = Daemon::create(&name)?;
//! let mut client = Client::connect(&name)?;
//! client.send(Priority::High, &Reading { sensor: 7, flags: 0, value: 21.5 })?;
//! let msg = daemon.recv()?;
//! let reading: Reading = msg.decode()?;
//! assert_eq!((msg.client(), reading.value), (client.control().id(), 21.5));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod call;
mod copied;
mod encoding;
pub(crate) mod envelope;
mod payload;
mod serve;

pub use call::{Caller, Pending};
#[cfg(feature = "serde")]
pub use encoding::Postcard;
pub use encoding::{Encoding, Plain};
pub use serve::{Incoming, Responder};

use crate::endpoint::TypeError;
use envelope::{Kind, HEADER};

/// A type that travels as a typed message.
///
/// ```
/// use memlink_shm::typed::{Plain, Typed};
/// # use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
/// # #[derive(FromBytes, IntoBytes, KnownLayout, Immutable)]
/// # #[repr(C)]
/// # struct Tick { at: u64 }
/// impl Typed for Tick {
///     const NAME: &'static str = "clock.Tick"; // the same in every program
///     type Encoding = Plain;
/// }
/// ```
pub trait Typed: Sized {
    /// The type's name on the wire: both sides must use the same one. A
    /// stable, namespaced string ("service.Type") rather than the Rust path,
    /// which changes when code moves.
    const NAME: &'static str;

    /// How values are encoded: [`Plain`] or `Postcard`.
    type Encoding: Encoding<Self>;

    /// The tag records of this type carry (from [`Typed::NAME`] and the
    /// encoding's shape). Leave it to its default.
    const TAG: u64 = envelope::tag_of(Self::NAME, <Self::Encoding as Encoding<Self>>::SHAPE);
}

/// A request of a call: names the type of its response.
pub trait Request: Typed {
    /// What the daemon answers.
    type Response: Typed;
}

/// The length of the record that carries `value`.
#[inline(always)]
pub(crate) fn record_len<T: Typed>(value: &T) -> Result<usize, TypeError> {
    Ok(HEADER + T::Encoding::encoded_len(value)?)
}

/// Writes the record of `value` into `out` (`record_len` bytes). On an
/// encoding failure the record goes out untagged: a receiver sees
/// [`TypeError::NotTyped`], never a half-written value.
#[inline(always)]
pub(crate) fn write_record<T: Typed>(out: &mut [u8], value: &T, kind: Kind) -> crate::endpoint::Encoded {
    envelope::write(out, T::TAG, kind);
    match T::Encoding::encode(value, &mut out[HEADER..]) {
        Ok(()) => Ok(()),
        Err(e) => Err(untagged(out, e)),
    }
}

/// A record whose value failed to encode goes out untagged.
#[cold]
fn untagged(out: &mut [u8], e: TypeError) -> Box<TypeError> {
    out[..8].fill(0);
    Box::new(e)
}

/// Checks that `record` carries a `T` and returns its kind and body.
#[inline(always)]
pub(crate) fn body_of<T: Typed>(record: &[u8]) -> Result<(Kind, &[u8]), TypeError> {
    let (tag, kind, body) = envelope::read(record)?;
    if tag != T::TAG {
        return Err(TypeError::WrongType {
            expected: T::NAME,
            expected_tag: T::TAG,
            found_tag: tag,
        });
    }
    Ok((kind, body))
}

/// Decodes the `T` in a typed record, whatever its kind (a message, a call
/// or a reply): for bytes taken with `recv_with` or read elsewhere. The bytes
/// are untrusted; anything that is not a `T` is an error.
///
/// # Errors
/// [`TypeError::NotTyped`], [`TypeError::WrongType`],
/// [`TypeError::WrongLength`] or [`TypeError::Decode`].
#[inline(always)]
pub fn decode<T: Typed>(record: &[u8]) -> Result<T, TypeError> {
    match body_if::<T>(record) {
        Some(body) => T::Encoding::decode(body),
        None => Err(not_a::<T>(record)),
    }
}

/// The body of `record` if it is a marked record tagged as a `T` (the tag is
/// never 0, so never an untyped record), whatever its kind: the common case
/// of a receive, checked first.
#[inline(always)]
pub(crate) fn body_if<T: Typed>(record: &[u8]) -> Option<&[u8]> {
    match record.split_at_checked(HEADER) {
        Some((head, body)) if head[..8] == T::TAG.to_le_bytes() && envelope::is_marked(head) => Some(body),
        _ => None,
    }
}

/// Why `record` is not a `T` (it is not typed, or carries another tag).
#[cold]
fn not_a<T: Typed>(record: &[u8]) -> TypeError {
    match body_of::<T>(record) {
        Err(e) => e,
        Ok(_) => TypeError::NotTyped { len: record.len() }, // not reached: tag and marker matched after all
    }
}

/// Whether a typed record is tagged as a `T` (its body is not checked).
pub fn is<T: Typed>(record: &[u8]) -> bool {
    matches!(envelope::read(record), Ok((tag, _, _)) if tag == T::TAG)
}

macro_rules! plain_numbers {
    ($($t:ty),*) => {$(
        impl Typed for $t {
            const NAME: &'static str = stringify!($t);
            type Encoding = Plain;
        }
    )*};
}

// Numbers travel as themselves (little-endian on every supported platform).
plain_numbers!(u8, u16, u32, u64, u128, i8, i16, i32, i64, i128, f32, f64);
