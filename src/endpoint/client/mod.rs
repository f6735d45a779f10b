//! The client endpoint: one connection to a daemon's segment, as one value
//! or split into a sending and a receiving half.

#[cfg(not(loom))]
mod async_api;
mod connection;
mod control;
mod receiver;
mod sender;

use std::sync::Arc;
use std::time::Duration;

use delegate::delegate;

use super::message::Message;
use super::payload::Payload;
use super::settings::{setters, Settings};
use crate::endpoint::{Error, OpenError};
use crate::priority::Priority;

#[cfg(not(loom))]
pub use async_api::ClientStream;
pub(crate) use connection::Connection;
pub use control::ClientControl;
pub use receiver::ClientReceiver;
pub use sender::ClientSender;

/// A connection to a [`crate::Daemon`]: one slot of its segment, with a
/// pair of priority rings (to the daemon and back).
///
/// Methods that move messages take `&mut self`: each ring has one writer and
/// one reader, and the type system keeps it so. A `Client` is `Send`; give it
/// to the thread that talks to the daemon, or [`Client::split`] it into a
/// [`ClientSender`] and a [`ClientReceiver`] for two threads. Dropping it
/// leaves the segment (the daemon still reads what was sent before).
///
/// Its methods: the sends ([`Client::send`], `try_send`, `send_timeout`,
/// `send_async`, each taking bytes, a typed value or a [`Fill`](crate::Fill))
/// and the owned receives (`recv`, `try_recv`, `recv_timeout`,
/// `recv_async`, `stream`) here; everything else of a direction (batches,
/// in-place receives) on its half, through [`Client::sender`] and
/// [`Client::receiver`].
///
/// ```
/// use memlink_shm::{Client, Daemon, Fill, Priority};
/// use std::time::Duration;
/// # let name = format!("memlink-doc-client-{}", std::process::id());
///
/// let mut daemon = Daemon::create(&name)?;
/// let mut client = Client::connect(&name)?;
///
/// // Blocking, non-blocking and zero-copy sends; each wakes a sleeping daemon.
/// client.send(Priority::Low, b"log line")?;
/// client.try_send(Priority::Critical, b"halt")?;
/// client.send(Priority::High, Fill::new(8, |buf| buf.copy_from_slice(&42u64.to_le_bytes())))?;
///
/// // The daemon reads Critical first, then High, then Low.
/// let first = daemon.recv_timeout(Duration::from_secs(5))?;
/// assert_eq!((first.priority(), first.payload()), (Priority::Critical, &b"halt"[..]));
/// daemon.send_to(first.client(), Priority::High, b"halted")?;
///
/// assert_eq!(client.recv_timeout(Duration::from_secs(5))?.payload(), b"halted");
/// // Zero-copy receive: the closure sees the bytes in the ring.
/// assert!(client.receiver().try_recv_with(|_, bytes| bytes.len()).unwrap_err().is_transient());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Client {
    tx: ClientSender,
    rx: ClientReceiver,
    name: String,
}

/// Settings for [`Client::connect`]; from [`Client::builder`].
///
/// ```
/// use memlink_shm::{Client, Daemon};
/// use std::time::Duration;
/// # let name = format!("memlink-doc-client-builder-{}", std::process::id());
/// let _daemon = Daemon::builder(&name).protocol_version(7).create()?;
/// let client = Client::builder(&name)
///     .protocol_version(7)
///     .spin(Duration::from_micros(20))
///     .connect()?;
/// assert!(client.control().is_connected());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    settings: Settings,
    /// How long `connect` waits for a daemon to come (or come back).
    wait: Option<Duration>,
}

/// The first and the longest pause between two tries of a waiting connect.
const RETRY_PAUSE: (Duration, Duration) = (Duration::from_millis(1), Duration::from_millis(50));

impl ClientBuilder {
    setters!(protocol_version, spin, owner);

