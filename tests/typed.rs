//! Typed messages and calls across real processes: plain-data and serde
//! values both ways, 100,000 pipelined calls from two client processes with
//! replies out of order, refusals, late replies, a daemon that dies under a
//! call, async calls, and hostile records. Every test has a watchdog and
//! removes its segment.

mod support;

use std::collections::VecDeque;
use std::future::Future;
use std::io::Write;
use std::time::Duration;

use memlink_shm::typed::{Caller, Incoming, Plain, Postcard, Request, Typed};
use memlink_shm::{Client, Daemon, Error, Priority, TypeError};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use support::{child_role, child_watchdog, unique_name, wait_ready, watchdog, Children, SegmentGuard};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

const LIMIT: Duration = Duration::from_secs(240);
const STEP: Duration = Duration::from_secs(30);

/// A plain-data value: 64 bytes, written and read in place.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Debug, PartialEq, Clone, Copy)]
#[repr(C)]
struct Reading {
    seq: u64,
    sensor: u32,
    flags: u32,
    value: f64,
    samples: [u16; 20],
}

impl Typed for Reading {
    const NAME: &'static str = "test.Reading";
    type Encoding = Plain;
}

fn reading(seq: u64) -> Reading {
    Reading {
        seq,
        sensor: (seq % 7) as u32,
        flags: 0,
        value: seq as f64 * 0.5,
        samples: std::array::from_fn(|k| (seq as u16).wrapping_mul(k as u16 + 1)),
    }
}

/// A serde value: an id, a timestamp and a string.
#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Note {
    id: u64,
    at: u64,
    text: String,
}

impl Typed for Note {
    const NAME: &'static str = "test.Note";
    type Encoding = Postcard;
}

fn note(id: u64) -> Note {
    Note {
        id,
        at: id.wrapping_mul(1_000_003),
        text: format!("note number {id} {}", "x".repeat((id % 40) as usize)),
    }
}

/// A request: add two numbers.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Debug, Clone, Copy)]
#[repr(C)]
struct Add {
    a: u64,
    b: u64,
}

/// Its response names the request's `a`, so a mismatched reply shows.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Debug, PartialEq, Clone, Copy)]
#[repr(C)]
struct Sum {
    a: u64,
    sum: u64,
}

impl Typed for Add {
    const NAME: &'static str = "test.Add";
    type Encoding = Plain;
}
impl Typed for Sum {
    const NAME: &'static str = "test.Sum";
    type Encoding = Plain;
}
impl Request for Add {
    type Response = Sum;
}

/// Another request, that no daemon here serves.
#[derive(Serialize, Deserialize, Debug)]
struct Shout(String);
impl Typed for Shout {
    const NAME: &'static str = "test.Shout";
    type Encoding = Postcard;
}
impl Request for Shout {
    type Response = Note;
}

const VALUES: u64 = 500;

/// A `#[repr(C)]` struct and a serde struct go from a client process to the
/// daemon and back, checked field by field on both sides.
#[test]
fn plain_and_serde_values_cross_both_ways_between_processes() {
    if let Some(role) = child_role() {
        child_watchdog(LIMIT);
        let mut client = Client::connect(&role[0]).expect("connect");
        for i in 0..VALUES {
            client.send(Priority::High, &reading(i)).expect("send reading");
            client.send(Priority::Low, &note(i)).expect("send note");
        }
        for i in 0..VALUES {
            let back: Reading = client
                .recv_timeout(STEP)
                .expect("reading back")
                .decode()
                .expect("a Reading");
            assert_eq!(back, reading(i + 1_000_000));
            let back: Note = client.recv_timeout(STEP).expect("note back").decode().expect("a Note");
            assert_eq!(back, note(i + 1_000_000));
        }
        return;
    }
    let name = unique_name("typed-values");
    let _g = SegmentGuard(name.clone());
    let children = Children::default();
    let _w = watchdog(LIMIT, &children, &[&name]);
    let mut daemon = Daemon::create(&name).expect("create");
    let child = children.spawn("plain_and_serde_values_cross_both_ways_between_processes", &[&name]);
    let (mut readings, mut notes) = (0, 0);
    while readings + notes < 2 * VALUES {
        let msg = daemon.recv_timeout(STEP).expect("a value");
        if msg.is::<Reading>() {
            assert_eq!(msg.decode::<Reading>().expect("reading"), reading(readings));
            readings += 1;
        } else {
            assert_eq!(msg.decode::<Note>().expect("note"), note(notes));
            notes += 1;
        }
    }
    let client = daemon.control().clients()[0];
    for i in 0..VALUES {
        daemon
            .send_to(client, Priority::High, &reading(i + 1_000_000))
            .expect("send reading back");
        daemon
            .send_to(client, Priority::High, &note(i + 1_000_000))
            .expect("send note back");
    }
    assert!(children.wait_success(child), "the client process failed");
}

