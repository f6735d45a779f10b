//! The export side, on the daemon's host: each remote client becomes a local
//! [`Client`] of the daemon, with its own slot and [`memlink_shm::ClientId`].
//!
//! A remote client is attached by its attach query (which names the
//! protocol version it speaks; the daemon checks it), before it sends
//! anything, and leaves when the `DELETE`s that end its three tiers have
//! arrived (it left cleanly: every message it sent is delivered first) or
//! [`GRACE`] after its token vanished (its session died or went silent for
//! a lease). A name that left is never attached again, so a late message
//! cannot bring it back.
//!
//! Accepted means delivered or refused: an attach the daemon refuses is
//! answered with the [`Refusal`]; a message the daemon cannot take (too
//! large for it, or the daemon went) refuses the client after it was
//! attached, with a notice on its `refused` key. Either way the export logs
//! it, and counts each client's messages taken, delivered and refused.
//!
//! Messages to the daemon go into the client's ring straight from Zenoh's
//! callback (those that find the ring full wait in the client's `Up` and
//! are retried every millisecond); messages from the daemon are read by a
//! thread per client that blocks on the ring, as a local client would. No
//! task hop in either direction: on a round trip, each hop is a wake-up.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use memlink_shm::{inspect, Client, ClientReceiver, ClientSender, Error};
use zenoh::liveliness::LivelinessToken;
use zenoh::pubsub::{Publisher, Subscriber};
use zenoh::query::{Query, Queryable};
use zenoh::sample::{Sample, SampleKind};
use zenoh::{Session, Wait};

use crate::config::BridgeConfig;
use crate::counts::{ClientCounts, Counters};
use crate::error::BridgeError;
use crate::frames;
use crate::keys::Keys;
use crate::refusal::{Notice, Refusal};
use crate::stream::{self, Burst, Ends, Pending};
use crate::window::{Acked, Consumed, Credit};
use crate::wire::Shape;

/// How long a client whose token vanished is kept, for its last messages
/// (which may travel behind the token's removal) to arrive.
pub const GRACE: Duration = Duration::from_millis(500);

/// A running export of one segment; stops when dropped.
///
/// ```no_run
/// use memlink_bridge::{BridgeConfig, Export};
/// let export = Export::start("my-service", BridgeConfig::default().listen("tcp/0.0.0.0:7447"))?;
/// export.run_forever();
/// # Ok::<(), memlink_bridge::BridgeError>(())
/// ```
#[derive(Debug)]
pub struct Export {
    _token: LivelinessToken,
    _info: Queryable<()>,
    _attach: Queryable<()>,
    _ups: Subscriber<()>,
    _tokens: Subscriber<()>,
    _acks: Subscriber<()>,
    shared: Arc<Shared>,
    runtime: tokio::runtime::Runtime,
}

/// What the callbacks and the clients' threads share.
#[derive(Debug)]
struct Shared {
    segment: String,
    keys: Keys,
    session: Session,
    runtime: tokio::runtime::Handle,
    clients: Mutex<Clients>,
}

#[derive(Debug, Default)]
struct Clients {
    live: HashMap<String, Attached>,
    /// Clients that left or were refused, with their final counts (a late
    /// message of a refused client counts as refused).
    left: HashMap<String, Left>,
}

#[derive(Debug)]
struct Left {
    counts: Arc<Counters>,
    why: Why,
    /// Its side was told it is no longer attached.
    told: bool,
}

/// Why a client is detached.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Why {
    /// It left cleanly (everything it sent is delivered), or the export or
    /// the daemon stops.
    Left,
    /// Its token vanished for longer than [`GRACE`] (its link was lost):
    /// its side may not have noticed.
    Lost,
    /// The daemon cannot take it or its messages.
    Refused(Refusal),
}

/// An attached remote client, as the callbacks reach it.
#[derive(Debug, Clone)]
struct Attached {
    up: Arc<Mutex<Up>>,
    /// What the client side acknowledged of the daemon's messages to it.
    acked: Arc<Acked>,
    /// Tells the client's reading thread to end.
    stop: Arc<AtomicBool>,
    counts: Arc<Counters>,
}

/// The client's way to the daemon.
#[derive(Debug)]
struct Up {
    /// `None` once the client left.
    sender: Option<ClientSender>,
    pending: Pending<()>,
    ends: Ends,
    consumed: Consumed,
    /// A retry task is scheduled.
    retrying: bool,
}

