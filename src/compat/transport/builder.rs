//! Settings for creating or connecting to a transport: the daemon's and the
//! client's builders, set together.

// The 0.1.3 layer implements its own deprecated 0.2 additions.
#![allow(deprecated)]

use std::time::Duration;

use super::client_role::ClientRole;
use super::daemon_role::DaemonRole;
use super::{NrelayShmTransport, Role};
use crate::compat::ShmResult;
use crate::{Client, ClientBuilder, Daemon, DaemonBuilder};

/// Segment size used by the builder when none is given (1 MiB).
pub const DEFAULT_SEGMENT_SIZE: usize = 1 << 20;

/// The most client slots a size alone gets: [`DaemonBuilder::max_clients`]'s
/// default.
const FIT_CLIENTS_UP_TO: u32 = 8;

/// [`DaemonBuilder::max_message_size`]'s default.
const DEFAULT_MAX_MESSAGE: usize = 4096;

/// [`DaemonBuilder::protocol_version`]'s default.
const DEFAULT_PROTOCOL_VERSION: u32 = 1;

/// Builds a daemon ([`TransportBuilder::create`]) or a client
/// ([`TransportBuilder::connect`]).
///
/// ```
/// use std::time::Duration;
/// use memlink_shm::transport::{NrelayShmTransport, ShmTransport};
/// # let name = format!("memlink-doc-builder-{}", std::process::id());
/// let daemon = NrelayShmTransport::builder(&name)
///     .size(4 << 20)
///     .max_clients(4)
///     .max_message_size(64 * 1024)
///     .protocol_version(7)
///     .spin(Duration::from_micros(20))
///     .create()?;
/// let client = NrelayShmTransport::builder(&name).protocol_version(7).connect()?;
/// assert_eq!(daemon.client_count(), 1);
/// assert!(client.is_connected());
/// # Ok::<(), memlink_shm::transport::ShmError>(())
/// ```
#[deprecated(since = "0.2.0", note = "use Daemon::builder or Client::builder")]
#[derive(Debug, Clone)]
pub struct TransportBuilder {
    daemon: DaemonBuilder,
    client: ClientBuilder,
    size: Option<usize>,
    max_clients: Option<u32>,
    max_message_size: usize,
    protocol_version: u32,
}

impl TransportBuilder {
    pub(super) fn new(name: &str) -> TransportBuilder {
        TransportBuilder {
            daemon: Daemon::builder(name),
            client: Client::builder(name),
            size: None,
            max_clients: None,
            max_message_size: DEFAULT_MAX_MESSAGE,
            protocol_version: DEFAULT_PROTOCOL_VERSION,
        }
    }

    /// Total size of the segment in bytes, as [`DaemonBuilder::size`]; with
    /// no [`TransportBuilder::max_clients`], as many client slots as fit in
    /// it, up to 8 (the 0.1.3 rule: `create(name, 65536, 1)` holds one).
    pub fn size(mut self, bytes: usize) -> Self {
        self.size = Some(bytes);
        self.daemon = self.daemon.size(bytes);
        self
    }

    /// The application's protocol version, as
    /// [`DaemonBuilder::protocol_version`] and
    /// [`ClientBuilder::protocol_version`].
    pub fn protocol_version(mut self, version: u32) -> Self {
        self.protocol_version = version;
        self.daemon = self.daemon.protocol_version(version);
        self.client = self.client.protocol_version(version);
        self
    }

    /// Client slots, as [`DaemonBuilder::max_clients`].
    pub fn max_clients(mut self, n: u32) -> Self {
        self.max_clients = Some(n);
        self.daemon = self.daemon.max_clients(n);
        self
    }

    /// Largest message payload, as [`DaemonBuilder::max_message_size`].
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self.daemon = self.daemon.max_message_size(bytes);
        self
    }

    /// How long blocking calls spin before they sleep, as
    /// [`DaemonBuilder::spin`] and [`ClientBuilder::spin`].
    pub fn spin(mut self, spin: Duration) -> Self {
        self.daemon = self.daemon.spin(spin);
        self.client = self.client.spin(spin);
        self
    }

    /// Permission bits of the segment, as [`DaemonBuilder::mode`].
    pub fn mode(mut self, mode: u32) -> Self {
        self.daemon = self.daemon.mode(mode);
        self
    }

    /// The user expected to own the segment, as [`ClientBuilder::owner`].
    pub fn owner(mut self, uid: u32) -> Self {
        self.client = self.client.owner(uid);
        self
    }

    /// Creates the segment and returns the daemon side.
    ///
    /// # Errors
    /// As [`DaemonBuilder::create`], as a [`crate::ShmError`].
    pub fn create(self) -> ShmResult<NrelayShmTransport> {
        let mut daemon = self.daemon;
        if let (None, Some(size)) = (self.max_clients, self.size) {
            // The most that fit; none fitting, one, which the daemon's
            // builder then refuses with the size it needs.
            let fit = (1..=FIT_CLIENTS_UP_TO)
                .rev()
                .find(|&n| Daemon::segment_size(n, self.max_message_size) <= size);
            daemon = daemon.max_clients(fit.unwrap_or(1));
        }
        Ok(NrelayShmTransport {
            role: Role::Daemon(DaemonRole::new(daemon.create()?)),
        })
    }

    /// Connects to an existing segment and returns the client side.
    ///
    /// # Errors
    /// As [`ClientBuilder::connect`], as a [`crate::ShmError`].
    pub fn connect(self) -> ShmResult<NrelayShmTransport> {
        Ok(NrelayShmTransport {
            role: Role::Client(ClientRole::new(self.client.connect()?, self.protocol_version)),
        })
    }
}
