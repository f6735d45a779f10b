//! The client role of [`super::NrelayShmTransport`]: the two halves of a
//! [`crate::Client`] behind `RefCell`s, so that the `&self` methods of the
//! 0.1.3 API work and a write from inside a read closure is allowed.

use std::cell::RefCell;
use std::time::Duration;

use crate::endpoint::{ClientReceiver, ClientSender, Stats};
use crate::error::{ShmError, ShmResult};
use crate::pring::PriorityBatch;
use crate::priority::Priority;
use crate::segment::Segment;
use crate::slot::ClientId;

#[derive(Debug)]
pub(super) struct ClientRole {
    tx: RefCell<ClientSender>,
    rx: RefCell<ClientReceiver>,
}

fn reentrant<E>(_: E) -> ShmError {
    ShmError::Reentrant
}

impl ClientRole {
    pub(super) fn new((tx, rx): (ClientSender, ClientReceiver)) -> ClientRole {
        ClientRole {
            tx: RefCell::new(tx),
            rx: RefCell::new(rx),
        }
    }

    pub(super) fn id(&self) -> ClientId {
        self.rx.borrow().id()
    }

    pub(super) fn with_segment<R>(&self, f: impl FnOnce(&Segment) -> R) -> R {
        f(self.tx.borrow().connection().segment())
    }

    pub(super) fn set_spin(&self, spin: Duration) {
        if let Ok(mut tx) = self.tx.try_borrow_mut() {
            tx.set_spin(spin);
        }
        if let Ok(mut rx) = self.rx.try_borrow_mut() {
            rx.set_spin(spin);
        }
    }

    pub(super) fn is_connected(&self) -> bool {
        self.rx.borrow().is_connected()
    }

    #[inline(always)]
    pub(super) fn write_with<R>(
        &self,
        priority: Priority,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> ShmResult<R> {
        self.tx
            .try_borrow_mut()
            .map_err(reentrant)?
            .write_with(priority, len, fill)
            .map_err(ShmError::from)
    }

    pub(super) fn write_timeout(&self, priority: Priority, data: &[u8], timeout: Option<Duration>) -> ShmResult<()> {
        self.tx
            .try_borrow_mut()
            .map_err(reentrant)?
            .write_timeout(priority, data, timeout)
            .map_err(ShmError::from)
    }

    pub(super) fn write_batch<R>(&self, f: impl FnOnce(&mut PriorityBatch<'_>) -> R) -> ShmResult<R> {
        self.tx
            .try_borrow_mut()
            .map_err(reentrant)?
            .with_producer(|p| f(&mut p.batch()))
            .map_err(ShmError::from)
    }

    #[inline(always)]
    pub(super) fn read_with<R>(&self, f: impl FnOnce(Priority, &[u8]) -> R) -> ShmResult<Option<R>> {
        self.rx
            .try_borrow_mut()
            .map_err(reentrant)?
            .read_with(f)
            .map_err(ShmError::from)
    }

    pub(super) fn read_batch_with(&self, max: usize, f: impl FnMut(Priority, &[u8])) -> ShmResult<usize> {
        self.rx
            .try_borrow_mut()
            .map_err(reentrant)?
            .read_batch_with(max, f)
            .map_err(ShmError::from)
    }

    #[inline]
    pub(super) fn signal(&self) {
        self.with_segment(|s| s.control().daemon_wake.notify());
    }

    pub(super) fn wait(&self, timeout: Option<Duration>) -> ShmResult<()> {
        self.rx
            .try_borrow_mut()
            .map_err(reentrant)?
            .wait(timeout)
            .map_err(ShmError::from)
    }

    pub(super) fn daemon_heartbeat_age(&self) -> Duration {
        self.tx.borrow().connection().daemon_heartbeat_age()
    }

    pub(super) fn backpressure(&self) -> f32 {
        self.tx.try_borrow().map_or(0.0, |t| t.backpressure())
    }

    pub(super) fn set_backpressure(&self, level: f32) {
        self.tx.borrow().connection().set_backpressure(level);
    }

    pub(super) fn stats(&self) -> Stats {
        self.tx.borrow().connection().stats()
    }

    pub(super) fn disconnect(&self) {
        self.tx.borrow().connection().disconnect();
    }
}