/// Calls per client process: 50,000 (100,000 in all), unless
/// `MEMLINK_TYPED_CALLS` says otherwise (the Wine run takes fewer: each call
/// costs Wine's server round trips; the Linux run covers the full count).
fn calls_per_client() -> u64 {
    std::env::var("MEMLINK_TYPED_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000)
}
const WINDOW: usize = 16;
const GROUP: usize = 8;
const NOTE_EVERY: u64 = 1_000;

/// The calls of client process `k`: `WINDOW` outstanding at a time, every
/// reply checked against its own request; one-way notes the daemon sends in
/// between are kept, in order, for `recv`.
fn pipelined_client(name: &str, k: u64) {
    let mut caller = Caller::new(Client::connect(name).expect("connect"));
    let mut in_flight = VecDeque::new();
    let finish_oldest = |caller: &mut Caller, in_flight: &mut VecDeque<_>| {
        let (pending, a, b) = in_flight.pop_front().unwrap();
        let got = caller.finish(pending, STEP).expect("reply");
        assert_eq!(got, Sum { a, sum: a + b }, "a reply was given to the wrong call");
    };
    for i in 0..calls_per_client() {
        let (a, b) = ((k << 40) | i, i * 3);
        let pending = caller.start(Priority::High, &Add { a, b }).expect("start");
        in_flight.push_back((pending, a, b));
        if in_flight.len() == WINDOW {
            finish_oldest(&mut caller, &mut in_flight);
        }
    }
    while !in_flight.is_empty() {
        finish_oldest(&mut caller, &mut in_flight);
    }
    assert_eq!(caller.outstanding(), 0);
    for n in 0..calls_per_client() / NOTE_EVERY {
        let m = caller.recv_timeout(STEP).expect("a note kept while calls waited");
        assert_eq!(m.decode::<Note>().expect("note"), note(n), "notes out of order");
    }
}

/// 100,000 pipelined calls from two client processes; the daemon answers
/// each group of 8 calls in reverse order, so replies come back out of
/// order, and sends one-way notes between replies.
#[test]
fn pipelined_calls_from_two_processes_are_all_matched() {
    if let Some(role) = child_role() {
        child_watchdog(LIMIT);
        pipelined_client(&role[0], role[1].parse().unwrap());
        return;
    }
    let name = unique_name("typed-pipeline");
    let _g = SegmentGuard(name.clone());
    let children = Children::default();
    let _w = watchdog(LIMIT, &children, &[&name]);
    let mut daemon = Daemon::create(&name).expect("create");
    let test = "pipelined_calls_from_two_processes_are_all_matched";
    let kids = [children.spawn(test, &[&name, "1"]), children.spawn(test, &[&name, "2"])];
    let total = 2 * calls_per_client();
    let (mut answered, mut group) = (0u64, Vec::new());
    let mut notes = std::collections::HashMap::new();
    while answered < total {
        match daemon.recv_call::<Add>().expect("a call") {
            Incoming::Call(add, responder) => group.push((add, responder)),
            Incoming::Message(m) => panic!("unexpected one-way message {m:?}"),
        }
        if group.len() == GROUP || answered + group.len() as u64 == total {
            for (add, responder) in group.drain(..).rev() {
                let client = responder.client();
                responder
                    .send(
                        &mut daemon,
                        &Sum {
                            a: add.a,
                            sum: add.a + add.b,
                        },
                    )
                    .expect("reply");
                answered += 1;
                if (add.a & 0xff_ffff_ffff) % NOTE_EVERY == NOTE_EVERY - 1 {
                    let n = notes.entry(client).or_insert(0u64);
                    daemon.send_to(client, Priority::Low, &note(*n)).expect("note");
                    *n += 1;
                }
            }
        }
    }
    for kid in kids {
        assert!(children.wait_success(kid), "a client process failed");
    }
}

/// Spawns a thread that answers `Add` calls on `daemon` until `n` are done.
fn adder(mut daemon: Daemon, n: usize) -> std::thread::JoinHandle<Daemon> {
    std::thread::spawn(move || {
        for _ in 0..n {
            if let Incoming::Call(add, responder) = daemon.recv_call::<Add>().expect("call") {
                responder
                    .send(
                        &mut daemon,
                        &Sum {
                            a: add.a,
                            sum: add.a + add.b,
                        },
                    )
                    .expect("reply");
            }
        }
        daemon
    })
}

/// A call of a request type the daemon does not serve is refused at once,
/// and the daemon goes on serving its own type.
#[test]
fn a_call_of_another_type_is_refused_at_once() {
    let name = unique_name("typed-refused");
    let _g = SegmentGuard(name.clone());
    let children = Children::default();
    let _w = watchdog(LIMIT, &children, &[&name]);
    let server = adder(Daemon::create(&name).expect("create"), 1);
    let mut caller = Caller::new(Client::connect(&name).expect("connect"));
    match caller.call(Priority::High, &Shout("hello".into()), STEP) {
        Err(Error::Type(TypeError::Rejected { served_tag, .. })) => assert_eq!(served_tag, Add::TAG),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let sum = caller.call(Priority::High, &Add { a: 2, b: 3 }, STEP).expect("call");
    assert_eq!(sum, Sum { a: 2, sum: 5 });
    server.join().unwrap();
}

/// A call that timed out has its late reply dropped on arrival: the next
/// call gets its own reply, not that one.
#[test]
fn a_late_reply_is_dropped_never_given_to_the_next_call() {
    let name = unique_name("typed-late");
    let _g = SegmentGuard(name.clone());
    let children = Children::default();
    let _w = watchdog(LIMIT, &children, &[&name]);
    let mut daemon = Daemon::create(&name).expect("create");
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        let Incoming::Call(first, late) = daemon.recv_call::<Add>().expect("first call") else {
            panic!("not a call")
        };
        wait.recv().unwrap(); // until the caller gave up on it
        late.send(&mut daemon, &Sum { a: first.a, sum: 0 }).expect("late reply");
        let Incoming::Call(second, responder) = daemon.recv_call::<Add>().expect("second call") else {
            panic!("not a call")
        };
        responder
            .send(
                &mut daemon,
                &Sum {
                    a: second.a,
                    sum: second.a + second.b,
                },
            )
            .expect("reply");
    });
    let mut caller = Caller::new(Client::connect(&name).expect("connect"));
    let timed_out = caller.call(Priority::High, &Add { a: 1, b: 1 }, Duration::from_millis(50));
    assert!(matches!(timed_out, Err(Error::Timeout)), "{timed_out:?}");
    go.send(()).unwrap();
    let sum = caller
        .call(Priority::High, &Add { a: 10, b: 5 }, STEP)
        .expect("second call");
    assert_eq!(sum, Sum { a: 10, sum: 15 });
    // Messages come before the disconnect of the (finished) server: none.
    let rest = caller.try_recv();
    assert!(
        matches!(rest, Err(Error::Empty | Error::Disconnected)),
        "the late reply was kept as a message: {rest:?}"
    );
    server.join().unwrap();
}

