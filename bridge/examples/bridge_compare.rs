//! The bridge against bare Zenoh, TCP and a Unix socket, in one run on one
//! machine: a 64 B round trip and a one-way stream of 64 B messages between
//! two processes ("two hosts' worth"), each case alternating with the
//! others so that they share the machine's state.
//!
//! - `bridge`: side A is a daemon and `Export`; side B an `Import` and a
//!   client of the imported segment (two shared-memory hops and Zenoh).
//! - `remote`: side B is a `RemoteClient` instead (Zenoh straight in).
//! - `zenoh`: a bare Zenoh publisher/subscriber ping-pong with the same
//!   settings as the bridge's data publishers (peer mode, TCP, reliable,
//!   blocking, not express; `EXPRESS=1` in the environment turns express on
//!   for this side alone).
//! - `tcp`, `unix`: a 64 B echo over a socket, `TCP_NODELAY`.
//!
//! `cargo run --release -p memlink-bridge --example bridge_compare [-- --quick]`

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use memlink_bridge::{BridgeConfig, Export, Import, RemoteClient};
use memlink_shm::{Client, Daemon, Error, Priority};
use zenoh::qos::CongestionControl;
use zenoh::Wait;

const PAYLOAD: usize = 64;
const STEP: Duration = Duration::from_secs(60);
const CASES: [&str; 5] = ["bridge", "remote", "zenoh", "tcp", "unix"];

/// Round trips and stream length of one measurement.
struct Scale {
    rounds: usize,
    stream: u64,
    repeats: usize,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--side-a") {
        side_a(&args[2], &args[3], args[4].parse().unwrap());
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let scale = if quick {
        Scale {
            rounds: 2_000,
            stream: 20_000,
            repeats: 1,
        }
    } else {
        Scale {
            rounds: 10_000,
            stream: 200_000,
            repeats: 3,
        }
    };
    let mut rtt: Vec<(&str, Vec<f64>)> = CASES.iter().map(|c| (*c, Vec::new())).collect();
    let mut rate: Vec<(&str, Vec<f64>)> = CASES.iter().map(|c| (*c, Vec::new())).collect();
    for repeat in 0..scale.repeats {
        for (i, case) in CASES.iter().enumerate() {
            let (p50, per_s) = measure(case, &scale, repeat);
            rtt[i].1.push(p50);
            rate[i].1.push(per_s);
            eprintln!("  {case}: round trip p50 {p50:.1} us, stream {:.0} msgs/s", per_s);
        }
    }
    let med = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let rtt: Vec<(&str, f64)> = rtt.iter().map(|(c, v)| (*c, med(v))).collect();
    let rate: Vec<(&str, f64)> = rate.iter().map(|(c, v)| (*c, med(v))).collect();
    let of = |list: &[(&str, f64)], c: &str| list.iter().find(|(n, _)| *n == c).unwrap().1;
    println!(
        "bridge_compare: 64 B messages, two processes, loopback (median of {} runs each)",
        scale.repeats
    );
    println!("| case | round trip p50 | one-way stream |");
    println!("|---|---|---|");
    for case in CASES {
        println!(
            "| {case} | {:.1} us | {:.2} M msgs/s |",
            of(&rtt, case),
            of(&rate, case) / 1e6
        );
    }
    let ratios = [
        (
            "bridge round trip / bare zenoh",
            &rtt,
            "bridge",
            "zenoh",
            " (goal <= 1.3x)",
        ),
        (
            "bridge stream / bare zenoh",
            &rate,
            "bridge",
            "zenoh",
            " (goal >= 0.7x)",
        ),
        ("remote client round trip / bare zenoh", &rtt, "remote", "zenoh", ""),
        ("remote client stream / bare zenoh", &rate, "remote", "zenoh", ""),
        ("bridge round trip / tcp", &rtt, "bridge", "tcp", ""),
        ("bridge round trip / unix socket", &rtt, "bridge", "unix", ""),
        ("bridge stream / tcp", &rate, "bridge", "tcp", ""),
        ("bridge stream / unix socket", &rate, "bridge", "unix", ""),
    ];
    for (label, list, a, b, goal) in ratios {
        println!("{label}: {:.2}x{goal}", of(list, a) / of(list, b));
    }
}

