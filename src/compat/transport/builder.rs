//! Settings for creating or connecting to a transport.

// The 0.1.3 layer implements its own deprecated 0.2 additions.
#![allow(deprecated)]

use std::time::Duration;

use super::client_role::ClientRole;
use super::daemon_role::DaemonRole;
use super::{NrelayShmTransport, Role};
use crate::compat::ShmResult;
use crate::endpoint::{setters, Settings};

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
#[deprecated(since = "0.2.0", note = "use Daemon::builder or Client::builder")]
#[derive(Debug, Clone)]
pub struct TransportBuilder {
    settings: Settings,
}

impl TransportBuilder {
    pub(crate) fn new(name: &str) -> TransportBuilder {
        let mut settings = Settings::new(name);
        settings.fit_clients = true;
        TransportBuilder { settings }
    }

    setters!(size, protocol_version, max_clients, max_message_size, spin, mode, owner);

    /// Creates the segment and returns the daemon side.
    ///
    /// # Errors
    /// As [`crate::DaemonBuilder::create`], as a [`crate::ShmError`].
    pub fn create(self) -> ShmResult<NrelayShmTransport> {
        let seg = crate::endpoint::create_daemon_segment(&self.settings)?;
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
            role: Role::Client(ClientRole::new(crate::endpoint::open_client(&self.settings)?)),
        })
    }
}
