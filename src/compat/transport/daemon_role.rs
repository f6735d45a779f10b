//! The daemon role of [`super::NrelayShmTransport`]: the owned halves of a
//! [`crate::Daemon`] (see [`Halves`]), so that a reply from inside a read
//! closure is allowed. What only asks about the segment (clients,
//! counters, congestion, shutting down) goes through the daemon's
//! [`DaemonControl`], never through a half, so it also works from inside a
//! closure of either half.

use std::time::Duration;

use super::halves::Halves;
use super::{lifted, waited};
use crate::compat::pring::PriorityBatch;
use crate::compat::ShmResult;
use crate::{ClientId, Daemon, DaemonControl, DaemonReceiver, DaemonSender, Error, Fill, Priority, Stats};

#[derive(Debug)]
pub(super) struct DaemonRole {
    halves: Halves<DaemonSender, DaemonReceiver>,
    control: DaemonControl,
}

impl DaemonRole {
    pub(super) fn new(daemon: Daemon) -> DaemonRole {
        let control = daemon.control();
        let (rx, tx) = daemon.into_split();
        DaemonRole {
            halves: Halves::new(tx, rx),
            control,
        }
    }

    pub(super) fn control(&self) -> &DaemonControl {
        &self.control
    }

    pub(super) fn set_spin(&self, spin: Duration) {
        self.halves.set_spin(spin);
    }

    /// Runs `f` on the receiving half; its error as it is, for the caller
    /// to tell "nothing waiting" apart. Then, unless the sending half is
    /// busy (a read inside a write closure), the slots of departed clients
    /// the read drained are freed at once, as 0.1.3 did.
    #[inline(always)]
    fn receiving<R>(&self, f: impl FnOnce(&mut DaemonReceiver) -> Result<R, Error>) -> ShmResult<Result<R, Error>> {
        let mut rx = self.halves.rx()?;
        let r = f(&mut rx);
        // The sending half is borrowed only when there is something to free.
        if rx.has_departed() {
            self.free_departed(&mut rx);
        }
        Ok(r)
    }

    #[inline(always)]
    pub(super) fn write(&self, priority: Priority, data: &[u8]) -> ShmResult<()> {
        self.halves.tx_now()?.try_broadcast(priority, data).map_err(lifted)
    }

    pub(super) fn write_with(&self, priority: Priority, len: usize, mut fill: impl FnMut(&mut [u8])) -> ShmResult<()> {
        let fill = Fill::new(len, |b: &mut [u8]| fill(b));
        self.halves.tx_now()?.try_broadcast(priority, fill).map_err(lifted)
    }

    #[inline(always)]
    pub(super) fn write_to(&self, client: ClientId, priority: Priority, data: &[u8]) -> ShmResult<()> {
        self.halves
            .tx_now()?
            .try_send_to(client, priority, data)
            .map_err(lifted)
    }

    #[inline(always)]
    pub(super) fn write_to_with<R>(
        &self,
        client: ClientId,
        priority: Priority,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> ShmResult<R> {
        let mut out = None;
        self.halves
            .tx_now()?
            .try_send_to(client, priority, Fill::new(len, |b| out = Some(fill(b))))
            .map_err(lifted)?;
        Ok(out.expect("a send that succeeded ran its fill"))
    }

    pub(super) fn write_timeout(&self, priority: Priority, data: &[u8], timeout: Option<Duration>) -> ShmResult<()> {
        let mut tx = self.halves.tx()?;
        match timeout {
            Some(t) => tx.broadcast_timeout(priority, data, t),
            None => tx.broadcast(priority, data),
        }
        .map_err(lifted)
    }

    pub(super) fn write_to_timeout(
        &self,
        client: ClientId,
        priority: Priority,
        data: &[u8],
        timeout: Option<Duration>,
    ) -> ShmResult<()> {
        let mut tx = self.halves.tx()?;
        match timeout {
            Some(t) => tx.send_to_timeout(client, priority, data, t),
            None => tx.send_to(client, priority, data),
        }
        .map_err(lifted)
    }

    pub(super) fn write_to_batch<R>(
        &self,
        client: ClientId,
        f: impl FnOnce(&mut PriorityBatch<'_>) -> R,
    ) -> ShmResult<R> {
        self.halves
            .tx()?
            .send_batch_to(client, |batch| f(&mut PriorityBatch::from(batch)))
            .map_err(lifted)
    }

    /// The next message, lent to `f` where it lies (`None`: none waiting).
    /// `receiving` written out: through its closure a read costs 7
    /// instructions more (`old_write_read` in `examples/instructions.rs`).
    #[inline(always)]
    pub(super) fn read_from_with<R>(&self, f: impl FnOnce(ClientId, Priority, &[u8]) -> R) -> ShmResult<Option<R>> {
        let mut rx = self.halves.rx_now()?;
        let read = match rx.try_recv_with(f) {
            Ok(r) => Ok(Some(r)),
            Err(Error::Empty) => Ok(None),
            Err(e) => Err(lifted(e)),
        };
        if rx.has_departed() {
            self.free_departed(&mut rx);
        }
        read
    }

    /// Frees the slots of departed clients `rx` drained, unless the sending
    /// half is busy (a read inside a write closure): a later read frees them.
    #[cold]
    #[inline(never)]
    fn free_departed(&self, rx: &mut DaemonReceiver) {
        if let Some(mut tx) = self.halves.idle_tx() {
            rx.free_departed(&mut tx);
        }
    }

    /// The next message, copied out (`None`: none waiting).
    pub(super) fn read_from_copied(&self) -> ShmResult<Option<(ClientId, Priority, Vec<u8>)>> {
        match self.receiving(|rx| rx.try_recv())? {
            Ok(m) => Ok(Some((m.client(), m.priority(), m.into_payload()))),
            Err(Error::Empty) => Ok(None),
            Err(e) => Err(lifted(e)),
        }
    }

    pub(super) fn read_from_batch_with(
        &self,
        max: usize,
        f: impl FnMut(ClientId, Priority, &[u8]),
    ) -> ShmResult<usize> {
        match self.receiving(|rx| rx.try_recv_batch(max, f))? {
            Ok(n) => Ok(n),
            Err(Error::Empty) => Ok(0),
            Err(e) => Err(lifted(e)),
        }
    }

    pub(super) fn wait(&self, timeout: Option<Duration>) -> ShmResult<()> {
        waited(timeout, |t| self.receiving(|rx| rx.wait_ready(t)))
    }

    pub(super) fn sweep(&self) -> u32 {
        u32::try_from(self.control.reclaim_dead()).unwrap_or(u32::MAX)
    }

    pub(super) fn clients(&self) -> Vec<ClientId> {
        self.control.clients()
    }

    pub(super) fn backpressure(&self) -> f32 {
        self.control.backpressure()
    }

    pub(super) fn set_backpressure(&self, level: f32) {
        self.control.set_backpressure(level);
    }

    pub(super) fn stats(&self) -> Stats {
        self.control.stats()
    }

    pub(super) fn shutdown(&self) {
        self.control.shutdown();
    }
}