impl Export {
    /// Serves segment `segment` (whose daemon runs on this host, now or
    /// later) to remote clients and imports that reach this process through
    /// `config`.
    ///
    /// # Errors
    /// [`BridgeError::Zenoh`] when the session cannot open (a bad or busy
    /// endpoint), [`BridgeError::Config`] for a bad configuration file.
    pub fn start(segment: &str, config: BridgeConfig) -> Result<Export, BridgeError> {
        let runtime = stream::runtime()?;
        let session = zenoh::open(config.to_zenoh()?).wait().map_err(BridgeError::zenoh)?;
        let keys = Keys::new(segment);
        let shared = Arc::new(Shared {
            segment: segment.to_owned(),
            keys: keys.clone(),
            session: session.clone(),
            runtime: runtime.handle().clone(),
            clients: Mutex::new(Clients::default()),
        });
        let zid = session.zid().to_string();
        let s = shared.clone();
        let info = session
            .declare_queryable(keys.info())
            .callback(move |query| s.answer_info(&query))
            .wait()
            .map_err(BridgeError::zenoh)?;
        let s = shared.clone();
        let attach = session
            .declare_queryable(keys.attaches())
            .callback(move |query| answer_attach(&s, &query))
            .wait()
            .map_err(BridgeError::zenoh)?;
        let s = shared.clone();
        let ups = session
            .declare_subscriber(keys.ups())
            .callback(move |sample| on_up(&s, &sample))
            .wait()
            .map_err(BridgeError::zenoh)?;
        let s = shared.clone();
        let tokens = session
            .liveliness()
            .declare_subscriber(keys.clients())
            .history(true)
            .callback(move |sample| on_token(&s, &sample))
            .wait()
            .map_err(BridgeError::zenoh)?;
        let s = shared.clone();
        let acks = session
            .declare_subscriber(keys.ack_downs())
            .callback(move |sample| on_ack(&s, &sample))
            .wait()
            .map_err(BridgeError::zenoh)?;
        let token = session
            .liveliness()
            .declare_token(keys.export(&zid))
            .wait()
            .map_err(BridgeError::zenoh)?;
        Ok(Export {
            _token: token,
            _info: info,
            _attach: attach,
            _ups: ups,
            _tokens: tokens,
            _acks: acks,
            shared,
            runtime,
        })
    }

    /// The segment this export serves, as its daemon made it: `None` while
    /// no daemon runs on it (the export serves it once one starts).
    pub fn shape(&self) -> Option<Shape> {
        match inspect::segment(&self.shared.segment) {
            Ok(info) if info.daemon.alive && !info.daemon.shutting_down => Some(Shape::of(&info)),
            _ => None,
        }
    }

    /// The segment's name.
    pub fn segment(&self) -> &str {
        &self.shared.segment
    }

    /// What became of each attached client's messages so far.
    pub fn counts(&self) -> Vec<ClientCounts> {
        let mut out: Vec<ClientCounts> = self
            .shared
            .lock()
            .live
            .iter()
            .map(|(rid, attached)| attached.counts.of(rid))
            .collect();
        out.sort_by(|a, b| a.client.cmp(&b.client));
        out
    }

    /// How many remote clients are attached now.
    pub fn client_count(&self) -> usize {
        self.shared.lock().live.len()
    }

    /// Serves until the process ends.
    pub fn run_forever(self) -> ! {
        loop {
            std::thread::park();
        }
    }
}

