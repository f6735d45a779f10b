//! The real `memlink` binary against real daemon and client processes: the
//! test binary re-executes itself in a child role (a daemon that reads
//! nothing, an echoing daemon, a client that sent known traffic, a client
//! that pings). Every test has a watchdog and removes its segments.

mod support;

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use memlink_shm::{Client, Daemon, Error, Priority};
use serde_json::Value;
use support::*;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn memlink_path() -> PathBuf {
    assert_cmd::cargo::cargo_bin("memlink")
}

fn memlink(args: &[&str]) -> Output {
    Command::new(memlink_path()).args(args).output().expect("run memlink")
}

/// Runs memlink, expects success, returns stdout.
fn ok(args: &[&str]) -> String {
    let out = memlink(args);
    assert!(
        out.status.success(),
        "memlink {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(args: &[&str]) -> Value {
    serde_json::from_str(&ok(args)).expect("valid JSON")
}

fn listed<'a>(ls: &'a Value, name: &str) -> &'a Value {
    ls["segments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name || s["path"].as_str().is_some_and(|p| p.ends_with(name)))
        .unwrap_or_else(|| panic!("{name} is not listed: {ls}"))
}

/// A tmux server of the test's own, its socket in a scratch directory (the
/// default socket would leave /tmp/tmux-UID behind); ended, with whatever
/// runs in it, when dropped, also when the test fails.
struct Tmux {
    socket: String,
    _dir: Scratch,
}

