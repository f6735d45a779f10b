//! Single-thread loops over one operation each, for counting instructions
//! per message under callgrind (`scripts/instructions.sh` runs every case
//! twice with different iteration counts and prints the difference per
//! iteration, so set-up costs cancel out). Wall-clock time is meaningless
//! here; use `p2` and `compare` for that.
//!
//! ```sh
//! cargo run --release --example instructions -- CASE ITERATIONS
//! ```
// Exercises the 0.1.3 layer, including its deprecated 0.2 additions.
#![allow(deprecated)]

use memlink_shm::buffer::{RingBuffer, RingConsumer, RingProducer};
use memlink_shm::pring::{PriorityConsumer, PriorityProducer, PriorityRingBuffer};
use memlink_shm::priority::Priority;
use memlink_shm::transport::{NrelayShmTransport, ShmTransport};
use memlink_shm::typed::{self, Caller, Incoming, Plain, Request, Typed};
use memlink_shm::{Client, Daemon};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Every case: name and what one iteration does.
const CASES: &[(&str, &str)] = &[
    ("send_recv", "client try_send 64 B + daemon try_recv_with"),
    (
        "send_recv_owned",
        "client try_send 64 B + daemon try_recv (owned message)",
    ),
    (
        "send_recv_blocking",
        "the simple loop: client send 64 B + daemon recv (owned), both blocking calls that need not wait",
    ),
    ("reply", "daemon try_send_to 64 B + client try_recv_with"),
    (
        "reply_blocking",
        "the stream to a client: daemon send_to 64 B + client recv_with, both blocking calls that need not wait",
    ),
    ("round_trip", "send_recv + reply"),
    (
        "batch_64",
        "client send_batch of 64 x 64 B + daemon try_recv_batch, per message",
    ),
    ("old_write_read", "0.1.3 layer: client write 64 B + daemon read_with"),
    (
        "old_write_to_read",
        "0.1.3 layer: daemon write_to 64 B + client read_with",
    ),
    (
        "old_round_trip",
        "0.1.3 layer: client send + daemon read_with + daemon send_to + client read_with",
    ),
    ("ring_64", "one ring in this process: write 64 B + read_with"),
    (
        "priority_ring_64",
        "the three-tier ring in this process: write 64 B (High) + read_with; minus ring_64 = routing",
    ),
    (
        "async_send_recv_owned",
        "client send_async 64 B + daemon recv_async finding it ready (owned), each polled once",
    ),
    (
        "typed_round_trip",
        "round_trip with a 64 B plain-data value each way (try_send &value, try_recv + Message::decode: decoded copies)",
    ),
    (
        "typed_in_place",
        "round_trip with a 64 B plain-data value each way, decoded in place (try_recv_with + typed::decode: trusts the peer)",
    ),
    (
        "call_round_trip",
        "Caller::start + daemon recv_call (ready) + Responder::send + Caller::finish (ready), 64 B plain values",
    ),
    ("empty_poll_1", "daemon try_recv finding nothing, 1 idle client"),
    ("empty_poll_8", "daemon try_recv finding nothing, 8 idle clients"),
    ("empty_poll_255", "daemon try_recv finding nothing, 255 idle clients"),
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(case), Some(n)) = (args.first(), args.get(1).and_then(|s| s.parse::<u64>().ok())) else {
        eprintln!("usage: instructions CASE ITERATIONS; cases:");
        for (name, what) in CASES {
            eprintln!("  {name:18} {what}");
        }
        std::process::exit(2);
    };
    let name = format!("memlink-instructions-{}", std::process::id());
    // Each case is a function of its own, never inlined, so that adding or
    // changing one case does not move the code (and the counts) of another.
    let sink = match case.as_str() {
        "old_write_read" | "old_write_to_read" | "old_round_trip" => {
            let daemon = NrelayShmTransport::create(&name, 1 << 20, 1).expect("create");
            let client = NrelayShmTransport::connect(&name, 1).expect("connect");
            let run = match case.as_str() {
                "old_write_read" => old_write_read,
                "old_write_to_read" => old_write_to_read,
                _ => old_round_trip,
            };
            run(&daemon, &client, n)
        }
        "ring_64" => {
            let (mut tx, mut rx) = RingBuffer::with_capacity(1 << 16, 64).expect("ring").split();
            ring_64(&mut tx, &mut rx, n)
        }
        "priority_ring_64" => {
            let (mut tx, mut rx) = PriorityRingBuffer::with_capacity(3 << 16, 64).expect("ring").split();
            priority_ring_64(&mut tx, &mut rx, n)
        }
        c if c.starts_with("empty_poll_") => {
            let clients: usize = c["empty_poll_".len()..].parse().expect("a client count");
            // One geometry for every count, so only the idle clients differ.
            let mut daemon = Daemon::builder(&name)
                .size(8 << 20)
                .max_clients(256)
                .max_message_size(128)
                .create()
                .expect("create");
            let idle: Vec<Client> = (0..clients).map(|_| Client::connect(&name).expect("connect")).collect();
            let sink = empty_poll(&mut daemon, n);
            drop(idle);
            sink
        }
        c => {
            let mut daemon = Daemon::create(&name).expect("create");
            let mut client = Client::connect(&name).expect("connect");
            let run = match c {
                "send_recv" => send_recv,
                "send_recv_owned" => send_recv_owned,
                "send_recv_blocking" => send_recv_blocking,
                "reply" => reply,
                "reply_blocking" => reply_blocking,
                "round_trip" => round_trip,
                "batch_64" => batch_64,
                "async_send_recv_owned" => async_send_recv_owned,
                "typed_round_trip" => typed_round_trip,
                "typed_in_place" => typed_in_place,
                "call_round_trip" => call_round_trip,
                _ => panic!("unknown case {c}"),
            };
            run(&mut daemon, &mut client, n)
        }
    };
    std::hint::black_box(sink);
}

