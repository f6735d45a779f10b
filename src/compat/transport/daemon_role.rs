//! The daemon role of [`super::NrelayShmTransport`]: the receiving and
//! sending parts of a daemon behind `RefCell`s, so that the `&self` methods
//! of the 0.1.3 API work and a reply from inside a read closure is allowed.

use std::cell::RefCell;
use std::time::Duration;

use super::lifted;
use crate::compat::pring::PriorityBatch;
use crate::compat::{ShmError, ShmResult};
use crate::endpoint::trusting_peer;
use crate::endpoint::{self, deadline, DaemonRx, DaemonTx, Deadline, Op, Outlet, Owner, Shard, Stats};
use crate::priority::Priority;
use crate::ring::RingBytes;
use crate::segment::Segment;
use crate::slot::{self, ClientId};

#[derive(Debug)]
pub(super) struct DaemonRole {
    rx: RefCell<DaemonRx>,
    tx: RefCell<DaemonTx>,
    owner: Owner,
    seg: Segment,
}

fn reentrant<E>(_: E) -> ShmError {
    ShmError::Reentrant
}

impl DaemonRole {
    pub(super) fn new(seg: Segment, spin: Duration) -> DaemonRole {
        let (rx, tx, owner) = endpoint::daemon_parts(seg.clone(), spin);
        DaemonRole {
            rx: RefCell::new(rx),
            tx: RefCell::new(tx),
            owner,
            seg,
        }
    }

    pub(super) fn segment(&self) -> &Segment {
        &self.seg
    }

    pub(super) fn set_spin(&self, spin: Duration) {
        if let Ok(mut rx) = self.rx.try_borrow_mut() {
            rx.set_spin(spin);
        }
        if let Ok(mut tx) = self.tx.try_borrow_mut() {
            tx.set_spin(spin);
        }
    }

    /// Runs a write on the sending part, after letting the receiving part
    /// free the slots of departed clients if the table moved at the last
    /// write (first, so that the write's result is returned as it is).
    #[inline(always)]
    fn sending<R>(&self, f: impl FnOnce(&mut DaemonTx) -> Op<R>) -> ShmResult<R> {
        let mut tx = self.tx.try_borrow_mut().map_err(reentrant)?;
        if tx.table_moved() {
            // Inside a read closure the receiving part is busy: a later send tidies.
            if let Ok(mut rx) = self.rx.try_borrow_mut() {
                endpoint::tidy_daemon(&mut rx, &mut tx);
            }
        }
        f(&mut tx).map_err(lifted)
    }

    /// Runs a read on the receiving part; the sending part lets go of a
    /// departed client's slot unless it is busy (a read inside a write
    /// closure), and then a later call frees it.
    #[inline(always)]
    fn receiving<R>(&self, f: impl FnOnce(&mut DaemonRx, &mut dyn FnMut(u32) -> bool) -> Op<R>) -> ShmResult<R> {
        let mut rx = self.rx.try_borrow_mut().map_err(reentrant)?;
        let mut release = |i| self.tx.try_borrow_mut().map(|mut t| t.detach(i)).is_ok();
        f(&mut rx, &mut release).map_err(lifted)
    }

    pub(super) fn write_with(&self, priority: Priority, len: usize, fill: impl FnMut(&mut [u8])) -> ShmResult<()> {
        self.sending(|tx| tx.write_with(priority, len, fill))
    }

    #[inline(always)]
    pub(super) fn write_to_with<R>(
        &self,
        client: ClientId,
        priority: Priority,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> ShmResult<R> {
        self.sending(|tx| tx.write_to_with(client, priority, len, fill))
    }

    pub(super) fn write_timeout(&self, priority: Priority, data: &[u8], timeout: Option<Duration>) -> ShmResult<()> {
        self.sending(|tx| tx.write_all_until(priority, data, Deadline::after(timeout)))
    }

    pub(super) fn write_to_timeout(
        &self,
        client: ClientId,
        priority: Priority,
        data: &[u8],
        timeout: Option<Duration>,
    ) -> ShmResult<()> {
        self.sending(|tx| {
            tx.to(client)
                .write_until(priority, data.len(), Deadline::after(timeout), |b| {
                    b.copy_from_slice(data)
                })
        })
    }

    pub(super) fn write_to_batch<R>(
        &self,
        client: ClientId,
        f: impl FnOnce(&mut PriorityBatch<'_>) -> R,
    ) -> ShmResult<R> {
        self.sending(|tx| tx.with_producer_to(client, |p| f(&mut PriorityBatch(p.batch()))))
    }

    #[inline(always)]
    pub(super) fn read_from_with<R>(
        &self,
        f: impl FnOnce(ClientId, Priority, RingBytes<'_>) -> R,
    ) -> ShmResult<Option<R>> {
        self.receiving(|rx, release| rx.read_from_with(&mut |i| release(i), f))
    }

    pub(super) fn read_from_batch_with(
        &self,
        max: usize,
        f: impl FnMut(ClientId, Priority, &[u8]),
    ) -> ShmResult<usize> {
        let mut f = f;
        self.receiving(|rx, release| {
            rx.read_from_batch_with(&mut |i| release(i), max, |c, p, b| f(c, p, trusting_peer(b)))
        })
    }

    pub(super) fn wait(&self, timeout: Option<Duration>) -> ShmResult<()> {
        self.receiving(|rx, release| rx.wait(&mut |i| release(i), deadline(timeout)))
    }

    pub(super) fn sweep(&self) -> u32 {
        endpoint::sweep(&self.seg)
    }

    pub(super) fn signal(&self) {
        endpoint::signal_all(&self.seg, Shard::ALL);
    }

    pub(super) fn signal_client(&self, client: ClientId) {
        endpoint::signal_client(&self.seg, client);
    }

    pub(super) fn clients(&self) -> Vec<ClientId> {
        slot::connected(&self.seg)
    }

    pub(super) fn backpressure(&self) -> f32 {
        endpoint::daemon_backpressure(&self.seg, Shard::ALL)
    }

    pub(super) fn set_backpressure(&self, level: f32) {
        endpoint::set_daemon_backpressure(&self.seg, level);
    }

    pub(super) fn stats(&self) -> Stats {
        // Inside a read closure the receiving part is busy: then only the
        // clients there now are counted.
        self.rx.try_borrow().map_or_else(
            |_| endpoint::segment_stats(&self.seg, Shard::ALL, &Stats::default()),
            |rx| rx.stats(),
        )
    }

    pub(super) fn shutdown(&self) {
        self.owner.shutdown();
    }
}
