//! A hostile peer: interprets arbitrary bytes as a script that scribbles on
//! a live segment (headers, indices, record words, payload) between ordinary
//! operations of a daemon and its clients. Whatever the bytes, every
//! operation must return `Ok` or an error: no panic, no hang, no access
//! outside the mapping. The peer also forges typed records (a real tag, then
//! fuzzed bytes), and every record read is decoded as a plain-data and a
//! serde value: a typed decoder must give a value or an error. Shared by the
//! proptest (`tests/hostile.rs`) and the
//! libFuzzer target (`fuzz/fuzz_targets/hostile_segment.rs`).
// Exercises the 0.1.3 layer, including its deprecated 0.2 additions.
#![allow(deprecated)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use memlink_shm::priority::Priority;
use memlink_shm::testkit::{self, Direction, Layout, Peer, CHANNEL_HEADER_SIZE};
use memlink_shm::transport::{NrelayShmTransport, ShmTransport};
use memlink_shm::typed::{decode, Plain, Postcard, Typed};
use memlink_shm::Daemon;
use serde::{Deserialize, Serialize};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Typed values the hostile peer forges records of, and the receivers
/// decode whatever they read as: a plain-data one and a serde one.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
struct PlainValue {
    a: u64,
    b: [u32; 6],
}
impl Typed for PlainValue {
    const NAME: &'static str = "hostile.Plain";
    type Encoding = Plain;
}

#[derive(Serialize, Deserialize)]
#[allow(dead_code)]
enum SerdeValue {
    Text { id: u64, at: i64, text: String },
    Bytes(Vec<u8>),
    Nested(Option<Box<SerdeValue>>, Vec<(u16, f32)>),
}
impl Typed for SerdeValue {
    const NAME: &'static str = "hostile.Serde";
    type Encoding = Postcard;
}

/// Decodes `bytes` as each typed value: the result does not matter, only
/// that it is a value or an error.
fn decode_all(bytes: &[u8]) -> usize {
    usize::from(decode::<PlainValue>(bytes).is_ok()) + usize::from(decode::<SerdeValue>(bytes).is_ok())
}

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn u32(&mut self) -> u32 {
        (0..4).fold(0, |v, _| v << 8 | u32::from(self.byte().unwrap_or(0)))
    }
    fn u64(&mut self) -> u64 {
        u64::from(self.u32()) << 32 | u64::from(self.u32())
    }
}

/// Offsets worth corrupting: every field of the control block and channel
/// headers, both index lines of every ring, and the first record words.
fn interesting_offsets(layout: Layout) -> Vec<usize> {
    let mut v: Vec<usize> = (0..384).step_by(4).collect();
    for c in 0..layout.max_clients() {
        let ch = layout.channel_offset(c);
        v.extend((0..CHANNEL_HEADER_SIZE).step_by(4).map(|o| ch + o));
        for d in [Direction::ToDaemon, Direction::ToClient] {
            for p in Priority::ALL {
                let r = layout.ring_offset(c, d, p);
                v.extend([r, r + 8, r + 128, r + 136]);
                let records = layout.records_offset(c, d, p);
                v.extend((0..512).step_by(8).map(|o| records + o));
            }
        }
    }
    v
}

/// A value worth writing: garbage, extremes, or plausible-looking headers.
fn nasty_value(input: &mut Input) -> u64 {
    let raw = input.u64();
    match input.byte().unwrap_or(0) % 8 {
        0 => 0,
        1 => u64::MAX,
        2 => testkit::encode_message(raw as usize & 0xFFFF_FFFF, Priority::ALL[(raw >> 40) as usize % 3]),
        3 => testkit::encode_wrap(raw as usize & 0xFFFF),
        4 => raw & 0xFFFF,
        5 => 1 << 62 | raw & 7,
        _ => raw,
    }
}

/// What the operations of a script returned, by kind.
#[derive(Debug, Default)]
pub struct Outcomes {
    /// Operations that succeeded.
    pub ok: u64,
    /// Operations that found shared memory corrupt.
    pub corrupted: u64,
    /// Operations refused because a channel was poisoned.
    pub poisoned: u64,
    /// Any other error.
    pub other: u64,
}

impl Outcomes {
    fn note<T>(&mut self, r: Result<T, memlink_shm::ShmError>) {
        use memlink_shm::ShmError::*;
        match r {
            Ok(_) => self.ok += 1,
            Err(Corrupted(_)) => self.corrupted += 1,
            Err(Poisoned(_)) => self.poisoned += 1,
            Err(_) => self.other += 1,
        }
    }
}