const MSG: [u8; 64] = [7u8; 64];

/// Runs `step` `n` times and sums what it returns (kept, so the optimiser
/// cannot drop the work). Each case below is a function of its own, never
/// inlined, that calls this once.
#[inline(always)]
fn repeat(n: u64, mut step: impl FnMut() -> usize) -> usize {
    let mut sink = 0;
    for _ in 0..n {
        sink += step();
    }
    sink
}

#[inline(never)]
fn send_recv(daemon: &mut Daemon, client: &mut Client, n: u64) -> usize {
    repeat(n, || {
        client.try_send(Priority::High, &MSG).expect("send");
        daemon.receiver().try_recv_with(|_, _, b| b.len()).expect("recv")
    })
}

#[inline(never)]
fn send_recv_owned(daemon: &mut Daemon, client: &mut Client, n: u64) -> usize {
    repeat(n, || {
        client.try_send(Priority::High, &MSG).expect("send");
        daemon.try_recv().expect("recv").payload().len()
    })
}

#[inline(never)]
fn send_recv_blocking(daemon: &mut Daemon, client: &mut Client, n: u64) -> usize {
    repeat(n, || {
        client.send(Priority::High, &MSG).expect("send");
        daemon.recv().expect("recv").payload().len()
    })
}

#[inline(never)]
fn reply(daemon: &mut Daemon, client: &mut Client, n: u64) -> usize {
    let id = client.control().id();
    repeat(n, || {
        daemon.try_send_to(id, Priority::High, &MSG).expect("send_to");
        client.receiver().try_recv_with(|_, b| b.len()).expect("recv")
    })
}

#[inline(never)]
fn reply_blocking(daemon: &mut Daemon, client: &mut Client, n: u64) -> usize {
    let id = client.control().id();
    repeat(n, || {
        daemon.send_to(id, Priority::High, &MSG).expect("send_to");
        client.receiver().recv_with(|_, b| b.len()).expect("recv")
    })
}

#[inline(never)]
fn round_trip(daemon: &mut Daemon, client: &mut Client, n: u64) -> usize {
    repeat(n, || {
        client.try_send(Priority::High, &MSG).expect("send");
        let from = daemon.receiver().try_recv_with(|from, _, _| from).expect("recv");
        daemon.try_send_to(from, Priority::High, &MSG).expect("send_to");
        client.receiver().try_recv_with(|_, b| b.len()).expect("recv")
    })
}

/// A 64-byte plain-data value.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Clone, Copy)]
#[repr(C)]
struct Value64([u8; 64]);

impl Typed for Value64 {
    const NAME: &'static str = "instructions.Value64";
    type Encoding = Plain;
}

impl Request for Value64 {
    type Response = Value64;
}

#[inline(never)]
fn typed_round_trip(daemon: &mut Daemon, client: &mut Client, n: u64) -> usize {
    let v = Value64(MSG);
    repeat(n, || {
        client.try_send(Priority::High, &v).expect("send");
        let msg = daemon.try_recv().expect("recv");
        let got: Value64 = msg.decode().expect("a Value64");
        daemon.try_send_to(msg.client(), Priority::High, &got).expect("send_to");
        usize::from(
            client
                .try_recv()
                .expect("recv")
                .decode::<Value64>()
                .expect("a Value64")
                .0[0],
        )
    })
}

