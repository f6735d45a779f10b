//! The daemon endpoint: creates a named segment and serves its clients.

#[cfg(not(loom))]
mod async_api;
mod control;
mod handoff;
mod receiver;
mod receiving;
mod sender;
mod sending;
mod table;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use delegate::delegate;

use super::message::ClientMessage;
use super::payload::Payload;
use super::settings::{setters, Settings};
use super::stats::Stats;
use crate::endpoint::{Error, OpenError};
use crate::priority::Priority;
use crate::segment::Segment;
use crate::slot::ClientId;

#[cfg(not(loom))]
pub use async_api::DaemonStream;
pub use control::DaemonControl;
pub use receiver::DaemonReceiver;
use receiver::Freeing;
pub use sender::DaemonSender;

pub(crate) use receiving::DaemonRx;
pub(crate) use sending::DaemonTx;
pub(crate) use table::{Owner, Shard};

/// The owner of a named segment, serving every [`crate::Client`] that
/// connects to it.
///
/// It reads Critical before High before Low across all clients, round-robin
/// among clients within a tier (bursts of at most 16 from one client), and
/// answers one client ([`Daemon::send_to`]) or all of them
/// ([`Daemon::broadcast`]). Clients that die are detected through a lock
/// the kernel releases (within 50 ms while the daemon waits), and their slots
/// are reclaimed after what they sent has been read.
///
/// Its methods: the owned receives ([`Daemon::recv`], `try_recv`,
/// `recv_timeout`, `recv_async`, `stream`), the sends to one client
/// ([`Daemon::send_to`], `try_send_to`, `send_to_timeout`, `send_to_async`,
/// each taking bytes, a typed value or a [`Fill`](crate::Fill)) and
/// [`Daemon::broadcast`], calls ([`Daemon::serve`], [`Daemon::recv_call`])
/// and the daemon's own queries, here; everything else of a direction
/// (in-place receives, batches, the other broadcasts) on its half, through
/// [`Daemon::receiver`] and [`Daemon::sender`], or [`Daemon::split`].
///
/// A `Daemon` is `Send`. Dropping it shuts the segment down: clients' calls
/// then fail with [`Error::Disconnected`] once they have read what was sent,
/// and the name is removed.
///
/// ```
/// use memlink_shm::{Client, Daemon, Priority};
/// use std::time::Duration;
/// # let name = format!("memlink-doc-daemon-{}", std::process::id());
///
/// let mut daemon = Daemon::create(&name)?;
/// let mut a = Client::connect(&name)?;
/// let mut b = Client::connect(&name)?;
/// assert_eq!(daemon.control().client_count(), 2);
///
/// a.send(Priority::High, b"from a")?;
/// let msg = daemon.recv_timeout(Duration::from_secs(5))?;
/// assert_eq!(msg.client(), a.control().id());
/// daemon.send_to(msg.client(), Priority::High, b"for a only")?;
/// daemon.broadcast(Priority::Low, b"for everyone")?;
///
/// assert_eq!(a.recv_timeout(Duration::from_secs(5))?.payload(), b"for a only");
/// assert_eq!(b.recv_timeout(Duration::from_secs(5))?.payload(), b"for everyone");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Daemon {
    rx: DaemonReceiver,
    tx: DaemonSender,
    name: String,
}

/// Settings for [`Daemon::create`]; from [`Daemon::builder`].
///
/// ```
/// use memlink_shm::Daemon;
/// use std::time::Duration;
/// # let name = format!("memlink-doc-daemon-builder-{}", std::process::id());
/// let daemon = Daemon::builder(&name)
///     .size(4 << 20)
///     .max_clients(4)
///     .max_message_size(64 * 1024)
///     .protocol_version(7)
///     .spin(Duration::from_micros(20))
///     .create()?;
/// let control = daemon.control();
/// assert_eq!((control.max_clients(), control.max_message_size()), (4, 64 * 1024));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct DaemonBuilder {
    settings: Settings,
}

impl DaemonBuilder {
    setters!(size, max_clients, max_message_size, protocol_version, spin, mode);

