//! Settings for creating or connecting to a transport.

use std::time::Duration;

use super::client::Client;
use super::daemon::Daemon;
use super::{NrelayShmTransport, Role};
use crate::control::Segment;
use crate::error::ShmResult;
use crate::futex::DEFAULT_SPIN;
use crate::layout::{Geometry, DEFAULT_MAX_MESSAGE};
use crate::mmap::SegmentName;

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
#[derive(Debug, Clone)]
pub struct TransportBuilder {
    name: String,
    size: usize,
    protocol_version: u32,
    max_clients: Option<u32>,
    max_message_size: usize,
    spin: Duration,
    mode: u32,
    owner: Option<u32>,
}

impl TransportBuilder {
    pub(crate) fn new(name: &str) -> TransportBuilder {
        TransportBuilder {
            name: name.to_owned(),
            size: DEFAULT_SEGMENT_SIZE,
            protocol_version: 1,
            max_clients: None,
            max_message_size: DEFAULT_MAX_MESSAGE,
            spin: DEFAULT_SPIN,
            mode: 0o600,
            owner: None,
        }
    }

    /// Total segment size in bytes (daemon). See [`Geometry`] for how it is split.
    pub fn size(mut self, bytes: usize) -> Self {
        self.size = bytes;
        self
    }

    /// The application's protocol version: clients must ask for the daemon's.
    pub fn protocol_version(mut self, version: u32) -> Self {
        self.protocol_version = version;
        self
    }

    /// Client slots (daemon). Default: as many as fit, up to 8.
    pub fn max_clients(mut self, n: u32) -> Self {
        self.max_clients = Some(n);
        self
    }

    /// Largest message payload (daemon). Default 4 KiB.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// How long `wait` and blocking writes spin before sleeping in the kernel.
    /// Zero sleeps at once. Default 50 µs.
    pub fn spin(mut self, spin: Duration) -> Self {
        self.spin = spin;
        self
    }

    /// Permission bits of a created segment (daemon). Default 0o600.
    /// Ignored on Windows, where the directory's access control list decides.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode & 0o777;
        self
    }

    /// The user a client expects to own the segment (default: its own
    /// effective user). Set it to the daemon's uid when the daemon shares
    /// its segment with a group through [`TransportBuilder::mode`]; any other
    /// owner is refused, so a segment squatted under the name is never used.
    /// Ignored on Windows, which has no numeric user ids.
    pub fn owner(mut self, uid: u32) -> Self {
        self.owner = Some(uid);
        self
    }

    /// Creates the segment and returns the daemon side.
    pub fn create(self) -> ShmResult<NrelayShmTransport> {
        let name = SegmentName::parse(&self.name)?;
        let clients = match self.max_clients {
            Some(n) => n,
            None => Geometry::auto_clients(self.size, self.max_message_size)?,
        };
        let geometry = Geometry::compute(self.size, clients, self.max_message_size)?;
        let seg = Segment::create(&name, geometry, self.protocol_version, self.mode)?;
        Ok(NrelayShmTransport {
            role: Role::Daemon(Daemon::new(seg, self.spin)),
        })
    }

    /// Connects to an existing segment and returns the client side.
    pub fn connect(self) -> ShmResult<NrelayShmTransport> {
        let name = SegmentName::parse(&self.name)?;
        Ok(NrelayShmTransport {
            role: Role::Client(Client::connect(
                &name,
                self.protocol_version,
                self.spin,
                self.owner.unwrap_or_else(crate::platform::current_uid),
            )?),
        })
    }
}
