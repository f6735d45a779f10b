//! The 16-byte header in front of every typed record: the body's type tag,
//! then a word with a 16-bit marker, what the record is (a one-way message,
//! a call, a reply, a refusal) and the call's id. The body follows, 8-byte aligned like the header.

use crate::endpoint::TypeError;

/// Bytes in front of a typed body.
pub(crate) const HEADER: usize = 16;

/// The top 16 bits of the kind word of every typed record ("ML"): a raw
/// message whose first bytes happen to look like a tag is still not taken
/// for a call (unless these 16 bits match too, 1 in 65,536 for random bytes).
const MAGIC: u64 = 0x4d4c << 48;
const MAGIC_MASK: u64 = 0xffff << 48;
const REPLY: u64 = 1 << 47;
const REFUSAL: u64 = 1 << 46;
const ID_MASK: u64 = REFUSAL - 1;

/// What a typed record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A message that expects no answer.
    OneWay,
    /// A request; the reply carries the same id.
    Call(u64),
    /// The answer to call `id`.
    Reply(u64),
    /// The daemon refused call `id` (wrong request type); the tag is the
    /// request type it serves.
    Refusal(u64),
}

impl Kind {
    fn word(self) -> u64 {
        MAGIC
            | match self {
                Kind::OneWay => 0,
                Kind::Call(id) => id & ID_MASK,
                Kind::Reply(id) => REPLY | (id & ID_MASK),
                Kind::Refusal(id) => REPLY | REFUSAL | (id & ID_MASK),
            }
    }

    fn from_word(w: u64) -> Option<Kind> {
        if w & MAGIC_MASK != MAGIC {
            return None;
        }
        let id = w & ID_MASK;
        Some(match (w & REPLY != 0, w & REFUSAL != 0) {
            (false, _) if id == 0 => Kind::OneWay,
            (false, _) => Kind::Call(id),
            (true, false) => Kind::Reply(id),
            (true, true) => Kind::Refusal(id),
        })
    }
}

/// The largest call id; ids run 1..=MAX_CALL_ID and then wrap to 1.
pub(crate) const MAX_CALL_ID: u64 = ID_MASK;

/// Writes the header into the first [`HEADER`] bytes of `out`.
#[inline(always)]
pub(crate) fn write(out: &mut [u8], tag: u64, kind: Kind) {
    out[..8].copy_from_slice(&tag.to_le_bytes());
    out[8..HEADER].copy_from_slice(&kind.word().to_le_bytes());
}

/// Whether a header (at least [`HEADER`] bytes) carries the typed marker.
#[inline(always)]
pub(crate) fn is_marked(head: &[u8]) -> bool {
    head.len() >= HEADER && head[14..16] == (MAGIC >> 48).to_le_bytes()[..2]
}

/// The body of `record` if it is the reply to call `id` (not 0) and tagged
/// `tag`: the common case of a caller's receive, told by two compares of
/// the header's words (what [`read`] and a decode would find, without
/// parsing the kind).
#[inline(always)]
pub(crate) fn reply_body(record: &[u8], tag: u64, id: u64) -> Option<&[u8]> {
    let (head, body) = record.split_at_checked(HEADER)?;
    let (t, w) = head.split_at(8);
    let t = u64::from_le_bytes(t.try_into().ok()?);
    let w = u64::from_le_bytes(w.try_into().ok()?);
    (id != 0 && t == tag && w == Kind::Reply(id).word()).then_some(body)
}

/// The id and body of `record` if it is a call tagged `tag`: the common
/// case of a daemon's receive, told as [`reply_body`] tells a reply.
#[inline(always)]
pub(crate) fn call_body(record: &[u8], tag: u64) -> Option<(u64, &[u8])> {
    let (head, body) = record.split_at_checked(HEADER)?;
    let (t, w) = head.split_at(8);
    let t = u64::from_le_bytes(t.try_into().ok()?);
    let w = u64::from_le_bytes(w.try_into().ok()?);
    let id = w & ID_MASK;
    (t == tag && w & (MAGIC_MASK | REPLY) == MAGIC && id != 0).then_some((id, body))
}

/// Splits a record into its tag, kind and body.
///
/// # Errors
/// [`TypeError::NotTyped`] if the record is too short or tagged 0.
#[inline(always)]
pub(crate) fn read(record: &[u8]) -> Result<(u64, Kind, &[u8]), TypeError> {
    let not_typed = || TypeError::NotTyped { len: record.len() };
    let (head, body) = record.split_at_checked(HEADER).ok_or_else(not_typed)?;
    let (tag, word) = head.split_at(8);
    let tag = u64::from_le_bytes(tag.try_into().map_err(|_| not_typed())?);
    let word = u64::from_le_bytes(word.try_into().map_err(|_| not_typed())?);
    match Kind::from_word(word) {
        Some(kind) if tag != 0 => Ok((tag, kind, body)),
        _ => Err(not_typed()),
    }
}

/// A 64-bit tag for a type name and shape (FNV-1a, then the shape mixed
/// in); never 0, which marks a record that is not typed.
pub(crate) const fn tag_of(name: &str, shape: u64) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let bytes = name.as_bytes();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(PRIME);
        i += 1;
    }
    let mut j = 0;
    while j < 8 {
        h ^= (shape >> (8 * j)) & 0xff;
        h = h.wrapping_mul(PRIME);
        j += 1;
    }
    if h == 0 {
        1
    } else {
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_short_or_untagged_records_are_refused() {
        for kind in [Kind::OneWay, Kind::Call(1), Kind::Reply(MAX_CALL_ID), Kind::Refusal(77)] {
            let mut rec = [0u8; HEADER + 3];
            write(&mut rec, 42, kind);
            rec[HEADER..].copy_from_slice(b"abc");
            assert_eq!(read(&rec), Ok((42, kind, &b"abc"[..])));
        }
        assert_eq!(read(&[1u8; 15]), Err(TypeError::NotTyped { len: 15 }));
        assert_eq!(read(&[0u8; 16]), Err(TypeError::NotTyped { len: 16 }));
        // Raw bytes are not a call: the kind word lacks the marker.
        assert_eq!(read(&[7u8; 64]), Err(TypeError::NotTyped { len: 64 }));
        assert_ne!(tag_of("a", 1), tag_of("a", 2));
        assert_ne!(tag_of("a", 1), tag_of("b", 1));
    }

    #[test]
    fn the_quick_checks_agree_with_read() {
        let kinds = [
            Kind::OneWay,
            Kind::Call(1),
            Kind::Call(77),
            Kind::Call(MAX_CALL_ID),
            Kind::Reply(1),
            Kind::Reply(77),
            Kind::Refusal(77),
        ];
        for kind in kinds {
            let mut rec = [0u8; HEADER + 3];
            write(&mut rec, 42, kind);
            let call = match kind {
                Kind::Call(id) => Some((id, &rec[HEADER..])),
                _ => None,
            };
            assert_eq!(call_body(&rec, 42), call, "{kind:?}");
            assert_eq!(call_body(&rec, 43), None);
            assert_eq!(reply_body(&rec, 42, 77).is_some(), kind == Kind::Reply(77), "{kind:?}");
            assert_eq!(reply_body(&rec, 43, 77), None);
            assert_eq!(reply_body(&rec, 42, 0), None);
        }
        // Raw bytes: too short, or without the marker.
        assert_eq!(call_body(&[7u8; 15], 42), None);
        assert_eq!(reply_body(&[7u8; 15], 42, 1), None);
        let raw = [7u8; 64];
        assert_eq!(call_body(&raw, u64::from_le_bytes([7; 8])), None);
    }
}
