//! The key expressions a bridged segment uses on Zenoh, all under
//! `memlink/bridge/<segment>/`:
//!
//! | key | what |
//! |---|---|
//! | `info` | queryable (export): the segment's shape |
//! | `export/<zid>` | liveliness token of a running export |
//! | `client/<zid>/<n>` | liveliness token of a remote client |
//! | `attach/<zid>/<n>` | queryable (export): attach a remote client now |
//! | `up/<zid>/<n>/<tier>` | messages of client `<zid>/<n>` to the daemon |
//! | `down/<zid>/<n>/<tier>` | messages of the daemon to that client |
//! | `ackup/<zid>/<n>` | how many `up` messages the export has delivered |
//! | `ackdown/<zid>/<n>` | how many `down` messages the client side has |
//! | `refused/<zid>/<n>` | the export stopped delivering that client's messages, and why |
//!
//! A remote client is named by the Zenoh id of the session that speaks for
//! it and a number that session never reuses. A `DELETE` on an `up` or
//! `down` key ends that tier of the stream (a client that left, a daemon
//! that went): it comes after every message of the tier.

use memlink_shm::Priority;

/// The keys of one bridged segment.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub(crate) fn new(segment: &str) -> Keys {
        Keys {
            prefix: format!("memlink/bridge/{}", chunk(segment)),
        }
    }

    pub(crate) fn info(&self) -> String {
        format!("{}/info", self.prefix)
    }

    pub(crate) fn export(&self, zid: &str) -> String {
        format!("{}/export/{zid}", self.prefix)
    }

    pub(crate) fn exports(&self) -> String {
        format!("{}/export/*", self.prefix)
    }

    pub(crate) fn client(&self, rid: &str) -> String {
        format!("{}/client/{rid}", self.prefix)
    }

    pub(crate) fn clients(&self) -> String {
        format!("{}/client/*/*", self.prefix)
    }

    pub(crate) fn attach(&self, rid: &str) -> String {
        format!("{}/attach/{rid}", self.prefix)
    }

    pub(crate) fn attaches(&self) -> String {
        format!("{}/attach/*/*", self.prefix)
    }

    pub(crate) fn up(&self, rid: &str, tier: Priority) -> String {
        format!("{}/up/{rid}/{}", self.prefix, tier.index())
    }

    pub(crate) fn ups(&self) -> String {
        format!("{}/up/*/*/*", self.prefix)
    }

    pub(crate) fn down(&self, rid: &str, tier: Priority) -> String {
        format!("{}/down/{rid}/{}", self.prefix, tier.index())
    }

    /// The `down` keys of client `rid`.
    pub(crate) fn downs_of_client(&self, rid: &str) -> String {
        format!("{}/down/{rid}/*", self.prefix)
    }

    /// Every `down` key of the clients of session `zid`.
    pub(crate) fn downs_of(&self, zid: &str) -> String {
        format!("{}/down/{zid}/*/*", self.prefix)
    }

    pub(crate) fn ack_up(&self, rid: &str) -> String {
        format!("{}/ackup/{rid}", self.prefix)
    }

    pub(crate) fn ack_ups_of(&self, zid: &str) -> String {
        format!("{}/ackup/{zid}/*", self.prefix)
    }

    pub(crate) fn ack_down(&self, rid: &str) -> String {
        format!("{}/ackdown/{rid}", self.prefix)
    }

    pub(crate) fn ack_downs(&self) -> String {
        format!("{}/ackdown/*/*", self.prefix)
    }

    pub(crate) fn refused(&self, rid: &str) -> String {
        format!("{}/refused/{rid}", self.prefix)
    }

    pub(crate) fn refused_of(&self, zid: &str) -> String {
        format!("{}/refused/{zid}/*", self.prefix)
    }

    /// The client of a `client/`, `attach/`, `up/` or `down/` key, and the
    /// tier for the last two. `None` for a key of another shape (a
    /// misbehaving peer's: ignored, never trusted).
    pub(crate) fn parse<'k>(&self, key: &'k str) -> Option<(&'k str, &'k str, Option<Priority>)> {
        let rest = key.strip_prefix(self.prefix.as_str())?.strip_prefix('/')?;
        let (kind, rest) = rest.split_once('/')?;
        let mut parts = rest.split('/');
        let (zid, n) = (parts.next()?, parts.next()?);
        let rid = &rest[..zid.len() + 1 + n.len()];
        let tier = match (kind, parts.next()) {
            ("client" | "attach" | "ackup" | "ackdown" | "refused", None) => None,
            ("up" | "down", Some(t)) => Some(Priority::from_index(t.parse().ok()?)?),
            _ => return None,
        };
        if parts.next().is_some() || n.parse::<u64>().is_err() {
            return None;
        }
        Some((kind, rid, tier))
    }
}

/// A remote client's name: its session's id and a number.
pub(crate) fn rid(zid: &str, n: u64) -> String {
    format!("{zid}/{n}")
}

/// A segment name as one key chunk: bytes other than ASCII letters, digits,
/// `-`, `_` and `.` become `%XX` (so `/`, `*`, `$`, `?`, `#` and `@`, which
/// mean something to Zenoh, never appear, and different names stay
/// different).
fn chunk(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_single_chunks_and_stay_distinct() {
        assert_eq!(chunk("svc-1.a_b"), "svc-1.a_b");
        assert_eq!(chunk("/tmp/x*"), "%2Ftmp%2Fx%2A");
        assert_ne!(chunk("a/b"), chunk("a%2Fb"));
    }

    #[test]
    fn parse_reads_back_what_the_keys_write_and_nothing_else() {
        let keys = Keys::new("svc");
        let rid = rid("abc", 7);
        assert_eq!(keys.parse(&keys.client(&rid)), Some(("client", "abc/7", None)));
        assert_eq!(keys.parse(&keys.attach(&rid)), Some(("attach", "abc/7", None)));
        assert_eq!(keys.parse(&keys.ack_up(&rid)), Some(("ackup", "abc/7", None)));
        assert_eq!(keys.parse(&keys.ack_down(&rid)), Some(("ackdown", "abc/7", None)));
        assert_eq!(keys.parse(&keys.refused(&rid)), Some(("refused", "abc/7", None)));
        let up = keys.up(&rid, Priority::Low);
        assert_eq!(keys.parse(&up), Some(("up", "abc/7", Some(Priority::Low))));
        let down = keys.down(&rid, Priority::Critical);
        assert_eq!(keys.parse(&down), Some(("down", "abc/7", Some(Priority::Critical))));
        for bad in [
            "memlink/bridge/svc/up/abc/7/3",
            "memlink/bridge/svc/up/abc/7",
            "memlink/bridge/svc/up/abc/x/1",
            "memlink/bridge/svc/client/abc/7/1",
            "memlink/bridge/other/up/abc/7/1",
            "memlink/bridge/svc/nope/abc/7",
        ] {
            assert_eq!(keys.parse(bad), None, "{bad}");
        }
    }
}
