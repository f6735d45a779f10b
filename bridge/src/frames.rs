//! Several messages of one tier in one Zenoh sample: each as a 4-byte
//! little-endian length and its bytes. A burst read from a ring travels as
//! one sample, so Zenoh's cost is paid per burst, not per message; a lone
//! message costs 4 bytes more.
//!
//! A sample comes from the network: a length that runs past the end ends
//! the reading (the rest of the sample is dropped), never a panic.

use zenoh::bytes::ZBytes;

/// The most a sample carries before it is sent (bytes of frames).
const LIMIT: usize = 64 << 10;

/// Messages gathered for one sample.
#[derive(Debug, Default)]
pub(crate) struct Packer {
    buf: Vec<u8>,
}

impl Packer {
    /// Adds a message; whether the sample is full and should go now.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> bool {
        self.buf.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(bytes);
        self.buf.len() >= LIMIT
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The sample; the packer is empty again.
    pub(crate) fn take(&mut self) -> ZBytes {
        ZBytes::from(std::mem::take(&mut self.buf))
    }
}

/// One message as a sample of its own.
pub(crate) fn single(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + bytes.len());
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
    out
}

/// The message at `offset` of a sample and the offset after it; `None` at
/// the end or at a malformed frame.
pub(crate) fn next(sample: &[u8], offset: usize) -> Option<(&[u8], usize)> {
    let rest = sample.get(offset..)?;
    let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let body = rest.get(4..4usize.checked_add(len)?)?;
    Some((body, offset + 4 + len))
}

/// How many whole messages a sample holds from `offset` on.
pub(crate) fn count(sample: &[u8], mut offset: usize) -> u64 {
    let mut n = 0;
    while let Some((_, after)) = next(sample, offset) {
        n += 1;
        offset = after;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(sample: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut offset = 0;
        while let Some((body, after)) = next(sample, offset) {
            out.push(body.to_vec());
            offset = after;
        }
        out
    }

    #[test]
    fn messages_read_back_in_order_and_truncation_stops_cleanly() {
        let mut packer = Packer::default();
        assert!(packer.is_empty());
        for m in [&b"a"[..], b"", b"xyz"] {
            assert!(!packer.push(m));
        }
        let sample = packer.take();
        assert!(packer.is_empty());
        let bytes = sample.to_bytes().into_owned();
        assert_eq!(all(&bytes).len(), 3);
        assert_eq!(all(&bytes), [b"a".to_vec(), vec![], b"xyz".to_vec()]);
        assert_eq!(all(&single(b"solo")), [b"solo".to_vec()]);
        // Cut anywhere: the whole frames before the cut, nothing else.
        for cut in 0..bytes.len() {
            let got = all(&bytes[..cut]);
            assert!(got.len() <= 3 && bytes.len() - cut > 0);
        }
        assert!(all(&[0xff, 0xff, 0xff, 0xff, 1]).is_empty());
        assert_eq!(count(&bytes, 0), 3);
        assert_eq!(count(&bytes, 5), 2);
    }

    #[test]
    fn a_full_packer_says_so() {
        let mut packer = Packer::default();
        let big = vec![0; 1024];
        let pushes = (0..100).take_while(|_| !packer.push(&big)).count();
        assert_eq!(pushes + 1, LIMIT.div_ceil(1028));
    }
}
