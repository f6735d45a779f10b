//! The import side, on a remote host: a local [`Daemon`] whose clients are
//! carried to the exported segment's daemon, each as a client of its own.
//!
//! The local segment exists while an export of the remote segment is
//! reachable and its daemon runs: it is created with the remote daemon's
//! shape (protocol version, message size, slots), and shut down when the
//! export vanishes (crash, lease expired) or the remote daemon goes, so its
//! clients see [`memlink_shm::Error::Disconnected`] as they would with a
//! local daemon. It is created again once both are back.
//!
//! Each local client is attached at the export (which connects it to the
//! daemon with the local segment's protocol version) before any of its
//! messages goes. When the export refuses one (at the attach, or later for
//! a message the daemon cannot take), the import logs the [`Refusal`] and
//! ends the local segment: the refusals mean the daemon is not the one the
//! segment was made for (another protocol version or message limit, or
//! none) or has no room, and the local daemon has no way to disconnect one
//! client alone. Its clients see `Disconnected`; the segment is made again
//! with the daemon's shape once the daemon runs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use memlink_shm::{ClientId, ClientMessage, Daemon, DaemonReceiver, DaemonSender, Error};
use zenoh::liveliness::LivelinessToken;
use zenoh::pubsub::{Publisher, Subscriber};
use zenoh::sample::SampleKind;
use zenoh::{Session, Wait};

use crate::config::BridgeConfig;
use crate::counts::{ClientCounts, Counters};
use crate::error::BridgeError;
use crate::keys::{self, Keys};
use crate::refusal::{Notice, Refusal};
use crate::stream::{self, Burst, Ends, Outbound, Pending, Queue};
use crate::window::{Acked, Consumed, Credit};
use crate::wire::Shape;

/// How long the local daemon is split between its two threads before it is
/// whole again for a moment: to compare its client list with the bridged
/// one (a departure is passed on one round after it is seen, once the
/// daemon has read the client's last messages) and to free departed
/// clients' slots.
const ROUND: Duration = Duration::from_millis(50);

/// How long a blocking call waits before its thread looks at the round.
const SLICE: Duration = Duration::from_millis(10);

/// How long to wait for the export's answer, and between attempts.
const INFO_TIMEOUT: Duration = Duration::from_secs(1);
const INFO_RETRY: Duration = Duration::from_millis(200);

/// How long to wait for the export to answer an attach.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(5);

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
    counts: CountsOf,
    thread: Option<JoinHandle<()>>,
    session: Session,
}

/// What the import reads from Zenoh's callbacks.
struct Feeds {
    queue: Queue<u64>,
    /// Live exports of the segment.
    exports: Arc<AtomicUsize>,
    /// How many times an export's token vanished: each time, the export
    /// lost this session's clients' tokens too (the same link), and lets
    /// them go after its grace, even if the link came back at once.
    losses: Arc<AtomicU64>,
    /// The export's refusals of clients it had attached, by number.
    refusals: flume::Receiver<(u64, Notice)>,
    _refused: Subscriber<()>,
    _downs: Subscriber<()>,
    _export_tokens: Subscriber<()>,
    _acks: Subscriber<()>,
}

