//! Credit-based flow control for one direction of one client's stream.
//!
//! Zenoh's own congestion control holds back a sender only while its
//! transmit queues are full; a receiver must take every message at once
//! (blocking Zenoh's receive path would also stop its keep-alives, and a
//! busy link would look dead after one lease). So each stream has a window:
//! the sender stops once [`WINDOW`] bytes are unacknowledged (counting 4
//! bytes of framing per message, and letting the message that crosses the
//! line go), the receiver acknowledges what it has moved into a ring (a
//! cumulative count, every quarter window), and a slow reader holds back
//! its sender through its full ring, then the window, with at most one
//! window (and one message) in the bridge's memory.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Instant;

use tokio::sync::Notify;
use zenoh::pubsub::Publisher;
use zenoh::Wait;

/// Bytes a stream may have in flight, unacknowledged: about 15,000 64 B
/// messages, enough to keep a loopback link busy while acknowledgements
/// travel, and a bound on memory whatever the message size.
pub(crate) const WINDOW: u64 = 1 << 20;

/// What a message of `len` bytes costs of a window.
pub(crate) fn cost(len: usize) -> u64 {
    len as u64 + 4
}

/// What a stream's receiver has acknowledged, as its sender learns it (from
/// a Zenoh callback).
#[derive(Debug, Default)]
pub(crate) struct Acked {
    count: AtomicU64,
    notify: Notify,
    lock: Mutex<()>,
    changed: Condvar,
}

impl Acked {
    /// Takes an acknowledgement: `bytes` is the receiver's cumulative count
    /// (a malformed one is ignored; a count never goes back).
    pub(crate) fn update(&self, bytes: &[u8]) {
        let Ok(count) = <[u8; 8]>::try_from(bytes).map(u64::from_le_bytes) else {
            return;
        };
        self.raise(count);
    }

    /// Opens the window for good: the stream is over, so whoever waits for
    /// room wakes up (and finds the peer gone).
    pub(crate) fn release(&self) {
        self.raise(u64::MAX);
    }

    fn raise(&self, count: u64) {
        self.count.fetch_max(count, Ordering::AcqRel);
        self.notify.notify_waiters();
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.changed.notify_all();
    }

    fn count(&self) -> u64 {
        self.count.load(Ordering::Acquire)
    }
}

/// The sending end's count of what it sent.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Credit {
    sent: u64,
}

impl Credit {
    /// Whether another message may go now.
    pub(crate) fn open(&self, acked: &Acked) -> bool {
        self.sent.saturating_sub(acked.count()) < WINDOW
    }

    /// Counts a message of `len` bytes sent.
    pub(crate) fn spend(&mut self, len: usize) {
        self.sent += cost(len);
    }

    /// Waits until another message may go.
    pub(crate) async fn wait_async(&self, acked: &Acked) {
        loop {
            let notified = acked.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.open(acked) {
                return;
            }
            notified.await;
        }
    }

    /// Waits until another message may go, or `deadline` passes (then
    /// `false`).
    pub(crate) fn wait(&self, acked: &Acked, deadline: Option<Instant>) -> bool {
        let mut guard = acked.lock.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if self.open(acked) {
                return true;
            }
            guard = match deadline {
                None => acked.changed.wait(guard).unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return false;
                    }
                    acked
                        .changed
                        .wait_timeout(guard, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
    }
}

/// The receiving end's count of what it consumed, and the publisher of its
/// acknowledgements.
#[derive(Debug)]
pub(crate) struct Consumed {
    count: u64,
    reported: u64,
    ack: Publisher<'static>,
}

impl Consumed {
    pub(crate) fn new(ack: Publisher<'static>) -> Consumed {
        Consumed {
            count: 0,
            reported: 0,
            ack,
        }
    }

    /// Counts a message of `len` bytes moved on, and acknowledges once a
    /// quarter window has been.
    pub(crate) fn take(&mut self, len: usize) {
        self.count += cost(len);
        if self.count - self.reported >= WINDOW / 4 {
            self.reported = self.count;
            let _ = self.ack.put(self.count.to_le_bytes().to_vec()).wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_closes_after_window_messages_and_reopens_on_an_ack() {
        let acked = Acked::default();
        let mut credit = Credit::default();
        for _ in 0..WINDOW / cost(59) {
            assert!(credit.open(&acked));
            credit.spend(59);
        }
        assert!(credit.open(&acked), "the message that crosses the line goes");
        credit.spend(59);
        assert!(!credit.open(&acked));
        assert!(!credit.wait(&acked, Some(Instant::now())));
        acked.update(&(WINDOW / 4).to_le_bytes());
        assert!(credit.open(&acked));
        // Stale, malformed and hostile acknowledgements change nothing bad.
        acked.update(&1u64.to_le_bytes());
        acked.update(b"short");
        assert_eq!(acked.count(), WINDOW / 4);
        acked.update(&u64::MAX.to_le_bytes());
        assert!(credit.open(&acked));
    }
}
