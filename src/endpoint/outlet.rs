//! What the client's sending half and the daemon's way to one client have
//! in common: a writing end that publishes without a wake-up, can wait for
//! room, and wakes its reader. The retry loop of a blocking send and the
//! publish-then-wake of every send are written once, here.

use std::time::Instant;

use super::channel::Deadline;
use super::fault::{Fault, Op};
use crate::error::Error;
use crate::priority::Priority;

/// A writing end to one reader.
pub(crate) trait Outlet {
    /// Writes a `len`-byte message in place and publishes it, without a
    /// wake-up. `fill` runs only if the message fits.
    fn write<R>(&mut self, priority: Priority, len: usize, fill: impl FnOnce(&mut [u8]) -> R) -> Op<R>;

    /// Blocks until a `len`-byte message of `priority` fits (`Ok`), the
    /// reader is gone or `until` passes.
    fn wait_for_room(&mut self, priority: Priority, len: usize, until: Option<Instant>) -> Op<()>;

    /// Wakes the reader if it sleeps.
    fn wake(&self);

    /// Writes, waiting for room until `until` (read from the clock only if
    /// it must wait), without a wake-up. `fill` runs once, when there is room.
    #[inline]
    fn write_until<R>(
        &mut self,
        priority: Priority,
        len: usize,
        mut until: Deadline,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> Op<R> {
        // `fill` runs only when the write has room, so a full ring hands it back.
        let mut fill = Some(fill);
        loop {
            match self.write(priority, len, |b| fill.take().map(|f| f(b))) {
                Ok(Some(r)) => return Ok(r),
                Ok(None) | Err(Fault::FULL) => {}
                Err(e) => return Err(e),
            }
            self.wait_for_room(priority, len, until.instant())?;
        }
    }

    /// Writes if the message fits now, then wakes the reader.
    #[inline(always)]
    fn publish<R>(&mut self, priority: Priority, len: usize, fill: impl FnOnce(&mut [u8]) -> R) -> Result<R, Error> {
        match self.write(priority, len, fill) {
            Ok(r) => {
                self.wake();
                Ok(r)
            }
            Err(e) => Err(e.into_error()),
        }
    }

    /// Writes, waiting until `until` for room, then wakes the reader.
    #[inline]
    fn publish_until<R>(
        &mut self,
        priority: Priority,
        len: usize,
        until: Deadline,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<R, Error> {
        let r = self
            .write_until(priority, len, until, fill)
            .map_err(Fault::into_error)?;
        self.wake();
        Ok(r)
    }
}