impl Import {
    /// Imports segment `remote` (exported on another host) as local segment
    /// `local`, reaching the export through `config`. Returns at once; the
    /// local segment appears once the export answers.
    ///
    /// # Errors
    /// [`BridgeError::Zenoh`] when the session cannot open,
    /// [`BridgeError::Config`] for a bad configuration file.
    pub fn start(remote: &str, local: &str, config: BridgeConfig) -> Result<Import, BridgeError> {
        let session = zenoh::open(config.to_zenoh()?).wait().map_err(BridgeError::zenoh)?;
        let keys = Keys::new(remote);
        let zid = session.zid().to_string();
        let (inbound, queue) = stream::queue::<u64>();
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
        let exports = Arc::new(AtomicUsize::new(0));
        let losses = Arc::new(AtomicU64::new(0));
        let (e, l) = (exports.clone(), losses.clone());
        let export_tokens = session
            .liveliness()
            .declare_subscriber(keys.exports())
            .history(true)
            .callback(move |sample| match sample.kind() {
                SampleKind::Put => {
                    e.fetch_add(1, Ordering::AcqRel);
                }
                SampleKind::Delete => {
                    l.fetch_add(1, Ordering::AcqRel);
                    let _ = e.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| Some(n.saturating_sub(1)));
                }
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
        let (refusals_tx, refusals) = flume::unbounded();
        let k = keys.clone();
        let refused = session
            .declare_subscriber(keys.refused_of(&zid))
            .callback(move |sample| {
                let Some(("refused", rid, None)) = k.parse(sample.key_expr().as_str()) else {
                    return;
                };
                if let (Some(n), Some(notice)) = (number(rid), Notice::decode(&sample.payload().to_bytes())) {
                    let _ = refusals_tx.send((n, notice));
                }
            })
            .wait()
            .map_err(BridgeError::zenoh)?;
        let feeds = Feeds {
            queue,
            exports,
            losses,
            refusals,
            _refused: refused,
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
            next: AtomicU64::new(0),
            acks,
            counts: CountsOf::default(),
        };
        let counts = bridge.counts.clone();
        let thread = std::thread::Builder::new()
            .name("memlink-import".into())
            .spawn(move || bridge.run(feeds))
            .map_err(|e| BridgeError::Zenoh(format!("starting the import thread: {e}")))?;
        Ok(Import {
            stop,
            counts,
            thread: Some(thread),
            session,
        })
    }

    /// What became of each local client's messages so far (the clients
    /// bridged now).
    pub fn counts(&self) -> Vec<ClientCounts> {
        lock(&self.counts).iter().map(|(rid, c)| c.of(rid)).collect()
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
    next: AtomicU64,
    /// The acknowledgements of each local client's stream, by number (the
    /// callback that takes them in writes here).
    acks: Acks,
    /// The counts of each bridged client, by name (for [`Import::counts`]).
    counts: CountsOf,
}

type Acks = Arc<Mutex<HashMap<u64, Arc<Acked>>>>;
type CountsOf = Arc<Mutex<std::collections::BTreeMap<String, Arc<Counters>>>>;

/// The bridged local clients of one local segment.
#[derive(Default)]
struct Locals {
    by_client: HashMap<ClientId, Local>,
    by_n: HashMap<u64, ClientId>,
    /// Which tiers of the daemon's stream to each client have ended.
    ends: HashMap<u64, Ends>,
    /// The protocol version of the local segment (its clients speak it).
    version: u32,
    /// Why the segment ends, once it must: no more clients are attached.
    ended: Option<Ended>,
    /// Messages of clients that could not be attached, taken and dropped.
    unattached: u64,
}

/// Why a local segment ends early.
enum Ended {
    /// The export refused client `n` (local `client`).
    Refused {
        n: u64,
        client: ClientId,
        notice: Notice,
        taken: u64,
    },
    /// The export did not answer the attach of client `n`.
    NoAnswer { n: u64, client: ClientId },
    /// Zenoh refused to declare a client's keys.
    Zenoh(String),
}

/// A local client, as the export knows it.
struct Local {
    n: u64,
    _token: LivelinessToken,
    publishers: [Publisher<'static>; 3],
    /// What the export acknowledged of this client's messages, and what it
    /// sent.
    acked: Arc<Acked>,
    credit: Credit,
    /// Its messages of the current burst.
    burst: Burst,
    /// What of the daemon's messages to it went into its ring.
    consumed: Consumed,
    /// Seen gone at the last scan: passed on at the next.
    leaving: bool,
    counts: Arc<Counters>,
}

/// Set once the local segment is to end (the export or the remote daemon
/// went, or the import stops).
#[derive(Default)]
struct Over(AtomicBool);

impl Over {
    fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Bridge {
    fn run(self, feeds: Feeds) {
        let mut pending = Pending::<u64>::default();
        while !self.stopped() {
            let Some(shape) = self.remote_shape() else {
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
                    eprintln!("memlink bridge import: serving {} locally: {shape}", self.local);
                    self.serve(daemon, shape, &feeds, &mut pending);
                }
                Err(e) => {
                    eprintln!("memlink bridge import: cannot create {}: {e}", self.local);
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// The remote segment's shape, once an export answers with a live daemon.
    fn remote_shape(&self) -> Option<Shape> {
        let replies = self.session.get(self.keys.info()).timeout(INFO_TIMEOUT).wait().ok()?;
        let mut shape = None;
        while let Ok(reply) = replies.recv() {
            if let Ok(sample) = reply.result() {
                shape = shape.or_else(|| Shape::decode(&sample.payload().to_bytes()));
            }
        }
        if shape.is_none() {
            std::thread::sleep(INFO_RETRY);
        }
        shape
    }

    /// Carries the local segment's clients until the export or the remote
    /// daemon goes (or the import stops); then shuts the segment down.
    ///
    /// The daemon is split in rounds: one thread blocks on its clients'
    /// rings and publishes, this one takes the export's messages to them
    /// from the queue; between rounds, the client list is compared.
    fn serve(&self, mut daemon: Daemon, shape: Shape, feeds: &Feeds, pending: &mut Pending<u64>) {
        let locals = Mutex::new(Locals {
            version: shape.protocol_version,
            ..Locals::default()
        });
        let over = Over::default();
        let mut held = None;
        let mut exports_seen = false;
        let losses = feeds.losses.load(Ordering::Acquire);
        while !over.is_set() && !self.stopped() {
            self.scan(&daemon, &locals);
            if lock(&locals).ended.is_some() {
                break;
            }
            let round_end = Instant::now() + ROUND;
            let round = AtomicBool::new(false);
            let (rx, tx) = daemon.split();
            held = std::thread::scope(|s| {
                let up = s.spawn(|| self.up(rx, held, &locals, &round, &over));
                self.down(tx, feeds, pending, &locals, &over, round_end, &mut exports_seen, losses);
                round.store(true, Ordering::Relaxed);
                up.join().unwrap_or(None)
            });
        }
        let locals = locals.into_inner().unwrap_or_else(PoisonError::into_inner);
        if let Some(ended) = &locals.ended {
            self.log_end(ended, locals.unattached);
        }
        for local in locals.by_client.into_values() {
            stream::end(&local.publishers);
        }
        lock(&self.acks).clear();
        lock(&self.counts).clear();
        while feeds.queue.try_next().is_some() {}
        *pending = Pending::default();
        daemon.shutdown();
    }

    /// Reads the local clients' messages and publishes them, a burst per
    /// sample, until the round or the segment ends. A message whose
    /// client's window is closed is held (and returned at the round's end).
    fn up(
        &self,
        rx: &mut DaemonReceiver,
        mut held: Option<ClientMessage>,
        locals: &Mutex<Locals>,
        round: &AtomicBool,
        over: &Over,
    ) -> Option<ClientMessage> {
        while !round.load(Ordering::Relaxed) && !over.is_set() {
            let first = match held.take() {
                Some(message) => message,
                None => match rx.recv_timeout(SLICE) {
                    Ok(message) => message,
                    Err(Error::Timeout | Error::Corrupted(_) | Error::Poisoned(_)) => continue,
                    Err(_) => {
                        over.set();
                        break;
                    }
                },
            };
            // One lock for the burst: the other thread takes it only to
            // move messages in.
            let mut guard = lock(locals);
            let mut touched = Vec::new();
            let mut next = Some(first);
            while let Some(message) = next.take() {
                if let Some(local) = self.local_for(&mut guard, message.client()) {
                    if !local.credit.open(&local.acked) {
                        held = Some(message);
                        break;
                    }
                    local.counts.took(1);
                    local.credit.spend(message.payload().len());
                    local
                        .burst
                        .push(message.priority(), message.payload(), &local.publishers);
                    touched.push(message.client());
                } else {
                    guard.unattached += 1; // its client was refused: the segment ends
                }
                next = rx.try_recv().ok();
            }
            if guard.ended.is_some() {
                over.set();
            }
            touched.sort_unstable_by_key(|id| (id.slot(), id.generation()));
            touched.dedup();
            for client in touched {
                if let Some(local) = guard.by_client.get_mut(&client) {
                    local.burst.publish(&local.publishers);
                }
            }
            // A closed window: wait for the export's acknowledgement.
            let window = held
                .as_ref()
                .and_then(|m| guard.by_client.get(&m.client()))
                .map(|l| (l.acked.clone(), l.credit));
            drop(guard);
            if let Some((acked, credit)) = window {
                credit.wait(&acked, Some(Instant::now() + SLICE));
            }
        }
        held
    }

    /// Moves the export's messages into the local clients' rings until the
    /// round ends (or the segment does: the export or the remote daemon
    /// went).
    #[allow(clippy::too_many_arguments)]
    fn down(
        &self,
        tx: &mut DaemonSender,
        feeds: &Feeds,
        pending: &mut Pending<u64>,
        locals: &Mutex<Locals>,
        over: &Over,
        round_end: Instant,
        exports_seen: &mut bool,
        losses: u64,
    ) {
        loop {
            let exports = feeds.exports.load(Ordering::Acquire);
            let lost = feeds.losses.load(Ordering::Acquire) != losses;
            if (lost || exports == 0 && *exports_seen) && !over.is_set() {
                eprintln!(
                    "memlink bridge import: the export's token vanished (it stopped, its link was lost, \
                     or it was silent for a lease), and with it this import's clients there: ending {}; \
                     it is made again once an export answers",
                    self.local
                );
                over.set(); // the export went
            }
            *exports_seen |= exports > 0;
            let now = Instant::now();
            if over.is_set() || self.stopped() || now >= round_end {
                return;
            }
            let wait = if pending.is_empty() {
                round_end - now
            } else {
                stream::RETRY
            };
            while let Ok((n, notice)) = feeds.refusals.try_recv() {
                let mut guard = lock(locals);
                if let Some(&client) = guard.by_n.get(&n) {
                    let taken = guard.by_client.get(&client).map_or(0, |l| l.counts.taken());
                    guard.ended.get_or_insert(Ended::Refused {
                        n,
                        client,
                        notice,
                        taken,
                    });
                    over.set();
                }
            }
            if over.is_set() {
                return;
            }
            let mut item = feeds.queue.next_timeout(wait);
            while let Some(next) = item.take() {
                match next {
                    Outbound::Data(n, tier, bytes) => pending.push(n, tier, bytes),
                    Outbound::End(n, tier) => {
                        let mut guard = lock(locals);
                        // Ends of clients of an earlier local segment are stale.
                        if guard.by_n.contains_key(&n) {
                            let end = guard.ends.entry(n).or_default();
                            end.set(tier);
                            if end.all() && !over.is_set() {
                                eprintln!(
                                    "memlink bridge import: the remote daemon went: ending {}; it is made \
                                     again once a daemon runs",
                                    self.local
                                );
                                over.set(); // the remote daemon went
                            }
                        }
                    }
                }
                item = feeds.queue.try_next();
            }
            let mut guard = lock(locals);
            let Locals { by_client, by_n, .. } = &mut *guard;
            let _ = pending.flush(|n, tier, bytes| {
                let Some(client) = by_n.get(n) else {
                    return Ok(()); // it left: dropped
                };
                match tx.try_send_to(*client, tier, bytes) {
                    Err(Error::Full) => Err(Error::Full),
                    // Sent, or the client left, or the message cannot fit:
                    // either way it is off the window.
                    _ => {
                        if let Some(local) = by_client.get_mut(client) {
                            local.consumed.take(bytes.len());
                        }
                        Ok(())
                    }
                }
            });
        }
    }

    /// The bridged state of local client `client`, announced to the export
    /// (a liveliness token, three publishers, its acknowledgements) and
    /// attached there if it is new. `None` once the segment must end (this
    /// client or another was refused: see [`Locals::ended`]).
    fn local_for<'l>(&self, locals: &'l mut Locals, client: ClientId) -> Option<&'l mut Local> {
        if !locals.by_client.contains_key(&client) {
            if locals.ended.is_some() {
                return None;
            }
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            match self.announce(n, client, locals.version) {
                Ok(local) => {
                    locals.by_n.insert(n, client);
                    locals.by_client.insert(client, local);
                }
                Err(ended) => {
                    locals.ended = Some(ended);
                    return None;
                }
            }
        }
        locals.by_client.get_mut(&client)
    }

    /// Announces local client `client` as number `n` and has the export
    /// attach it, speaking protocol `version`.
    fn announce(&self, n: u64, client: ClientId, version: u32) -> Result<Local, Ended> {
        let rid = keys::rid(&self.zid, n);
        let keys = &self.keys;
        let zenoh = |e: zenoh::Error| Ended::Zenoh(e.to_string());
        let acked = Arc::new(Acked::default());
        lock(&self.acks).insert(n, acked.clone());
        let ack = stream::ack_publisher(&self.session, keys.ack_down(&rid))
            .wait()
            .map_err(zenoh)?;
        let publishers = stream::publishers(&self.session, |tier| keys.up(&rid, tier)).map_err(zenoh)?;
        let token = self
            .session
            .liveliness()
            .declare_token(keys.client(&rid))
            .wait()
            .map_err(zenoh)?;
        let replies = self
            .session
            .get(keys.attach(&rid))
            .payload(version.to_le_bytes().to_vec())
            .timeout(ATTACH_TIMEOUT)
            .wait()
            .map_err(zenoh)?;
        let reply = replies.recv().map_err(|_| Ended::NoAnswer { n, client })?;
        if let Err(why) = reply.result() {
            let refusal = Refusal::decode(&why.payload().to_bytes()).unwrap_or_else(|| Refusal::Unusable {
                reason: "the export's answer is malformed (another version of memlink-bridge?)".into(),
            });
            let notice = Notice {
                refusal,
                delivered: 0,
                refused: 0,
            };
            return Err(Ended::Refused {
                n,
                client,
                notice,
                taken: 0,
            });
        }
        let counts = Arc::new(Counters::default());
        lock(&self.counts).insert(rid.clone(), counts.clone());
        eprintln!(
            "memlink bridge import: client {client} of {} attached as {rid}",
            self.local
        );
        Ok(Local {
            n,
            _token: token,
            publishers,
            acked,
            credit: Credit::default(),
            burst: Burst::default(),
            consumed: Consumed::new(ack),
            leaving: false,
            counts,
        })
    }

    /// Says why the local segment ends before its export or daemon went.
    fn log_end(&self, ended: &Ended, unattached: u64) {
        let local = &self.local;
        let what = match ended {
            Ended::Refused {
                n,
                client,
                notice,
                taken,
            } => format!(
                "the export refused client {client} of {local} (bridged as {}): {}; its messages: \
                 {taken} taken here, {} delivered, {} refused by the export; and {unattached} \
                 taken here from clients not attached, refused here",
                keys::rid(&self.zid, *n),
                notice.refusal,
                notice.delivered,
                notice.refused,
            ),
            Ended::NoAnswer { n, client } => format!(
                "the export did not answer the attach of client {client} of {local} (bridged as {}) \
                 within {ATTACH_TIMEOUT:?}",
                keys::rid(&self.zid, *n)
            ),
            Ended::Zenoh(e) => format!("zenoh refused to declare a client's keys: {e}"),
        };
        eprintln!(
            "memlink bridge import: {what}. Ending {local}: its clients see Disconnected; it is made \
             again with the daemon's shape once the daemon runs"
        );
    }

    /// Announces clients that connected, and passes on those that left
    /// (one scan after they were seen gone).
    fn scan(&self, daemon: &Daemon, locals: &Mutex<Locals>) {
        let connected = daemon.control().clients();
        let mut guard = lock(locals);
        let mut left = Vec::new();
        for (id, local) in guard.by_client.iter_mut() {
            if !connected.contains(id) {
                if local.leaving {
                    left.push(*id);
                }
                local.leaving = true;
            }
        }
        for id in left {
            if let Some(local) = guard.by_client.remove(&id) {
                guard.by_n.remove(&local.n);
                guard.ends.remove(&local.n);
                lock(&self.acks).remove(&local.n);
                let rid = keys::rid(&self.zid, local.n);
                lock(&self.counts).remove(&rid);
                eprintln!(
                    "memlink bridge import: client {id} of {} left ({})",
                    self.local,
                    local.counts.of(&rid)
                );
                // The DELETEs come after the client's last messages; the
                // token goes with `local`.
                stream::end(&local.publishers);
            }
        }
        for id in connected {
            self.local_for(&mut guard, id);
        }
    }
}
