//! The async cases of `compare`: the async API on tokio current-thread
//! runtimes in both processes, against the same exchange with blocking
//! calls and against tokio's `UnixStream`.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use memlink_shm::{Client, Daemon, Priority};

use super::support::{histogram, secs};
use super::{spawn_peer, PAYLOAD};

/// How the two sides of an async case wait.
#[derive(Clone, Copy, PartialEq)]
pub enum Waiting {
    /// Async calls with no spin: every wait parks the task.
    AsyncPark,
    /// Async calls with the default spin budget before parking.
    AsyncSpin,
    /// Blocking calls with no spin (the baseline of `AsyncPark`).
    SyncPark,
}

impl Waiting {
    fn arg(self) -> &'static str {
        match self {
            Waiting::AsyncPark => "async-park",
            Waiting::AsyncSpin => "async-spin",
            Waiting::SyncPark => "sync-park",
        }
    }

    fn parse(s: &str) -> Waiting {
        match s {
            "async-park" => Waiting::AsyncPark,
            "async-spin" => Waiting::AsyncSpin,
            "sync-park" => Waiting::SyncPark,
            _ => panic!("unknown waiting mode {s}"),
        }
    }

    fn spin(self) -> Duration {
        match self {
            Waiting::AsyncSpin => memlink_shm::testkit::DEFAULT_SPIN,
            _ => Duration::ZERO,
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn daemon(tag: &str, spin: Duration) -> (String, Daemon) {
    let name = format!("memlink-compare-{tag}-{}", std::process::id());
    let d = Daemon::builder(&name)
        .size(16 << 20)
        .max_clients(1)
        .spin(spin)
        .create()
        .expect("create the segment");
    (name, d)
}

/// 64 B round trips through the daemon (this process) and an echoing
/// client (the peer), both waiting as `waiting` says.
pub fn memlink_rtt(waiting: Waiting, n: u64) -> Histogram<u64> {
    let (name, mut d) = daemon("async-rtt", waiting.spin());
    let mut child = spawn_peer(&["async-echo", &name, waiting.arg()], false);
    let step = Duration::from_secs(60);
    let to = d.recv_timeout(step).expect("the peer says hello").client();
    let msg = [7u8; PAYLOAD];
    let mut h = histogram();
    let warm = n / 10;
    if waiting == Waiting::SyncPark {
        for i in 0..warm + n {
            let t0 = Instant::now();
            d.send_to(to, Priority::High, &msg).expect("send");
            d.recv().expect("echo");
            if i >= warm {
                h.saturating_record(t0.elapsed().as_nanos() as u64);
            }
        }
    } else {
        runtime().block_on(async {
            for i in 0..warm + n {
                let t0 = Instant::now();
                d.send_to_async(to, Priority::High, &msg).await.expect("send");
                d.recv_async().await.expect("echo");
                if i >= warm {
                    h.saturating_record(t0.elapsed().as_nanos() as u64);
                }
            }
        });
    }
    d.send_to(to, Priority::Critical, b"quit").expect("quit");
    child.wait().expect("peer exit");
    h
}

/// 64 B round trips over a Unix socket with tokio's `UnixStream` on both
/// sides (current-thread runtimes).
#[cfg(unix)]
pub fn tokio_unix_rtt(n: u64) -> Histogram<u64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let path = std::env::temp_dir().join(format!("memlink-compare-tokio-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    runtime().block_on(async {
        let listener = tokio::net::UnixListener::bind(&path).expect("bind the unix socket");
        let mut child = spawn_peer(&["tokio-unix-echo", path.to_str().unwrap()], false);
        let (mut s, _) = listener.accept().await.expect("accept");
        let _ = std::fs::remove_file(&path);
        let mut buf = [7u8; PAYLOAD];
        let mut h = histogram();
        let warm = n / 10;
        for i in 0..warm + n {
            let t0 = Instant::now();
            s.write_all(&buf).await.expect("send");
            s.read_exact(&mut buf).await.expect("receive");
            if i >= warm {
                h.saturating_record(t0.elapsed().as_nanos() as u64);
            }
        }
        drop(s);
        child.wait().expect("peer exit");
        h
    })
}

/// One-way 64 B stream client -> daemon, one `send_async` and one
/// `recv_async` per message (the async form of the simple loop);
/// messages per second.
pub fn memlink_stream(n: u64) -> f64 {
    let (name, mut d) = daemon("async-stream", memlink_shm::testkit::DEFAULT_SPIN);
    let mut child = spawn_peer(&["async-source", &name, &n.to_string()], false);
    let elapsed = runtime().block_on(async {
        let from = d.recv_async().await.expect("the peer says hello").client();
        let t0 = Instant::now();
        d.send_to_async(from, Priority::High, b"go").await.expect("go");
        let mut sum = 0u64;
        for _ in 0..n {
            let m = d.recv_async().await.expect("a message");
            sum += u64::from(m.payload()[0]);
        }
        std::hint::black_box(sum);
        t0.elapsed()
    });
    child.wait().expect("peer exit");
    n as f64 / secs(elapsed)
}

/// The peer roles of these cases; false if `a` is none of them.
pub fn peer(a: &[&str]) -> bool {
    match a {
        ["async-echo", name, mode] => {
            let waiting = Waiting::parse(mode);
            let mut c = Client::builder(name).spin(waiting.spin()).connect().expect("connect");
            c.send(Priority::High, b"hello").expect("hello");
            if waiting == Waiting::SyncPark {
                loop {
                    let m = c.recv().expect("recv");
                    if m.priority() == Priority::Critical {
                        break;
                    }
                    c.send(m.priority(), m.payload()).expect("echo");
                }
            } else {
                runtime().block_on(async {
                    loop {
                        let m = c.recv_async().await.expect("recv");
                        if m.priority() == Priority::Critical {
                            break;
                        }
                        c.send_async(m.priority(), m.payload()).await.expect("echo");
                    }
                });
            }
        }
        ["async-source", name, n] => {
            let n: u64 = n.parse().unwrap();
            let msg = [5u8; PAYLOAD];
            let mut c = Client::connect(name).expect("connect");
            runtime().block_on(async {
                c.send_async(Priority::High, b"hello").await.expect("hello");
                c.recv_async().await.expect("go");
                for _ in 0..n {
                    c.send_async(Priority::High, &msg).await.expect("send");
                }
            });
        }
        #[cfg(unix)]
        ["tokio-unix-echo", path] => {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            runtime().block_on(async {
                let mut s = tokio::net::UnixStream::connect(path).await.expect("connect");
                let mut buf = [0u8; PAYLOAD];
                while s.read_exact(&mut buf).await.is_ok() {
                    s.write_all(&buf).await.expect("echo");
                }
            });
        }
        _ => return false,
    }
    true
}

/// The async API's ratios to its baselines, p50 to p50 (streams: rate to
/// rate), from the rows measured in this run: (label, goal, value).
pub fn ratios(
    p50: impl Fn(&str) -> Option<f64>,
    rate: impl Fn(&str) -> Option<f64>,
) -> Vec<(&'static str, &'static str, f64)> {
    let (park, spin) = ("memlink async, park", "memlink async, spin 50us");
    let round_trips = [
        (
            "async park round trip / tokio UnixStream",
            "<= 0.1x",
            park,
            "tokio UnixStream",
        ),
        (
            "async spin round trip / tokio UnixStream",
            "<= 0.1x",
            spin,
            "tokio UnixStream",
        ),
        (
            "async park round trip / sync park",
            "<= 1.3x",
            park,
            "memlink sync, park",
        ),
        (
            "async spin round trip / sync busy-poll",
            "<= 2x",
            spin,
            "memlink busy-poll",
        ),
    ];
    let streams = [(
        "async stream / sync send/recv stream",
        ">= 0.5x",
        "memlink async send/recv",
        "memlink send/recv",
    )];
    let ratio = |f: &dyn Fn(&str) -> Option<f64>, a: &str, b: &str| Some(f(a)? / f(b)?);
    let round_trips = round_trips.into_iter().map(|(l, g, a, b)| (l, g, ratio(&p50, a, b)));
    let streams = streams.into_iter().map(|(l, g, a, b)| (l, g, ratio(&rate, a, b)));
    round_trips
        .chain(streams)
        .filter_map(|(label, goal, v)| Some((label, goal, v?)))
        .collect()
}
