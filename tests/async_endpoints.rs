//! The async API across real processes and executors: the quickstart,
//! cancellation under load, disconnect and death, idle CPU, a second
//! executor, and sync and async peers on one segment. Every test has a
//! watchdog and removes its segment.

mod support;

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use futures::StreamExt;
use memlink_shm::{Client, Daemon, Error, Fill, Priority};
use support::{checksum, child_role, child_watchdog, unique_name, wait_ready, watchdog, Children, SegmentGuard};

const LIMIT: Duration = Duration::from_secs(180);

fn tokio_multi() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn tokio_single() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The quickstart: a tokio daemon, a tokio client in another
/// process whose calls run in a spawned task.
#[test]
fn async_quickstart_across_two_processes() {
    if let Some(role) = child_role() {
        child_watchdog(LIMIT);
        let name = role[0].clone();
        tokio_multi().block_on(async move {
            let mut client = Client::connect(&name).expect("connect");
            let task = tokio::spawn(async move {
                client.send_async(Priority::High, b"ping").await?;
                Ok::<_, Error>(client.recv_async().await?.payload().to_vec())
            });
            assert_eq!(task.await.unwrap().unwrap(), b"pong");
        });
        return;
    }
    let name = unique_name("async-quickstart");
    let _g = SegmentGuard(name.clone());
    let children = Children::default();
    let _w = watchdog(LIMIT, &children, &[&name]);
    tokio_multi().block_on(async {
        let mut daemon = Daemon::create(&name).expect("create");
        let child = children.spawn("async_quickstart_across_two_processes", &[&name]);
        let msg = daemon.recv_async().await.expect("request");
        assert_eq!((msg.priority(), msg.payload()), (Priority::High, &b"ping"[..]));
        daemon
            .send_to_async(msg.client(), msg.priority(), b"pong")
            .await
            .expect("reply");
        assert!(children.wait_success(child), "the client process failed");
    });
}

/// Message `i` of the cancellation stream: its number and a checksum over
/// a body whose length varies with `i`.
fn checked_message(i: u64) -> Vec<u8> {
    let len = 16 + (support::mix(i) % 200) as usize;
    let mut m = vec![0u8; len];
    m[..8].copy_from_slice(&i.to_le_bytes());
    for (k, b) in m[16..].iter_mut().enumerate() {
        *b = support::mix(i ^ (k as u64)) as u8;
    }
    let sum = checksum(&m[16..]);
    m[8..16].copy_from_slice(&sum.to_le_bytes());
    m
}

fn check_message(expected: u64, m: &[u8]) {
    assert!(m.len() >= 16, "message {expected} is {} bytes", m.len());
    let i = u64::from_le_bytes(m[..8].try_into().unwrap());
    assert_eq!(i, expected, "a message was lost or delivered twice");
    let sum = u64::from_le_bytes(m[8..16].try_into().unwrap());
    assert_eq!(sum, checksum(&m[16..]), "message {i} is damaged");
    assert_eq!(m, checked_message(i).as_slice(), "message {i} is not what was sent");
}

const STREAM: u64 = 100_000;

/// A future that completes on its second poll: racing it against a call
/// drops the call after exactly one poll that did not finish.
async fn yield_once() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}

