//! What a send writes: bytes, a typed value, or a closure that writes in
//! place. One trait, so that each waiting mode of a send is one method
//! (`send`, `try_send`, `send_timeout`, `send_async`) whatever it carries.

/// What a send carries. Implemented for
/// - bytes: `&[u8]`, `&[u8; N]`, `&Vec<u8>`, `&str`, `&String` (copied
///   into the ring as they are);
/// - `&T` for every [`Typed`](crate::typed::Typed) `T` (encoded straight
///   into the ring, with its type tag: the receiver decodes it with
///   [`Message::decode`](crate::Message::decode));
/// - [`Fill`]: a length and a closure that writes the message in place
///   (zero-copy).
///
/// The trait is sealed: these are the forms a message takes.
///
/// ```
/// use memlink_shm::{Client, Daemon, Fill, Priority};
/// use std::time::Duration;
/// # let name = format!("memlink-doc-payload-{}", std::process::id());
/// let mut daemon = Daemon::create(&name)?;
/// let mut client = Client::connect(&name)?;
/// client.send(Priority::High, b"bytes")?;
/// client.send(Priority::High, &7u64)?; // a typed value
/// client.send(Priority::High, Fill::new(4, |buf| buf.copy_from_slice(b"fill")))?;
/// let wait = Duration::from_secs(1);
/// assert_eq!(daemon.recv_timeout(wait)?.payload(), b"bytes");
/// assert_eq!(daemon.recv_timeout(wait)?.decode::<u64>()?, 7);
/// assert_eq!(daemon.recv_timeout(wait)?.payload(), b"fill");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Payload: sealed::Encode {}

impl<P: sealed::Encode> Payload for P {}

/// A message of a given length, written in place by a closure when there is
/// room: the closure gets the message's bytes in the ring (zero-copy) and
/// runs once, or not at all if the send fails first. A broadcast runs it
/// once into a buffer, before it waits for room, and copies that to every
/// client.
///
/// What the closure writes is what the peer reads: write the whole slice
/// (its bytes start out as whatever the ring held), and do not read it back
/// (a hostile peer may write it too, see SECURITY.md).
pub struct Fill<F> {
    len: usize,
    fill: F,
}

impl<F: FnOnce(&mut [u8])> Fill<F> {
    /// A `len`-byte message that `fill` writes.
    pub fn new(len: usize, fill: F) -> Fill<F> {
        Fill { len, fill }
    }
}

impl<F> std::fmt::Debug for Fill<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fill").field("len", &self.len).finish_non_exhaustive()
    }
}

pub(crate) mod sealed {
    use std::borrow::Cow;

    use super::Fill;
    use crate::endpoint::{Error, TypeError};

    /// How a payload goes into the ring: its length first, then its bytes
    /// into exactly that many.
    pub trait Encode {
        /// The message's length in bytes.
        fn encoded_len(&self) -> Result<usize, TypeError>;

        /// What writing it can report: `()` for bytes (so that the send path
        /// carries nothing more than before), an [`Encoded`] for a typed value.
        type Written: Written;

        /// Writes the message into `out` (`encoded_len` bytes). A typed
        /// value that fails to encode leaves the record untagged, so a
        /// receiver sees [`TypeError::NotTyped`], never half a value.
        fn encode_into(self, out: &mut [u8]) -> Self::Written;

        /// The message as bytes, encoded into a buffer first if it is not
        /// bytes already (a broadcast copies the same bytes to every client).
        fn bytes<'s>(self) -> Result<Cow<'s, [u8]>, Error>
        where
            Self: Sized + 's,
        {
            let mut bytes = vec![0u8; self.encoded_len()?];
            self.encode_into(&mut bytes).into_result()?;
            Ok(Cow::Owned(bytes))
        }
    }

    /// What writing a typed value reports: one machine word (null when it
    /// encoded), so that a typed send carries no more than a pointer back
    /// through the engine's layers to its result, not a 40-byte
    /// [`TypeError`] by value.
    pub(crate) type Encoded = Result<(), Box<TypeError>>;

    /// The outcome of writing a payload: nothing, or an encoding failure.
    pub trait Written {
        /// As the send's result.
        fn into_result(self) -> Result<(), Error>;
    }

    impl Written for () {
        #[inline(always)]
        fn into_result(self) -> Result<(), Error> {
            Ok(())
        }
    }

    impl Written for Encoded {
        #[inline(always)]
        fn into_result(self) -> Result<(), Error> {
            match self {
                Ok(()) => Ok(()),
                Err(e) => Err(not_encoded(*e)),
            }
        }
    }

    /// The error of a typed value that failed to encode.
    #[cold]
    fn not_encoded(e: TypeError) -> Error {
        Error::Type(e)
    }

    /// Bytes: copied as they are.
    macro_rules! bytes {
        ($($t:ty),*) => {$(
            impl Encode for &$t {
                #[inline(always)]
                fn encoded_len(&self) -> Result<usize, TypeError> {
                    Ok(self.len())
                }

                type Written = ();

                #[inline(always)]
                fn encode_into(self, out: &mut [u8]) {
                    out.copy_from_slice(self.as_ref());
                }

                #[inline(always)]
                fn bytes<'s>(self) -> Result<Cow<'s, [u8]>, Error>
                where
                    Self: 's,
                {
                    Ok(Cow::Borrowed(self.as_ref()))
                }
            }
        )*};
    }

    bytes!([u8], Vec<u8>, str, String);

    impl<const N: usize> Encode for &[u8; N] {
        #[inline(always)]
        fn encoded_len(&self) -> Result<usize, TypeError> {
            Ok(N)
        }

        type Written = ();

        #[inline(always)]
        fn encode_into(self, out: &mut [u8]) {
            out.copy_from_slice(self);
        }

        #[inline(always)]
        fn bytes<'s>(self) -> Result<Cow<'s, [u8]>, Error>
        where
            Self: 's,
        {
            Ok(Cow::Borrowed(self))
        }
    }

    impl<F: FnOnce(&mut [u8])> Encode for Fill<F> {
        #[inline(always)]
        fn encoded_len(&self) -> Result<usize, TypeError> {
            Ok(self.len)
        }

        type Written = ();

        #[inline(always)]
        fn encode_into(self, out: &mut [u8]) {
            (self.fill)(out);
        }
    }
}

/// Writes `payload` into a `len`-byte message in place: the closure the
/// engine's in-place writes take.
#[inline(always)]
pub(crate) fn writer<P: Payload>(payload: P) -> impl FnOnce(&mut [u8]) -> P::Written {
    move |out| payload.encode_into(out)
}