impl Tmux {
    fn new(tag: &str) -> Tmux {
        let dir = Scratch::new(&format!("tmux-{tag}"));
        Tmux {
            socket: dir.at("socket"),
            _dir: dir,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-S", &self.socket])
            .args(args)
            .output()
            .expect("tmux")
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

// ---------------------------------------------------------------------------
// Child roles
// ---------------------------------------------------------------------------

/// `quiet-daemon NAME`: creates the segment, reads nothing.
/// `echo-daemon NAME`: creates it and echoes every message to its sender.
/// `client NAME K`: sends K messages of 100 B (High), reads nothing.
/// `pinger NAME`: sends and waits for the echo, over and over.
fn run_role(r: &[String]) {
    let name = r[1].as_str();
    match r[0].as_str() {
        "quiet-daemon" => {
            let _d = Daemon::builder(name).max_clients(4).create().expect("create");
            println!("ready");
            until_stdin_closes();
        }
        "echo-daemon" => {
            let mut d = Daemon::builder(name).max_clients(4).create().expect("create");
            let stop = stop_when_stdin_closes();
            println!("ready");
            while !stop.load(Ordering::Relaxed) {
                match d.recv_timeout(Duration::from_millis(50)) {
                    Ok(m) => match d.send_to(m.client(), m.priority(), m.payload()) {
                        Ok(()) | Err(Error::UnknownClient(_)) => {}
                        Err(e) => panic!("echo: {e}"),
                    },
                    Err(Error::Timeout) => {}
                    Err(e) => panic!("recv: {e}"),
                }
            }
        }
        "client" => {
            let mut c = Client::connect(name).expect("connect");
            for _ in 0..r[2].parse::<u32>().unwrap() {
                c.send(Priority::High, &[5; 100]).expect("send");
            }
            println!("ready");
            until_stdin_closes();
        }
        "pinger" => {
            let mut c = Client::builder(name).spin(Duration::ZERO).connect().expect("connect");
            let stop = stop_when_stdin_closes();
            println!("ready");
            while !stop.load(Ordering::Relaxed) {
                c.send(Priority::High, b"ping").expect("ping");
                c.recv_timeout(STEP).expect("pong");
            }
        }
        other => panic!("unknown role {other}"),
    }
}

macro_rules! child_role {
    () => {
        if let Some(r) = role() {
            run_role(&r);
            return;
        }
    };
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn ls_and_inspect_show_pids_counts_and_fill() {
    child_role!();
    let _w = watchdog();
    let name = unique("traffic");
    let _r = Removed(name.clone());
    let test = "ls_and_inspect_show_pids_counts_and_fill";
    let daemon = Role::start(test, &["quiet-daemon", &name]);
    let a = Role::start(test, &["client", &name, "10"]);
    let b = Role::start(test, &["client", &name, "20"]);

    let ls = json(&["ls", "--json"]);
    assert_eq!(ls["schema"], 1);
    let me = listed(&ls, &name);
    assert_eq!(me["daemon_pid"], daemon.pid());
    assert_eq!(me["daemon_alive"], true);
    assert_eq!(me["clients"], 2);
    assert_eq!(me["poisoned"], 0);
    let text = ok(&["ls"]);
    let line = text
        .lines()
        .find(|l| l.starts_with(&name))
        .expect("a line for the segment");
    assert!(line.contains(&format!("{} alive", daemon.pid())), "{line}");

    let info = json(&["inspect", &name, "--json"]);
    assert_eq!(info["schema"], 1);
    assert_eq!(info["daemon"]["pid"], daemon.pid());
    assert_eq!(info["client_count"], 2);
    let clients = info["clients"].as_array().unwrap();
    for (role, sent) in [(&a, 10), (&b, 20)] {
        let c = clients
            .iter()
            .find(|c| c["pid"] == role.pid())
            .unwrap_or_else(|| panic!("client {} missing: {info}", role.pid()));
        assert_eq!(
            (c["alive"].clone(), c["state"].clone()),
            (true.into(), "connected".into())
        );
        let high = &c["to_daemon"]["high"];
        assert_eq!(high["messages_written"], sent);
        assert_eq!(high["bytes_written"], sent * 100);
        assert_eq!(high["messages_read"], 0);
        assert!(high["fill"].as_f64().unwrap() > 0.0 && high["positions_valid"] == true);
        assert_eq!(c["to_daemon"]["low"]["messages_written"], 0);
        assert_eq!(c["to_client"]["high"]["fill"], 0.0);
        assert!(c["poisoned"].is_null());
    }
    let text = ok(&["inspect", &name]);
    for pid in [daemon.pid(), a.pid(), b.pid()] {
        assert!(text.contains(&format!("pid {pid} alive")), "{pid} missing:\n{text}");
    }
    let prom = ok(&["inspect", &name, "--format", "prometheus"]);
    assert!(
        prom.contains(&format!("memlink_clients{{segment=\"{name}\"}} 2")),
        "{prom}"
    );
    let written = format!(
        "memlink_ring_messages_written_total{{segment=\"{name}\",slot=\"1\",pid=\"{}\",direction=\"to_daemon\",tier=\"high\"}} 20",
        b.pid()
    );
    assert!(prom.contains(&written), "{written} missing:\n{prom}");
    assert!(a.finish() && b.finish() && daemon.finish());
}

#[test]
fn inspect_a_poisoned_channel_and_a_dead_daemon() {
    child_role!();
    let _w = watchdog();
    // Poisoned: the daemon finds a record header no ring can hold.
    let name = unique("poisoned");
    let _r = Removed(name.clone());
    let mut d = Daemon::create(&name).unwrap();
    let mut c = Client::connect(&name).unwrap();
    c.send(Priority::High, b"soon corrupt").unwrap();
    {
        use memlink_shm::testkit::{Direction, Peer};
        let peer = Peer::open(&name).unwrap();
        let at = peer
            .layout()
            .records_offset(c.control().id().slot(), Direction::ToDaemon, Priority::High);
        peer.write_u64(at, u64::MAX / 2);
    }
    assert!(matches!(d.recv_timeout(STEP), Err(Error::Corrupted(_))));
    let info = json(&["inspect", &name, "--json"]);
    assert_eq!(info["clients"][0]["poisoned"], "daemon");
    assert!(ok(&["inspect", &name]).contains("POISONED (found corrupt by the daemon)"));
    assert_eq!(listed(&json(&["ls", "--json"]), &name)["poisoned"], 1);
    drop((c, d));

    // Dead: the daemon's process is killed; its segment stays behind.
    let name = unique("dead");
    let _r = Removed(name.clone());
    let daemon = Role::start("inspect_a_poisoned_channel_and_a_dead_daemon", &["quiet-daemon", &name]);
    let pid = daemon.pid();
    let client = Client::connect(&name).unwrap();
    daemon.kill();
    let info = json(&["inspect", &name, "--json"]);
    assert_eq!(
        (info["daemon"]["pid"].clone(), info["daemon"]["alive"].clone()),
        (pid.into(), false.into())
    );
    assert_eq!(info["client_count"], 1);
    assert!(ok(&["inspect", &name]).contains(&format!("daemon    pid {pid} dead")));
    let ls = ok(&["ls"]);
    assert!(
        ls.lines()
            .any(|l| l.starts_with(&name) && l.contains(&format!("{pid} dead"))),
        "{ls}"
    );
    drop(client);
}

#[test]
fn errors_say_what_to_do_with_documented_exit_codes() {
    child_role!();
    let _w = watchdog();
    let out = memlink(&["inspect", &unique("missing")]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no segment named"));
    let dir = Scratch::new("errors");
    let junk = dir.at("junk");
    std::fs::write(&junk, vec![1u8; 8192]).unwrap();
    let out = memlink(&["inspect", &junk]);
    assert_eq!(out.status.code(), Some(5), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a usable memlink segment"));
    let out = memlink(&["inspect"]);
    assert_eq!(out.status.code(), Some(2), "a usage error");
    // Another user's segment (only root can give a file away).
    #[cfg(unix)]
    {
        let theirs = dir.at("theirs");
        Role::start(
            "errors_say_what_to_do_with_documented_exit_codes",
            &["quiet-daemon", &theirs],
        )
        .kill();
        if std::os::unix::fs::chown(&theirs, Some(65534), None).is_ok() {
            let out = memlink(&["inspect", &theirs]);
            assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
            assert!(String::from_utf8_lossy(&out.stderr).contains("run as the user that owns it"));
        } else {
            eprintln!("skipped the other user's segment: not allowed to chown (not root)");
        }
    }
}

/// A memlink built without the `bridge` feature keeps `memlink bridge` and
/// says how to get it, whatever follows it (even `--help`).
#[cfg(not(feature = "bridge"))]
#[test]
fn bridge_without_the_feature_says_how_to_get_it() {
    child_role!();
    let _w = watchdog();
    for args in [
        &["bridge"][..],
        &["bridge", "export", "x", "--listen", "tcp/127.0.0.1:7447"],
        &["bridge", "--help"],
    ] {
        let out = memlink(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "memlink {args:?}: {stderr}");
        assert!(
            stderr.contains("cargo install --path cli --features bridge")
                && stderr.contains("cargo run -p memlink-cli --features bridge -- bridge"),
            "memlink {args:?}: {stderr}"
        );
    }
    let help = ok(&["--help"]);
    assert!(help.contains("bridge"), "{help}");
}

#[test]
fn clean_removes_only_dead_segments_of_this_user() {
    child_role!();
    let _w = watchdog();
    let dir = Scratch::new("clean");
    let dir_arg = dir.0.to_string_lossy().into_owned();
    let test = "clean_removes_only_dead_segments_of_this_user";
    let live = Daemon::create(&dir.at("live")).unwrap();
    Role::start(test, &["quiet-daemon", &dir.at("dead")]).kill();
    Role::start(test, &["quiet-daemon", &dir.at("theirs")]).kill();
    #[cfg(unix)]
    let foreign = std::os::unix::fs::chown(dir.at("theirs"), Some(65534), None).is_ok();
    #[cfg(not(unix))]
    let foreign = false;
    if !foreign {
        // Not root: the third segment is this user's, and dead.
        std::fs::remove_file(dir.at("theirs")).unwrap();
        eprintln!("skipped the other user's segment: not allowed to chown (not root)");
    }
    let exists = |n: &str| Path::new(&dir.at(n)).exists();

    let dry = ok(&["clean", "--dry-run", "--dir", &dir_arg]);
    assert!(
        dry.contains(&format!(
            "would remove {} (segment whose daemon is dead)",
            dir.at("dead")
        )),
        "{dry}"
    );
    assert!(!dry.contains("live") && !dry.contains("theirs"), "{dry}");
    assert!(dry.contains("would remove 1 file(s)"), "{dry}");
    assert!(exists("dead") && exists("live"), "a dry run removed something");

    let done = ok(&["clean", "--dir", &dir_arg]);
    assert!(
        done.contains(&format!("removed {} (segment whose daemon is dead)", dir.at("dead"))),
        "{done}"
    );
    assert!(!exists("dead"));
    assert!(exists("live"), "a live daemon's segment was removed");
    assert_eq!(exists("theirs"), foreign, "another user's segment was removed");
    assert!(ok(&["clean", "--dir", &dir_arg]).contains("nothing to clean"));
    drop(live);
}

/// `top` in a real terminal (tmux): it shows the pinging client's rate and
/// quits on `q`. Skipped (loudly) without tmux, unless
/// MEMLINK_REQUIRE_TMUX is set (CI sets it).
#[test]
fn top_in_a_terminal_shows_live_rates_and_quits_on_q() {
    child_role!();
    let _w = watchdog();
    if Command::new("tmux").arg("-V").output().is_err() {
        assert!(std::env::var_os("MEMLINK_REQUIRE_TMUX").is_none(), "tmux is required");
        eprintln!("skipped: tmux is not installed");
        return;
    }
    let name = unique("top");
    let _r = Removed(name.clone());
    let test = "top_in_a_terminal_shows_live_rates_and_quits_on_q";
    let daemon = Role::start(test, &["echo-daemon", &name]);
    let pinger = Role::start(test, &["pinger", &name]);
    let session = unique("tmux");
    let server = Tmux::new("top");
    let tmux = |args: &[&str]| server.run(args);
    let cmd = format!("{} top {name} --interval 200", memlink_path().display());
    assert!(
        tmux(&["new-session", "-d", "-s", &session, "-x", "150", "-y", "30", &cmd])
            .status
            .success()
    );
    let screen = || String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-t", &session]).stdout).into_owned();
    // The pinger's row, once its rate to the daemon shows (bounded wait).
    let row_with_rate = |s: &str| {
        s.lines().find_map(|l| {
            let cells: Vec<&str> = l
                .trim_matches(|c: char| !c.is_ascii_alphanumeric())
                .split_whitespace()
                .collect();
            let ours = cells.get(1) == Some(&pinger.pid().to_string().as_str());
            let high = cells.get(3).and_then(|t| t.split('/').nth(1)).unwrap_or("0");
            (ours && high != "0").then(|| l.to_owned())
        })
    };
    let until = Instant::now() + STEP;
    let mut last = String::new();
    while Instant::now() < until {
        last = screen();
        if row_with_rate(&last).is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100)); // polling a screen, not synchronising
    }
    let row = row_with_rate(&last);
    assert!(row.is_some(), "no live rate for the pinger on screen:\n{last}");
    assert!(last.contains(&format!("daemon pid {} alive", daemon.pid())), "{last}");
    tmux(&["send-keys", "-t", &session, "q"]);
    let until = Instant::now() + STEP;
    while tmux(&["has-session", "-t", &session]).status.success() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    let still = tmux(&["has-session", "-t", &session]).status.success();
    if still {
        tmux(&["kill-session", "-t", &session]);
    }
    assert!(!still, "top did not quit on q");
    assert!(pinger.finish() && daemon.finish());
}

/// A daemon and a client exchanging checksummed messages see nothing of
/// `ls`, `inspect` and `top` running against them: every message comes
/// back whole and in order, no call fails, and no slot is taken.
#[test]
fn inspection_does_not_disturb_a_service_under_traffic() {
    child_role!();
    let _w = watchdog();
    let name = unique("undisturbed");
    let _r = Removed(name.clone());
    let daemon = Role::start(
        "inspection_does_not_disturb_a_service_under_traffic",
        &["echo-daemon", &name],
    );
    let mut client = Client::builder(&name).spin(Duration::ZERO).connect().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let looks = Arc::new(Mutex::new(0u32));
    let inspector = {
        let (stop, looks, name) = (Arc::clone(&stop), Arc::clone(&looks), name.clone());
        std::thread::spawn(move || {
            let tmux = Command::new("tmux")
                .arg("-V")
                .output()
                .is_ok()
                .then(|| Tmux::new("undisturbed"));
            let session = unique("tmux-undisturbed");
            if let Some(tmux) = &tmux {
                let cmd = format!("{} top {name} --interval 50", memlink_path().display());
                tmux.run(&["new-session", "-d", "-s", &session, "-x", "150", "-y", "30", &cmd]);
            }
            while !stop.load(Ordering::Relaxed) {
                let info = json(&["inspect", &name, "--json"]);
                assert_eq!(info["client_count"], 1, "inspection took a slot: {info}");
                json(&["ls", "--json"]);
                ok(&["inspect", &name, "--format", "prometheus"]);
                *looks.lock().unwrap() += 1;
            }
            if let Some(tmux) = &tmux {
                tmux.run(&["kill-session", "-t", &session]);
            }
        })
    };
    let mut seen = HashSet::new();
    let n: u64 = 20_000;
    for i in 0..n {
        let mut m = [0u8; 64];
        m[..8].copy_from_slice(&i.to_le_bytes());
        m[8..16].copy_from_slice(&(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_le_bytes());
        client.send(Priority::High, &m).expect("send");
        let back = client.recv_timeout(STEP).expect("echo");
        assert_eq!(back.payload(), m, "message {i} came back changed");
        seen.insert(i);
        // Keep going until the inspector has looked a few times.
        if i == n - 1 && *looks.lock().unwrap() < 3 {
            let until = Instant::now() + STEP;
            while *looks.lock().unwrap() < 3 && Instant::now() < until {
                client.send(Priority::Low, b"still here").expect("send");
                client.recv_timeout(STEP).expect("echo");
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    inspector.join().expect("the inspector failed");
    assert_eq!(seen.len() as u64, n);
    assert!(*looks.lock().unwrap() >= 3, "the inspector never looked");
    let info = json(&["inspect", &name, "--json"]);
    assert_eq!(
        (info["client_count"].clone(), info["recovered_clients"].clone()),
        (1.into(), 0.into())
    );
    assert!(info["clients"][0]["poisoned"].is_null());
    drop(client);
    assert!(daemon.finish(), "the daemon failed");
    let _ = std::io::stdout().flush();
}

/// `bench --quick` measures against a child process and prints its figures.
#[test]
fn bench_prints_round_trips_and_a_stream_rate() {
    child_role!();
    let _w = watchdog();
    let out = ok(&["bench", "--quick"]);
    for row in ["busy-poll", "park (no spin)", "one-way stream, msgs/s"] {
        let line = out
            .lines()
            .find(|l| l.starts_with(row))
            .unwrap_or_else(|| panic!("{row} missing:\n{out}"));
        let last: f64 = line.split_whitespace().last().unwrap().parse().expect("a rate");
        assert!(last > 0.0, "{line}");
    }
}
