//! Settings shared by the builders ([`crate::DaemonBuilder`],
//! [`crate::ClientBuilder`] and the compatibility layer's), and the one place
//! that checks them and opens the engines.

use std::time::Duration;

use super::client::{ClientReceiver, ClientSender};
use crate::error::{ShmError, ShmResult};
use crate::segment::layout::{Geometry, DEFAULT_MAX_MESSAGE, MAX_MESSAGE_LIMIT};
use crate::segment::Segment;
use crate::segment::SegmentName;
use crate::wait::DEFAULT_SPIN;

/// Segment size when none is given (1 MiB).
pub(crate) const DEFAULT_SEGMENT_SIZE: usize = 1 << 20;

/// Application protocol version when none is given.
pub(crate) const DEFAULT_PROTOCOL_VERSION: u32 = 1;

#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) name: String,
    pub(crate) size: usize,
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
            size: DEFAULT_SEGMENT_SIZE,
            protocol_version: DEFAULT_PROTOCOL_VERSION,
            max_clients: None,
            max_message_size: DEFAULT_MAX_MESSAGE,
            spin: DEFAULT_SPIN,
            mode: 0o600,
            owner: None,
        }
    }

    /// Checks the daemon's settings, lays the segment out and creates it.
    pub(crate) fn create(&self) -> ShmResult<Segment> {
        let name = SegmentName::parse(&self.name)?;
        // Checked before the geometry, which would report a size problem instead.
        if self.max_message_size == 0 || self.max_message_size > MAX_MESSAGE_LIMIT {
            return Err(ShmError::InvalidConfig(format!(
                "max_message_size must be between 1 and {MAX_MESSAGE_LIMIT} bytes, not {}",
                self.max_message_size
            )));
        }
        let clients = match self.max_clients {
            Some(n) => n,
            None => Geometry::auto_clients(self.size, self.max_message_size)?,
        };
        let geometry = Geometry::compute(self.size, clients, self.max_message_size)?;
        Segment::create(&name, geometry, self.protocol_version, self.mode)
    }

    /// Connects to the segment as a client.
    pub(crate) fn connect(&self) -> ShmResult<(ClientSender, ClientReceiver)> {
        super::client::open(self)
    }
}
