//! Lifecycle events through `tracing` (feature `tracing`): every event of
//! `src/events.rs` is emitted once, with its fields, by the process that
//! saw it happen. Run with `cargo test --features tracing --test
//! lifecycle_events`.
#![cfg(feature = "tracing")]

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use memlink_shm::testkit::{Direction, Peer};
use memlink_shm::{Client, Daemon, Error, Priority};
use support::{child_role, child_watchdog, unique_name, watchdog, Children, SegmentGuard};
use tracing::field::{Field, Visit};

/// One event: its message and fields, as text.
type Event = BTreeMap<String, String>;

/// A subscriber that keeps every event of target `memlink_shm`.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Event>>>);

struct Fields<'a>(&'a mut Event);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().to_owned(),
            format!("{value:?}").trim_matches('"').to_owned(),
        );
    }
}

impl tracing::Subscriber for Recorder {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if event.metadata().target() != "memlink_shm" {
            return;
        }
        let mut fields = Event::new();
        fields.insert("level".into(), event.metadata().level().to_string());
        event.record(&mut Fields(&mut fields));
        self.0.lock().unwrap().push(fields);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

impl Recorder {
    /// The events with this message.
    fn named(&self, message: &str) -> Vec<Event> {
        let all = self.0.lock().unwrap();
        all.iter()
            .filter(|e| e.get("message").map(String::as_str) == Some(message))
            .cloned()
            .collect()
    }
}

/// Child roles: a client or a daemon that dies without leaving.
fn run_child(role: &[String]) {
    child_watchdog(Duration::from_secs(60));
    match role[0].as_str() {
        "dying-client" => {
            let client = Client::connect(&role[1]).expect("connect");
            std::mem::forget(client);
        }
        "dying-daemon" => std::mem::forget(Daemon::create(&role[1]).expect("create")),
        r => panic!("unknown role {r}"),
    }
    // Ends without dropping anything: the kernel releases the locks.
    std::process::exit(0);
}

#[test]
fn every_lifecycle_event_is_emitted_with_its_fields() {
    if let Some(role) = child_role() {
        return run_child(&role);
    }
    let name = unique_name("events");
    let dead_name = unique_name("events-takeover");
    let (_g, _h) = (SegmentGuard(name.clone()), SegmentGuard(dead_name.clone()));
    let children = Children::default();
    let _w = watchdog(Duration::from_secs(120), &children, &[&name, &dead_name]);
    let rec = Recorder::default();
    tracing::subscriber::with_default(rec.clone(), || {
        let mut daemon = Daemon::create(&name).expect("create");
        let me = std::process::id().to_string();

        // Connected and left, then the daemon frees the slot.
        drop(Client::connect(&name).expect("connect"));
        assert!(matches!(daemon.try_recv(), Err(Error::Empty)));

        // A client process that dies holding its slot.
        let dying = children.spawn(
            "every_lifecycle_event_is_emitted_with_its_fields",
            &["dying-client", &name],
        );
        assert!(children.wait_success(dying));
        let until = Instant::now() + Duration::from_secs(30);
        while rec.named("client found dead").is_empty() && Instant::now() < until {
            let _ = daemon.recv_timeout(Duration::from_millis(60));
        }

        // A client whose ring to the daemon holds an impossible position.
        let mut bad = Client::connect(&name).expect("connect");
        bad.send(Priority::High, b"soon corrupt").expect("send");
        let peer = Peer::open(&name).expect("open");
        // The header word of the message just sent: a length no ring holds.
        let record = peer
            .layout()
            .records_offset(bad.control().id().slot(), Direction::ToDaemon, Priority::High);
        peer.write_u64(record, u64::MAX / 2);
        let got = daemon.recv_timeout(Duration::from_secs(5));
        assert!(matches!(got, Err(Error::Corrupted(_))), "{got:?}");
        drop((bad, peer));
        drop(daemon);

        // A name left by a daemon that died, taken over.
        let dying = children.spawn(
            "every_lifecycle_event_is_emitted_with_its_fields",
            &["dying-daemon", &dead_name],
        );
        assert!(children.wait_success(dying));
        drop(Daemon::create(&dead_name).expect("take over"));

        let created = rec.named("segment created");
        assert!(
            created.iter().any(|e| e["segment"].ends_with(&name) && e["pid"] == me),
            "{created:?}"
        );
        let connected = rec.named("client connected");
        assert_eq!(connected.len(), 2, "{connected:?}"); // the dying client's is in its own process
        assert!(connected
            .iter()
            .all(|e| e["segment"].ends_with(&name) && e["pid"] == me && e["level"] == "INFO"));
        let left = rec.named("client left");
        assert_eq!((left.len(), left[0]["slot"].as_str()), (2, "0"), "{left:?}");
        let dead = rec.named("client found dead");
        assert_eq!(dead.len(), 1, "{dead:?}");
        assert_eq!(dead[0]["level"], "WARN");
        assert_ne!(dead[0]["dead_pid"], me);
        assert!(
            rec.named("slot reclaimed").len() >= 2,
            "{:?}",
            rec.named("slot reclaimed")
        );
        let poisoned = rec.named("channel poisoned");
        assert_eq!(poisoned.len(), 1, "{poisoned:?}");
        assert_eq!(
            (poisoned[0]["by"].as_str(), poisoned[0]["level"].as_str()),
            ("daemon", "WARN")
        );
        let shutdown = rec.named("shutdown");
        assert!(shutdown.iter().any(|e| e["segment"].ends_with(&name)), "{shutdown:?}");
        let taken = rec.named("segment taken over");
        assert_eq!(taken.len(), 1, "{taken:?}");
        assert!(taken[0]["segment"].ends_with(&dead_name));
        assert_ne!(taken[0]["dead_pid"], me);
    });
}