/// A call whose daemon process is killed ends with `Disconnected`.
#[test]
fn a_call_whose_daemon_dies_is_disconnected() {
    if let Some(role) = child_role() {
        child_watchdog(LIMIT);
        let _daemon = Daemon::create(&role[0]).expect("create");
        println!("ready");
        std::io::stdout().flush().unwrap();
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line); // until killed
        return;
    }
    let name = unique_name("typed-dies");
    let _g = SegmentGuard(name.clone());
    let children = Children::default();
    let _w = watchdog(LIMIT, &children, &[&name]);
    let (child, _stdin, out) = children.spawn_talking("a_call_whose_daemon_dies_is_disconnected", &[&name]);
    wait_ready(out);
    let mut caller = Caller::new(Client::connect(&name).expect("connect"));
    let pending = caller.start(Priority::High, &Add { a: 1, b: 2 }).expect("start");
    children.kill(child);
    let lost = caller.finish(pending, STEP);
    assert!(matches!(lost, Err(Error::Disconnected)), "{lost:?}");
}

/// Async calls on tokio against an async server, with calls dropped half-way
/// (their replies are discarded) between calls that must get their own.
#[test]
fn async_calls_with_cancellations_get_their_own_replies() {
    let name = unique_name("typed-async");
    let _g = SegmentGuard(name.clone());
    let children = Children::default();
    let _w = watchdog(LIMIT, &children, &[&name]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut daemon = Daemon::create(&name).expect("create");
        let server = tokio::spawn(async move {
            loop {
                match daemon.recv_call_async::<Add>().await {
                    Ok(Incoming::Call(add, responder)) => {
                        let sum = Sum {
                            a: add.a,
                            sum: add.a + add.b,
                        };
                        if add.a == u64::MAX {
                            responder.send_async(&mut daemon, &sum).await.expect("reply");
                            return;
                        }
                        responder.send_async(&mut daemon, &sum).await.expect("reply");
                    }
                    other => panic!("{other:?}"),
                }
            }
        });
        // No spin: a call whose reply is not there parks at once, so that
        // its first poll returns and it can be dropped half-way.
        let client = Client::builder(&name).spin(Duration::ZERO).connect();
        let mut caller = Caller::new(client.expect("connect"));
        // Spawnable: the call futures are Send.
        fn is_send<T: Send>(_: &T) {}
        is_send(&caller.call_async(Priority::High, &Add { a: 0, b: 0 }));
        let mut dropped = 0;
        for i in 0..2_000u64 {
            let add = Add { a: i, b: 1 };
            let call = caller.call_async(Priority::High, &add);
            if i % 3 == 0 {
                // Polled once, then dropped if not done: sent, its reply
                // discarded when it comes.
                let mut call = std::pin::pin!(call);
                let first = std::future::poll_fn(|cx| std::task::Poll::Ready(call.as_mut().poll(cx))).await;
                match first {
                    std::task::Poll::Ready(r) => assert_eq!(r.expect("call"), Sum { a: i, sum: i + 1 }),
                    std::task::Poll::Pending => dropped += 1,
                }
            } else {
                assert_eq!(call.await.expect("call"), Sum { a: i, sum: i + 1 });
            }
        }
        let last = caller.call_async(Priority::High, &Add { a: u64::MAX, b: 0 }).await;
        assert_eq!(last.expect("last").a, u64::MAX);
        server.await.unwrap();
        assert!(dropped > 0, "no call was dropped half-way");
        let rest = caller.try_recv();
        assert!(
            matches!(rest, Err(Error::Empty | Error::Disconnected)),
            "a discarded reply was kept: {rest:?}"
        );
    });
}

