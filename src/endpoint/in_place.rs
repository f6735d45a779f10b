//! The borrowed receive forms (`recv_with`, `try_recv_with`,
//! `recv_timeout_with`, `try_recv_batch`, `recv_with_async`) lend the caller
//! the payload where it lies in the ring, without copying. That is sound
//! only while the peer keeps the ring's protocol (it does not write a record
//! until the reader hands it back), which this process cannot check; those
//! methods state the precondition in their docs, and the crate docs
//! ("Shared memory is untrusted") say which forms to use with a peer that
//! is not trusted: the owned receives (`recv`, `try_recv`, ...) and the
//! typed ones, which copy out with atomic loads (`ring/bytes.rs`) and never
//! hand out a reference to memory a peer can write.

use crate::ring::RingBytes;

/// The payload in place, for a borrowed receive form.
#[inline(always)]
pub(crate) fn trusting_peer(bytes: RingBytes<'_>) -> &[u8] {
    // SAFETY: not checked here, and not checkable: this is the trusted-peer
    // precondition the borrowed receive forms pass on to their callers in
    // their docs (see the module docs). A peer that breaks it can change the
    // bytes while the caller reads them, a data race; it cannot move the
    // slice outside the record, whose bounds were validated.
    unsafe { bytes.trusting_peer() }
}