    /// Makes [`ClientBuilder::connect`] wait up to `timeout` for a daemon:
    /// while the name does not exist yet, its daemon is starting, shutting
    /// down or dead (a new one takes the name over), or every slot is taken
    /// by clients whose slots are being freed, it tries again, after a
    /// pause that grows from 1 ms to 50 ms (a waiting client costs next to
    /// no CPU). Any other error, and the last one once `timeout` has
    /// passed, is returned. Two programs started together need no retry
    /// loop of their own:
    ///
    /// ```
    /// use memlink_shm::{Client, Daemon};
    /// use std::time::Duration;
    /// # let name = format!("memlink-doc-wait-{}", std::process::id());
    /// let waiting = {
    ///     let name = name.clone();
    ///     std::thread::spawn(move || Client::builder(&name).wait(Duration::from_secs(30)).connect())
    /// };
    /// let daemon = Daemon::create(&name)?; // perhaps after the client began
    /// let client = waiting.join().unwrap()?;
    /// assert_eq!(daemon.control().clients(), [client.control().id()]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait(mut self, timeout: Duration) -> Self {
        self.wait = Some(timeout);
        self
    }

    /// Connects.
    ///
    /// # Errors
    /// [`OpenError::NotFound`] when no daemon created the name,
    /// [`OpenError::OwnerDead`] / [`OpenError::ShuttingDown`] when its daemon
    /// is gone or going, [`OpenError::ProtocolMismatch`],
    /// [`OpenError::TableFull`] when every slot is taken, and the validation
    /// and permission errors of [`OpenError`]. With
    /// [`ClientBuilder::wait`], the errors it waits through only once the
    /// wait is over.
    pub fn connect(self) -> Result<Client, OpenError> {
        let until = self.wait.map(|t| super::channel::deadline(Some(t)));
        let mut pause = RETRY_PAUSE.0;
        loop {
            match open(&self.settings) {
                Ok((tx, rx)) => {
                    return Ok(Client {
                        tx,
                        rx,
                        name: self.settings.name,
                    })
                }
                Err(e) => {
                    let left = until
                        .flatten()
                        .and_then(|u| u.checked_duration_since(std::time::Instant::now()))
                        .filter(|_| worth_waiting_for(&e));
                    let Some(left) = left else { return Err(e) };
                    std::thread::sleep(pause.min(left));
                    pause = (pause * 2).min(RETRY_PAUSE.1);
                }
            }
        }
    }

    /// [`ClientBuilder::connect`] without blocking the calling thread, on
    /// any executor: the connect (and its [`ClientBuilder::wait`]) runs on
    /// a thread of its own, which wakes the task when it is done. Dropping
    /// the future lets the connect finish and drops the client it made.
    ///
    /// # Errors
    /// As [`ClientBuilder::connect`].
    #[cfg(not(loom))]
    pub async fn connect_async(self) -> Result<Client, OpenError> {
        let done = Arc::new(std::sync::Mutex::new((None, None::<std::task::Waker>)));
        let (theirs, name) = (Arc::clone(&done), self.settings.name.clone());
        let spawned = std::thread::Builder::new()
            .name("memlink-connect".into())
            .spawn(move || {
                let result = self.connect();
                let mut slot = theirs.lock().unwrap_or_else(|p| p.into_inner());
                slot.0 = Some(result);
                if let Some(waker) = slot.1.take() {
                    waker.wake();
                }
            });
        if let Err(e) = spawned {
            return Err(OpenError::Io {
                op: "spawn a connecting thread",
                name,
                source: e,
            });
        }
        std::future::poll_fn(|cx| {
            let mut slot = done.lock().unwrap_or_else(|p| p.into_inner());
            match slot.0.take() {
                Some(result) => std::task::Poll::Ready(result),
                None => {
                    slot.1 = Some(cx.waker().clone());
                    std::task::Poll::Pending
                }
            }
        })
        .await
    }
}

/// Whether a waiting connect tries again after `e`: the daemon is not
/// there yet, is starting, going or dead (a new one takes the name over),
/// or slots are being freed.
fn worth_waiting_for(e: &OpenError) -> bool {
    matches!(
        e,
        OpenError::NotFound { .. } | OpenError::OwnerDead { .. } | OpenError::ShuttingDown { .. }
    ) || e.is_transient()
}

impl Client {
    /// Connects to the daemon of `name` with the default settings
    /// (protocol version 1).
    ///
    /// Names follow one rule, on both sides: a name without a path
    /// separator (`bus`) is a shared-memory name (`/dev/shm/bus` on Linux);
    /// a name with one (`/tmp/bus`, also `/bus`) is a file path. An error
    /// about a name taken as a path says so.
    ///
    /// # Errors
    /// See [`ClientBuilder::connect`].
    pub fn connect(name: &str) -> Result<Client, OpenError> {
        Client::builder(name).connect()
    }

    /// All the settings of a connection.
    pub fn builder(name: &str) -> ClientBuilder {
        ClientBuilder {
            settings: Settings::new(name),
            wait: None,
        }
    }

    /// Splits the client into its sending and its receiving half, to be
    /// owned by two threads (see [`ClientSender`] for an example). The
    /// client leaves the segment when both are dropped.
    pub fn split(self) -> (ClientSender, ClientReceiver) {
        (self.tx, self.rx)
    }

