//! Why an export did not attach a remote client, or stopped delivering its
//! messages: a typed reason with its numbers, as it crosses the wire to the
//! client's side (the reply to an attach, or a notice on the client's
//! `refused` key).
//!
//! A refusal comes from the network: [`Refusal::decode`] reads any bytes
//! without panicking and bounds what it allocates.

use memlink_shm::OpenError;

/// Why the export refused a remote client.
///
/// The export logs it; an import that receives it ends its local segment
/// (its clients see [`memlink_shm::Error::Disconnected`]) and makes it again
/// with the daemon's shape once the daemon runs; a
/// [`RemoteClient`](crate::RemoteClient) gets it from
/// [`RemoteClient::connect`](crate::RemoteClient::connect) as
/// [`BridgeError::Refused`](crate::BridgeError::Refused), or, after it was
/// attached, from [`RemoteClient::refusal`](crate::RemoteClient::refusal)
/// while its calls return `Disconnected`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The daemon speaks another application protocol version than the
    /// client (a daemon restarted with another version since the import
    /// made its segment).
    #[error(
        "the daemon speaks protocol version {daemon}, the client {client}: \
         clients must speak version {daemon} (the import makes its segment again with it)"
    )]
    ProtocolMismatch {
        /// The version the client speaks.
        client: u32,
        /// The daemon's version.
        daemon: u32,
    },
    /// Every client slot of the daemon's segment is taken.
    #[error(
        "all {max_clients} client slots of the daemon's segment are taken ({live} by connected \
         clients, {draining} draining): retry once one frees, or give the daemon a larger max_clients"
    )]
    TableFull {
        /// The daemon's slots.
        max_clients: u32,
        /// Slots of connected clients.
        live: u32,
        /// Slots of clients that left, freed once the daemon has read them.
        draining: u32,
    },
    /// No daemon runs on the segment (never started, died, or shutting
    /// down).
    #[error(
        "no daemon runs on segment {segment} on the export's host: start it \
         (the import makes its segment again once it runs)"
    )]
    DaemonGone {
        /// The exported segment.
        segment: String,
    },
    /// A message is longer than the daemon takes (a daemon restarted with
    /// a smaller limit since the import made its segment).
    #[error(
        "a message of {len} bytes exceeds the daemon's maximum of {max} bytes: send at most {max} \
         bytes (the import makes its segment again with the daemon's limit)"
    )]
    TooLarge {
        /// The message's length.
        len: u64,
        /// The daemon's largest message.
        max: u64,
    },
    /// The export lost the link to the client (its liveliness token
    /// vanished for longer than the grace) and let it go, while the
    /// client's side went on sending.
    #[error(
        "the export lost the link to this client for longer than {grace_ms} ms and let it go: \
         its messages since are refused; connect again"
    )]
    LinkLost {
        /// The export's grace, in milliseconds.
        grace_ms: u64,
    },
    /// The daemon's segment cannot be used for another reason (permissions,
    /// a damaged or foreign file), as the export's host describes it.
    #[error("the daemon's segment cannot be used: {reason}")]
    Unusable {
        /// What the export's host said.
        reason: String,
    },
}

/// The longest reason text a refusal carries (longer ones are cut).
const MAX_REASON: usize = 1024;

impl Refusal {
    /// Why connecting a client to `segment` failed, as a refusal.
    pub(crate) fn of_open(segment: &str, e: &OpenError) -> Refusal {
        match e {
            OpenError::ProtocolMismatch { expected, found } => Refusal::ProtocolMismatch {
                client: *expected,
                daemon: *found,
            },
            OpenError::TableFull {
                max_clients,
                live,
                draining,
            } => Refusal::TableFull {
                max_clients: *max_clients,
                live: *live,
                draining: *draining,
            },
            OpenError::NotFound { .. }
            | OpenError::OwnerDead { .. }
            | OpenError::ShuttingDown { .. }
            | OpenError::Starting { .. } => Refusal::DaemonGone {
                segment: segment.to_owned(),
            },
            other => Refusal::Unusable {
                reason: other.to_string(),
            },
        }
    }

