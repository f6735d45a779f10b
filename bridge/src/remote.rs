//! A client of a remote daemon that speaks Zenoh itself: no shared memory,
//! no second process; the export on the daemon's host makes it a client of
//! its own there, as it does for an import's clients.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use memlink_shm::{Error, Message, Priority};
use zenoh::bytes::ZBytes;
use zenoh::liveliness::LivelinessToken;
use zenoh::pubsub::{Publisher, Subscriber};
use zenoh::sample::SampleKind;
use zenoh::{Session, Wait};

use crate::config::BridgeConfig;
use crate::error::BridgeError;
use crate::frames;
use crate::keys::{self, Keys};
use crate::refusal::{Notice, Refusal};
use crate::stream::{self, Ends};
use crate::window::{Acked, Consumed, Credit};
use crate::wire::Shape;

/// How long [`RemoteClient::connect`] waits for an export to answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Numbers this process's remote clients (with the session id, a name no
/// other client has).
static NEXT: AtomicU64 = AtomicU64::new(0);

enum Event {
    Data(Priority, ZBytes),
    End(Priority),
    ExportGone,
}

/// A client of a daemon on another host, reached over Zenoh through that
/// host's `memlink bridge export`: the same `send` and `recv` methods as
/// [`memlink_shm::Client`], and async forms.
///
/// To the daemon it is a client like any other (its own slot and
/// [`memlink_shm::ClientId`]). Messages keep their order within a tier.
/// When the daemon or the export goes, or stays silent for a lease, calls
/// return [`Error::Disconnected`]. Sending blocks while Zenoh's queues are
/// full (the daemon's ring to it is full and the export waits for room).
///
/// ```no_run
/// use memlink_bridge::{BridgeConfig, RemoteClient};
/// use memlink_shm::Priority;
/// let config = BridgeConfig::default().connect("tcp/10.0.0.1:7447");
/// let mut client = RemoteClient::connect("my-service", config)?;
/// client.send(Priority::High, b"ping")?;
/// let reply = client.recv()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RemoteClient {
    rid: String,
    publishers: [Publisher<'static>; 3],
    /// The window of this client's messages to the daemon.
    acked: Arc<Acked>,
    credit: Credit,
    /// Set when the export or the daemon went (seen by the callbacks).
    gone: Arc<AtomicBool>,
    /// Why the export stopped delivering this client's messages, if it did.
    refusal: Arc<Mutex<Option<Refusal>>>,
    events: flume::Receiver<Event>,
    /// Messages of a sample not yet handed out.
    inbox: VecDeque<Message>,
    consumed: Consumed,
    ends: Ends,
    disconnected: bool,
    max_message_size: usize,
    _downs: Subscriber<()>,
    _exports: Subscriber<()>,
    _acks: Subscriber<()>,
    _refused: Subscriber<()>,
    token: Option<LivelinessToken>,
    session: Session,
}

impl std::fmt::Debug for RemoteClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteClient")
            .field("id", &self.rid)
            .field("connected", &!self.disconnected)
            .finish_non_exhaustive()
    }
}