    /// Creates the segment. A name without `/` is a shared-memory name
    /// (`/dev/shm` on Linux); with `/`, a file path. A name left by a dead
    /// daemon is taken over.
    ///
    /// # Errors
    /// [`OpenError::AlreadyRunning`] when a live daemon serves the name,
    /// [`OpenError::InvalidName`], [`OpenError::InvalidConfig`],
    /// [`OpenError::TooSmall`], and the OS's refusals as
    /// [`OpenError::PermissionDenied`] or [`OpenError::Io`].
    pub fn create(self) -> Result<Daemon, OpenError> {
        let seg = create_segment(&self.settings)?;
        let forks = crate::platform::fork_generation();
        let owner = Arc::new(Owner::new(seg.clone(), forks));
        Ok(Daemon::assemble(
            &seg,
            self.settings.spin,
            Shard::ALL,
            forks,
            owner,
            self.settings.name,
        ))
    }
}

/// Creates the segment `settings` describe, and readies this process to
/// serve it (the memory barriers a daemon's wake-ups rely on).
pub(crate) fn create_segment(settings: &Settings) -> Result<Segment, OpenError> {
    let (name, geometry) = settings.layout()?;
    let seg = Segment::create(&name, geometry, settings.protocol_version, settings.mode)?;
    crate::wait::register_barriers();
    Ok(seg)
}

/// Lets the receiving part free the slots of departed clients it has
/// drained, the sending part letting go of them: run before a send that
/// follows one which saw the client table move, so that a daemon that only
/// sends frees them too.
#[cold]
pub(crate) fn tidy(rx: &mut DaemonRx, tx: &mut DaemonTx) {
    tx.clear_table_moved();
    rx.refresh(&mut |i| {
        tx.detach(i);
        true
    });
}

impl Daemon {
    /// The daemon of one shard of `seg`; `owner` is shared by all shards
    /// and halves (the last one dropped shuts the segment down).
    fn assemble(seg: &Segment, spin: Duration, shard: Shard, forks: u32, owner: Arc<Owner>, name: String) -> Daemon {
        let retired = Arc::new(Mutex::new(Stats::default()));
        let handoff = Arc::new(handoff::Handoff::new(seg.geometry().max_clients as usize));
        let control = DaemonControl::new(seg.clone(), &owner, shard, retired.clone());
        Daemon {
            rx: DaemonReceiver {
                rx: DaemonRx::new(seg.clone(), spin, shard, forks, retired),
                free: Freeing {
                    handoff: handoff.clone(),
                    joined: false,
                },
                _owner: owner.clone(),
                control: control.clone(),
            },
            tx: DaemonSender {
                tx: DaemonTx::new(seg.clone(), spin, shard, forks, handoff),
                owner,
                control,
            },
            name,
        }
    }

    /// Creates the segment `name` with the default settings: 1 MiB, up to 8
    /// clients, 4 KiB messages, protocol version 1.
    ///
    /// A name without a path separator (`bus`) is a shared-memory name
    /// (`/dev/shm/bus` on Linux); one with a separator (`/tmp/bus`, also
    /// `/bus`) is a file path. Clients connect with the same string.
    ///
    /// # Errors
    /// See [`DaemonBuilder::create`].
    pub fn create(name: &str) -> Result<Daemon, OpenError> {
        Daemon::builder(name).create()
    }

    /// The smallest segment that holds `max_clients` clients for messages
    /// of up to `max_message_size` bytes: what [`DaemonBuilder::size`]
    /// must be at least. Each client has six rings, each of which holds
    /// two messages of the maximum size, so this is about
    /// `12 x max_message_size` per client. A builder without a size
    /// computes it by itself (and takes at least 1 MiB).
    ///
    /// ```
    /// use memlink_shm::Daemon;
    /// let per_client = Daemon::segment_size(1, 1 << 20);
    /// assert!(per_client > 12 << 20 && per_client < 13 << 20);
    /// # let name = format!("memlink-doc-segment-size-{}", std::process::id());
    /// // Three clients of 1 MiB messages: no size needed, it is worked out.
    /// let daemon = Daemon::builder(&name).max_clients(3).max_message_size(1 << 20).create()?;
    /// assert_eq!(daemon.control().max_clients(), 3);
    /// # drop(daemon);
    /// // A size too small for the default 8 clients says what they need.
    /// match Daemon::builder(&name).size(16 << 20).max_message_size(1 << 20).create() {
    ///     Err(memlink_shm::OpenError::TooSmall { minimum, .. }) => {
    ///         assert_eq!(minimum, Daemon::segment_size(8, 1 << 20))
    ///     }
    ///     other => panic!("{other:?}"),
    /// }
    /// // No client slots: no segment size holds that.
    /// assert_eq!(Daemon::segment_size(0, 4096), usize::MAX);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// Settings no segment can have (no clients, more than 1024, messages
    /// over 256 MiB) need [`usize::MAX`]: no size is enough.
    pub fn segment_size(max_clients: u32, max_message_size: usize) -> usize {
        use crate::segment::layout::{Geometry, MAX_CLIENTS_LIMIT, MAX_MESSAGE_LIMIT};
        if max_clients == 0 || max_clients > MAX_CLIENTS_LIMIT || max_message_size > MAX_MESSAGE_LIMIT {
            return usize::MAX;
        }
        Geometry::minimum_size(max_clients, max_message_size)
    }

