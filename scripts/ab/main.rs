//! A/B of two builds of memlink-shm in one process (built and run by
//! `scripts/ab-inproc.sh`; not part of the crate).
//!
//! `base` is the crate at a commit, `work` the working tree. Each case is a
//! 64-byte echo between two threads pinned to CPU 0 and CPU 1. A round runs
//! CHUNK round trips of every case in turn, so that a move of the vCPUs by
//! the host, which changes every figure 2-4x, hits all cases alike. Cases
//! come in two loops: back to back, and with a clock read per round trip as
//! `compare` and `p2` time them (the gap it leaves changes the results).
//!
//! Printed: each case's median time per round trip and median ratio to the
//! floor of the same round, then work/base per round (median and quartiles):
//! the A/B figure.

#[macro_use]
mod cases; // examples/support/cases.rs, copied here by the script

use std::time::Instant;

use cases::{floor, rtrb, MakeCase};

fn pin(cpu: usize) {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    if rustix::thread::sched_setaffinity(None, &set).is_err() {
        eprintln!("warning: could not pin to CPU {cpu}");
    }
}

build_cases!(base, base_ring, base_transport);
build_cases!(work, work_ring, work_transport);

fn quartiles(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |q: usize| v[(v.len() - 1) * q / 4];
    (at(1), at(2), at(3))
}

fn main() {
    let arg = |i: usize, default: u64| {
        std::env::args()
            .nth(i)
            .map_or(default, |s| s.parse().expect("CHUNK and ROUNDS are numbers"))
    };
    let (chunk, rounds) = (arg(1, 2_000).max(1), arg(2, 150).max(1) as usize);
    let mut names = Vec::new();
    let (mut drivers, mut echoes) = (Vec::new(), Vec::new());
    for clock in [false, true] {
        let loop_name = if clock { "clocked" } else { "back-to-back" };
        let cases: [(&str, MakeCase); 6] = [
            ("floor", floor),
            ("rtrb", rtrb),
            ("base ring", base_ring),
            ("work ring", work_ring),
            ("base transport", base_transport),
            ("work transport", work_transport),
        ];
        for (name, make) in cases {
            let (d, e) = make(clock);
            names.push(format!("{loop_name:<13} {name}"));
            drivers.push(d);
            echoes.push(e);
        }
    }
    let echo = std::thread::spawn(move || {
        pin(1);
        for _ in 0..rounds {
            for e in echoes.iter_mut() {
                e(chunk);
            }
        }
    });
    pin(0);
    let mut times = vec![Vec::with_capacity(rounds); drivers.len()];
    for _ in 0..rounds {
        for (d, t) in drivers.iter_mut().zip(&mut times) {
            let t0 = Instant::now();
            d(chunk);
            t.push(t0.elapsed().as_nanos() as f64 / chunk as f64);
        }
    }
    echo.join().expect("echo thread");

    println!("{rounds} rounds of {chunk} round trips per case, cases interleaved\n");
    println!("{:<30} {:>10} {:>9}", "case", "median", "vs floor");
    for (i, name) in names.iter().enumerate() {
        let floor = &times[i / 6 * 6];
        let ratio: Vec<f64> = times[i].iter().zip(floor).map(|(v, f)| v / f).collect();
        println!(
            "{name:<30} {:>7.1} ns {:>8.2}x",
            quartiles(times[i].clone()).1,
            quartiles(ratio).1
        );
    }
    println!("\nwork / base, per round (below 1: the working tree is faster)");
    for (i, name) in names.iter().enumerate().filter(|(_, n)| n.contains("work")) {
        let ratio: Vec<f64> = times[i].iter().zip(&times[i - 1]).map(|(w, b)| w / b).collect();
        let (q1, med, q3) = quartiles(ratio);
        println!(
            "{:<30} {med:>6.3} (quartiles {q1:.3}-{q3:.3})",
            name.replace("work ", "")
        );
    }
}
