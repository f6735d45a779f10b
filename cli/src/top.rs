//! `memlink top NAME`: a live view of a segment, redrawn every interval from
//! two snapshots of `inspect::segment`: messages per second per tier and
//! per client, both ways, fill bars, wake-ups per second. Quits on `q`,
//! Esc or Ctrl-C.

use std::time::{Duration, Instant};

use memlink_shm::inspect::{self, ClientInfo, SegmentInfo};
use memlink_shm::Priority;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Row, Table};
use ratatui::{DefaultTerminal, Frame};

use crate::failure::Failure;
use crate::inspect::bar;
use crate::report;

pub fn run(name: &str, interval_ms: u64) -> Result<(), Failure> {
    let interval = Duration::from_millis(interval_ms.max(50));
    // Fail before taking the terminal over if the segment cannot be read.
    let first = inspect::segment(name).map_err(|e| Failure::open(name, e))?;
    let mut terminal = ratatui::try_init().map_err(|e| Failure::io("cannot use the terminal", e))?;
    let result = watch(&mut terminal, name, first, interval);
    ratatui::restore();
    result
}

/// What the view shows: the latest snapshot, and rates against the one
/// before.
struct View {
    now: SegmentInfo,
    rates: Vec<Rates>,
    daemon_wakeups_per_s: f64,
    error: Option<String>,
}

/// Per second, for one client.
#[derive(Default, Clone, Copy)]
struct Rates {
    to_daemon: [f64; 3],
    to_client: [f64; 3],
    wakeups: f64,
}

fn watch(terminal: &mut DefaultTerminal, name: &str, first: SegmentInfo, interval: Duration) -> Result<(), Failure> {
    let mut before = (first.clone(), Instant::now());
    let mut view = View {
        rates: vec![Rates::default(); first.clients.len()],
        now: first,
        daemon_wakeups_per_s: 0.0,
        error: None,
    };
    let mut next = Instant::now() + interval;
    loop {
        terminal
            .draw(|f| draw(f, &view, interval))
            .map_err(|e| Failure::io("cannot draw", e))?;
        // Sleep in the terminal's event wait until the next refresh.
        let wait = next.saturating_duration_since(Instant::now());
        if event::poll(wait).map_err(|e| Failure::io("terminal", e))? {
            if let Event::Key(k) = event::read().map_err(|e| Failure::io("terminal", e))? {
                let ctrl_c = k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL);
                if k.kind == KeyEventKind::Press && (matches!(k.code, KeyCode::Char('q') | KeyCode::Esc) || ctrl_c) {
                    return Ok(());
                }
            }
            continue;
        }
        next = Instant::now() + interval;
        match inspect::segment(name) {
            Ok(now) => {
                let at = Instant::now();
                let secs = at.duration_since(before.1).as_secs_f64().max(1e-3);
                view.rates = now.clients.iter().map(|c| rates(c, &before.0, secs)).collect();
                view.daemon_wakeups_per_s = now.daemon.wakeups.saturating_sub(before.0.daemon.wakeups) as f64 / secs;
                view.error = None;
                before = (now.clone(), at);
                view.now = now;
            }
            // The segment went away or became unreadable: say so, keep the last view.
            Err(e) => view.error = Some(Failure::open(name, e).to_string()),
        }
    }
}

/// A client's rates against its previous snapshot (none for a new client).
fn rates(c: &ClientInfo, before: &SegmentInfo, secs: f64) -> Rates {
    let Some(old) = before.clients.iter().find(|o| o.id == c.id) else {
        return Rates::default();
    };
    let per_s = |now: u64, then: u64| now.saturating_sub(then) as f64 / secs;
    let mut r = Rates {
        wakeups: per_s(c.wakeups, old.wakeups),
        ..Rates::default()
    };
    for p in Priority::ALL {
        let i = p.index();
        r.to_daemon[i] = per_s(
            c.to_daemon[i].counters.messages_written,
            old.to_daemon[i].counters.messages_written,
        );
        r.to_client[i] = per_s(
            c.to_client[i].counters.messages_written,
            old.to_client[i].counters.messages_written,
        );
    }
    r
}

/// A rate, short: "0", "950", "12.3k", "4.56M".
fn rate(v: f64) -> String {
    if v < 1e3 {
        format!("{v:.0}")
    } else if v < 1e6 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{:.2}M", v / 1e6)
    }
}

fn draw(f: &mut Frame, v: &View, interval: Duration) {
    let s = &v.now;
    let [head, body, foot] =
        Layout::vertical([Constraint::Length(4), Constraint::Min(3), Constraint::Length(1)]).areas(f.area());
    let d = &s.daemon;
    let total = |dir: fn(&Rates) -> &[f64; 3]| -> f64 { v.rates.iter().map(|r| dir(r).iter().sum::<f64>()).sum() };
    let header = vec![
        Line::from(format!(
            "memlink top  {}  (every {} ms, q quits)",
            s.name,
            interval.as_millis()
        )),
        Line::from(format!(
            "daemon pid {} {}{}, heartbeat {} ago, {} wake-ups/s",
            d.pid,
            if d.alive { "alive" } else { "DEAD" },
            if d.shutting_down { " (shutting down)" } else { "" },
            report::age(d.heartbeat_age.as_millis() as u64),
            rate(v.daemon_wakeups_per_s)
        )),
        Line::from(format!(
            "{} clients  to daemon {} msgs/s  to clients {} msgs/s",
            s.clients.len(),
            rate(total(|r| &r.to_daemon)),
            rate(total(|r| &r.to_client))
        )),
        Line::from(v.error.clone().unwrap_or_default()),
    ];
    f.render_widget(Paragraph::new(header), head);
    let widths = [
        Constraint::Length(6),
        Constraint::Length(8),
        Constraint::Length(9),
        Constraint::Length(22),
        Constraint::Length(22),
        Constraint::Length(17),
        Constraint::Length(17),
        Constraint::Length(9),
    ];
    let title = Row::new([
        "slot",
        "pid",
        "state",
        "to daemon C/H/L /s",
        "to client C/H/L /s",
        "fill to daemon",
        "fill to client",
        "wake/s",
    ])
    .style(Style::default().add_modifier(Modifier::BOLD));
    let rows = s.clients.iter().zip(&v.rates).map(|(c, r)| {
        let tiers = |x: &[f64; 3]| x.iter().map(|v| rate(*v)).collect::<Vec<_>>().join("/");
        let fullest = |rings: &[inspect::RingInfo; 3]| {
            let worst = rings.iter().max_by(|a, b| {
                a.fill
                    .total_cmp(&b.fill)
                    .then(b.positions_valid.cmp(&a.positions_valid))
            });
            worst.map(bar).unwrap_or_default()
        };
        let state = match (report::poisoned(c.poisoned), c.alive) {
            (Some(_), _) => "POISONED".to_owned(),
            (None, false) => "dead".to_owned(),
            (None, true) => report::state(c.state).to_owned(),
        };
        Row::new([
            c.id.slot().to_string(),
            c.pid.to_string(),
            state,
            tiers(&r.to_daemon),
            tiers(&r.to_client),
            fullest(&c.to_daemon),
            fullest(&c.to_client),
            rate(r.wakeups),
        ])
    });
    f.render_widget(
        Table::new(rows, widths)
            .header(title)
            .block(Block::bordered().title(" clients ")),
        body,
    );
    f.render_widget(Paragraph::new("q: quit"), foot);
}
