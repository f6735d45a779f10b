//! inproc: clock-free round trips between two threads of one process, the
//! cases interleaved so that a move of the vCPUs hits all of them alike.
//!
//! ```text
//! cargo run --release --example inproc [-- CHUNK ROUNDS]
//! ```
//!
//! Four cases: a bare cache-line ping-pong (the floor), this crate's ring
//! (`RingBuffer`), the `rtrb` crate, and the transport (daemon and client in
//! two threads), each a 64-byte echo between threads pinned to CPU 0 and
//! CPU 1. A round runs CHUNK round trips (default 2000) of each case in
//! turn and times each chunk as a whole, with no clock read per round trip;
//! ROUNDS rounds (default 500) follow one another. Printed per case: the
//! median time per round trip, and the median over rounds of its ratio to
//! the floor of the same round, with the quartiles of that ratio.
//!
//! The host may move the vCPUs near or far apart at any time, which changes
//! every figure 2-4x. Runs measured one after the other then compare
//! different placements; chunks a fraction of a millisecond apart do not,
//! which makes these ratios the ones to use for an A/B of two builds.
//!
//! `compare` and `p2` time every round trip, for percentiles; that adds a
//! clock read to every figure, the floor's included, which this example
//! leaves out. Its ratios are therefore the stricter ones.

#[path = "support/mod.rs"]
mod support;

#[macro_use]
#[path = "support/cases.rs"]
mod cases;

use std::thread;
use std::time::Instant;

use cases::Side;
use support::pin_to_cpu;

const PAYLOAD: usize = 64;

/// A case: its name, the side that starts each round trip, the echo.
type Case = (&'static str, Side, Side);

build_cases!(memlink_shm, ring, transport);

fn main() {
    let arg = |i: usize, default: u64| {
        std::env::args()
            .nth(i)
            .map_or(default, |s| s.parse().expect("CHUNK and ROUNDS are numbers"))
    };
    let (chunk, rounds) = (arg(1, 2_000).max(1), arg(2, 500).max(1) as usize);
    println!(
        "inproc: {PAYLOAD} B round trips between two threads pinned to CPU 0 and 1; \
         {rounds} rounds of {chunk} per case, cases interleaved"
    );
    let mut list: Vec<Case> = Vec::new();
    for (name, make) in [
        ("cache-line floor", cases::floor as cases::MakeCase),
        ("memlink ring", ring),
        ("rtrb", cases::rtrb),
        ("memlink transport", transport),
    ] {
        let (drive, echo) = make(false);
        list.push((name, drive, echo));
    }
    let per_rt = run(chunk, rounds, list);
    println!(
        "\n{:<18} {:>12} {:>14} {:>16}",
        "case", "median", "vs floor", "(quartiles)"
    );
    for (name, ns) in &per_rt {
        let ratios: Vec<f64> = ns.iter().zip(&per_rt[0].1).map(|(v, f)| v / f).collect();
        let (q1, med, q3) = quartiles(ratios);
        println!(
            "{name:<18} {:>9.1} ns {med:>13.2}x {:>16}",
            quartiles(ns.clone()).1,
            format!("{q1:.2}-{q3:.2}x")
        );
    }
}

/// Runs `rounds` rounds of `chunk` round trips of every case; returns each
/// case's name and its time per round trip in every round (ns).
fn run(chunk: u64, rounds: usize, cases: Vec<Case>) -> Vec<(&'static str, Vec<f64>)> {
    let n = cases.len();
    let mut names = Vec::with_capacity(n);
    let mut drivers = Vec::with_capacity(n);
    let mut echoes = Vec::with_capacity(n);
    for (name, drive, echo) in cases {
        names.push(name);
        drivers.push(drive);
        echoes.push(echo);
    }
    let echo = thread::spawn(move || {
        pin_to_cpu(1);
        for _ in 0..rounds {
            for e in echoes.iter_mut() {
                e(chunk);
            }
        }
    });
    pin_to_cpu(0);
    let mut times = vec![Vec::with_capacity(rounds); n];
    for _ in 0..rounds {
        for (d, t) in drivers.iter_mut().zip(&mut times) {
            let t0 = Instant::now();
            d(chunk);
            t.push(t0.elapsed().as_nanos() as f64 / chunk as f64);
        }
    }
    echo.join().expect("echo thread");
    names.into_iter().zip(times).collect()
}

/// First quartile, median, third quartile.
fn quartiles(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |q: usize| v[(v.len() - 1) * q / 4];
    (at(1), at(2), at(3))
}
