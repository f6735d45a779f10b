//! What crosses the wire besides message bytes: the segment's shape (so the
//! importing side creates a segment that local clients accept as the
//! remote daemon's) and the mapping of tiers to Zenoh priorities.

use memlink_shm::inspect::SegmentInfo;
use memlink_shm::Priority;
use zenoh::qos::Priority as ZenohPriority;

/// The largest segment an import creates, whatever a peer claims (4 GiB):
/// a peer's word is untrusted input.
const MAX_SEGMENT: u64 = 4 << 30;

/// The shape of the exported segment, as the export announces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// The remote daemon's protocol version (local clients must speak it).
    pub protocol_version: u32,
    /// Client slots of the remote segment.
    pub max_clients: u32,
    /// The largest message the remote segment carries.
    pub max_message_size: usize,
    /// The remote segment's size in bytes.
    pub size: usize,
}

const MAGIC: &[u8; 4] = b"MLB1";
const LEN: usize = 4 + 4 + 4 + 8 + 8;

impl Shape {
    pub(crate) fn of(info: &SegmentInfo) -> Shape {
        Shape {
            protocol_version: info.protocol_version,
            max_clients: info.max_clients,
            max_message_size: info.max_message_size,
            size: info.size,
        }
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.protocol_version.to_le_bytes());
        out.extend_from_slice(&self.max_clients.to_le_bytes());
        out.extend_from_slice(&(self.max_message_size as u64).to_le_bytes());
        out.extend_from_slice(&(self.size as u64).to_le_bytes());
        out
    }

    /// Reads a shape a peer sent: `None` unless it is well formed and
    /// within bounds.
    pub(crate) fn decode(bytes: &[u8]) -> Option<Shape> {
        let rest = bytes.strip_prefix(MAGIC)?;
        if rest.len() != LEN - MAGIC.len() {
            return None;
        }
        let u32_at = |i: usize| u32::from_le_bytes(rest[i..i + 4].try_into().expect("4 bytes"));
        let u64_at = |i: usize| u64::from_le_bytes(rest[i..i + 8].try_into().expect("8 bytes"));
        let (max_message_size, size) = (u64_at(8), u64_at(16));
        if size > MAX_SEGMENT || max_message_size > size {
            return None;
        }
        Some(Shape {
            protocol_version: u32_at(0),
            max_clients: u32_at(4),
            max_message_size: usize::try_from(max_message_size).ok()?,
            size: usize::try_from(size).ok()?,
        })
    }
}

/// What a bridge's start line says it serves: `protocol version 3, 8 client
/// slots, messages up to 65536 bytes, a segment of 1048576 bytes`.
impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "protocol version {}, {} client slots, messages up to {} bytes, a segment of {} bytes",
            self.protocol_version, self.max_clients, self.max_message_size, self.size
        )
    }
}

/// The Zenoh priority a tier travels at: Critical at `InteractiveHigh`,
/// High at `Data` (Zenoh's default), Low at `DataLow`. `RealTime` and
/// `Control` stay free for the application's own traffic and Zenoh's. Zenoh
/// delivers each priority reliably and in order, so order within a tier
/// holds end to end; a Critical message may overtake a Low one sent before
/// it, as in the rings.
pub(crate) fn zenoh_priority(tier: Priority) -> ZenohPriority {
    match tier {
        Priority::Critical => ZenohPriority::InteractiveHigh,
        Priority::High => ZenohPriority::Data,
        Priority::Low => ZenohPriority::DataLow,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shape_reads_back_and_hostile_ones_are_refused() {
        let shape = Shape {
            protocol_version: 7,
            max_clients: 64,
            max_message_size: 4096,
            size: 1 << 20,
        };
        assert_eq!(Shape::decode(&shape.encode()), Some(shape));
        let mut long = shape.encode();
        long.push(0);
        assert_eq!(Shape::decode(&long), None);
        assert_eq!(Shape::decode(&shape.encode()[..LEN - 1]), None);
        let huge = Shape { size: 1 << 40, ..shape };
        assert_eq!(Shape::decode(&huge.encode()), None);
        let absurd = Shape {
            max_message_size: 2 << 20,
            ..shape
        };
        assert_eq!(Shape::decode(&absurd.encode()), None);
        assert_eq!(Shape::decode(b"XXXX"), None);
    }
}
