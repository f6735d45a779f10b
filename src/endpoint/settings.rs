//! Settings shared by the builders ([`crate::DaemonBuilder`],
//! [`crate::ClientBuilder`] and the compatibility layer's), and the one place
//! that checks them and opens the engines.

use std::time::Duration;

use super::OpenError;
use crate::segment::layout::{Geometry, DEFAULT_MAX_CLIENTS, DEFAULT_MAX_MESSAGE, MAX_MESSAGE_LIMIT};
use crate::segment::SegmentName;
use crate::wait::DEFAULT_SPIN;

/// Segment size when none is given (1 MiB).
pub(crate) const DEFAULT_SEGMENT_SIZE: usize = 1 << 20;

/// Application protocol version when none is given.
pub(crate) const DEFAULT_PROTOCOL_VERSION: u32 = 1;

/// Defines builder setters over a `settings: Settings` field: one doc and
/// one body per setting, for every builder that offers it (the daemon's, the
/// client's and the 0.1.3 layer's).
macro_rules! setters {
    ($($name:ident),* $(,)?) => { $(setters!(@one $name);)* };
    (@one size) => {
        /// Total size of the segment in bytes (the daemon's setting).
        ///
        /// Default: what the client slots and the largest message need, and
        /// at least 1 MiB. Each client has six rings (three tiers, both
        /// ways), and each ring must hold two messages of the maximum size,
        /// so a segment needs about `12 x max_message_size` bytes per client
        /// (plus 4 KiB): with 1 MiB messages, 12.6 MB per client.
        /// [`crate::Daemon::segment_size`] gives the exact figure. A size
        /// too small for the settings is [`crate::OpenError::TooSmall`],
        /// with the size they need; the client count is never cut to fit.
        pub fn size(mut self, bytes: usize) -> Self {
            self.settings.size = Some(bytes);
            self
        }
    };
    (@one max_clients) => {
        /// Client slots, 1 to 1024 (the daemon's setting). Default 8.
        pub fn max_clients(mut self, n: u32) -> Self {
            self.settings.max_clients = Some(n);
            self
        }
    };
    (@one max_message_size) => {
        /// Largest message payload, 1 byte to 256 MiB (the daemon's
        /// setting). Default 4 KiB. Without a [`size`](Self::size), the
        /// segment is made as large as the clients need for it.
        pub fn max_message_size(mut self, bytes: usize) -> Self {
            self.settings.max_message_size = bytes;
            self
        }
    };
    (@one protocol_version) => {
        /// The application's protocol version: a client and its daemon must
        /// use the same. Default 1.
        pub fn protocol_version(mut self, version: u32) -> Self {
            self.settings.protocol_version = version;
            self
        }
    };
    (@one spin) => {
        /// How long blocking calls spin before they sleep in the kernel.
        /// Zero sleeps at once. Default 50 µs.
        pub fn spin(mut self, spin: Duration) -> Self {
            self.settings.spin = spin;
            self
        }
    };
    (@one mode) => {
        /// Permission bits of the segment (the daemon's setting). Default
        /// 0o600 (this user only). Ignored on Windows, where the directory's
        /// access control list decides.
        pub fn mode(mut self, mode: u32) -> Self {
            self.settings.mode = mode & 0o777;
            self
        }
    };
    (@one owner) => {
        /// The user expected to own the segment (a client's setting; default:
        /// its own effective user). Set it to the daemon's uid when the
        /// daemon shares its segment with a group (`mode`); any other owner
        /// is refused, so a segment squatted under the name is never used.
        /// Ignored on Windows, which has no numeric user ids.
        pub fn owner(mut self, uid: u32) -> Self {
            self.settings.owner = Some(uid);
            self
        }
    };
}
pub(crate) use setters;

#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) name: String,
    /// `None`: what the clients and the largest message need, at least
    /// [`DEFAULT_SEGMENT_SIZE`].
    pub(crate) size: Option<usize>,
    /// With no `max_clients`, fit as many as the size holds, up to 8 (the
    /// 0.1.3 layer's rule: its `create(path, 65536, 1)` holds one client)
    /// rather than 8 or an error.
    pub(crate) fit_clients: bool,
    pub(crate) protocol_version: u32,
    pub(crate) max_clients: Option<u32>,
    pub(crate) max_message_size: usize,
    pub(crate) spin: Duration,
    pub(crate) mode: u32,
    pub(crate) owner: Option<u32>,
}

impl Settings {
    pub(crate) fn new(name: &str) -> Settings {
        Settings {
            name: name.to_owned(),
            size: None,
            fit_clients: false,
            protocol_version: DEFAULT_PROTOCOL_VERSION,
            max_clients: None,
            max_message_size: DEFAULT_MAX_MESSAGE,
            spin: DEFAULT_SPIN,
            mode: 0o600,
            owner: None,
        }
    }

    /// Checks the daemon's settings and lays the segment out: the name and
    /// the geometry a daemon creates (plain validation, no I/O).
    ///
    /// # Errors
    /// [`OpenError::InvalidName`], [`OpenError::InvalidConfig`],
    /// [`OpenError::TooSmall`].
    pub(crate) fn layout(&self) -> Result<(SegmentName, Geometry), OpenError> {
        let name = SegmentName::parse(&self.name)?;
        // A layout for empty messages exists; a daemon that wants one is a mistake.
        if self.max_message_size == 0 {
            return Err(OpenError::InvalidConfig(
                "max_message_size must be at least 1 byte, not 0".into(),
            ));
        }
        let clients = match (self.max_clients, self.size) {
            (Some(n), _) => n,
            (None, Some(size)) if self.fit_clients => Geometry::auto_clients(size, self.max_message_size)?,
            (None, _) => DEFAULT_MAX_CLIENTS,
        };
        let size = match self.size {
            Some(size) => size,
            // Out of range, the message size is refused by `compute` below.
            None if self.max_message_size <= MAX_MESSAGE_LIMIT => {
                Geometry::minimum_size(clients, self.max_message_size).max(DEFAULT_SEGMENT_SIZE)
            }
            None => DEFAULT_SEGMENT_SIZE,
        };
        Ok((name, Geometry::compute(size, clients, self.max_message_size)?))
    }
}