    /// The client's queries and controls, shared by its halves and usable
    /// from anywhere, even inside a closure of either half (see
    /// [`ClientControl`]).
    pub fn control(&self) -> ClientControl {
        self.tx.control()
    }

    /// Changes how long blocking calls spin before they sleep in the kernel
    /// (set first with [`ClientBuilder::spin`]).
    pub fn set_spin(&mut self, spin: Duration) {
        self.tx.set_spin(spin);
        self.rx.set_spin(spin);
    }

    /// The segment's name, as given to `connect`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The sending half, for the sends the client does not repeat
    /// ([`ClientSender`] has them all: batches, and the same calls as here).
    ///
    /// ```
    /// use memlink_shm::{Client, Daemon, Priority};
    /// # let name = format!("memlink-doc-client-batch-{}", std::process::id());
    /// let mut daemon = Daemon::create(&name)?;
    /// let mut client = Client::connect(&name)?;
    /// client.sender().send_batch(|batch| {
    ///     for i in 0..100u32 {
    ///         batch.try_send(Priority::High, &i.to_le_bytes())?;
    ///     }
    ///     Ok::<(), memlink_shm::Error>(())
    /// })??;
    /// let mut sum = 0;
    /// let n = daemon
    ///     .receiver()
    ///     .try_recv_batch(1000, |_, _, b| sum += u32::from_le_bytes(b.try_into().unwrap()))?;
    /// assert_eq!((n, sum), (100, 4950));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sender(&mut self) -> &mut ClientSender {
        &mut self.tx
    }

    /// The receiving half, for the receives the client does not repeat
    /// ([`ClientReceiver`] has them all: in place, batches, and the same
    /// calls as here).
    pub fn receiver(&mut self) -> &mut ClientReceiver {
        &mut self.rx
    }

    /// Both halves at once, for a layer that sends and receives in one wait.
    #[cfg(not(loom))]
    pub(crate) fn halves_mut(&mut self) -> (&mut ClientSender, &mut ClientReceiver) {
        (&mut self.tx, &mut self.rx)
    }

    delegate! {
        to self.tx {
            /// Sends `payload` (bytes, a typed value or a
            /// [`Fill`](crate::Fill)), waiting while the ring to the daemon
            /// is full ([`ClientSender::send`]).
            ///
            /// # Errors
            /// As [`ClientSender::send`].
            pub fn send(&mut self, priority: Priority, payload: impl Payload) -> Result<(), Error>;

            /// [`ClientSender::send_timeout`].
            ///
            /// # Errors
            /// As [`ClientSender::send_timeout`].
            pub fn send_timeout(&mut self, priority: Priority, payload: impl Payload, timeout: Duration) -> Result<(), Error>;

            /// Sends `payload` if it fits now ([`ClientSender::try_send`]).
            ///
            /// # Errors
            /// As [`ClientSender::try_send`].
            pub fn try_send(&mut self, priority: Priority, payload: impl Payload) -> Result<(), Error>;
        }
        to self.rx {
            /// Takes the next message, waiting for one ([`ClientReceiver::recv`]).
            ///
            /// # Errors
            /// As [`ClientReceiver::recv`].
            pub fn recv(&mut self) -> Result<Message, Error>;

            /// [`ClientReceiver::recv_timeout`].
            ///
            /// # Errors
            /// As [`ClientReceiver::recv_timeout`].
            pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Message, Error>;

            /// Takes the next message if one is waiting ([`ClientReceiver::try_recv`]).
            ///
            /// # Errors
            /// As [`ClientReceiver::try_recv`].
            pub fn try_recv(&mut self) -> Result<Message, Error>;
        }
    }

    /// Leaves the segment, as dropping does: the daemon reads what was sent,
    /// then frees the slot.
    pub fn disconnect(self) {}
}

/// Opens a connection and builds its two halves.
pub(crate) fn open(settings: &Settings) -> Result<(ClientSender, ClientReceiver), OpenError> {
    let name = crate::segment::SegmentName::parse(&settings.name)?;
    let owner = settings.owner.unwrap_or_else(crate::platform::current_uid);
    let (conn, tx, rx) = Connection::open(&name, &settings.name, settings.protocol_version, owner)?;
    let conn = Arc::new(conn);
    Ok((
        ClientSender::new(tx, conn.clone(), settings.spin),
        ClientReceiver::new(rx, conn, settings.spin),
    ))
}
