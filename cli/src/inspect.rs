//! `memlink inspect NAME`: the control region and every slot, as text, as
//! JSON (`report::Segment`) or in the Prometheus text exposition format.

use std::fmt::Write;

use memlink_shm::inspect::{self, ClientInfo, RingInfo, SegmentInfo};
use memlink_shm::Priority;

use crate::failure::Failure;
use crate::list::bytes;
use crate::report;
use crate::Format;

pub fn run(name: &str, format: Format) -> Result<(), Failure> {
    let info = inspect::segment(name).map_err(|e| Failure::open(name, e))?;
    let out = match format {
        Format::Text => text(&info),
        Format::Json => {
            serde_json::to_string_pretty(&report::segment(&info)).map_err(|e| Failure::io("json", e))? + "\n"
        }
        Format::Prometheus => prometheus(&info),
    };
    print!("{out}");
    Ok(())
}

/// A fill level as a bar of 10 cells and a percentage; "corrupt" when the
/// ring's positions are impossible.
pub fn bar(r: &RingInfo) -> String {
    if !r.positions_valid {
        return "[ corrupt  ]    ?".into();
    }
    let cells = (r.fill * 10.0).round().clamp(0.0, 10.0) as usize;
    format!(
        "[{}{}] {:>3.0}%",
        "#".repeat(cells),
        ".".repeat(10 - cells),
        r.fill * 100.0
    )
}

fn text(s: &SegmentInfo) -> String {
    let mut o = String::new();
    let d = &s.daemon;
    let _ = writeln!(o, "segment   {}", s.name);
    let _ = writeln!(
        o,
        "size      {} ({} client slots, messages up to {}), protocol version {}",
        bytes(s.size),
        s.max_clients,
        bytes(s.max_message_size),
        s.protocol_version
    );
    let _ = writeln!(
        o,
        "daemon    pid {} {}{}, heartbeat {} ago, {} wake-ups, backpressure {:.2}",
        d.pid,
        if d.alive { "alive" } else { "dead" },
        if d.shutting_down { " (shutting down)" } else { "" },
        report::age(d.heartbeat_age.as_millis() as u64),
        d.wakeups,
        d.backpressure
    );
    let _ = writeln!(
        o,
        "clients   {} in use, {} reclaimed from dead clients ever",
        s.clients.len(),
        s.recovered_clients
    );
    for c in &s.clients {
        let _ = writeln!(
            o,
            "\nslot {} (client {}): pid {} {}, {}{}, {} wake-ups, backpressure {:.2}",
            c.id.slot(),
            c.id,
            c.pid,
            if c.alive { "alive" } else { "dead" },
            report::state(c.state),
            match report::poisoned(c.poisoned) {
                Some(by) => format!(", POISONED (found corrupt by the {by})"),
                None => String::new(),
            },
            c.wakeups,
            c.backpressure
        );
        let _ = writeln!(
            o,
            "  {:<20} {:<9} {:>16} {:>10} {:>10} {:>10} {:>6}",
            "ring", "capacity", "fill", "written", "read", "bytes", "full"
        );
        for (dir, rings) in [("to daemon", &c.to_daemon), ("to client", &c.to_client)] {
            for p in Priority::ALL {
                let r = &rings[p.index()];
                let _ = writeln!(
                    o,
                    "  {:<20} {:<9} {:>16} {:>10} {:>10} {:>10} {:>6}",
                    format!("{dir} {}", tier(p)),
                    bytes(r.capacity),
                    bar(r),
                    r.counters.messages_written,
                    r.counters.messages_read,
                    r.counters.bytes_written,
                    r.counters.full_events
                );
            }
        }
    }
    o
}

pub fn tier(p: Priority) -> &'static str {
    match p {
        Priority::Critical => "critical",
        Priority::High => "high",
        Priority::Low => "low",
    }
}