/// Races `op` against one of three cancellers, chosen by `k`: at once,
/// after one yield, after a millisecond. `None`: the canceller won.
async fn race<T>(k: u64, op: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::select! {
        biased;
        r = op => Some(r),
        _ = async {
            match k % 3 {
                0 => {}
                1 => yield_once().await,
                _ => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        } => None,
    }
}

/// 100,000 checksummed messages from a client process that sends each with
/// `send_async` raced against short timeouts (retrying the same message
/// when the timeout wins), to a daemon that receives each with
/// `recv_async` raced likewise: every message arrives once, whole, in
/// order, however many calls were dropped half-way.
#[test]
fn dropped_calls_lose_and_repeat_nothing() {
    if let Some(role) = child_role() {
        child_watchdog(LIMIT);
        let name = role[0].clone();
        tokio_multi().block_on(async move {
            let mut client = Client::connect(&name).expect("connect");
            let mut dropped = 0u64;
            for i in 0..STREAM {
                if i % 100 == 99 {
                    // Pauses let the daemon find the ring empty now and then.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                let m = checked_message(i);
                let mut k = support::mix(i);
                loop {
                    match race(k, client.send_async(Priority::High, &m)).await {
                        Some(r) => break r.expect("send"),
                        None => dropped += 1,
                    }
                    k = k.wrapping_add(1);
                }
            }
            // The daemon tells when it has everything: then leave.
            let done = client.recv_async().await.expect("done");
            assert_eq!(done.payload(), b"done");
            println!("client: {dropped} sends dropped half-way");
            assert!(dropped > 0, "no send was ever cancelled: the test tested nothing");
        });
        return;
    }
    let name = unique_name("async-cancel");
    let _g = SegmentGuard(name.clone());
    let children = Children::default();
    let _w = watchdog(LIMIT, &children, &[&name]);
    tokio_multi().block_on(async {
        // Small rings: the sender often waits for room.
        let mut daemon = Daemon::builder(&name)
            .size(64 << 10)
            .max_clients(1)
            .max_message_size(1024)
            .create()
            .expect("create");
        let child = children.spawn("dropped_calls_lose_and_repeat_nothing", &[&name]);
        let (mut dropped, mut from) = (0u64, None);
        for i in 0..STREAM {
            if i % 150 == 149 {
                // Pauses let the client find the ring full now and then.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let mut k = support::mix(i ^ 0xabc);
            let msg = loop {
                match race(k, daemon.recv_async()).await {
                    Some(r) => break r.expect("recv"),
                    None => dropped += 1,
                }
                k = k.wrapping_add(1);
            };
            check_message(i, msg.payload());
            from = Some(msg.client());
        }
        daemon
            .send_to_async(from.unwrap(), Priority::High, b"done")
            .await
            .unwrap();
        println!("daemon: {dropped} receives dropped half-way");
        assert!(dropped > 0, "no receive was ever cancelled: the test tested nothing");
        assert!(children.wait_success(child), "the client process failed");
    });
}

/// A pending `recv_async` ends with `Disconnected` when the daemon's
/// process is killed, and a client stream ends.
#[test]
fn a_pending_receive_sees_the_daemon_die() {
    if let Some(role) = child_role() {
        child_watchdog(LIMIT);
        let _daemon = Daemon::create(&role[0]).expect("create");
        println!("ready");
        std::thread::sleep(LIMIT); // until killed
        return;
    }
    let name = unique_name("async-daemon-dies");
    let _g = SegmentGuard(name.clone());
    let children = Children::default();
    let _w = watchdog(LIMIT, &children, &[&name]);
    let (child, out) = children.spawn_piped("a_pending_receive_sees_the_daemon_die", &[&name]);
    wait_ready(out);
    tokio_multi().block_on(async {
        let (mut tx, mut rx) = Client::connect(&name).expect("connect").split();
        let pending = tokio::spawn(async move { (rx.recv_async().await, rx) });
        tx.send_async(Priority::Low, b"are you there").await.unwrap();
        children.kill(child);
        let (got, mut rx) = pending.await.unwrap();
        assert!(matches!(got, Err(Error::Disconnected)), "{got:?}");
        assert!(rx.stream().next().await.is_none(), "the stream ends with the daemon");
    });
}

/// A daemon's `send_to_async`, waiting for room in the ring of a client
/// that reads nothing, ends with `UnknownClient` when that client's
/// process is killed; its `recv_async` ends when it shuts down elsewhere.
#[test]
fn a_pending_send_sees_the_client_die() {
    if let Some(role) = child_role() {
        child_watchdog(LIMIT);
        let mut client = Client::connect(&role[0]).expect("connect");
        client.send(Priority::High, b"hello").expect("hello");
        println!("ready");
        std::thread::sleep(LIMIT); // until killed; reads nothing
        return;
    }
    let name = unique_name("async-client-dies");
    let _g = SegmentGuard(name.clone());
    let children = Children::default();
    let _w = watchdog(LIMIT, &children, &[&name]);
    tokio_single().block_on(async {
        let mut daemon = Daemon::builder(&name)
            .size(64 << 10)
            .max_clients(2)
            .max_message_size(1024)
            .create()
            .expect("create");
        let (child, out) = children.spawn_piped("a_pending_send_sees_the_client_die", &[&name]);
        wait_ready(out);
        let client = daemon.recv_async().await.expect("hello").client();
        let mut sent = 0;
        while daemon.try_send_to(client, Priority::Low, &[7; 1000]).is_ok() {
            sent += 1;
        }
        assert!(sent > 0);
        // The send is polled first and finds the ring full; then the
        // client dies under it.
        let kill = async {
            yield_once().await;
            children.kill(child);
            std::future::pending::<()>().await
        };
        let blocked = tokio::select! {
            biased;
            r = daemon.send_to_async(client, Priority::Low, &[7; 1000]) => r,
            _ = kill => unreachable!(),
        };
        assert!(matches!(blocked, Err(Error::UnknownClient(_))), "{blocked:?}");
    });
}

/// A daemon's pending `recv_async` ends with `Disconnected` when another
/// shard of it shuts the segment down, and its stream ends.
#[test]
fn a_pending_daemon_receive_ends_at_shutdown() {
    let name = unique_name("async-shutdown");
    let _g = SegmentGuard(name.clone());
    let _w = watchdog(LIMIT, &Children::default(), &[&name]);
    tokio_multi().block_on(async {
        let mut shards = Daemon::create(&name).expect("create").shard(2);
        let other = shards.pop().unwrap();
        let mut mine = shards.pop().unwrap();
        let pending = tokio::spawn(async move { (mine.recv_async().await, mine) });
        tokio::task::spawn_blocking(move || other.shutdown()).await.unwrap();
        let (got, mut mine) = pending.await.unwrap();
        assert!(matches!(got, Err(Error::Disconnected)), "{got:?}");
        assert!(mine.stream().next().await.is_none());
    });
}

/// CPU time of the whole process.
#[cfg(target_os = "linux")]
fn process_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// CPU time of the whole process.
#[cfg(target_os = "macos")]
fn process_cpu() -> Duration {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `t` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// CPU time of the whole process (kernel plus user).
#[cfg(windows)]
fn process_cpu() -> Duration {
    use windows_sys::Win32::Foundation::FILETIME;
    use windows_sys::Win32::System::Threading::{GetCurrentProcess, GetProcessTimes};
    let zero = FILETIME {
        dwLowDateTime: 0,
        dwHighDateTime: 0,
    };
    let (mut a, mut b, mut kernel, mut user) = (zero, zero, zero, zero);
    // SAFETY: the pseudo-handle of the current process is always valid; the
    // four out pointers are valid, writable FILETIMEs.
    unsafe { GetProcessTimes(GetCurrentProcess(), &mut a, &mut b, &mut kernel, &mut user) };
    let ticks = |t: FILETIME| (u64::from(t.dwHighDateTime) << 32) | u64::from(t.dwLowDateTime);
    Duration::from_nanos((ticks(kernel) + ticks(user)) * 100)
}

/// A task that waits 2 s for a message leaves the process idle: the whole
/// process (runtime threads and the watcher thread included) uses a few
/// milliseconds of CPU, not a core. Measured in a child process of its own,
/// so that no other test's work counts.
#[test]
fn a_waiting_task_uses_no_cpu() {
    if let Some(role) = child_role() {
        child_watchdog(LIMIT);
        let mut daemon = Daemon::create(&role[0]).expect("create");
        let mut client = Client::connect(&role[0]).expect("connect");
        tokio_multi().block_on(async {
            // Warm up: the watcher thread exists, the runtime is started.
            client.send_async(Priority::High, b"warm").await.unwrap();
            daemon.recv_async().await.unwrap();
            let (cpu0, wall0) = (process_cpu(), Instant::now());
            let waited = tokio::time::timeout(Duration::from_secs(2), client.recv_async()).await;
            let (cpu, wall) = (process_cpu() - cpu0, wall0.elapsed());
            assert!(waited.is_err(), "nothing was sent, yet: {waited:?}");
            println!("idle task: {wall:?} wall, {cpu:?} CPU for the whole process");
            assert!(
                cpu < Duration::from_millis(100),
                "a task waiting {wall:?} used {cpu:?} of CPU"
            );
        });
        return;
    }
    let name = unique_name("async-idle");
    let _g = SegmentGuard(name.clone());
    let children = Children::default();
    let _w = watchdog(LIMIT, &children, &[&name]);
    let (child, out) = children.spawn_piped("a_waiting_task_uses_no_cpu", &[&name]);
    let lines: Vec<String> = BufReader::new(out).lines().map_while(Result::ok).collect();
    let figure = lines.iter().find(|l| l.starts_with("idle task:"));
    println!("{}", figure.map_or("idle task: no figure printed", |l| l.as_str()));
    assert!(children.wait_success(child), "the idle child failed: {lines:?}");
}

/// The same exchange on `futures::executor` (daemon) and a tokio
/// current-thread runtime (client), then blocking calls against async ones
/// on one segment, both ways.
#[test]
fn other_executors_and_sync_peers() {
    let name = unique_name("async-executors");
    let _g = SegmentGuard(name.clone());
    let _w = watchdog(LIMIT, &Children::default(), &[&name]);
    const N: u32 = 2_000;
    let mut daemon = Daemon::create(&name).expect("create");
    let server = std::thread::spawn(move || {
        futures::executor::block_on(async {
            for _ in 0..N {
                let m = daemon.recv_async().await.expect("recv");
                daemon
                    .send_to_async(m.client(), m.priority(), m.payload())
                    .await
                    .expect("echo");
            }
            // Blocking daemon, async client.
            for _ in 0..N {
                let m = daemon.recv().expect("recv");
                daemon.send_to(m.client(), m.priority(), m.payload()).expect("echo");
            }
            daemon
        })
    });
    let mut client = Client::connect(&name).expect("connect");
    tokio_single().block_on(async {
        for i in 0..N {
            client.send_async(Priority::Critical, &i.to_le_bytes()).await.unwrap();
            let r = client.recv_async().await.unwrap();
            assert_eq!(r.payload(), i.to_le_bytes());
        }
        for i in 0..N {
            client.send_async(Priority::Low, &i.to_le_bytes()).await.unwrap();
            let r = client.stream().next().await.expect("a reply").unwrap();
            assert_eq!((r.priority(), r.payload()), (Priority::Low, &i.to_le_bytes()[..]));
        }
    });
    let mut daemon = server.join().unwrap();
    // Blocking client, async daemon (futures executor), zero-copy forms.
    let echo = std::thread::spawn(move || {
        futures::executor::block_on(async {
            for _ in 0..N {
                let (from, p, v) = daemon
                    .receiver()
                    .recv_with_async(|c, p, b| (c, p, u32::from_le_bytes(b.try_into().unwrap())))
                    .await
                    .unwrap();
                daemon
                    .send_to_async(from, p, Fill::new(4, |b| b.copy_from_slice(&(v + 1).to_le_bytes())))
                    .await
                    .unwrap();
            }
        })
    });
    for i in 0..N {
        client.send(Priority::High, &i.to_le_bytes()).unwrap();
        let r = client.recv().unwrap();
        assert_eq!(r.payload(), (i + 1).to_le_bytes());
    }
    echo.join().unwrap();
}

/// The futures of every async call are `Send`, so a task holding an
/// endpoint can be spawned on a multi-threaded runtime.
#[test]
fn the_futures_are_send() {
    fn send<T: Send>(_: &T) {}
    let name = unique_name("async-send");
    let _g = SegmentGuard(name.clone());
    let mut daemon = Daemon::create(&name).expect("create");
    let mut client = Client::connect(&name).expect("connect");
    let id = client.control().id();
    send(&client.send_async(Priority::High, b"x"));
    send(&client.send_async(Priority::High, Fill::new(1, |b| b[0] = 1)));
    send(&client.send_async(Priority::High, &7u32));
    send(&client.recv_async());
    send(&client.receiver().recv_with_async(|_, b| b.len()));
    send(&daemon.recv_async());
    send(&daemon.receiver().recv_with_async(|_, _, b| b.len()));
    send(&daemon.send_to_async(id, Priority::High, b"x"));
    send(&daemon.send_to_async(id, Priority::High, Fill::new(1, |b| b[0] = 1)));
    send(&daemon.sender().broadcast_async(Priority::High, b"x"));
    let (rx, tx) = daemon.split();
    send(&rx.recv_async());
    send(&tx.send_to_async(id, Priority::High, b"x"));
    let (mut ctx, mut crx) = client.split();
    send(&ctx.send_async(Priority::High, b"x"));
    send(&crx.recv_async());
}