impl RemoteClient {
    /// Connects to segment `segment`'s daemon through an export reachable
    /// with `config`, waiting up to 10 s for the export to answer.
    ///
    /// # Errors
    /// [`BridgeError::NoExport`] when no export answered in time;
    /// [`BridgeError::Refused`] when it answered but its daemon did not take
    /// the client (not running, no free slot); [`BridgeError::Zenoh`] when
    /// the session cannot open.
    pub fn connect(segment: &str, config: BridgeConfig) -> Result<RemoteClient, BridgeError> {
        let session = zenoh::open(config.to_zenoh()?).wait().map_err(BridgeError::zenoh)?;
        let keys = Keys::new(segment);
        let rid = keys::rid(&session.zid().to_string(), NEXT.fetch_add(1, Ordering::Relaxed));
        // Samples of a window (bounded by its bytes), the ends.
        let (tx, events) = flume::unbounded();
        let acked = Arc::new(Acked::default());
        let gone = Arc::new(AtomicBool::new(false));
        let (down, k, a, g) = (tx.clone(), keys.clone(), acked.clone(), gone.clone());
        let refused_tx = tx.clone();
        let downs = session
            .declare_subscriber(keys.downs_of_client(&rid))
            .callback(move |sample| {
                let Some(("down", _, Some(tier))) = k.parse(sample.key_expr().as_str()) else {
                    return;
                };
                let _ = down.try_send(match sample.kind() {
                    SampleKind::Put => Event::Data(tier, sample.payload().clone()),
                    SampleKind::Delete => {
                        // The export stopped serving this client.
                        g.store(true, Ordering::Release);
                        a.release();
                        Event::End(tier)
                    }
                });
            })
            .wait()
            .map_err(BridgeError::zenoh)?;
        let live = AtomicUsize::new(0);
        let (a, g) = (acked.clone(), gone.clone());
        let exports = session
            .liveliness()
            .declare_subscriber(keys.exports())
            .history(true)
            .callback(move |sample| match sample.kind() {
                SampleKind::Put => {
                    live.fetch_add(1, Ordering::Relaxed);
                }
                SampleKind::Delete => {
                    let before = live.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some(n.saturating_sub(1)));
                    if before == Ok(1) {
                        g.store(true, Ordering::Release);
                        a.release();
                        let _ = tx.try_send(Event::ExportGone);
                    }
                }
            })
            .wait()
            .map_err(BridgeError::zenoh)?;
        let refusal = Arc::new(Mutex::new(None));
        let (r, a, g) = (refusal.clone(), acked.clone(), gone.clone());
        let refused = session
            .declare_subscriber(keys.refused(&rid))
            .callback(move |sample| {
                if let Some(notice) = Notice::decode(&sample.payload().to_bytes()) {
                    *r.lock().unwrap_or_else(PoisonError::into_inner) = Some(notice.refusal);
                    g.store(true, Ordering::Release);
                    a.release();
                    let _ = refused_tx.try_send(Event::ExportGone);
                }
            })
            .wait()
            .map_err(BridgeError::zenoh)?;
        let a = acked.clone();
        let acks = session
            .declare_subscriber(keys.ack_up(&rid))
            .callback(move |sample| a.update(&sample.payload().to_bytes()))
            .wait()
            .map_err(BridgeError::zenoh)?;
        let ack = stream::ack_publisher(&session, keys.ack_down(&rid))
            .wait()
            .map_err(BridgeError::zenoh)?;
        let token = session
            .liveliness()
            .declare_token(keys.client(&rid))
            .wait()
            .map_err(BridgeError::zenoh)?;
        let shape = attach(&session, &keys, &rid, segment)?;
        let publishers = stream::publishers(&session, |tier| keys.up(&rid, tier)).map_err(BridgeError::zenoh)?;
        Ok(RemoteClient {
            rid,
            publishers,
            acked,
            credit: Credit::default(),
            gone,
            refusal,
            events,
            inbox: VecDeque::new(),
            consumed: Consumed::new(ack),
            ends: Ends::default(),
            disconnected: false,
            max_message_size: shape.max_message_size,
            _downs: downs,
            _exports: exports,
            _acks: acks,
            _refused: refused,
            token: Some(token),
            session,
        })
    }

    /// This client's name on the bridge (`<zenoh id>/<number>`).
    pub fn id(&self) -> &str {
        &self.rid
    }

    /// The largest message the remote segment carries.
    pub fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// Whether the daemon and the export are there, as far as this client
    /// has heard.
    pub fn is_connected(&self) -> bool {
        !self.disconnected && !self.gone.load(Ordering::Acquire)
    }

    /// Why the export stopped delivering this client's messages, once it
    /// did (then every call returns [`Error::Disconnected`]): a message too
    /// large for the daemon, or a daemon that went.
    pub fn refusal(&self) -> Option<Refusal> {
        self.refusal.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Sends `data` on tier `priority`, waiting while the daemon's side has
    /// a window of this client's messages not yet taken into its ring.
    ///
    /// # Errors
    /// [`Error::Disconnected`] once the daemon or the export went;
    /// [`Error::MessageTooLarge`] for a message the segment cannot carry.
    pub fn send(&mut self, priority: Priority, data: &[u8]) -> Result<(), Error> {
        self.check(data.len())?;
        self.credit.wait(&self.acked, None);
        self.put(priority, data)
    }

    /// [`RemoteClient::send`], giving up after `timeout` if there is no room.
    ///
    /// # Errors
    /// [`Error::Timeout`] when the window stayed full; otherwise as
    /// [`RemoteClient::send`].
    pub fn send_timeout(&mut self, priority: Priority, data: &[u8], timeout: Duration) -> Result<(), Error> {
        self.check(data.len())?;
        if !self.credit.wait(&self.acked, Some(Instant::now() + timeout)) {
            return Err(Error::Timeout);
        }
        self.put(priority, data)
    }

    /// Sends if there is room now.
    ///
    /// # Errors
    /// [`Error::Full`] when the window is full; otherwise as
    /// [`RemoteClient::send`].
    pub fn try_send(&mut self, priority: Priority, data: &[u8]) -> Result<(), Error> {
        self.check(data.len())?;
        if !self.credit.open(&self.acked) {
            return Err(Error::Full);
        }
        self.put(priority, data)
    }

    /// [`RemoteClient::send`] as a future (cancellation-safe: nothing is sent
    /// unless it completes).
    ///
    /// # Errors
    /// As [`RemoteClient::send`].
    pub async fn send_async(&mut self, priority: Priority, data: &[u8]) -> Result<(), Error> {
        self.check(data.len())?;
        self.credit.wait_async(&self.acked).await;
        self.put(priority, data)
    }

    fn put(&mut self, priority: Priority, data: &[u8]) -> Result<(), Error> {
        self.live()?;
        self.publishers[priority.index()]
            .put(frames::single(data))
            .wait()
            .map_err(|_| Error::Disconnected)?;
        self.credit.spend(data.len());
        Ok(())
    }

    /// Takes the next message, waiting for one.
    ///
    /// # Errors
    /// [`Error::Disconnected`] once the daemon or the export went (after the
    /// messages the daemon sent before it went).
    pub fn recv(&mut self) -> Result<Message, Error> {
        loop {
            if let Some(message) = self.unbox() {
                return Ok(message);
            }
            self.live()?;
            let event = self.events.recv().map_err(|_| Error::Disconnected)?;
            if let Some(message) = self.take(event) {
                return Ok(message);
            }
        }
    }

    /// [`RemoteClient::recv`], giving up after `timeout`.
    ///
    /// # Errors
    /// [`Error::Timeout`] when no message came in time; otherwise as
    /// [`RemoteClient::recv`].
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Message, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(message) = self.unbox() {
                return Ok(message);
            }
            self.live()?;
            let event = match self.events.recv_deadline(deadline) {
                Ok(event) => event,
                Err(flume::RecvTimeoutError::Timeout) => return Err(Error::Timeout),
                Err(flume::RecvTimeoutError::Disconnected) => return Err(Error::Disconnected),
            };
            if let Some(message) = self.take(event) {
                return Ok(message);
            }
        }
    }

    /// Takes a message if one is waiting.
    ///
    /// # Errors
    /// [`Error::Empty`] when none is; otherwise as [`RemoteClient::recv`].
    pub fn try_recv(&mut self) -> Result<Message, Error> {
        loop {
            if let Some(message) = self.unbox() {
                return Ok(message);
            }
            self.live()?;
            let event = match self.events.try_recv() {
                Ok(event) => event,
                Err(flume::TryRecvError::Empty) => return Err(Error::Empty),
                Err(flume::TryRecvError::Disconnected) => return Err(Error::Disconnected),
            };
            if let Some(message) = self.take(event) {
                return Ok(message);
            }
        }
    }

    /// [`RemoteClient::recv`] as a future (cancellation-safe: a message is
    /// taken only by the poll that returns it).
    ///
    /// # Errors
    /// As [`RemoteClient::recv`].
    pub async fn recv_async(&mut self) -> Result<Message, Error> {
        loop {
            if let Some(message) = self.unbox() {
                return Ok(message);
            }
            self.live()?;
            let event = self.events.recv_async().await.map_err(|_| Error::Disconnected)?;
            if let Some(message) = self.take(event) {
                return Ok(message);
            }
        }
    }

    fn live(&self) -> Result<(), Error> {
        // The ends and the export's departure come through `events`, after
        // the messages before them: a receiver sees every message first.
        if self.disconnected {
            Err(Error::Disconnected)
        } else {
            Ok(())
        }
    }

    fn check(&self, len: usize) -> Result<(), Error> {
        if self.gone.load(Ordering::Acquire) {
            return Err(Error::Disconnected);
        }
        if len > self.max_message_size {
            return Err(Error::MessageTooLarge {
                len,
                max: self.max_message_size,
            });
        }
        Ok(())
    }

    /// The next message of the last sample, if any is left.
    fn unbox(&mut self) -> Option<Message> {
        let message = self.inbox.pop_front()?;
        self.consumed.take(message.payload().len());
        Some(message)
    }

    fn take(&mut self, event: Event) -> Option<Message> {
        match event {
            Event::Data(tier, sample) => {
                let bytes = sample.to_bytes();
                let mut offset = 0;
                while let Some((body, after)) = frames::next(&bytes, offset) {
                    self.inbox.push_back(Message::new(tier, body));
                    offset = after;
                }
                return self.unbox();
            }
            Event::End(tier) => {
                self.ends.set(tier);
                self.disconnected = self.ends.all();
            }
            Event::ExportGone => self.disconnected = true,
        }
        None
    }
}