impl Drop for Export {
    fn drop(&mut self) {
        let rids: Vec<String> = self.shared.lock().live.keys().cloned().collect();
        for rid in rids {
            self.shared.detach(&rid, Why::Left);
        }
        let _ = self.shared.session.close().wait();
        let _ = &self.runtime;
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Clients> {
        self.clients.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn answer_info(&self, query: &Query) {
        let reply = match inspect::segment(&self.segment) {
            Ok(info) if info.daemon.alive && !info.daemon.shutting_down => Ok(Shape::of(&info).encode()),
            Ok(_) => Err(format!("the daemon of {} is not running", self.segment)),
            Err(e) => Err(e.to_string()),
        };
        let _ = match reply {
            Ok(shape) => query.reply(query.key_expr().clone(), shape).wait(),
            Err(why) => query.reply_err(why).wait(),
        };
    }

    /// Ends client `rid`: it is not attached again, its sending half goes
    /// now and its reading thread within a read timeout. Logs it, with its
    /// counts, and tells its side if it was refused.
    fn detach(&self, rid: &str, why: Why) {
        let attached = {
            let mut clients = self.lock();
            let attached = clients.live.remove(rid);
            if let Some(attached) = &attached {
                let left = Left {
                    counts: attached.counts.clone(),
                    why: why.clone(),
                    told: matches!(why, Why::Refused(_)),
                };
                clients.left.insert(rid.to_owned(), left);
            }
            attached
        };
        let Some(attached) = attached else {
            return;
        };
        attached.stop.store(true, Ordering::Relaxed);
        let mut up = lock(&attached.up);
        up.sender = None;
        let refusal = match why {
            Why::Refused(refusal) => refusal,
            Why::Left | Why::Lost => {
                drop(up);
                let how = if why == Why::Lost {
                    format!("was lost (its token vanished for longer than {GRACE:?})")
                } else {
                    "left".to_owned()
                };
                eprintln!(
                    "memlink bridge export: client {} of {} {how}",
                    attached.counts.of(rid),
                    self.segment
                );
                return;
            }
        };
        // What still waits will never be delivered.
        attached.counts.refused(up.pending.clear());
        drop(up);
        let counts = attached.counts.of(rid);
        eprintln!(
            "memlink bridge export: refused client {rid} of {}: {refusal} ({} of its messages delivered, {} refused)",
            self.segment, counts.delivered, counts.refused
        );
        self.tell(rid, refusal, &counts);
    }

    /// Tells client `rid`'s side that the export no longer delivers its
    /// messages, and why.
    fn tell(&self, rid: &str, refusal: Refusal, counts: &ClientCounts) {
        let notice = Notice {
            refusal,
            delivered: counts.delivered,
            refused: counts.refused,
        };
        let _ = self
            .session
            .put(self.keys.refused(rid), notice.encode())
            .priority(zenoh::qos::Priority::RealTime)
            .wait();
    }

    /// Counts a message for client `rid` that is not attached: refused if
    /// the export refused it or lost it (whose side, which may not have
    /// noticed the loss, is told once). A peer that sends without
    /// attaching, or after it left, is ignored.
    fn unattached(&self, rid: &str, messages: u64) {
        let lost = {
            let mut clients = self.lock();
            let Some(left) = clients.left.get_mut(rid) else {
                return;
            };
            if left.why == Why::Left {
                return;
            }
            left.counts.took(messages);
            left.counts.refused(messages);
            let tell = left.why == Why::Lost && !left.told;
            left.told = true;
            tell.then(|| left.counts.of(rid))
        };
        if let Some(counts) = lost {
            let refusal = Refusal::LinkLost {
                grace_ms: GRACE.as_millis() as u64,
            };
            eprintln!(
                "memlink bridge export: refused client {rid} of {}: {refusal}",
                self.segment
            );
            self.tell(rid, refusal, &counts);
        }
    }
}

fn lock(up: &Mutex<Up>) -> MutexGuard<'_, Up> {
    up.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Attaches the client of an attach query, whose payload is the protocol
/// version it speaks (4 bytes, little-endian; none: the daemon's), and
/// answers with the segment's shape or the refusal.
fn answer_attach(shared: &Arc<Shared>, query: &Query) {
    let Some(("attach", rid, None)) = shared.keys.parse(query.key_expr().as_str()) else {
        return; // not an attach key: a peer's mistake
    };
    let version = query
        .payload()
        .and_then(|p| <[u8; 4]>::try_from(&p.to_bytes()[..]).ok())
        .map(u32::from_le_bytes);
    let reply = attach(shared, rid, version).and_then(|_| {
        let info = inspect::segment(&shared.segment).map_err(|e| Refusal::of_open(&shared.segment, &e))?;
        Ok(Shape::of(&info))
    });
    let _ = match reply {
        Ok(shape) => query.reply(query.key_expr().clone(), shape.encode()).wait(),
        Err(refusal) => {
            eprintln!(
                "memlink bridge export: refused to attach client {rid} to {}: {refusal}",
                shared.segment
            );
            query.reply_err(refusal.encode()).wait()
        }
    };
}

fn on_up(shared: &Arc<Shared>, sample: &Sample) {
    let Some(("up", rid, Some(tier))) = shared.keys.parse(sample.key_expr().as_str()) else {
        return;
    };
    let attached = shared.lock().live.get(rid).cloned();
    let Some(attached) = attached else {
        if sample.kind() == SampleKind::Put {
            shared.unattached(rid, frames::count(&sample.payload().to_bytes(), 0));
        }
        return;
    };
    let mut up = lock(&attached.up);
    match sample.kind() {
        SampleKind::Put => {
            let sample = sample.payload().clone();
            attached.counts.took(frames::count(&sample.to_bytes(), 0));
            up.pending.push((), tier, sample);
        }
        SampleKind::Delete => up.ends.set(tier),
    }
    let flushed = flush(&mut up, &attached.counts, &shared.segment);
    let retry = flushed == Flushed::Waiting && !up.retrying && up.sender.is_some();
    up.retrying |= retry;
    drop(up);
    match flushed {
        Flushed::Done => shared.detach(rid, Why::Left), // it left, and everything it sent is in
        Flushed::Refused(refusal) => shared.detach(rid, Why::Refused(refusal)),
        Flushed::Waiting if retry => retry_later(shared, rid, attached),
        Flushed::Waiting | Flushed::Empty => {}
    }
}

/// What a flush of a client's messages came to.
#[derive(Debug, PartialEq, Eq)]
enum Flushed {
    /// Nothing waits (the client goes on).
    Empty,
    /// Messages wait for room in the ring.
    Waiting,
    /// The client left and everything it sent is delivered.
    Done,
    /// The daemon cannot take the client's messages.
    Refused(Refusal),
}

/// Moves what waits into the client's ring, counting what was delivered.
fn flush(up: &mut Up, counts: &Counters, segment: &str) -> Flushed {
    let Up {
        sender,
        pending,
        consumed,
        ..
    } = up;
    let Some(sender) = sender else {
        return Flushed::Empty;
    };
    let flushed = pending.flush(|(), tier, bytes| {
        let sent = sender.try_send(tier, bytes);
        if sent.is_ok() {
            consumed.take(bytes.len());
            counts.delivered(1);
        }
        sent
    });
    match flushed {
        Err(Error::MessageTooLarge { len, max }) => Flushed::Refused(Refusal::TooLarge {
            len: len as u64,
            max: max as u64,
        }),
        Err(Error::Disconnected) => Flushed::Refused(Refusal::DaemonGone {
            segment: segment.to_owned(),
        }),
        Err(other) => Flushed::Refused(Refusal::Unusable {
            reason: other.to_string(),
        }),
        Ok(()) if !up.pending.is_empty() => Flushed::Waiting,
        Ok(()) if up.ends.all() => Flushed::Done,
        Ok(()) => Flushed::Empty,
    }
}

/// Tries again every millisecond until what waits has gone (the caller set
/// `retrying`).
fn retry_later(shared: &Arc<Shared>, rid: &str, attached: Attached) {
    let (shared2, rid) = (shared.clone(), rid.to_owned());
    shared.runtime.spawn(async move {
        loop {
            tokio::time::sleep(stream::RETRY).await;
            let mut up = lock(&attached.up);
            let flushed = flush(&mut up, &attached.counts, &shared2.segment);
            if flushed != Flushed::Waiting || up.sender.is_none() {
                up.retrying = false;
                drop(up);
                match flushed {
                    Flushed::Done => shared2.detach(&rid, Why::Left),
                    Flushed::Refused(refusal) => shared2.detach(&rid, Why::Refused(refusal)),
                    Flushed::Waiting | Flushed::Empty => {}
                }
                return;
            }
        }
    });
}

fn on_ack(shared: &Arc<Shared>, sample: &Sample) {
    if let Some(("ackdown", rid, None)) = shared.keys.parse(sample.key_expr().as_str()) {
        if let Some(attached) = shared.lock().live.get(rid) {
            attached.acked.update(&sample.payload().to_bytes());
        }
    }
}

fn on_token(shared: &Arc<Shared>, sample: &Sample) {
    let Some(("client", rid, None)) = shared.keys.parse(sample.key_expr().as_str()) else {
        return;
    };
    // A token's arrival attaches nothing (the attach query does, with the
    // client's protocol version).
    if sample.kind() == SampleKind::Delete {
        // Its last messages may still be on their way behind the token.
        let (shared, rid) = (shared.clone(), rid.to_owned());
        shared.clone().runtime.spawn(async move {
            tokio::time::sleep(GRACE).await;
            shared.detach(&rid, Why::Lost);
        });
    }
}

/// Client `rid`, connected to the daemon first if it is new, speaking
/// protocol `version` (the daemon's if `None`): the daemon refuses a
/// client of another version.
fn attach(shared: &Arc<Shared>, rid: &str, version: Option<u32>) -> Result<Attached, Refusal> {
    let mut clients = shared.lock();
    if let Some(attached) = clients.live.get(rid) {
        return Ok(attached.clone()); // a repeated query
    }
    let unusable = |e: &dyn std::fmt::Display| Refusal::Unusable { reason: e.to_string() };
    if clients.left.contains_key(rid) {
        return Err(unusable(&format_args!("client {rid} has left; connect anew")));
    }
    let refusal = |e: memlink_shm::OpenError| Refusal::of_open(&shared.segment, &e);
    let version = match version {
        Some(version) => version,
        None => inspect::segment(&shared.segment).map_err(refusal)?.protocol_version,
    };
    let client = Client::builder(&shared.segment)
        .protocol_version(version)
        .connect()
        .map_err(refusal)?;
    let id = client.control().id();
    let (sender, receiver) = client.split();
    let keys = &shared.keys;
    let ack = stream::ack_publisher(&shared.session, keys.ack_up(rid))
        .wait()
        .map_err(|e| unusable(&e))?;
    let publishers = stream::publishers(&shared.session, |tier| keys.down(rid, tier)).map_err(|e| unusable(&e))?;
    let attached = Attached {
        up: Arc::new(Mutex::new(Up {
            sender: Some(sender),
            pending: Pending::default(),
            ends: Ends::default(),
            consumed: Consumed::new(ack),
            retrying: false,
        })),
        acked: Arc::default(),
        stop: Arc::default(),
        counts: Arc::default(),
    };
    clients.live.insert(rid.to_owned(), attached.clone());
    let (thread_shared, thread_rid, acked, stop) = (
        shared.clone(),
        rid.to_owned(),
        attached.acked.clone(),
        attached.stop.clone(),
    );
    let spawned = std::thread::Builder::new()
        .name("memlink-export".into())
        .spawn(move || {
            if read(receiver, &publishers, &acked, &stop) {
                stream::end(&publishers);
            }
            thread_shared.detach(&thread_rid, Why::Left);
        });
    if let Err(e) = spawned {
        clients.live.remove(rid);
        return Err(unusable(&format_args!("cannot start a thread for the client: {e}")));
    }
    eprintln!(
        "memlink bridge export: attached client {rid} to {} as its client {id}",
        shared.segment
    );
    Ok(attached)
}

/// How long the reading thread waits for a message before it looks at its
/// stop flag.
const READ_SLICE: Duration = Duration::from_millis(100);

/// Carries the daemon's messages to one remote client until it is told to
/// stop; whether the daemon went (then the tiers' ends go after the last
/// message).
fn read(mut receiver: ClientReceiver, publishers: &[Publisher<'static>; 3], acked: &Acked, stop: &AtomicBool) -> bool {
    let mut credit = Credit::default();
    let mut burst = Burst::default();
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        if !credit.wait(acked, Some(Instant::now() + READ_SLICE)) {
            continue;
        }
        match receiver.recv_timeout_with(READ_SLICE, burst.packing(publishers)) {
            Ok(len) => credit.spend(len),
            Err(Error::Timeout) => continue,
            Err(_) => return true,
        }
        // And what else is waiting, while the window allows: a burst
        // travels as one sample per tier.
        let mut gone = false;
        while credit.open(acked) {
            match receiver.try_recv_with(burst.packing(publishers)) {
                Ok(len) => credit.spend(len),
                Err(Error::Empty) => break,
                Err(_) => {
                    gone = true;
                    break;
                }
            }
        }
        burst.publish(publishers);
        if gone {
            return true;
        }
    }
}
