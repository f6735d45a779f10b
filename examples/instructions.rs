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

use memlink_shm::priority::Priority;
use memlink_shm::transport::{NrelayShmTransport, ShmTransport};
use memlink_shm::{Client, Daemon};

/// Every case: name and what one iteration does.
const CASES: &[(&str, &str)] = &[
    ("send_recv", "client try_send 64 B + daemon try_recv_with"),
    (
        "send_recv_owned",
        "client try_send 64 B + daemon try_recv (owned message)",
    ),
    ("reply", "daemon try_send_to 64 B + client try_recv_with"),
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
    let msg = [7u8; 64];
    let mut sink = 0usize;
    // One loop per case, chosen once: the loop body is the operation alone.
    if case.starts_with("old_") {
        let daemon = NrelayShmTransport::create(&name, 1 << 20, 1).expect("create");
        let client = NrelayShmTransport::connect(&name, 1).expect("connect");
        let id = client.client_id().expect("client id");
        match case.as_str() {
            "old_write_read" => {
                for _ in 0..n {
                    client.write(Priority::High, &msg).expect("write");
                    sink += daemon.read_with(|_, b| b.len()).expect("read").expect("a message");
                }
            }
            "old_write_to_read" => {
                for _ in 0..n {
                    daemon.write_to(id, Priority::High, &msg).expect("write_to");
                    sink += client.read_with(|_, b| b.len()).expect("read").expect("a message");
                }
            }
            _ => panic!("unknown case {case}"),
        }
    } else {
        let mut daemon = Daemon::create(&name).expect("create");
        let mut client = Client::connect(&name).expect("connect");
        let id = client.id();
        match case.as_str() {
            "send_recv" => {
                for _ in 0..n {
                    client.try_send(Priority::High, &msg).expect("send");
                    sink += daemon.try_recv_with(|_, _, b| b.len()).expect("recv");
                }
            }
            "send_recv_owned" => {
                for _ in 0..n {
                    client.try_send(Priority::High, &msg).expect("send");
                    sink += daemon.try_recv().expect("recv").payload().len();
                }
            }
            "reply" => {
                for _ in 0..n {
                    daemon.try_send_to(id, Priority::High, &msg).expect("send_to");
                    sink += client.try_recv_with(|_, b| b.len()).expect("recv");
                }
            }
            "round_trip" => {
                for _ in 0..n {
                    client.try_send(Priority::High, &msg).expect("send");
                    let from = daemon.try_recv_with(|from, _, _| from).expect("recv");
                    daemon.try_send_to(from, Priority::High, &msg).expect("send_to");
                    sink += client.try_recv_with(|_, b| b.len()).expect("recv");
                }
            }
            "batch_64" => {
                for _ in 0..n {
                    client
                        .send_batch(|b| (0..64).try_for_each(|_| b.try_send(Priority::High, &msg)))
                        .expect("batch")
                        .expect("room for 64");
                    sink += daemon.try_recv_batch(64, |_, _, b| sink += b.len()).expect("recv");
                }
            }
            _ => panic!("unknown case {case}"),
        }
    }
    std::hint::black_box(sink);
}
