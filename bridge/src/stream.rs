//! The parts both sides of a bridge share to move one stream of messages
//! between Zenoh and a memlink endpoint: a queue fed from Zenoh's callbacks
//! (bounded by the credit windows), the messages waiting for room in a
//! ring, the tiers that have ended, and the publishers of a client's tiers.

use std::collections::VecDeque;
use std::time::Duration;

use memlink_shm::{Error, Priority};
use zenoh::bytes::ZBytes;
use zenoh::pubsub::Publisher;
use zenoh::qos::CongestionControl;
use zenoh::{Session, Wait};

use crate::error::BridgeError;
use crate::frames::{self, Packer};
use crate::wire::zenoh_priority;

/// How often a message waiting for room in a ring is tried again.
pub(crate) const RETRY: Duration = Duration::from_millis(1);

/// Whether messages are sent without waiting to fill a Zenoh batch: lower
/// latency, at some cost in throughput for tiny messages.
pub(crate) const EXPRESS: bool = false;

/// The runtime of the export's timers (retries, grace periods).
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, BridgeError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("memlink-bridge")
        .enable_all()
        .build()
        .map_err(|e| BridgeError::Zenoh(format!("starting the bridge's runtime: {e}")))
}

/// What the Zenoh side hands a memlink endpoint.
#[derive(Debug)]
pub(crate) enum Outbound<K> {
    /// A message for `K` on a tier.
    Data(K, Priority, ZBytes),
    /// The tier's stream for `K` ended: nothing follows on it.
    End(K, Priority),
}

/// The sending end of a queue, kept by Zenoh's callbacks.
#[derive(Debug)]
pub(crate) struct Inbound<K> {
    tx: flume::Sender<Outbound<K>>,
}

impl<K> Inbound<K> {
    /// Queues an item, never waiting (Zenoh's callbacks must not block).
    /// Dropped if the reader ended.
    pub(crate) fn push(&self, item: Outbound<K>) {
        let _ = self.tx.send(item);
    }
}

/// The receiving end of a queue, read by the thread that owns the endpoint.
#[derive(Debug)]
pub(crate) struct Queue<K> {
    rx: flume::Receiver<Outbound<K>>,
}

/// A new queue. Unbounded in samples: the windows bound what it holds in
/// bytes (a sample carries at least one message of the window).
pub(crate) fn queue<K>() -> (Inbound<K>, Queue<K>) {
    let (tx, rx) = flume::unbounded();
    (Inbound { tx }, Queue { rx })
}

impl<K> Queue<K> {
    /// The next item, waiting up to `timeout`.
    pub(crate) fn next_timeout(&self, timeout: Duration) -> Option<Outbound<K>> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// The next item if one is waiting now.
    pub(crate) fn try_next(&self) -> Option<Outbound<K>> {
        self.rx.try_recv().ok()
    }
}

/// Samples taken from a queue whose messages wait for room in a ring,
/// oldest first, each with the offset of its first message not yet sent.
#[derive(Debug)]
pub(crate) struct Pending<K> {
    items: VecDeque<(K, Priority, ZBytes, usize)>,
}

impl<K> Default for Pending<K> {
    fn default() -> Self {
        Pending { items: VecDeque::new() }
    }
}

