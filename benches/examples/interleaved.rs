//! A second harness for the guard's cost (issue "performance"): samples of
//! each implementation alternated, so that a machine's drift (another
//! process, frequency, caches) lands on all of them alike, instead of on
//! whichever criterion happened to measure at the time. Prints p10, median
//! and p90 per implementation in ns per operation (one take + one drop),
//! then each target as met or missed.
//!
//! ```sh
//! cargo run --release -p quiescent-benches --example interleaved
//! ```
#![allow(clippy::disallowed_types)] // the raw atomic pair, and the harness

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;
use std::thread;
use std::time::Instant;

/// Operations per sample, samples per implementation.
const OPS: u64 = 20_000;
const SAMPLES: usize = 400;

/// One implementation: runs `n` take+drop cycles.
type Run<'a> = Box<dyn Fn(u64) + Sync + 'a>;

fn percentiles(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    (at(0.10), at(0.50), at(0.90))
}

/// Alternates the implementations sample by sample, `threads` threads each
/// running the cycle at once; ns per cycle of one thread.
fn measure(runs: &[(&str, Run<'_>)], threads: usize) -> Vec<(String, (f64, f64, f64))> {
    let mut samples = vec![Vec::with_capacity(SAMPLES); runs.len()];
    for round in 0..SAMPLES + 20 {
        for (i, (_, run)) in runs.iter().enumerate() {
            let barrier = Barrier::new(threads);
            let mut start = Instant::now();
            thread::scope(|s| {
                for _ in 1..threads {
                    s.spawn(|| {
                        barrier.wait();
                        run(OPS);
                    });
                }
                barrier.wait();
                start = Instant::now();
                run(OPS);
            });
            let ns = start.elapsed().as_nanos() as f64 / OPS as f64;
            if round >= 20 {
                samples[i].push(ns); // the first rounds warm up
            }
        }
    }
    runs.iter()
        .zip(samples)
        .map(|((name, _), s)| (name.to_string(), percentiles(s)))
        .collect()
}

fn print(title: &str, rows: &[(String, (f64, f64, f64))]) {
    println!("{title}");
    println!("| implementation | p10 | median | p90 |");
    println!("|---|---:|---:|---:|");
    for (name, (p10, p50, p90)) in rows {
        println!("| {name} | {p10:.2} ns | {p50:.2} ns | {p90:.2} ns |");
    }
    println!();
}

fn get<'a>(rows: &'a [(String, (f64, f64, f64))], name: &str) -> &'a (f64, f64, f64) {
    &rows.iter().find(|(n, _)| n == name).expect("measured").1
}

/// A target: `a / b ≤ limit`, by medians and by p10s.
fn verdict(rows: &[(String, (f64, f64, f64))], a: &str, b: &str, limit: f64) {
    let (a10, a50, _) = get(rows, a);
    let (b10, b50, _) = get(rows, b);
    let (median, p10) = (a50 / b50, a10 / b10);
    let met = if median <= limit && p10 <= limit {
        "met"
    } else if median <= limit || p10 <= limit {
        "within noise"
    } else {
        "missed"
    };
    println!("{a} / {b} ≤ {limit}: median {median:.2}×, p10 {p10:.2}× — {met}");
}

fn main() {
    let count = AtomicUsize::new(1);
    let wg = quiescent::WaitGroup::new();
    let token = wg.token();
    let shutdown = quiescent::Shutdown::new();
    let busy = shutdown.guard().unwrap();
    let one_thread: Vec<(&str, Run<'_>)> = vec![
        (
            "raw_atomic",
            Box::new(|n| {
                for _ in 0..n {
                    count.fetch_add(1, Ordering::Relaxed);
                    black_box(count.fetch_sub(1, Ordering::Release));
                }
            }),
        ),
        (
            "token_clone",
            Box::new(|n| {
                for _ in 0..n {
                    drop(black_box(token.clone()));
                }
            }),
        ),
        (
            "guard_busy",
            Box::new(|n| {
                for _ in 0..n {
                    drop(black_box(shutdown.guard()));
                }
            }),
        ),
        (
            "guard_clone",
            Box::new(|n| {
                for _ in 0..n {
                    drop(black_box(busy.clone()));
                }
            }),
        ),
    ];
    let rows = measure(&one_thread, 1);
    print("one thread, ns per take+drop", &rows);
    verdict(&rows, "token_clone", "raw_atomic", 1.3);
    verdict(&rows, "guard_busy", "token_clone", 1.15);
    verdict(&rows, "guard_clone", "token_clone", 1.15);
    println!();
    let rows = measure(&one_thread, 2);
    print(
        "two threads on one group or latch, ns per take+drop of one thread",
        &rows,
    );
    verdict(&rows, "token_clone", "raw_atomic", 1.5);
    verdict(&rows, "guard_busy", "raw_atomic", 1.3);
    verdict(&rows, "guard_clone", "raw_atomic", 1.3);
}