/// Starts side A of `case`, runs side B against it; the round trip p50 in
/// microseconds and the stream rate in messages per second.
fn measure(case: &str, scale: &Scale, repeat: usize) -> (f64, f64) {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let name = format!("memlink-bridge-compare-{}-{repeat}-{case}", std::process::id());
    let address = match case {
        "unix" => std::env::temp_dir().join(&name).to_string_lossy().into_owned(),
        "tcp" => format!("127.0.0.1:{port}"),
        _ => format!("tcp/127.0.0.1:{port}"),
    };
    let target = if matches!(case, "bridge" | "remote") {
        name.clone()
    } else {
        address.clone()
    };
    let a = SideA::start(case, &target, scale.stream, &address);
    let result = match case {
        "bridge" => {
            let local = format!("{name}-local");
            let _import = Import::start(&name, &local, BridgeConfig::default().connect(&address)).expect("import");
            let mut client = connect(&local);
            let mut round = || {
                client.send(Priority::High, &[0; PAYLOAD]).unwrap();
                client.recv_timeout(STEP).unwrap();
            };
            let p50 = round_trips(scale.rounds, &mut round);
            let per_s = per_second(scale.stream, || {
                for _ in 0..scale.stream {
                    client.send(Priority::High, &[1; PAYLOAD]).unwrap();
                }
                client.recv_timeout(STEP).unwrap();
            });
            (p50, per_s)
        }
        "remote" => {
            let mut client = RemoteClient::connect(&name, BridgeConfig::default().connect(&address)).expect("remote");
            let p50 = round_trips(scale.rounds, &mut || {
                client.send(Priority::High, &[0; PAYLOAD]).unwrap();
                client.recv_timeout(STEP).unwrap();
            });
            let per_s = per_second(scale.stream, || {
                for _ in 0..scale.stream {
                    client.send(Priority::High, &[1; PAYLOAD]).unwrap();
                }
                client.recv_timeout(STEP).unwrap();
            });
            (p50, per_s)
        }
        "zenoh" => {
            let session = zenoh::open(BridgeConfigExt::peer(&address, false)).wait().unwrap();
            let (tx, rx) = flume::bounded(1 << 16);
            let _sub = session
                .declare_subscriber("bench/pong")
                .callback(move |s| {
                    let _ = tx.send(s.payload().len());
                })
                .wait()
                .unwrap();
            let ping = publisher(&session, "bench/ping");
            // Wait until side A's subscriber is known.
            let deadline = Instant::now() + STEP;
            loop {
                ping.put(vec![0u8; PAYLOAD]).wait().unwrap();
                if rx.recv_timeout(Duration::from_millis(100)).is_ok() {
                    break;
                }
                assert!(Instant::now() < deadline, "bare zenoh never answered");
            }
            while rx.try_recv().is_ok() {}
            let p50 = round_trips(scale.rounds, &mut || {
                ping.put(vec![0u8; PAYLOAD]).wait().unwrap();
                rx.recv_timeout(STEP).unwrap();
            });
            let data = publisher(&session, "bench/stream");
            let per_s = per_second(scale.stream, || {
                for _ in 0..scale.stream {
                    data.put(vec![1u8; PAYLOAD]).wait().unwrap();
                }
                rx.recv_timeout(STEP).unwrap();
            });
            (p50, per_s)
        }
        "tcp" => {
            let s = TcpStream::connect(&address).unwrap();
            s.set_nodelay(true).unwrap();
            socket_case(s, scale)
        }
        "unix" => socket_case(UnixStream::connect(&address).unwrap(), scale),
        _ => unreachable!(),
    };
    a.finish();
    if case == "unix" {
        let _ = std::fs::remove_file(&address);
    }
    result
}

fn socket_case(mut s: impl Read + Write, scale: &Scale) -> (f64, f64) {
    let mut buf = [0u8; PAYLOAD];
    let p50 = round_trips(scale.rounds, &mut || {
        s.write_all(&[0; PAYLOAD]).unwrap();
        s.read_exact(&mut buf).unwrap();
    });
    // The stream: side A reads until it has them all, then answers.
    let per_s = per_second(scale.stream, || {
        for _ in 0..scale.stream {
            s.write_all(&[1; PAYLOAD]).unwrap();
        }
        s.read_exact(&mut buf).unwrap();
    });
    (p50, per_s)
}

