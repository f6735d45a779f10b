//! Checked messages: `[client u32][len u32][seq u64][tier_seq u64][checksum u64][payload]`.
//! Priority and length are derived from (client, seq), so the receiver knows
//! what it must get; the checksum covers the rest.

use memlink_shm::priority::Priority;

use super::{checksum, mix};

pub const HEADER: usize = 32;

pub fn shape(client: u32, seq: u64) -> (Priority, usize) {
    let r = mix(seq ^ (u64::from(client) << 48));
    let priority = Priority::ALL[(r % 3) as usize];
    let bucket = (r >> 8) % 100;
    let extra = (r >> 16) as usize;
    let len = match bucket {
        0..=69 => HEADER + extra % 33,     // 32..=64 bytes
        70..=94 => 65 + extra % 960,       // up to 1 KiB
        _ => 1025 + extra % (4096 - 1024), // up to 4 KiB
    };
    (priority, len)
}

pub fn encode(buf: &mut [u8], client: u32, seq: u64, tier_seq: u64) {
    let len = buf.len();
    buf[0..4].copy_from_slice(&client.to_le_bytes());
    buf[4..8].copy_from_slice(&(len as u32).to_le_bytes());
    buf[8..16].copy_from_slice(&seq.to_le_bytes());
    buf[16..24].copy_from_slice(&tier_seq.to_le_bytes());
    let mut x = mix(seq.wrapping_mul(31) ^ u64::from(client));
    for chunk in buf[HEADER..].chunks_mut(8) {
        x = mix(x);
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let sum = checksum(&buf[HEADER..]) ^ checksum(&buf[..24]);
    buf[24..32].copy_from_slice(&sum.to_le_bytes());
}

/// Returns (client, seq, tier_seq) after checking length, priority and checksum.
pub fn decode(priority: Priority, buf: &[u8]) -> Result<(u32, u64, u64), String> {
    if buf.len() < HEADER {
        return Err(format!("short message: {} bytes", buf.len()));
    }
    let u32_at = |i: usize| u32::from_le_bytes(buf[i..i + 4].try_into().unwrap());
    let u64_at = |i: usize| u64::from_le_bytes(buf[i..i + 8].try_into().unwrap());
    let (client, len, seq, tier_seq, sum) = (u32_at(0), u32_at(4) as usize, u64_at(8), u64_at(16), u64_at(24));
    if sum != checksum(&buf[HEADER..]) ^ checksum(&buf[..24]) {
        return Err(format!("checksum mismatch on client {client} seq {seq}"));
    }
    if (priority, buf.len()) != shape(client, seq) || len != buf.len() {
        return Err(format!(
            "seq {seq}: got {priority:?}/{} bytes, expected {:?}",
            buf.len(),
            shape(client, seq)
        ));
    }
    Ok((client, seq, tier_seq))
}

/// Per-tier order check: each tier's sequence numbers must arrive as 0, 1, 2, ...
#[derive(Default)]
pub struct TierOrder([u64; 3]);

impl TierOrder {
    pub fn check(&mut self, priority: Priority, tier_seq: u64) -> Result<(), String> {
        let want = &mut self.0[priority.index()];
        if tier_seq != *want {
            return Err(format!(
                "{priority}: got tier seq {tier_seq}, expected {want} (lost, duplicated or reordered)"
            ));
        }
        *want += 1;
        Ok(())
    }
}
