//! What the client's sending half and the daemon's way to one client have
//! in common: a writing end that publishes without a wake-up, can wait for
//! room, and wakes its reader. The retry loop of a blocking send and the
//! publish-then-wake of every send are written once, here.

use std::task::{ready, Poll};
use std::time::Instant;

use super::channel::Deadline;
use super::fault::{Fault, Op};
use super::payload::sealed::Written;
use crate::endpoint::Error;
use crate::priority::Priority;
use crate::wait::{blocked, Block, Park};

/// A writing end to one reader.
pub(crate) trait Outlet {
    /// Writes a `len`-byte message in place and publishes it, without a
    /// wake-up. `fill` runs only if the message fits.
    fn write<R>(&mut self, priority: Priority, len: usize, fill: impl FnOnce(&mut [u8]) -> R) -> Op<R>;

    /// Waits through `park` until a `len`-byte message of `priority` fits
    /// (`Ok`), the reader is gone or `until` passes.
    fn poll_room(
        &mut self,
        park: &mut impl Park,
        priority: Priority,
        len: usize,
        until: Option<Instant>,
    ) -> Poll<Op<()>>;

    /// Wakes the reader if it sleeps.
    fn wake(&self);

    /// Writes, waiting through `park` for room until `until` (read from the
    /// clock only if it must wait), without a wake-up. `fill` is taken when
    /// it runs.
    #[inline]
    fn poll_write<R, F: FnOnce(&mut [u8]) -> R>(
        &mut self,
        park: &mut impl Park,
        priority: Priority,
        len: usize,
        until: &mut Deadline,
        fill: &mut Option<F>,
    ) -> Poll<Op<R>> {
        loop {
            // `fill` runs only when the write has room, so a full ring hands it back.
            match self.write(priority, len, |b| fill.take().map(|f| f(b))) {
                Ok(Some(r)) => return Poll::Ready(Ok(r)),
                Ok(None) | Err(Fault::FULL) => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
            ready!(self.poll_room(park, priority, len, until.instant()))?;
        }
    }

    /// Writes if the message fits now, then wakes the reader. What `fill`
    /// reports (an encoding failure) is folded into the one result, so that
    /// only the engine's small [`Fault`] and one word travel back to it.
    #[inline(always)]
    fn publish<W: Written>(
        &mut self,
        priority: Priority,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> W,
    ) -> Result<(), Error> {
        match self.write(priority, len, fill) {
            Ok(w) => {
                self.wake();
                w.into_result()
            }
            Err(e) => Err(e.into_error()),
        }
    }

    /// Writes, waiting until `until` for room, then wakes the reader. A
    /// message that fits at once takes the short way: one write and the
    /// wake-up, none of the waiting machinery.
    #[inline]
    fn publish_until<W: Written>(
        &mut self,
        priority: Priority,
        len: usize,
        until: Deadline,
        fill: impl FnOnce(&mut [u8]) -> W,
    ) -> Result<(), Error> {
        let mut fill = Some(fill);
        match self.write(priority, len, |b| fill.take().map(|f| f(b))) {
            Ok(Some(w)) => {
                self.wake();
                w.into_result()
            }
            Ok(None) | Err(Fault::FULL) => self.publish_when_room(priority, len, until, fill),
            Err(e) => Err(e.into_error()),
        }
    }

    /// [`Outlet::publish_until`] once the first try found the ring full.
    #[inline(never)]
    fn publish_when_room<W: Written, F: FnOnce(&mut [u8]) -> W>(
        &mut self,
        priority: Priority,
        len: usize,
        mut until: Deadline,
        mut fill: Option<F>,
    ) -> Result<(), Error> {
        blocked(self.poll_publish(&mut Block, priority, len, &mut until, &mut fill))
    }

    /// [`Outlet::publish_until`] through `park`. `fill` is taken when it runs.
    #[inline]
    fn poll_publish<W: Written, F: FnOnce(&mut [u8]) -> W>(
        &mut self,
        park: &mut impl Park,
        priority: Priority,
        len: usize,
        until: &mut Deadline,
        fill: &mut Option<F>,
    ) -> Poll<Result<(), Error>> {
        let w = ready!(self.poll_write(park, priority, len, until, fill)).map_err(Fault::into_error)?;
        self.wake();
        Poll::Ready(w.into_result())
    }
}