fn connect(local: &str) -> Client {
    let deadline = Instant::now() + STEP;
    loop {
        match Client::connect(local) {
            Ok(c) => return c,
            Err(e) => assert!(Instant::now() < deadline, "the import never made {local}: {e}"),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Median of `rounds` timed calls of `round` (after a tenth as warm-up), in
/// microseconds.
fn round_trips(rounds: usize, round: &mut dyn FnMut()) -> f64 {
    for _ in 0..rounds / 10 {
        round();
    }
    let mut times: Vec<f64> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            round();
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Messages per second of a stream of `n` that `run` sends and sees
/// counted by side A.
fn per_second(n: u64, run: impl FnOnce()) -> f64 {
    let start = Instant::now();
    run();
    n as f64 / start.elapsed().as_secs_f64()
}

fn publisher(session: &zenoh::Session, key: &'static str) -> zenoh::pubsub::Publisher<'static> {
    session
        .declare_publisher(key)
        .congestion_control(CongestionControl::Block)
        .express(std::env::var_os("EXPRESS").is_some())
        .wait()
        .unwrap()
}

/// A bare Zenoh peer configuration, as the bridge makes them.
struct BridgeConfigExt;

impl BridgeConfigExt {
    fn peer(endpoint: &str, listen: bool) -> zenoh::Config {
        let mut c = zenoh::Config::default();
        c.insert_json5("mode", "\"peer\"").unwrap();
        c.insert_json5("scouting/multicast/enabled", "false").unwrap();
        let key = if listen {
            "listen/endpoints"
        } else {
            "connect/endpoints"
        };
        c.insert_json5(key, &format!("[\"{endpoint}\"]")).unwrap();
        c
    }
}

/// Side A in a child process.
struct SideA(Child);

impl SideA {
    fn start(case: &str, target: &str, stream: u64, address: &str) -> SideA {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--side-a",
                case,
                &format!("{target}\u{1f}{address}"),
                &stream.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut ready = [0u8; 6];
        child.stdout.as_mut().unwrap().read_exact(&mut ready).unwrap();
        assert_eq!(&ready, b"ready\n");
        SideA(child)
    }

    fn finish(mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

impl Drop for SideA {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Echoes 64 B messages whose first byte is 0; counts those whose first
/// byte is 1 and answers once `stream` have come. Ends when stdin closes.
fn side_a(case: &str, target: &str, stream: u64) {
    let (target, address) = target.split_once('\u{1f}').unwrap();
    let ready = || {
        println!("ready");
        std::io::stdout().flush().unwrap();
    };
    let until_stdin_closes = || {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    };
    match case {
        "bridge" | "remote" => {
            let mut daemon = Daemon::builder(target).size(8 << 20).max_clients(4).create().unwrap();
            let _export = Export::start(target, BridgeConfig::default().listen(address)).unwrap();
            ready();
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let s = stop.clone();
            std::thread::spawn(move || {
                until_stdin_closes();
                s.store(true, std::sync::atomic::Ordering::Relaxed);
            });
            let mut counted = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match daemon.recv_timeout(Duration::from_millis(20)) {
                    Ok(m) if m.payload()[0] == 0 => daemon.send_to(m.client(), m.priority(), m.payload()).unwrap(),
                    Ok(m) => {
                        counted += 1;
                        if counted == stream {
                            counted = 0;
                            daemon.send_to(m.client(), m.priority(), b"done").unwrap();
                        }
                    }
                    Err(Error::Timeout) => {}
                    Err(e) => panic!("{e}"),
                }
            }
        }
        "zenoh" => {
            let session = zenoh::open(BridgeConfigExt::peer(address, true)).wait().unwrap();
            let pong = publisher(&session, "bench/pong");
            let pong2 = publisher(&session, "bench/pong");
            let _ping = session
                .declare_subscriber("bench/ping")
                .callback(move |s| {
                    pong.put(s.payload().clone()).wait().unwrap();
                })
                .wait()
                .unwrap();
            let counted = std::sync::atomic::AtomicU64::new(0);
            let _stream = session
                .declare_subscriber("bench/stream")
                .callback(move |_| {
                    if counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1 == stream {
                        counted.store(0, std::sync::atomic::Ordering::Relaxed);
                        pong2.put(b"done".to_vec()).wait().unwrap();
                    }
                })
                .wait()
                .unwrap();
            ready();
            until_stdin_closes();
        }
        "tcp" => {
            let listener = TcpListener::bind(address).unwrap();
            ready();
            let (s, _) = listener.accept().unwrap();
            s.set_nodelay(true).unwrap();
            socket_side_a(s, stream);
        }
        "unix" => {
            let _ = std::fs::remove_file(address);
            let listener = UnixListener::bind(address).unwrap();
            ready();
            let (s, _) = listener.accept().unwrap();
            socket_side_a(s, stream);
        }
        _ => unreachable!(),
    }
}

fn socket_side_a(mut s: impl Read + Write, stream: u64) {
    let mut buf = [0u8; PAYLOAD];
    let mut counted = 0u64;
    let mut big = vec![0u8; 1 << 16];
    // Round trips until the first stream message, then the stream in bulk.
    loop {
        if s.read_exact(&mut buf).is_err() {
            return;
        }
        if buf[0] == 0 {
            s.write_all(&buf).unwrap();
        } else {
            counted += 1;
            break;
        }
    }
    let mut bytes = counted * PAYLOAD as u64;
    while bytes < stream * PAYLOAD as u64 {
        match s.read(&mut big) {
            Ok(0) | Err(_) => return,
            Ok(n) => bytes += n as u64,
        }
    }
    s.write_all(&[9; PAYLOAD]).unwrap();
    let _ = s.read(&mut big);
}
