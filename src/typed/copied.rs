//! Typed receives decode a private copy of each record, never the ring's
//! bytes in place: a peer can rewrite a record while it is read, and a
//! decoder (a `&T` handed to safe code, postcard walking a slice) must not
//! look at memory that can change under it (see `ring/bytes.rs`). A record
//! of up to [`STACK`] bytes is copied to the stack, a longer one to the heap.
//!
//! These are the receivers' borrowed forms with that copy in between.

use std::mem::MaybeUninit;
use std::time::Duration;

use crate::endpoint::Deadline;
use crate::priority::Priority;
use crate::ring::RingBytes;
use crate::slot::ClientId;
use crate::{ClientReceiver, DaemonReceiver, Error};

/// Records up to this size are copied to the stack.
const STACK: usize = 256;

/// The stack copy, aligned as the ring's records are (a plain-data body
/// then lies aligned in it and is lent as `&T` without a second copy); not
/// zeroed first, only the record's bytes are written and read.
#[repr(align(16))]
struct Stack([MaybeUninit<u8>; STACK]);

/// Runs `f` on a copy of the record the ring lent.
#[inline(always)]
fn copied<R>(bytes: RingBytes<'_>, f: impl FnOnce(&[u8]) -> R) -> R {
    if bytes.len() <= STACK {
        let mut buf = Stack([MaybeUninit::uninit(); STACK]);
        f(bytes.copy_to_uninit(&mut buf.0))
    } else {
        f(&bytes.to_vec())
    }
}

impl ClientReceiver {
    /// `recv_with` on a copy of the record.
    #[inline]
    pub(crate) fn recv_copied<R>(&mut self, f: impl FnOnce(Priority, &[u8]) -> R) -> Result<R, Error> {
        self.recv_until(Deadline::NEVER, |p, b| copied(b, |r| f(p, r)))
    }

    /// `recv_timeout_with` on a copy of the record.
    pub(crate) fn recv_timeout_copied<R>(
        &mut self,
        timeout: Duration,
        f: impl FnOnce(Priority, &[u8]) -> R,
    ) -> Result<R, Error> {
        self.recv_until(Deadline::after(Some(timeout)), |p, b| copied(b, |r| f(p, r)))
    }

    /// `try_recv_with` on a copy of the record.
    #[inline]
    pub(crate) fn try_recv_copied<R>(&mut self, f: impl FnOnce(Priority, &[u8]) -> R) -> Result<R, Error> {
        self.try_take(|p, b| copied(b, |r| f(p, r)))
    }

    /// `recv_with_async` on a copy of the record.
    pub(crate) async fn recv_copied_async<R>(&mut self, f: impl FnOnce(Priority, &[u8]) -> R) -> Result<R, Error> {
        self.take_async(|p, b| copied(b, |r| f(p, r))).await
    }
}

impl DaemonReceiver {
    /// `recv_with` on a copy of the record.
    #[inline]
    pub(crate) fn recv_copied<R>(&mut self, f: impl FnOnce(ClientId, Priority, &[u8]) -> R) -> Result<R, Error> {
        self.recv_until(Deadline::NEVER, |c, p, b| copied(b, |r| f(c, p, r)))
    }

    /// `recv_timeout_with` on a copy of the record.
    pub(crate) fn recv_timeout_copied<R>(
        &mut self,
        timeout: Duration,
        f: impl FnOnce(ClientId, Priority, &[u8]) -> R,
    ) -> Result<R, Error> {
        self.recv_until(Deadline::after(Some(timeout)), |c, p, b| copied(b, |r| f(c, p, r)))
    }

    /// `recv_with_async` on a copy of the record.
    pub(crate) async fn recv_copied_async<R>(
        &mut self,
        f: impl FnOnce(ClientId, Priority, &[u8]) -> R,
    ) -> Result<R, Error> {
        self.take_async(|c, p, b| copied(b, |r| f(c, p, r))).await
    }
}
