//! The export side, on the daemon's host: each remote client becomes a local
//! [`Client`] of the daemon, with its own slot and [`memlink_shm::ClientId`].
//!
//! A remote client appears at the first of its liveliness token, its attach
//! query or its first message, and leaves when the `DELETE`s that end its
//! three tiers have arrived (it left cleanly: every message it sent is
//! delivered first) or [`GRACE`] after its token vanished (its session
//! died or went silent for a lease). A name that left is never attached
//! again, so a late message cannot bring it back.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use memlink_shm::{inspect, Client, Error};
use zenoh::liveliness::LivelinessToken;
use zenoh::pubsub::Subscriber;
use zenoh::query::{Query, Queryable};
use zenoh::sample::{Sample, SampleKind};
use zenoh::{Session, Wait};

use crate::config::BridgeConfig;
use crate::error::BridgeError;
use crate::frames::Packer;
use crate::keys::Keys;
use crate::stream::{self, Ends, Inbound, Outbound, Pending, Queue};
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

/// What the callbacks and the clients' tasks share.
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
    left: HashSet<String>,
}

/// What the callbacks hand an attached client's task.
#[derive(Debug, Clone)]
struct Attached {
    inbound: Inbound<()>,
    /// What the client side acknowledged of the daemon's messages to it.
    acked: Arc<Acked>,
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
        // Dropping the inbound queues ends every client's task.
        self.shared.lock().live.clear();
        let _ = self.shared.session.close().wait();
        let _ = &self.runtime;
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Clients> {
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
}

fn answer_attach(shared: &Arc<Shared>, query: &Query) {
    let reply = match shared.keys.parse(query.key_expr().as_str()) {
        Some(("attach", rid, None)) => attach(shared, rid).and_then(|_| {
            let info = inspect::segment(&shared.segment).map_err(|e| e.to_string())?;
            Ok(Shape::of(&info))
        }),
        _ => Err("not an attach key".to_owned()),
    };
    let _ = match reply {
        Ok(shape) => query.reply(query.key_expr().clone(), shape.encode()).wait(),
        Err(why) => query.reply_err(why).wait(),
    };
}

fn on_up(shared: &Arc<Shared>, sample: &Sample) {
    let Some(("up", rid, Some(tier))) = shared.keys.parse(sample.key_expr().as_str()) else {
        return;
    };
    let Ok(attached) = attach(shared, rid) else {
        return;
    };
    attached.inbound.push(match sample.kind() {
        SampleKind::Put => Outbound::Data((), tier, sample.payload().clone()),
        SampleKind::Delete => Outbound::End((), tier),
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
    match sample.kind() {
        SampleKind::Put => {
            let _ = attach(shared, rid);
        }
        SampleKind::Delete => {
            if let Some(attached) = shared.lock().live.get(rid) {
                attached.inbound.gone();
            }
        }
    }
}

/// The queue to client `rid`'s task, connecting the client to the daemon
/// first if it is new.
fn attach(shared: &Arc<Shared>, rid: &str) -> Result<Attached, String> {
    let mut clients = shared.lock();
    if let Some(attached) = clients.live.get(rid) {
        return Ok(attached.clone());
    }
    if clients.left.contains(rid) {
        return Err(format!("client {rid} has left"));
    }
    let client = Client::connect(&shared.segment).map_err(|e| e.to_string())?;
    let (inbound, queue) = stream::queue(1);
    let attached = Attached {
        inbound,
        acked: Arc::default(),
    };
    clients.live.insert(rid.to_owned(), attached.clone());
    let task_shared = shared.clone();
    let rid = rid.to_owned();
    let acked = attached.acked.clone();
    shared.runtime.spawn(async move {
        serve(&task_shared, &rid, client, queue, &acked).await;
        let mut clients = task_shared.lock();
        clients.live.remove(&rid);
        clients.left.insert(rid);
    });
    Ok(attached)
}

/// Carries one remote client: the daemon's messages to it out to Zenoh,
/// and its messages in from the queue the callbacks fill. Ends when the
/// client left (its three tiers ended), its token vanished [`GRACE`] ago,
/// or the daemon went (then the `DELETE`s that end each tier tell the other
/// side, after the last message).
async fn serve(shared: &Shared, rid: &str, mut client: Client, mut queue: Queue<()>, acked: &Acked) {
    let keys = &shared.keys;
    let Ok(publishers) = stream::publishers(&shared.session, |tier| keys.down(rid, tier)).await else {
        return;
    };
    let Ok(ack) = stream::ack_publisher(&shared.session, keys.ack_up(rid)).await else {
        return;
    };
    let mut consumed = Consumed::new(ack);
    let mut credit = Credit::default();
    let mut pending = Pending::default();
    let mut ends = Ends::default();
    let mut packers: [Packer; 3] = Default::default();
    let daemon_gone = loop {
        let open = credit.open(acked);
        let step = tokio::select! {
            biased;
            got = client.recv_async(), if open => match got {
                Ok(message) => {
                    packers[message.priority().index()].push(message.payload());
                    credit.spend();
                    // And what else is waiting, while the window allows: a
                    // burst travels as one sample per tier.
                    let mut step = None;
                    while credit.open(acked) {
                        match client.try_recv_with(|tier, bytes| packers[tier.index()].push(bytes)) {
                            Ok(full) => {
                                credit.spend();
                                if full {
                                    break;
                                }
                            }
                            Err(Error::Empty) => break,
                            Err(_) => {
                                step = Some(true);
                                break;
                            }
                        }
                    }
                    for (packer, publisher) in packers.iter_mut().zip(&publishers) {
                        if !packer.is_empty() {
                            let _ = publisher.put(packer.take().0).await;
                        }
                    }
                    step
                }
                Err(_) => Some(true),
            },
            () = credit.wait_async(acked), if !open => None,
            item = queue.next(pending.has_room() && !ends.all()) => {
                let mut item = item;
                loop {
                    match item {
                        Some(Outbound::Data((), tier, bytes)) => pending.push((), tier, bytes),
                        Some(Outbound::End((), tier)) => ends.set(tier),
                        None => break Some(false),
                    }
                    if !pending.has_room() {
                        break None;
                    }
                    match queue.try_next() {
                        Some(next) => item = Some(next),
                        None => break None,
                    }
                }
            }
            () = pending.retry_later() => None,
        };
        if let Some(gone) = step {
            break gone;
        }
        let mut moved = 0;
        let flushed = pending.flush(|(), tier, bytes| {
            let sent = client.try_send(tier, bytes);
            moved += u64::from(!matches!(sent, Err(Error::Full)));
            match sent {
                // A peer's oversized message is dropped, not fatal.
                Err(Error::MessageTooLarge { .. }) => Ok(()),
                other => other,
            }
        });
        consumed.take(moved);
        match flushed {
            Err(_) => break true,
            Ok(()) if ends.all() && pending.is_empty() => break false,
            Ok(()) => {}
        }
    };
    if daemon_gone {
        stream::end(&publishers).await;
    }
}