/// The Prometheus text exposition format, version 0.0.4: gauges and
/// counters labelled with the segment (and slot, pid, direction, tier).
fn prometheus(s: &SegmentInfo) -> String {
    let seg = escape(&s.name);
    let mut o = String::new();
    let family = |o: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(o, "# HELP memlink_{name} {help}\n# TYPE memlink_{name} {kind}");
    };
    let d = &s.daemon;
    family(
        &mut o,
        "daemon_alive",
        "gauge",
        "Whether the segment's daemon holds its liveness lock.",
    );
    let _ = writeln!(
        o,
        "memlink_daemon_alive{{segment=\"{seg}\",pid=\"{}\"}} {}",
        d.pid,
        u8::from(d.alive)
    );
    family(
        &mut o,
        "daemon_heartbeat_age_seconds",
        "gauge",
        "Time since the daemon last swept its clients.",
    );
    let _ = writeln!(
        o,
        "memlink_daemon_heartbeat_age_seconds{{segment=\"{seg}\"}} {:.3}",
        d.heartbeat_age.as_secs_f64()
    );
    family(
        &mut o,
        "daemon_wakeups_total",
        "counter",
        "Wake-up syscalls made for the daemon.",
    );
    let _ = writeln!(o, "memlink_daemon_wakeups_total{{segment=\"{seg}\"}} {}", d.wakeups);
    family(&mut o, "clients", "gauge", "Client slots in use.");
    let _ = writeln!(o, "memlink_clients{{segment=\"{seg}\"}} {}", s.clients.len());
    family(
        &mut o,
        "recovered_clients_total",
        "counter",
        "Slots reclaimed from clients that died.",
    );
    let _ = writeln!(
        o,
        "memlink_recovered_clients_total{{segment=\"{seg}\"}} {}",
        s.recovered_clients
    );
    type PerClient = (&'static str, &'static str, &'static str, fn(&ClientInfo) -> u64);
    let per_client: [PerClient; 3] = [
        (
            "client_alive",
            "gauge",
            "Whether the client holds its liveness lock.",
            |c| u64::from(c.alive),
        ),
        (
            "channel_poisoned",
            "gauge",
            "Whether the client's channel is poisoned.",
            |c| u64::from(c.poisoned.is_some()),
        ),
        (
            "client_wakeups_total",
            "counter",
            "Wake-up syscalls made for the client.",
            |c| c.wakeups,
        ),
    ];
    for (name, kind, help, value) in per_client {
        family(&mut o, name, kind, help);
        for c in &s.clients {
            let _ = writeln!(
                o,
                "memlink_{name}{{segment=\"{seg}\",slot=\"{}\",pid=\"{}\"}} {}",
                c.id.slot(),
                c.pid,
                value(c)
            );
        }
    }
    type Metric = (&'static str, &'static str, &'static str, fn(&RingInfo) -> f64);
    let metrics: [Metric; 6] = [
        (
            "ring_fill_ratio",
            "gauge",
            "Fraction of the ring in use (1 if its positions are impossible).",
            |r| f64::from(r.fill),
        ),
        (
            "ring_messages_written_total",
            "counter",
            "Messages published into the ring.",
            |r| r.counters.messages_written as f64,
        ),
        (
            "ring_messages_read_total",
            "counter",
            "Messages consumed from the ring.",
            |r| r.counters.messages_read as f64,
        ),
        (
            "ring_bytes_written_total",
            "counter",
            "Payload bytes published into the ring.",
            |r| r.counters.bytes_written as f64,
        ),
        (
            "ring_bytes_read_total",
            "counter",
            "Payload bytes consumed from the ring.",
            |r| r.counters.bytes_read as f64,
        ),
        (
            "ring_full_events_total",
            "counter",
            "Writes refused because the ring was full.",
            |r| r.counters.full_events as f64,
        ),
    ];
    for (name, kind, help, value) in metrics {
        family(&mut o, name, kind, help);
        for c in &s.clients {
            for (dir, rings) in [("to_daemon", &c.to_daemon), ("to_client", &c.to_client)] {
                for p in Priority::ALL {
                    let _ = writeln!(
                        o,
                        "memlink_{name}{{segment=\"{seg}\",slot=\"{}\",pid=\"{}\",direction=\"{dir}\",tier=\"{}\"}} {}",
                        c.id.slot(),
                        c.pid,
                        tier(p),
                        value(&rings[p.index()])
                    );
                }
            }
        }
    }
    o
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