    /// All the settings of a segment.
    pub fn builder(name: &str) -> DaemonBuilder {
        DaemonBuilder {
            settings: Settings::new(name),
        }
    }

    /// The segment's name, as given to `create`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The daemon's queries and controls, shared by its halves and usable
    /// from anywhere, even inside a closure of either half (see
    /// [`DaemonControl`]).
    pub fn control(&self) -> DaemonControl {
        self.tx.control.clone()
    }

    /// Shares the daemon's clients out among `n` daemons for `n` worker
    /// threads: each serves a disjoint set of client slots (slot index modulo
    /// `n`; a client that connects later belongs to the shard of the slot it
    /// claims), receives and answers only its own clients' messages, and
    /// needs no lock with the others. The segment shuts down when the last
    /// shard is dropped. `n` is at least 1.
    ///
    /// ```
    /// use memlink_shm::{Client, Daemon, Priority};
    /// use std::time::Duration;
    /// # let name = format!("memlink-doc-shard-{}", std::process::id());
    /// let daemon = Daemon::builder(&name).max_clients(4).create()?;
    /// let workers: Vec<_> = daemon
    ///     .shard(2)
    ///     .into_iter()
    ///     .map(|mut shard| {
    ///         std::thread::spawn(move || -> Result<(), memlink_shm::Error> {
    ///             let msg = shard.recv_timeout(Duration::from_secs(5))?;
    ///             shard.send_to(msg.client(), Priority::High, msg.payload())
    ///         })
    ///     })
    ///     .collect();
    /// // Slots 0 and 1: one client for each worker.
    /// let mut clients = [Client::connect(&name)?, Client::connect(&name)?];
    /// for c in &mut clients {
    ///     c.send(Priority::High, b"echo")?;
    /// }
    /// for c in &mut clients {
    ///     assert_eq!(c.recv_timeout(Duration::from_secs(5))?.payload(), b"echo");
    /// }
    /// for w in workers {
    ///     w.join().unwrap()?;
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shard(self, n: usize) -> Vec<Daemon> {
        let n = u32::try_from(n.max(1)).unwrap_or(u32::MAX);
        let (seg, spin, mine) = (self.tx.tx.segment().clone(), self.rx.rx.spin(), self.rx.rx.shard());
        let forks = self.rx.rx.fork_generation();
        mine.divide(n)
            .map(|shard| Daemon::assemble(&seg, spin, shard, forks, self.tx.owner.clone(), self.name.clone()))
            .collect()
    }

    /// Whether the two halves are this daemon's own pair (`split` lends
    /// them out, and they could be swapped with another daemon's).
    #[inline(always)]
    fn halves_are_a_pair(&self) -> bool {
        Arc::ptr_eq(&self.rx.free.handoff, self.tx.tx.handoff())
    }

    /// The receiving half, for the receives the daemon does not repeat
    /// ([`DaemonReceiver`] has them all: in place, batches, bounded and async
    /// waits): `daemon.receiver().try_recv_with(..)`. While it is lent the
    /// sending half is idle, so a drained slot is freed at once.
    #[inline(always)]
    pub fn receiver(&mut self) -> &mut DaemonReceiver {
        self.rx.free.joined = self.halves_are_a_pair();
        &mut self.rx
    }

    /// The sending half, for the sends the daemon does not repeat
    /// ([`DaemonSender`] has them all: batches, bounded, non-blocking and
    /// async broadcasts): `daemon.sender().try_broadcast(..)`. First frees
    /// the slots of departed clients if the sending half saw the table move
    /// at its last send (so a daemon that only sends frees them too).
    #[inline(always)]
    pub fn sender(&mut self) -> &mut DaemonSender {
        if self.tx.tx.table_moved() && self.halves_are_a_pair() {
            tidy(&mut self.rx.rx, &mut self.tx.tx);
        }
        &mut self.tx
    }

