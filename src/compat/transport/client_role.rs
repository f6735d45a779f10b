//! The client role of [`super::NrelayShmTransport`]: the two halves of a
//! [`crate::Client`] (see [`Halves`]), so that a write from inside a read
//! closure is allowed. What
//! only asks about the connection (id, liveness, counters, leaving) goes
//! through the client's [`ClientControl`], never through a `RefCell`, so it
//! also works from inside a closure of either half.

use std::time::Duration;

use super::halves::Halves;
use super::{lifted, waited};
use crate::compat::pring::PriorityBatch;
use crate::compat::ShmResult;
use crate::{Client, ClientControl, ClientId, ClientReceiver, ClientSender, Error, Fill, Priority, Stats};

#[derive(Debug)]
pub(super) struct ClientRole {
    halves: Halves<ClientSender, ClientReceiver>,
    control: ClientControl,
    name: String,
    /// The version it connected with, which the daemon's matched.
    protocol_version: u32,
}

impl ClientRole {
    pub(super) fn new(client: Client, protocol_version: u32) -> ClientRole {
        let control = client.control();
        let name = client.name().to_owned();
        let (tx, rx) = client.split();
        ClientRole {
            halves: Halves::new(tx, rx),
            control,
            name,
            protocol_version,
        }
    }

    pub(super) fn protocol_version(&self) -> u32 {
        self.protocol_version
    }

    /// The segment's connected clients, as inspecting it finds them (a
    /// client has no other view of the others); 0 if it cannot be read.
    pub(super) fn client_count(&self) -> usize {
        crate::inspect::segment(&self.name).map_or(0, |info| {
            info.clients
                .iter()
                .filter(|c| c.state == crate::inspect::SlotState::Connected)
                .count()
        })
    }

    pub(super) fn control(&self) -> &ClientControl {
        &self.control
    }

    pub(super) fn set_spin(&self, spin: Duration) {
        self.halves.set_spin(spin);
    }

    #[inline(always)]
    pub(super) fn write_with<R>(
        &self,
        priority: Priority,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> ShmResult<R> {
        let mut out = None;
        self.halves
            .tx_now()?
            .try_send(priority, Fill::new(len, |b| out = Some(fill(b))))
            .map_err(lifted)?;
        Ok(out.expect("a send that succeeded ran its fill"))
    }

    #[inline(always)]
    pub(super) fn write(&self, priority: Priority, data: &[u8]) -> ShmResult<()> {
        self.halves.tx_now()?.try_send(priority, data).map_err(lifted)
    }

    pub(super) fn write_timeout(&self, priority: Priority, data: &[u8], timeout: Option<Duration>) -> ShmResult<()> {
        let mut tx = self.halves.tx()?;
        match timeout {
            Some(t) => tx.send_timeout(priority, data, t),
            None => tx.send(priority, data),
        }
        .map_err(lifted)
    }

    pub(super) fn write_batch<R>(&self, f: impl FnOnce(&mut PriorityBatch<'_>) -> R) -> ShmResult<R> {
        self.halves
            .tx()?
            .send_batch(|batch| f(&mut PriorityBatch::from(batch)))
            .map_err(lifted)
    }

    /// The next message, lent to `f` where it lies (`None`: none waiting).
    #[inline(always)]
    pub(super) fn read_with<R>(&self, f: impl FnOnce(Priority, &[u8]) -> R) -> ShmResult<Option<R>> {
        match self.halves.rx_now()?.try_recv_with(f) {
            Ok(r) => Ok(Some(r)),
            Err(Error::Empty) => Ok(None),
            Err(e) => Err(lifted(e)),
        }
    }

    /// The next message, copied out (`None`: none waiting).
    pub(super) fn read_copied(&self) -> ShmResult<Option<(Priority, Vec<u8>)>> {
        match self.halves.rx_now()?.try_recv() {
            Ok(m) => Ok(Some((m.priority(), m.into_payload()))),
            Err(Error::Empty) => Ok(None),
            Err(e) => Err(lifted(e)),
        }
    }

    pub(super) fn read_batch_with(&self, max: usize, f: impl FnMut(Priority, &[u8])) -> ShmResult<usize> {
        match self.halves.rx_now()?.try_recv_batch(max, f) {
            Ok(n) => Ok(n),
            Err(Error::Empty) => Ok(0),
            Err(e) => Err(lifted(e)),
        }
    }

    pub(super) fn wait(&self, timeout: Option<Duration>) -> ShmResult<()> {
        waited(timeout, |t| Ok(self.halves.rx()?.wait_ready(t)))
    }

    pub(super) fn id(&self) -> ClientId {
        self.control.id()
    }

    pub(super) fn is_connected(&self) -> bool {
        self.control.is_connected()
    }

    pub(super) fn daemon_heartbeat_age(&self) -> Duration {
        self.control.daemon_heartbeat_age()
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

    pub(super) fn disconnect(&self) {
        self.control.disconnect();
    }
}