impl<K> Pending<K> {
    pub(crate) fn push(&mut self, key: K, tier: Priority, sample: ZBytes) {
        self.items.push_back((key, tier, sample, 0));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Drops what waits; how many messages that was.
    pub(crate) fn clear(&mut self) -> u64 {
        let n = self
            .items
            .iter()
            .map(|(_, _, sample, offset)| frames::count(&sample.to_bytes(), *offset))
            .sum();
        self.items.clear();
        n
    }

    /// Sends the waiting messages, oldest first, with `send` (which must
    /// not block). A key whose ring is full ([`Error::Full`]) keeps its
    /// messages, in order, for later, and the others go on: a reader that
    /// does not read holds back only its own stream. Any other error stops
    /// the flush and is returned (the caller gives up the stream).
    ///
    /// What waits is bounded by the windows: at most a window of bytes per
    /// stream.
    pub(crate) fn flush(&mut self, mut send: impl FnMut(&K, Priority, &[u8]) -> Result<(), Error>) -> Result<(), Error>
    where
        K: PartialEq,
    {
        let mut full: Vec<usize> = Vec::new();
        let mut i = 0;
        while i < self.items.len() {
            if full.iter().any(|&f| self.items[f].0 == self.items[i].0) {
                i += 1;
                continue;
            }
            let (key, tier, sample, offset) = &mut self.items[i];
            let bytes = sample.to_bytes();
            let mut blocked = false;
            while let Some((body, after)) = frames::next(&bytes, *offset) {
                match send(key, *tier, body) {
                    Ok(()) => *offset = after,
                    Err(Error::Full) => {
                        blocked = true;
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            drop(bytes);
            if blocked {
                full.push(i);
                i += 1;
            } else {
                let _ = self.items.remove(i);
                // Indexes of blocked items are all below `i`: unchanged.
            }
        }
        Ok(())
    }
}

/// Which of the three tiers of a stream have ended.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Ends(u8);

impl Ends {
    pub(crate) fn set(&mut self, tier: Priority) {
        self.0 |= 1 << tier.index();
    }

    pub(crate) fn all(self) -> bool {
        self.0 == 0b111
    }
}

/// The publishers of one client's three tiers (in tier order), reliable,
/// blocking when Zenoh's queues are full.
pub(crate) fn publishers(
    session: &Session,
    key: impl Fn(Priority) -> String,
) -> zenoh::Result<[Publisher<'static>; 3]> {
    let mut out = Vec::with_capacity(3);
    for tier in Priority::ALL {
        out.push(publisher(session, key(tier), tier).wait()?);
    }
    Ok(three(out))
}

fn publisher(session: &Session, key: String, tier: Priority) -> zenoh::pubsub::PublisherBuilder<'_, 'static> {
    session
        .declare_publisher(key)
        .priority(zenoh_priority(tier))
        .congestion_control(CongestionControl::Block)
        .express(EXPRESS)
}

fn three(publishers: Vec<Publisher<'static>>) -> [Publisher<'static>; 3] {
    publishers
        .try_into()
        .unwrap_or_else(|_| unreachable!("one publisher per tier"))
}

/// One client's messages of a burst, a sample per tier, for its three
/// publishers.
#[derive(Debug, Default)]
pub(crate) struct Burst([Packer; 3]);

impl Burst {
    /// Adds a message of `tier`; a sample that fills up goes at once.
    pub(crate) fn push(&mut self, tier: Priority, bytes: &[u8], publishers: &[Publisher<'static>; 3]) {
        let packer = &mut self.0[tier.index()];
        if packer.push(bytes) {
            let _ = publishers[tier.index()].put(packer.take()).wait();
        }
    }

    /// [`Burst::push`] as a reader's closure, returning the message's
    /// length.
    pub(crate) fn packing<'a>(
        &'a mut self,
        publishers: &'a [Publisher<'static>; 3],
    ) -> impl FnMut(Priority, &[u8]) -> usize + 'a {
        move |tier, bytes| {
            self.push(tier, bytes, publishers);
            bytes.len()
        }
    }

    /// Sends what the burst gathered, a sample per tier.
    pub(crate) fn publish(&mut self, publishers: &[Publisher<'static>; 3]) {
        for (packer, publisher) in self.0.iter_mut().zip(publishers) {
            if !packer.is_empty() {
                let _ = publisher.put(packer.take()).wait();
            }
        }
    }
}

/// The publisher of a stream's acknowledgements: ahead of all data, never
/// batched.
pub(crate) fn ack_publisher(session: &Session, key: String) -> zenoh::pubsub::PublisherBuilder<'_, 'static> {
    session
        .declare_publisher(key)
        .priority(zenoh::qos::Priority::RealTime)
        .congestion_control(CongestionControl::Block)
        .express(true)
}

/// Ends each tier's stream (a `DELETE` after its last message).
pub(crate) fn end(publishers: &[Publisher<'static>; 3]) {
    for publisher in publishers {
        let _ = publisher.delete().wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(messages: &[&[u8]]) -> ZBytes {
        let mut packer = Packer::default();
        for m in messages {
            packer.push(m);
        }
        packer.take()
    }

    #[test]
    fn a_full_ring_holds_back_only_its_own_stream_and_keeps_its_order() {
        let mut pending = Pending::<u32>::default();
        pending.push(1, Priority::High, sample(&[b"1a", b"1b"]));
        pending.push(2, Priority::High, sample(&[b"2a"]));
        pending.push(1, Priority::Low, sample(&[b"1c"]));
        pending.push(2, Priority::Low, sample(&[b"2b", b"2c"]));
        let mut sent = Vec::new();
        let mut room_for_1 = 1;
        pending
            .flush(|key, _, bytes| {
                if *key == 1 {
                    if room_for_1 == 0 {
                        return Err(Error::Full);
                    }
                    room_for_1 -= 1;
                }
                sent.push(bytes.to_vec());
                Ok(())
            })
            .unwrap();
        assert_eq!(sent, [&b"1a"[..], b"2a", b"2b", b"2c"]);
        assert!(!pending.is_empty());
        sent.clear();
        pending
            .flush(|_, _, bytes| {
                sent.push(bytes.to_vec());
                Ok(())
            })
            .unwrap();
        assert_eq!(sent, [&b"1b"[..], b"1c"]);
        assert!(pending.is_empty());
        // Another error stops the flush.
        pending.push(3, Priority::High, sample(&[b"3a"]));
        assert!(matches!(
            pending.flush(|_, _, _| Err(Error::Disconnected)),
            Err(Error::Disconnected)
        ));
    }
}