    /// The refusal on the wire: a tag byte and its fields, little-endian.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Refusal::ProtocolMismatch { client, daemon } => {
                out.push(1);
                out.extend_from_slice(&client.to_le_bytes());
                out.extend_from_slice(&daemon.to_le_bytes());
            }
            Refusal::TableFull {
                max_clients,
                live,
                draining,
            } => {
                out.push(2);
                for n in [max_clients, live, draining] {
                    out.extend_from_slice(&n.to_le_bytes());
                }
            }
            Refusal::DaemonGone { segment } => {
                out.push(3);
                text(&mut out, segment);
            }
            Refusal::TooLarge { len, max } => {
                out.push(4);
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(&max.to_le_bytes());
            }
            Refusal::Unusable { reason } => {
                out.push(5);
                text(&mut out, reason);
            }
            Refusal::LinkLost { grace_ms } => {
                out.push(6);
                out.extend_from_slice(&grace_ms.to_le_bytes());
            }
        }
        out
    }

    /// Reads a refusal a peer sent: `None` unless it is well formed.
    pub(crate) fn decode(bytes: &[u8]) -> Option<Refusal> {
        let (&tag, rest) = bytes.split_first()?;
        let mut r = Reader(rest);
        let refusal = match tag {
            1 => Refusal::ProtocolMismatch {
                client: r.u32()?,
                daemon: r.u32()?,
            },
            2 => Refusal::TableFull {
                max_clients: r.u32()?,
                live: r.u32()?,
                draining: r.u32()?,
            },
            3 => Refusal::DaemonGone { segment: r.text()? },
            4 => Refusal::TooLarge {
                len: r.u64()?,
                max: r.u64()?,
            },
            5 => Refusal::Unusable { reason: r.text()? },
            6 => Refusal::LinkLost { grace_ms: r.u64()? },
            _ => return None,
        };
        r.0.is_empty().then_some(refusal)
    }
}

/// A refusal of a client that was attached, with what became of its
/// messages at the export: the payload of its `refused` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Notice {
    pub(crate) refusal: Refusal,
    /// Its messages the export delivered to the daemon.
    pub(crate) delivered: u64,
    /// Its messages the export took and could not deliver.
    pub(crate) refused: u64,
}

impl Notice {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&self.delivered.to_le_bytes());
        out.extend_from_slice(&self.refused.to_le_bytes());
        out.extend_from_slice(&self.refusal.encode());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Option<Notice> {
        let mut r = Reader(bytes);
        let (delivered, refused) = (r.u64()?, r.u64()?);
        Some(Notice {
            refusal: Refusal::decode(r.0)?,
            delivered,
            refused,
        })
    }
}

fn text(out: &mut Vec<u8>, s: &str) {
    let mut end = s.len().min(MAX_REASON);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&(end as u32).to_le_bytes());
    out.extend_from_slice(&s.as_bytes()[..end]);
}

/// Reads fields off the front of a peer's bytes.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn text(&mut self) -> Option<String> {
        let len = self.u32()? as usize;
        if len > MAX_REASON {
            return None;
        }
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_read_back_and_hostile_bytes_are_refused() {
        let all = [
            Refusal::ProtocolMismatch { client: 1, daemon: 3 },
            Refusal::TableFull {
                max_clients: 2,
                live: 2,
                draining: 0,
            },
            Refusal::DaemonGone { segment: "svc".into() },
            Refusal::TooLarge { len: 2000, max: 1024 },
            Refusal::Unusable {
                reason: "permission denied".into(),
            },
            Refusal::LinkLost { grace_ms: 500 },
        ];
        for refusal in all {
            let bytes = refusal.encode();
            assert_eq!(Refusal::decode(&bytes).as_ref(), Some(&refusal));
            for cut in 0..bytes.len() {
                assert_eq!(Refusal::decode(&bytes[..cut]), None, "{refusal:?} cut at {cut}");
            }
            let mut long = bytes.clone();
            long.push(0);
            assert_eq!(Refusal::decode(&long), None);
            let notice = Notice {
                refusal,
                delivered: 7,
                refused: 1,
            };
            assert_eq!(Notice::decode(&notice.encode()), Some(notice));
        }
        assert_eq!(Refusal::decode(&[9, 0, 0]), None);
        // A text length past the limit, or not UTF-8.
        let mut huge = vec![5];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Refusal::decode(&huge), None);
        assert_eq!(Refusal::decode(&[5, 1, 0, 0, 0, 0xff]), None);
        // A long reason is cut on a character boundary.
        let long = Refusal::Unusable {
            reason: "é".repeat(MAX_REASON),
        };
        let Some(Refusal::Unusable { reason }) = Refusal::decode(&long.encode()) else {
            panic!("a cut reason reads back");
        };
        assert_eq!(reason.len(), MAX_REASON);
    }

    #[test]
    fn open_errors_become_refusals_by_their_kind() {
        let mismatch = OpenError::ProtocolMismatch { expected: 1, found: 3 };
        assert_eq!(
            Refusal::of_open("svc", &mismatch),
            Refusal::ProtocolMismatch { client: 1, daemon: 3 }
        );
        let gone = OpenError::NotFound { name: "svc".into() };
        assert_eq!(
            Refusal::of_open("svc", &gone),
            Refusal::DaemonGone { segment: "svc".into() }
        );
        let text = Refusal::TooLarge { len: 2000, max: 1024 }.to_string();
        assert!(text.contains("2000 bytes") && text.contains("1024"), "{text}");
    }
}
