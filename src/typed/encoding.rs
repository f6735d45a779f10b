//! How a typed value becomes bytes in the ring and back: [`Plain`] for
//! plain-data types (their bytes as they are in memory), `Postcard` for any
//! serde type (feature `serde`).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::Typed;
use crate::endpoint::TypeError;

/// An encoding of values of type `T`. Implemented by [`Plain`] and
/// `Postcard`; a value's [`Typed::Encoding`] names one of them.
pub trait Encoding<T>: private::Sealed {
    /// Mixed into the type's tag: what must agree between the two sides
    /// besides the name (for [`Plain`], the size and alignment).
    const SHAPE: u64;

    /// The encoded length of `value`.
    ///
    /// # Errors
    /// [`TypeError::Encode`] if the value cannot be encoded.
    fn encoded_len(value: &T) -> Result<usize, TypeError>;

    /// Writes `value` into `out`, which is exactly `encoded_len` bytes.
    ///
    /// # Errors
    /// [`TypeError::Encode`] if the value cannot be encoded.
    fn encode(value: &T, out: &mut [u8]) -> Result<(), TypeError>;

    /// Reads a value from `bytes` (untrusted: a peer wrote them).
    ///
    /// # Errors
    /// [`TypeError::WrongLength`] or [`TypeError::Decode`] when the bytes are
    /// not a `T`.
    fn decode(bytes: &[u8]) -> Result<T, TypeError>;
}

mod private {
    pub trait Sealed {}
    impl Sealed for super::Plain {}
    #[cfg(feature = "serde")]
    impl Sealed for super::Postcard {}
}

/// Plain data: a `#[repr(C)]` type deriving zerocopy's `IntoBytes`,
/// `FromBytes`, `KnownLayout` and `Immutable` travels as its own bytes,
/// written in place into the ring. Every bit pattern is a valid value of
/// such a type, so no peer can send an invalid one; only the length is
/// checked.
///
/// A receive copies the record out of the ring first (a peer could change
/// it while it is read); [`crate::Message::decode`] then reads the value
/// from that copy.
#[derive(Debug, Clone, Copy)]
pub struct Plain;

impl<T: Typed + IntoBytes + FromBytes + KnownLayout + Immutable> Encoding<T> for Plain {
    const SHAPE: u64 = ((std::mem::size_of::<T>() as u64) << 8) | std::mem::align_of::<T>() as u64;

    #[inline(always)]
    fn encoded_len(_: &T) -> Result<usize, TypeError> {
        Ok(std::mem::size_of::<T>())
    }

    #[inline(always)]
    fn encode(value: &T, out: &mut [u8]) -> Result<(), TypeError> {
        out.copy_from_slice(value.as_bytes());
        Ok(())
    }

    #[inline(always)]
    fn decode(bytes: &[u8]) -> Result<T, TypeError> {
        T::read_from_bytes(bytes).map_err(|_| wrong_length::<T>(bytes.len()))
    }
}

pub(super) fn wrong_length<T: Typed>(found: usize) -> TypeError {
    TypeError::WrongLength {
        name: T::NAME,
        expected: std::mem::size_of::<T>(),
        found,
    }
}

/// Any serde type, encoded with [postcard](https://docs.rs/postcard): varint
/// integers, no field names, so a small struct takes a few bytes more than
/// its data. Encoded straight into the ring (the value is sized first, then
/// written in place; no intermediate buffer) and decoded from a copy of the
/// record (see [`Plain`] for why). A body
/// that is not a whole, valid encoding (a hostile peer's, say) is a
/// [`TypeError::Decode`].
#[cfg(feature = "serde")]
#[derive(Debug, Clone, Copy)]
pub struct Postcard;

#[cfg(feature = "serde")]
impl<T: Typed + serde::Serialize + serde::de::DeserializeOwned> Encoding<T> for Postcard {
    const SHAPE: u64 = 0x706f_7374_6361_7264; // "postcard"

    fn encoded_len(value: &T) -> Result<usize, TypeError> {
        postcard::experimental::serialized_size(value).map_err(|e| encode_error::<T>(e))
    }

    fn encode(value: &T, out: &mut [u8]) -> Result<(), TypeError> {
        let len = out.len();
        match postcard::to_slice(value, out) {
            Ok(written) if written.len() == len => Ok(()),
            Ok(_) => Err(encode_error::<T>(
                "its encoded length changed between sizing and writing",
            )),
            Err(e) => Err(encode_error::<T>(e)),
        }
    }

    fn decode(bytes: &[u8]) -> Result<T, TypeError> {
        match postcard::take_from_bytes::<T>(bytes) {
            Ok((value, [])) => Ok(value),
            Ok((_, rest)) => Err(TypeError::Decode {
                name: T::NAME,
                reason: format!("{} bytes left over after the value", rest.len()),
            }),
            Err(e) => Err(TypeError::Decode {
                name: T::NAME,
                reason: e.to_string(),
            }),
        }
    }
}

#[cfg(feature = "serde")]
fn encode_error<T: Typed>(e: impl std::fmt::Display) -> TypeError {
    TypeError::Encode {
        name: T::NAME,
        reason: e.to_string(),
    }
}
