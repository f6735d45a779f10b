//! Settings for creating or connecting to a transport.

// The 0.1.3 layer implements its own deprecated 0.2 additions.
#![allow(deprecated)]

use std::time::Duration;

use super::client_role::ClientRole;
use super::daemon_role::DaemonRole;
use super::{NrelayShmTransport, Role};
use crate::endpoint::Settings;
use crate::error::ShmResult;

/// Segment size used by the builder when none is given (1 MiB).
pub const DEFAULT_SEGMENT_SIZE: usize = 1 << 20;

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
#[deprecated(since = "0.3.0", note = "use Daemon::builder or Client::builder")]
#[derive(Debug, Clone)]
pub struct TransportBuilder {
    settings: Settings,
}

impl TransportBuilder {
    pub(crate) fn new(name: &str) -> TransportBuilder {
        TransportBuilder {
            settings: Settings::new(name),
        }
    }

    /// Total segment size in bytes (daemon); see the README on how it is split.
    pub fn size(mut self, bytes: usize) -> Self {
        self.settings.size = bytes;
        self
    }

    /// The application's protocol version: clients must ask for the daemon's.
    pub fn protocol_version(mut self, version: u32) -> Self {
        self.settings.protocol_version = version;
        self
    }

    /// Client slots (daemon). Default: as many as fit, up to 8.
    pub fn max_clients(mut self, n: u32) -> Self {
        self.settings.max_clients = Some(n);
        self
    }

    /// Largest message payload (daemon). Default 4 KiB.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.settings.max_message_size = bytes;
        self
    }

    /// How long `wait` and blocking writes spin before sleeping in the kernel.
    /// Zero sleeps at once. Default 50 µs.
    pub fn spin(mut self, spin: Duration) -> Self {
        self.settings.spin = spin;
        self
    }

    /// Permission bits of a created segment (daemon). Default 0o600.
    /// Ignored on Windows, where the directory's access control list decides.
    pub fn mode(mut self, mode: u32) -> Self {
        self.settings.mode = mode & 0o777;
        self
    }

    /// The user a client expects to own the segment (default: its own
    /// effective user). Set it to the daemon's uid when the daemon shares
    /// its segment with a group through [`TransportBuilder::mode`]; any other
    /// owner is refused, so a segment squatted under the name is never used.
    /// Ignored on Windows, which has no numeric user ids.
    pub fn owner(mut self, uid: u32) -> Self {
        self.settings.owner = Some(uid);
        self
    }

    /// Creates the segment and returns the daemon side.
    ///
    /// # Errors
    /// As [`crate::DaemonBuilder::create`], as a [`crate::ShmError`].
    pub fn create(self) -> ShmResult<NrelayShmTransport> {
        let seg = self.settings.create()?;
        Ok(NrelayShmTransport {
            role: Role::Daemon(DaemonRole::new(seg, self.settings.spin)),
        })
    }

    /// Connects to an existing segment and returns the client side.
    ///
    /// # Errors
    /// As [`crate::ClientBuilder::connect`], as a [`crate::ShmError`].
    pub fn connect(self) -> ShmResult<NrelayShmTransport> {
        Ok(NrelayShmTransport {
            role: Role::Client(ClientRole::new(self.settings.connect()?)),
        })
    }
}