impl Drop for RemoteClient {
    fn drop(&mut self) {
        // A clean departure: each tier ends after its last message, then the
        // token goes.
        for publisher in &self.publishers {
            let _ = publisher.delete().wait();
        }
        drop(self.token.take());
        let _ = self.session.close().wait();
    }
}

/// Asks the export to attach client `rid` to its daemon, until it answers
/// or [`CONNECT_TIMEOUT`] passes.
fn attach(session: &Session, keys: &Keys, rid: &str, segment: &str) -> Result<Shape, BridgeError> {
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    while Instant::now() < deadline {
        let replies = session
            .get(keys.attach(rid))
            .timeout(Duration::from_secs(2))
            .wait()
            .map_err(BridgeError::zenoh)?;
        if let Ok(reply) = replies.recv() {
            return match reply.result() {
                Ok(sample) => Shape::decode(&sample.payload().to_bytes()).ok_or_else(malformed),
                Err(why) => {
                    Err(Refusal::decode(&why.payload().to_bytes()).map_or_else(malformed, BridgeError::Refused))
                }
            };
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(BridgeError::NoExport(segment.to_owned()))
}

fn malformed() -> BridgeError {
    BridgeError::Refused(Refusal::Unusable {
        reason: "the export's answer is malformed (another version of memlink-bridge?)".into(),
    })
}