/// Runs one script. Panics (test failure) only if the library misbehaves.
pub fn run(data: &[u8]) -> Outcomes {
    let mut out = Outcomes::default();
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "memlink-hostile-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let mut input = Input(data);
    let max_clients = 1 + u32::from(input.byte().unwrap_or(0) % 3);
    let max_message = [0usize, 1, 64, 1000, 4096][usize::from(input.byte().unwrap_or(0) % 5)];
    let size = Daemon::segment_size(max_clients, max_message) + usize::from(input.byte().unwrap_or(0)) * 512;
    let Ok(daemon) = NrelayShmTransport::builder(&name)
        .size(size)
        .max_clients(max_clients)
        .max_message_size(max_message)
        .spin(Duration::ZERO)
        .create()
    else {
        return out;
    };
    let peer = Peer::open(&name).unwrap();
    let offsets = interesting_offsets(peer.layout());
    let mut clients: Vec<NrelayShmTransport> = Vec::new();
    let payload = vec![0x5Au8; max_message + 16];
    let zero = Some(Duration::ZERO);
    while let Some(op) = input.byte() {
        let pick =
            |clients: &[NrelayShmTransport], b: u8| (!clients.is_empty()).then(|| usize::from(b) % clients.len());
        let prio = Priority::ALL[usize::from(op >> 4) % 3];
        match op % 16 {
            0..=3 => {
                // Scribble: a nasty 8-byte value at an interesting offset, or a few bytes anywhere.
                let (off, bytes) = if op % 16 < 2 {
                    let at = offsets[input.u32() as usize % offsets.len()];
                    (at & !3, nasty_value(&mut input).to_le_bytes().to_vec())
                } else {
                    let at = input.u32() as usize % peer.mapped_len();
                    let n = 1 + usize::from(input.byte().unwrap_or(0) % 8);
                    (at, (0..n).map(|_| input.byte().unwrap_or(0xFF)).collect())
                };
                // What lands past the end of the mapping is left out.
                peer.write_bytes(off, &bytes);
            }
            4 => {
                if clients.len() < 4 {
                    if let Ok(c) = NrelayShmTransport::builder(&name).spin(Duration::ZERO).connect() {
                        clients.push(c);
                    }
                }
            }
            5 => {
                if let Some(i) = pick(&clients, input.byte().unwrap_or(0)) {
                    let len = input.u32() as usize % (max_message + 8);
                    if op & 0x40 != 0 {
                        // A forged typed record: a real tag and kind, then fuzzed bytes.
                        let tag = if op & 0x80 != 0 {
                            PlainValue::TAG
                        } else {
                            SerdeValue::TAG
                        };
                        // The marker "ML" in the top 16 bits of the kind word, then fuzz.
                        let word = 0x4d4c << 48 | input.u64() >> 16;
                        let mut record = [tag.to_le_bytes(), word.to_le_bytes()].concat();
                        record.extend((16..len).map(|_| input.byte().unwrap_or(0)));
                        out.note(clients[i].write(prio, &record));
                    } else {
                        out.note(clients[i].write(prio, &payload[..len]));
                    }
                }
            }
            6 => {
                let len = input.u32() as usize % (max_message + 8);
                out.note(daemon.write(prio, &payload[..len]));
                if let Some(&id) = daemon.clients().first() {
                    out.note(daemon.write_to(id, prio, &payload[..len.min(max_message)]));
                }
            }
            7 => {
                if let Some(i) = pick(&clients, input.byte().unwrap_or(0)) {
                    out.note(clients[i].read_with(|p, b| (p, b.len(), decode_all(b))));
                }
            }
            8 => {
                out.note(
                    daemon
                        .read_from_with(|c, p, b| (c, p, b.iter().map(|&x| u64::from(x)).sum::<u64>(), decode_all(b))),
                );
            }
            9 => {
                let _ = daemon.wait(zero);
                if let Some(i) = pick(&clients, input.byte().unwrap_or(0)) {
                    let _ = clients[i].wait(zero);
                }
            }
            10 => {
                daemon.sweep();
                let _ = (
                    daemon.stats(),
                    daemon.backpressure(),
                    daemon.clients(),
                    daemon.client_count(),
                );
                for c in &clients {
                    let _ = (c.stats(), c.backpressure(), c.is_connected(), c.daemon_heartbeat_age());
                }
            }
            11 => {
                if let Some(i) = pick(&clients, input.byte().unwrap_or(0)) {
                    clients.swap_remove(i);
                }
            }
            12 => {
                if let Some(i) = pick(&clients, input.byte().unwrap_or(0)) {
                    out.note(clients[i].write_timeout(prio, &payload[..max_message.min(100)], zero));
                }
                out.note(daemon.write_timeout(prio, &payload[..max_message.min(100)], zero));
            }
            13 => {
                // A fresh open validates a possibly scribbled header, and
                // so does a creator's look at who owns the name.
                let _ = Peer::open(&name);
                let _ = testkit::daemon_holds(&name);
            }
            14 => {
                daemon.signal();
                for c in &clients {
                    c.signal();
                    c.set_backpressure(f32::from_bits(input.u32()));
                }
                daemon.set_backpressure(f32::from_bits(input.u32()));
            }
            _ => {
                if let Some(i) = pick(&clients, input.byte().unwrap_or(0)) {
                    out.note(clients[i].write_with(prio, input.u32() as usize % (max_message + 8), |b| b.fill(1)));
                }
            }
        }
    }
    drop(clients);
    drop(daemon);
    drop(peer);
    let _ = testkit::remove_segment(&name);
    out
}
