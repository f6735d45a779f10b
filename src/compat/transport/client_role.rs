//! The client role of [`super::NrelayShmTransport`]: the two halves of a
//! [`crate::Client`] behind `RefCell`s, so that the `&self` methods of the
//! 0.1.3 API work and a write from inside a read closure is allowed. What
//! only asks about the connection (id, liveness, counters, leaving) goes
//! through the connection the halves share, never through a `RefCell`, so
//! it also works from inside a closure of either half.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use super::lifted;
use crate::compat::pring::PriorityBatch;
use crate::compat::{ShmError, ShmResult};
use crate::endpoint::trusting_peer;
use crate::endpoint::{deadline, ClientReceiver, ClientSender, Connection, Deadline, Outlet, Stats};
use crate::priority::Priority;
use crate::ring::RingBytes;
use crate::segment::Segment;
use crate::slot::ClientId;

#[derive(Debug)]
pub(super) struct ClientRole {
    tx: RefCell<ClientSender>,
    rx: RefCell<ClientReceiver>,
    conn: Arc<Connection>,
}

fn reentrant<E>(_: E) -> ShmError {
    ShmError::Reentrant
}

impl ClientRole {
    pub(super) fn new((tx, rx): (ClientSender, ClientReceiver)) -> ClientRole {
        ClientRole {
            conn: Arc::clone(tx.connection()),
            tx: RefCell::new(tx),
            rx: RefCell::new(rx),
        }
    }

    pub(super) fn id(&self) -> ClientId {
        self.conn.id()
    }

    pub(super) fn segment(&self) -> &Segment {
        self.conn.segment()
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
        self.conn.is_connected()
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
            .write(priority, len, fill)
            .map_err(lifted)
    }

    pub(super) fn write_timeout(&self, priority: Priority, data: &[u8], timeout: Option<Duration>) -> ShmResult<()> {
        self.tx
            .try_borrow_mut()
            .map_err(reentrant)?
            .write_until(priority, data.len(), Deadline::after(timeout), |b| {
                b.copy_from_slice(data)
            })
            .map_err(lifted)
    }

    pub(super) fn write_batch<R>(&self, f: impl FnOnce(&mut PriorityBatch<'_>) -> R) -> ShmResult<R> {
        self.tx
            .try_borrow_mut()
            .map_err(reentrant)?
            .with_producer(|p| f(&mut PriorityBatch(p.batch())))
            .map_err(lifted)
    }

    #[inline(always)]
    pub(super) fn read_with<R>(&self, f: impl FnOnce(Priority, RingBytes<'_>) -> R) -> ShmResult<Option<R>> {
        self.rx
            .try_borrow_mut()
            .map_err(reentrant)?
            .read_with(f)
            .map_err(lifted)
    }

    pub(super) fn read_batch_with(&self, max: usize, mut f: impl FnMut(Priority, &[u8])) -> ShmResult<usize> {
        self.rx
            .try_borrow_mut()
            .map_err(reentrant)?
            .read_batch_with(max, |p, b| f(p, trusting_peer(b)))
            .map_err(lifted)
    }

    #[inline]
    pub(super) fn signal(&self) {
        self.conn.signal();
    }

    pub(super) fn wait(&self, timeout: Option<Duration>) -> ShmResult<()> {
        self.rx
            .try_borrow_mut()
            .map_err(reentrant)?
            .wait(deadline(timeout))
            .map_err(lifted)
    }

    pub(super) fn daemon_heartbeat_age(&self) -> Duration {
        self.conn.daemon_heartbeat_age()
    }

    pub(super) fn backpressure(&self) -> f32 {
        // Inside a write closure the sending half is busy: the hint alone.
        self.tx
            .try_borrow()
            .map_or_else(|_| self.conn.daemon_backpressure(), |t| t.backpressure())
    }

    pub(super) fn set_backpressure(&self, level: f32) {
        self.conn.set_backpressure(level);
    }

    pub(super) fn stats(&self) -> Stats {
        self.conn.stats()
    }

    pub(super) fn disconnect(&self) {
        self.conn.disconnect();
    }
}
