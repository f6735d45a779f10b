//! Sending on the daemon: to one client, or to every client, all or none.

use std::sync::Arc;
use std::time::Duration;

use super::table::{signal_all, signal_client};
use super::{DaemonControl, DaemonTx, Owner};
use crate::endpoint::batch::Batch;
use crate::endpoint::channel::Deadline;
use crate::endpoint::fault::Fault;
use crate::endpoint::outlet::Outlet;
use crate::endpoint::payload::{writer, Payload};
use crate::endpoint::Error;
use crate::priority::Priority;
use crate::slot::ClientId;

/// The sending half of a [`crate::Daemon`]: lent by
/// [`crate::Daemon::split`], or owned (`'static`, `Send`) after
/// [`crate::Daemon::into_split`]. The daemon's own sending calls are
/// this type's. See [`crate::DaemonReceiver`] for an example.
///
/// Each call first lets go of the slots of departed clients the receiving
/// half asked for (one load when there are none), so a split daemon frees
/// such a slot at this half's next call, or when this half is dropped.
#[derive(Debug)]
pub struct DaemonSender {
    pub(super) tx: DaemonTx,
    /// Keeps the segment up until both halves are dropped.
    pub(super) owner: Arc<Owner>,
    pub(super) control: DaemonControl,
}

impl DaemonSender {
    /// The daemon's queries and controls (clients, counters, congestion,
    /// shutdown), usable from anywhere, even inside this half's closures:
    /// see [`DaemonControl`].
    pub fn control(&self) -> DaemonControl {
        self.control.clone()
    }

    /// Changes how long this half's blocking sends spin before they sleep
    /// in the kernel (set first with [`crate::DaemonBuilder::spin`]).
    pub fn set_spin(&mut self, spin: Duration) {
        self.tx.set_spin(spin);
    }

    /// Lets go of the slots of departed clients that the receiving half has
    /// drained, so that it frees them at its next call: what every send of
    /// this half does first (one load when there are none). A sending half
    /// that may stay idle for long, beside a receiving half that goes on
    /// (a daemon that mostly receives), calls this now and then, or is
    /// dropped; otherwise those slots stay taken (see
    /// [`crate::OpenError::TableFull`]) until its next send.
    #[inline]
    pub fn release_departed(&mut self) {
        self.tx.release_departed();
    }

    /// Sends `payload` (bytes, a typed value or a [`Fill`](crate::Fill)) to
    /// one client, waiting while its ring is full, and wakes it.
    ///
    /// # Errors
    /// [`Error::UnknownClient`] when the client left or died (also while
    /// waiting: a dead client is noticed within 50 ms),
    /// [`Error::MessageTooLarge`], [`Error::Corrupted`], [`Error::Type`]
    /// when a typed value cannot be encoded.
    #[inline]
    pub fn send_to(&mut self, client: ClientId, priority: Priority, payload: impl Payload) -> Result<(), Error> {
        let len = payload.encoded_len()?;
        self.tx
            .to(client)
            .publish_until(priority, len, Deadline::NEVER, writer(payload))
    }

    /// Like [`DaemonSender::send_to`], waiting at most `timeout` for room.
    ///
    /// # Errors
    /// As [`DaemonSender::send_to`], and [`Error::Timeout`].
    pub fn send_to_timeout(
        &mut self,
        client: ClientId,
        priority: Priority,
        payload: impl Payload,
        timeout: Duration,
    ) -> Result<(), Error> {
        let len = payload.encoded_len()?;
        self.tx
            .to(client)
            .publish_until(priority, len, Deadline::after(Some(timeout)), writer(payload))
    }

    /// Sends `payload` to one client if it fits now.
    ///
    /// # Errors
    /// [`Error::Full`] when it does not fit now; otherwise as [`DaemonSender::send_to`].
    #[inline(always)]
    pub fn try_send_to(&mut self, client: ClientId, priority: Priority, payload: impl Payload) -> Result<(), Error> {
        let len = payload.encoded_len()?;
        self.tx.to(client).publish(priority, len, writer(payload))
    }

    /// Sends every message `f` adds to the batch to one client, published
    /// together with one wake-up when `f` returns (see [`Batch`]).
    ///
    /// # Errors
    /// [`Error::UnknownClient`] (nothing is sent); errors of single messages
    /// come back through `f`'s own result.
    pub fn send_batch_to<R>(&mut self, client: ClientId, f: impl FnOnce(&mut Batch<'_>) -> R) -> Result<R, Error> {
        let r = self
            .tx
            .with_producer_to(client, |p| Batch::run(p, f))
            .map_err(Fault::into_error)?;
        signal_client(self.tx.segment(), client);
        Ok(r)
    }

    /// Sends `payload` to every connected client, or to none, waiting while
    /// any of their rings is full; clients that leave or die meanwhile are
    /// skipped, not waited for. Wakes them all. A typed value or a
    /// [`Fill`](crate::Fill) is encoded once, then copied to each client.
    ///
    /// # Errors
    /// [`Error::MessageTooLarge`], [`Error::Corrupted`] (that client is
    /// poisoned and dropped from the broadcast; retry for the others),
    /// [`Error::Type`].
    pub fn broadcast(&mut self, priority: Priority, payload: impl Payload) -> Result<(), Error> {
        self.broadcast_until(priority, &payload.bytes()?, Deadline::NEVER)
    }

    /// Like [`DaemonSender::broadcast`], waiting at most `timeout` for room.
    ///
    /// # Errors
    /// As [`DaemonSender::broadcast`], and [`Error::Timeout`] (nothing was sent).
    pub fn broadcast_timeout(
        &mut self,
        priority: Priority,
        payload: impl Payload,
        timeout: Duration,
    ) -> Result<(), Error> {
        self.broadcast_until(priority, &payload.bytes()?, Deadline::after(Some(timeout)))
    }

    /// Sends `payload` to every connected client if it fits in all their
    /// rings now, else to none.
    ///
    /// # Errors
    /// [`Error::Full`] when some client's ring lacks room; otherwise as
    /// [`DaemonSender::broadcast`].
    pub fn try_broadcast(&mut self, priority: Priority, payload: impl Payload) -> Result<(), Error> {
        let data = payload.bytes()?;
        self.tx
            .write_with(priority, data.len(), |b| b.copy_from_slice(&data))
            .map_err(Fault::into_error)?;
        signal_all(self.tx.segment(), self.tx.shard());
        Ok(())
    }

    fn broadcast_until(&mut self, priority: Priority, data: &[u8], until: Deadline) -> Result<(), Error> {
        self.tx
            .write_all_until(priority, data, until)
            .map_err(Fault::into_error)?;
        signal_all(self.tx.segment(), self.tx.shard());
        Ok(())
    }
}