    /// Lends the daemon's receiving and sending halves: to answer a request
    /// in place while reading it (see [`DaemonReceiver`]), or to receive and
    /// send on two threads of a [`std::thread::scope`]. While lent, they
    /// free a departed client's slot as split halves do (see
    /// [`DaemonReceiver`]).
    pub fn split(&mut self) -> (&mut DaemonReceiver, &mut DaemonSender) {
        self.rx.free.joined = false;
        (&mut self.rx, &mut self.tx)
    }

    /// Splits the daemon into its receiving and sending halves, owned: each
    /// is `'static` and `Send`, so they can move to two threads or tasks (a
    /// reply path that outlives the function that created the daemon). The
    /// segment stays up until both halves are dropped, then shuts down as
    /// dropping the daemon would. On a shard, the halves serve that shard's
    /// clients.
    ///
    /// ```
    /// use memlink_shm::{Client, Daemon, Priority};
    /// use std::time::Duration;
    /// # let name = format!("memlink-doc-into-split-{}", std::process::id());
    /// let (mut rx, mut tx) = Daemon::create(&name)?.into_split();
    /// // The receiving half on a thread of its own, handing requests over.
    /// let (requests, inbox) = std::sync::mpsc::channel();
    /// let reader = std::thread::spawn(move || -> Result<(), memlink_shm::Error> {
    ///     let msg = rx.recv_timeout(Duration::from_secs(5))?;
    ///     requests.send(msg).expect("the sender thread is there");
    ///     Ok(())
    /// });
    /// let mut client = Client::connect(&name)?;
    /// client.send(Priority::High, b"ping")?;
    /// let msg = inbox.recv_timeout(Duration::from_secs(5))?;
    /// tx.send_to(msg.client(), Priority::High, b"pong")?;
    /// assert_eq!(client.recv_timeout(Duration::from_secs(5))?.payload(), b"pong");
    /// reader.join().unwrap()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_split(self) -> (DaemonReceiver, DaemonSender) {
        let Daemon { mut rx, tx, .. } = self;
        rx.free.joined = false;
        (rx, tx)
    }

    /// Changes how long blocking calls spin before they sleep in the kernel
    /// (set first with [`DaemonBuilder::spin`]).
    pub fn set_spin(&mut self, spin: Duration) {
        self.rx.rx.set_spin(spin);
        self.tx.tx.set_spin(spin);
    }

    delegate! {
        to self.receiver() {
            /// Takes the next message, waiting for one ([`DaemonReceiver::recv`]).
            ///
            /// # Errors
            /// As [`DaemonReceiver::recv`].
            pub fn recv(&mut self) -> Result<ClientMessage, Error>;

            /// [`DaemonReceiver::recv_timeout`].
            ///
            /// # Errors
            /// As [`DaemonReceiver::recv_timeout`].
            pub fn recv_timeout(&mut self, timeout: Duration) -> Result<ClientMessage, Error>;

            /// Takes the next message if one is waiting ([`DaemonReceiver::try_recv`]).
            ///
            /// # Errors
            /// As [`DaemonReceiver::try_recv`].
            pub fn try_recv(&mut self) -> Result<ClientMessage, Error>;
        }
        to self.sender() {
            /// Sends `payload` to one client, waiting while its ring is full
            /// ([`DaemonSender::send_to`]).
            ///
            /// # Errors
            /// As [`DaemonSender::send_to`].
            pub fn send_to(&mut self, client: ClientId, priority: Priority, payload: impl Payload) -> Result<(), Error>;

            /// [`DaemonSender::send_to_timeout`].
            ///
            /// # Errors
            /// As [`DaemonSender::send_to_timeout`].
            pub fn send_to_timeout(&mut self, client: ClientId, priority: Priority, payload: impl Payload, timeout: Duration) -> Result<(), Error>;

            /// Sends `payload` to one client if it fits now ([`DaemonSender::try_send_to`]).
            ///
            /// # Errors
            /// As [`DaemonSender::try_send_to`].
            #[inline(always)]
            pub fn try_send_to(&mut self, client: ClientId, priority: Priority, payload: impl Payload) -> Result<(), Error>;

            /// Sends `payload` to every connected client, or to none
            /// ([`DaemonSender::broadcast`]).
            ///
            /// # Errors
            /// As [`DaemonSender::broadcast`].
            pub fn broadcast(&mut self, priority: Priority, payload: impl Payload) -> Result<(), Error>;
        }
    }

    /// Shuts the segment down, as dropping does (dropping the last shard,
    /// for a shared-out daemon): clients are told and woken, and the name is
    /// removed. On a shard this shuts down every shard.
    pub fn shutdown(self) {
        self.tx.owner.shutdown();
    }
}
