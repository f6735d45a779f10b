//! The import side, on a remote host: a local [`Daemon`] whose clients are
//! carried to the exported segment's daemon, each as a client of its own.
//!
//! The local segment exists while an export of the remote segment is
//! reachable and its daemon runs: it is created with the remote daemon's
//! shape (protocol version, message size, slots), and shut down when the
//! export vanishes (crash, lease expired) or the remote daemon goes, so its
//! clients see [`memlink_shm::Error::Disconnected`] as they would with a
//! local daemon. It is created again once both are back.

use std::collections::hash_map::{Entry, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use memlink_shm::{ClientId, ClientMessage, Daemon, Error};
use tokio::sync::watch;
use zenoh::liveliness::LivelinessToken;
use zenoh::pubsub::{Publisher, Subscriber};
use zenoh::sample::SampleKind;
use zenoh::{Session, Wait};

use crate::config::BridgeConfig;
use crate::error::BridgeError;
use crate::frames::Packer;
use crate::keys::{self, Keys};
use crate::stream::{self, Ends, Outbound, Pending, Queue};
use crate::window::{Acked, Consumed, Credit};
use crate::wire::Shape;

/// How often the local daemon's client list is compared with the bridged
/// one (a departure is passed on one period after it is seen, so that the
/// daemon has read the client's last messages).
const CLIENT_SCAN: Duration = Duration::from_millis(20);

/// How long to wait for the export's answer, and between attempts.
const INFO_TIMEOUT: Duration = Duration::from_secs(1);
const INFO_RETRY: Duration = Duration::from_millis(200);

/// A running import of a remote segment; stops (and shuts its local
/// segment down) when dropped.
///
/// ```no_run
/// use memlink_bridge::{BridgeConfig, Import};
/// let import = Import::start("my-service", "my-service", BridgeConfig::default().connect("tcp/10.0.0.1:7447"))?;
/// import.run_forever();
/// # Ok::<(), memlink_bridge::BridgeError>(())
/// ```
#[derive(Debug)]
pub struct Import {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    session: Session,
}

/// What the import's task reads from Zenoh's callbacks.
struct Feeds {
    queue: Queue<u64>,
    exports: watch::Receiver<usize>,
    _downs: Subscriber<()>,
    _export_tokens: Subscriber<()>,
    _acks: Subscriber<()>,
}

/// The local clients whose windows a queue holds at most.
const MAX_STREAMS: usize = 1024;

impl Import {
    /// Imports segment `remote` (exported on another host) as local segment
    /// `local`, reaching the export through `config`. Returns at once; the
    /// local segment appears once the export answers.
    ///
    /// # Errors
    /// [`BridgeError::Zenoh`] when the session cannot open,
    /// [`BridgeError::Config`] for a bad configuration file.
    pub fn start(remote: &str, local: &str, config: BridgeConfig) -> Result<Import, BridgeError> {
        let runtime = stream::runtime()?;
        let session = zenoh::open(config.to_zenoh()?).wait().map_err(BridgeError::zenoh)?;
        let keys = Keys::new(remote);
        let zid = session.zid().to_string();
        let (inbound, queue) = stream::queue::<u64>(MAX_STREAMS);
        let k = keys.clone();
        let downs = session
            .declare_subscriber(keys.downs_of(&zid))
            .callback(move |sample| {
                let Some(("down", rid, Some(tier))) = k.parse(sample.key_expr().as_str()) else {
                    return;
                };
                let Some(n) = number(rid) else {
                    return;
                };
                inbound.push(match sample.kind() {
                    SampleKind::Put => Outbound::Data(n, tier, sample.payload().clone()),
                    SampleKind::Delete => Outbound::End(n, tier),
                });
            })
            .wait()
            .map_err(BridgeError::zenoh)?;
        let (exports_tx, exports) = watch::channel(0usize);
        let export_tokens = session
            .liveliness()
            .declare_subscriber(keys.exports())
            .history(true)
            .callback(move |sample| {
                exports_tx.send_modify(|n| match sample.kind() {
                    SampleKind::Put => *n += 1,
                    SampleKind::Delete => *n = n.saturating_sub(1),
                });
            })
            .wait()
            .map_err(BridgeError::zenoh)?;
        let acks = Acks::default();
        let (k, a) = (keys.clone(), acks.clone());
        let ack_sub = session
            .declare_subscriber(keys.ack_ups_of(&zid))
            .callback(move |sample| {
                let Some(("ackup", rid, None)) = k.parse(sample.key_expr().as_str()) else {
                    return;
                };
                let Some(n) = number(rid) else {
                    return;
                };
                if let Some(acked) = a.lock().unwrap_or_else(PoisonError::into_inner).get(&n) {
                    acked.update(&sample.payload().to_bytes());
                }
            })
            .wait()
            .map_err(BridgeError::zenoh)?;
        let feeds = Feeds {
            queue,
            exports,
            _downs: downs,
            _export_tokens: export_tokens,
            _acks: ack_sub,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let bridge = Bridge {
            session: session.clone(),
            keys,
            zid,
            local: local.to_owned(),
            stop: stop.clone(),
            next: 0,
            acks,
        };
        let thread = std::thread::Builder::new()
            .name("memlink-import".into())
            .spawn(move || runtime.block_on(bridge.run(feeds)))
            .map_err(|e| BridgeError::Zenoh(format!("starting the import thread: {e}")))?;
        Ok(Import {
            stop,
            thread: Some(thread),
            session,
        })
    }

    /// Serves until the process ends.
    pub fn run_forever(self) -> ! {
        loop {
            std::thread::park();
        }
    }
}

impl Drop for Import {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = self.session.close().wait();
    }
}

/// The number of a client name of this session (`<zid>/<n>`).
fn number(rid: &str) -> Option<u64> {
    rid.rsplit('/').next()?.parse().ok()
}

/// The import's state across local segments.
struct Bridge {
    session: Session,
    keys: Keys,
    zid: String,
    local: String,
    stop: Arc<AtomicBool>,
    /// The number of the next local client (never reused).
    next: u64,
    /// The acknowledgements of each local client's stream, by number (the
    /// callback that takes them in writes here).
    acks: Acks,
}

type Acks = Arc<Mutex<HashMap<u64, Arc<Acked>>>>;

/// A local client, as the export knows it.
struct Local {
    n: u64,
    _token: LivelinessToken,
    publishers: [Publisher<'static>; 3],
    /// What the export acknowledged of this client's messages, and what it
    /// sent.
    acked: Arc<Acked>,
    credit: Credit,
    /// Its messages of the current burst, by tier.
    packers: [Packer; 3],
    /// What of the daemon's messages to it went into its ring.
    consumed: Consumed,
    /// Seen gone at the last scan: passed on at the next.
    leaving: bool,
}

impl Bridge {
    async fn run(mut self, mut feeds: Feeds) {
        while !self.stopped() {
            let Some(shape) = self.remote_shape().await else {
                continue;
            };
            let daemon = Daemon::builder(&self.local)
                .protocol_version(shape.protocol_version)
                .max_clients(shape.max_clients)
                .max_message_size(shape.max_message_size)
                .size(shape.size)
                .create();
            match daemon {
                Ok(daemon) => {
                    self.serve(daemon, &mut feeds).await;
                }
                Err(e) => {
                    eprintln!("memlink bridge import: cannot create {}: {e}", self.local);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// The remote segment's shape, once an export answers with a live daemon.
    async fn remote_shape(&self) -> Option<Shape> {
        let replies = self.session.get(self.keys.info()).timeout(INFO_TIMEOUT).await.ok()?;
        let mut shape = None;
        while let Ok(reply) = replies.recv_async().await {
            if let Ok(sample) = reply.result() {
                shape = shape.or_else(|| Shape::decode(&sample.payload().to_bytes()));
            }
        }
        if shape.is_none() {
            tokio::time::sleep(INFO_RETRY).await;
        }
        shape
    }

    /// Carries the local segment's clients until the export or the remote
    /// daemon goes (or the import stops); then shuts the segment down.
    async fn serve(&mut self, mut daemon: Daemon, feeds: &mut Feeds) {
        let mut locals: HashMap<ClientId, Local> = HashMap::new();
        let mut by_n: HashMap<u64, ClientId> = HashMap::new();
        let mut ends: HashMap<u64, Ends> = HashMap::new();
        let mut pending = Pending::<u64>::default();
        // A local client's message that waits for its stream's window.
        let mut held: Option<ClientMessage> = None;
        let mut scan = tokio::time::interval(CLIENT_SCAN);
        let mut exports_seen = *feeds.exports.borrow() > 0;
        loop {
            let window = held
                .as_ref()
                .and_then(|m| locals.get(&m.client()))
                .map(|l| (l.acked.clone(), l.credit));
            tokio::select! {
                biased;
                got = daemon.recv_async(), if held.is_none() => match got {
                    Ok(message) => {
                        if self.local_for(&mut locals, &mut by_n, message.client()).await.is_some() {
                            held = Some(message);
                        }
                    }
                    Err(Error::Corrupted(_) | Error::Poisoned(_)) => {}
                    Err(_) => break,
                },
                () = async { if let Some((acked, credit)) = &window { credit.wait_async(acked).await } }, if window.is_some() => {}
                item = feeds.queue.next(pending.has_room()) => {
                    if item.is_none() {
                        break; // the import is stopping
                    }
                    let mut item = item;
                    let mut over = false;
                    while let Some(next) = item.take() {
                        match next {
                            Outbound::Data(n, tier, bytes) => pending.push(n, tier, bytes),
                            // Ends of clients of an earlier local segment are stale.
                            Outbound::End(n, tier) if by_n.contains_key(&n) => {
                                let end = ends.entry(n).or_default();
                                end.set(tier);
                                over |= end.all(); // the remote daemon went
                            }
                            Outbound::End(..) => {}
                        }
                        if pending.has_room() {
                            item = feeds.queue.try_next();
                        }
                    }
                    if over {
                        break;
                    }
                }
                changed = feeds.exports.changed() => {
                    let exports = *feeds.exports.borrow_and_update();
                    if changed.is_err() || (exports == 0 && exports_seen) {
                        break; // the export went
                    }
                    exports_seen |= exports > 0;
                }
                _ = scan.tick() => {
                    if self.stopped() {
                        break;
                    }
                    self.scan(&daemon, &mut locals, &mut by_n).await;
                }
                () = pending.retry_later() => {}
            }
            // Forward the held message and, while windows allow, whatever
            // else the local clients have sent: one wait serves a burst.
            let mut touched = Vec::new();
            while let Some(message) = held.take() {
                match locals.get_mut(&message.client()) {
                    Some(local) if local.credit.open(&local.acked) => {
                        let tier = message.priority().index();
                        local.credit.spend();
                        if local.packers[tier].push(message.payload()) {
                            let _ = local.publishers[tier].put(local.packers[tier].take().0).await;
                        }
                        touched.push(message.client());
                    }
                    Some(_) => {
                        held = Some(message);
                        break;
                    }
                    None => {} // it left meanwhile
                }
                match daemon.try_recv() {
                    Ok(next) => {
                        if self.local_for(&mut locals, &mut by_n, next.client()).await.is_some() {
                            held = Some(next);
                        }
                    }
                    Err(_) => break, // empty, or an error the next wait reports
                }
            }
            touched.dedup();
            for client in touched {
                if let Some(local) = locals.get_mut(&client) {
                    for (packer, publisher) in local.packers.iter_mut().zip(&local.publishers) {
                        if !packer.is_empty() {
                            let _ = publisher.put(packer.take().0).await;
                        }
                    }
                }
            }
            let mut moved = Vec::new();
            let _ = pending.flush(|n, tier, bytes| {
                let Some(client) = by_n.get(n) else {
                    return Ok(()); // it left: dropped
                };
                match daemon.try_send_to(*client, tier, bytes) {
                    Err(Error::Full) => Err(Error::Full),
                    // Sent, or the client left, or the message cannot fit:
                    // either way it is off the window.
                    _ => {
                        moved.push(*client);
                        Ok(())
                    }
                }
            });
            for client in moved {
                if let Some(local) = locals.get_mut(&client) {
                    local.consumed.take(1);
                }
            }
        }
        for (_, local) in locals.drain() {
            stream::end(&local.publishers).await;
        }
        self.acks.lock().unwrap_or_else(PoisonError::into_inner).clear();
        daemon.shutdown();
    }

    /// The bridged state of local client `client`, announced to the export
    /// (a liveliness token, three publishers, its acknowledgements) if it is
    /// new.
    async fn local_for<'l>(
        &mut self,
        locals: &'l mut HashMap<ClientId, Local>,
        by_n: &mut HashMap<u64, ClientId>,
        client: ClientId,
    ) -> Option<&'l mut Local> {
        if let Entry::Vacant(entry) = locals.entry(client) {
            let n = self.next;
            self.next += 1;
            let rid = keys::rid(&self.zid, n);
            let keys = &self.keys;
            let acked = Arc::new(Acked::default());
            self.acks
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(n, acked.clone());
            let ack = stream::ack_publisher(&self.session, keys.ack_down(&rid)).await.ok()?;
            let publishers = stream::publishers(&self.session, |tier| keys.up(&rid, tier))
                .await
                .ok()?;
            let token = self.session.liveliness().declare_token(keys.client(&rid)).await.ok()?;
            by_n.insert(n, client);
            entry.insert(Local {
                n,
                _token: token,
                publishers,
                acked,
                credit: Credit::default(),
                packers: Default::default(),
                consumed: Consumed::new(ack),
                leaving: false,
            });
        }
        locals.get_mut(&client)
    }

    /// Announces clients that connected, and passes on those that left
    /// (one scan after they were seen gone).
    async fn scan(
        &mut self,
        daemon: &Daemon,
        locals: &mut HashMap<ClientId, Local>,
        by_n: &mut HashMap<u64, ClientId>,
    ) {
        let connected = daemon.clients();
        let mut left = Vec::new();
        for (id, local) in locals.iter_mut() {
            if !connected.contains(id) {
                if local.leaving {
                    left.push(*id);
                }
                local.leaving = true;
            }
        }
        for id in left {
            if let Some(local) = locals.remove(&id) {
                by_n.remove(&local.n);
                self.acks
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&local.n);
                // The DELETEs come after the client's last messages; the
                // token goes with `local`.
                stream::end(&local.publishers).await;
            }
        }
        for id in connected {
            self.local_for(locals, by_n, id).await;
        }
    }
}