/// A plain value decodes from the received copy, one that needs 16-byte
/// alignment too, and a message knows which type it carries.
#[test]
fn plain_values_decode_whatever_their_alignment() {
    #[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Debug, PartialEq)]
    #[repr(C, align(16))]
    struct Wide {
        x: u128,
    }
    impl Typed for Wide {
        const NAME: &'static str = "test.Wide";
        type Encoding = Plain;
    }
    let name = unique_name("typed-in-place");
    let _g = SegmentGuard(name.clone());
    let mut daemon = Daemon::create(&name).expect("create");
    let mut client = Client::connect(&name).expect("connect");
    for i in 0..100 {
        client.send(Priority::High, &reading(i)).expect("send");
        client
            .send(Priority::High, &Wide { x: u128::from(i) << 64 })
            .expect("send");
    }
    for i in 0..100 {
        let msg = daemon.recv().expect("reading");
        assert!(msg.is::<Reading>() && !msg.is::<Wide>());
        assert_eq!(msg.decode::<Reading>().expect("a Reading"), reading(i));
        let wide = daemon.recv().expect("wide").decode::<Wide>().expect("a Wide").x;
        assert_eq!(wide, u128::from(i) << 64);
    }
}

/// A message of another type, of raw bytes, of the right tag but the wrong
/// length, or a malformed serde body is an error, never a panic.
#[test]
fn wrong_types_and_malformed_bodies_are_errors() {
    let name = unique_name("typed-wrong");
    let _g = SegmentGuard(name.clone());
    let mut daemon = Daemon::create(&name).expect("create");
    let mut client = Client::connect(&name).expect("connect");
    client.send(Priority::High, &reading(1)).expect("send");
    match daemon.recv().expect("recv").decode::<Note>() {
        Err(TypeError::WrongType {
            expected, found_tag, ..
        }) => {
            assert_eq!((expected, found_tag), ("test.Note", Reading::TAG));
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    client.send(Priority::High, b"raw bytes").expect("send");
    assert!(matches!(
        daemon.recv().expect("recv").decode::<Reading>(),
        Err(TypeError::NotTyped { len: 9 })
    ));
    // The wire format (src/typed/envelope.rs): tag, then a word whose top 16
    // bits are the marker "ML" (0 below them: a one-way message), then the body.
    let one_way = (0x4d4c_u64 << 48).to_le_bytes();
    let short = [&Reading::TAG.to_le_bytes()[..], &one_way, &[1u8; 10]].concat();
    client.send(Priority::High, &short).expect("send");
    assert!(matches!(
        daemon.recv().expect("recv").decode::<Reading>(),
        Err(TypeError::WrongLength {
            expected: 64,
            found: 10,
            ..
        })
    ));
    let garbage = [&Note::TAG.to_le_bytes()[..], &one_way, &[0xff; 12]].concat();
    client.send(Priority::High, &garbage).expect("send");
    assert!(matches!(
        daemon.recv().expect("recv").decode::<Note>(),
        Err(TypeError::Decode { .. })
    ));
    // The same name with another layout is another tag.
    #[derive(FromBytes, IntoBytes, KnownLayout, Immutable)]
    #[repr(C)]
    struct OtherReading {
        seq: u64,
    }
    impl Typed for OtherReading {
        const NAME: &'static str = "test.Reading";
        type Encoding = Plain;
    }
    assert_ne!(OtherReading::TAG, Reading::TAG);
}

/// Any bytes after a typed header, of any kind, decode to a value or an
/// error, never a panic. One segment serves every case; it belongs to this
/// test, so it is removed when the test ends (a `static` never drops, and
/// left the segment behind).
#[test]
fn hostile_bodies_never_panic() {
    use proptest::test_runner::{TestCaseError, TestRunner};
    let name = unique_name("typed-hostile");
    let _g = SegmentGuard(name.clone());
    let pair = std::cell::RefCell::new((
        Daemon::create(&name).expect("create"),
        Client::connect(&name).expect("connect"),
    ));
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 128,
        ..ProptestConfig::default()
    });
    let bodies = (proptest::collection::vec(any::<u8>(), 0..200), 0u64..4);
    let result = runner.run(&bodies, |(body, kind)| {
        let mut pair = pair.borrow_mut();
        let (daemon, client) = &mut *pair;
        for tag in [Note::TAG, Reading::TAG, Add::TAG] {
            let record = [
                &tag.to_le_bytes()[..],
                &(0x4d4c << 48 | kind << 46 | 5).to_le_bytes(),
                &body,
            ]
            .concat();
            for _ in 0..3 {
                client
                    .send(Priority::High, &record)
                    .map_err(|e| TestCaseError::fail(format!("send: {e}")))?;
            }
            for _ in 0..3 {
                let msg = daemon
                    .try_recv()
                    .map_err(|e| TestCaseError::fail(format!("recv: {e}")))?;
                let _ = (msg.decode::<Note>(), msg.decode::<Reading>(), msg.decode::<Add>());
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}\n{runner}");
    }
}

/// Raw messages reach a daemon taking calls as messages, whatever their
/// first bytes (a tag-like word included): only a marked record is a call.
#[test]
fn raw_messages_are_never_taken_for_calls() {
    let name = unique_name("typed-raw");
    let _g = SegmentGuard(name.clone());
    let mut daemon = Daemon::create(&name).expect("create");
    let mut client = Client::connect(&name).expect("connect");
    let lookalike = [&Shout::TAG.to_le_bytes()[..], &5u64.to_le_bytes(), b"body"].concat();
    for raw in [&[7u8; 64][..], &lookalike, b"short"] {
        client.send(Priority::High, raw).expect("send");
        match daemon.recv_call_timeout::<Add>(STEP).expect("recv_call") {
            Incoming::Message(m) => assert_eq!(m.payload(), raw),
            Incoming::Call(..) => panic!("raw bytes were taken for a call"),
        }
    }
    assert!(
        matches!(client.try_recv(), Err(Error::Empty)),
        "a refusal was sent for raw bytes"
    );
}

/// A pipeline far deeper than the rings hold: 3,000 calls started before any
/// is finished, on a small segment. The daemon blocks replying into a full
/// ring while the caller's requests fill the other way; `start` takes in
/// replies while it waits for room, so neither side waits for the other
/// forever, and every reply still reaches its own call.
#[test]
fn a_pipeline_deeper_than_the_rings_does_not_deadlock() {
    const CALLS: u64 = 3_000;
    let name = unique_name("typed-deep");
    let _g = SegmentGuard(name.clone());
    let children = Children::default();
    let _w = watchdog(LIMIT, &children, &[&name]);
    let daemon = Daemon::builder(&name)
        .size(64 << 10)
        .max_clients(1)
        .create()
        .expect("create");
    let server = adder(daemon, CALLS as usize);
    let mut caller = Caller::new(Client::connect(&name).expect("connect"));
    let pending: Vec<_> = (0..CALLS)
        .map(|i| caller.start(Priority::High, &Add { a: i, b: 1 }).expect("start"))
        .collect();
    assert_eq!(caller.outstanding(), CALLS as usize);
    for (i, p) in pending.into_iter().enumerate().rev() {
        let i = i as u64;
        assert_eq!(caller.finish(p, STEP).expect("finish"), Sum { a: i, sum: i + 1 });
    }
    server.join().unwrap();
}