#[inline(never)]
fn typed_in_place(daemon: &mut Daemon, client: &mut Client, n: u64) -> usize {
    let v = Value64(MSG);
    repeat(n, || {
        client.try_send(Priority::High, &v).expect("send");
        let (from, got) = daemon
            .receiver()
            .try_recv_with(|from, _, b| (from, typed::decode::<Value64>(b)))
            .expect("recv");
        daemon
            .try_send_to(from, Priority::High, &got.expect("a Value64"))
            .expect("send_to");
        client
            .receiver()
            .try_recv_with(|_, b| typed::decode::<Value64>(b).map(|got| usize::from(got.0[0])))
            .expect("recv")
            .expect("a Value64")
    })
}

#[inline(never)]
fn call_round_trip(daemon: &mut Daemon, client: &mut Client, n: u64) -> usize {
    let taken = std::mem::replace(client, Client::connect(daemon.name()).expect("connect"));
    let mut caller = Caller::new(taken);
    let (v, wait) = (Value64(MSG), std::time::Duration::from_secs(5));
    repeat(n, || {
        let pending = caller.start(Priority::High, &v).expect("start");
        let Ok(Incoming::Call(request, responder)) = daemon.recv_call::<Value64>() else {
            panic!("not a call")
        };
        responder.send(daemon, &request).expect("reply");
        usize::from(caller.finish(pending, wait).expect("finish").0[0])
    })
}

/// The value of a future that is ready at its first poll.
#[inline(always)]
fn ready_now<F: std::future::Future>(f: F) -> F::Output {
    let mut cx = std::task::Context::from_waker(futures::task::noop_waker_ref());
    match std::pin::pin!(f).poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("the future was not ready at once"),
    }
}

#[inline(never)]
fn async_send_recv_owned(daemon: &mut Daemon, client: &mut Client, n: u64) -> usize {
    repeat(n, || {
        ready_now(client.send_async(Priority::High, &MSG)).expect("send");
        ready_now(daemon.recv_async()).expect("recv").payload().len()
    })
}

#[inline(never)]
fn batch_64(daemon: &mut Daemon, client: &mut Client, n: u64) -> usize {
    repeat(n, || {
        client
            .sender()
            .send_batch(|b| (0..64).try_for_each(|_| b.try_send(Priority::High, &MSG)))
            .expect("batch")
            .expect("room for 64");
        let mut bytes = 0;
        daemon
            .receiver()
            .try_recv_batch(64, |_, _, b| bytes += b.len())
            .expect("recv");
        bytes
    })
}

#[inline(never)]
fn old_write_read(daemon: &NrelayShmTransport, client: &NrelayShmTransport, n: u64) -> usize {
    repeat(n, || {
        client.write(Priority::High, &MSG).expect("write");
        daemon.read_with(|_, b| b.len()).expect("read").expect("a message")
    })
}

#[inline(never)]
fn old_write_to_read(daemon: &NrelayShmTransport, client: &NrelayShmTransport, n: u64) -> usize {
    let id = client.client_id().expect("client id");
    repeat(n, || {
        daemon.write_to(id, Priority::High, &MSG).expect("write_to");
        client.read_with(|_, b| b.len()).expect("read").expect("a message")
    })
}

#[inline(never)]
fn old_round_trip(daemon: &NrelayShmTransport, client: &NrelayShmTransport, n: u64) -> usize {
    let id = client.client_id().expect("client id");
    repeat(n, || {
        client.send(Priority::High, &MSG).expect("send");
        daemon.read_with(|_, b| b.len()).expect("read").expect("a message");
        daemon.send_to(id, Priority::High, &MSG).expect("send_to");
        client.read_with(|_, b| b.len()).expect("read").expect("a message")
    })
}

#[inline(never)]
fn ring_64(tx: &mut RingProducer, rx: &mut RingConsumer, n: u64) -> usize {
    repeat(n, || {
        tx.write(Priority::High, &MSG).expect("write");
        rx.read_with(|_, b| b.len()).expect("read").expect("a message")
    })
}

#[inline(never)]
fn priority_ring_64(tx: &mut PriorityProducer, rx: &mut PriorityConsumer, n: u64) -> usize {
    repeat(n, || {
        tx.write(Priority::High, &MSG).expect("write");
        rx.read_with(|_, b| b.len()).expect("read").expect("a message")
    })
}

#[inline(never)]
fn empty_poll(daemon: &mut Daemon, n: u64) -> usize {
    repeat(n, || {
        usize::from(matches!(daemon.try_recv(), Err(memlink_shm::Error::Empty)))
    })
}
