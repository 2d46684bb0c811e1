//! Where the time of "trigger → 10,000 async guards drained" goes: runs the
//! `async_shutdown_10k` shape of `benches/compare.rs` repeatedly for
//! quiescent and for tokio-util, and prints the median time of each phase
//! (trigger call returned, drain complete). A profiling aid, not a bench:
//! `cargo run --release -p quiescent-benches --example drain_phases`.
#![allow(clippy::disallowed_types)] // the competitor and the harness use std types

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TASKS: usize = 10_000;
const ROUNDS: usize = 101;

async fn all_parked(started: &AtomicUsize) {
    while started.load(Ordering::Acquire) < TASKS {
        tokio::task::yield_now().await;
    }
    // Let the last task reach its first poll.
    tokio::time::sleep(Duration::from_millis(1)).await;
}

async fn quiescent_round() -> (Duration, Duration) {
    let shutdown = quiescent::Shutdown::new();
    let started = Arc::new(AtomicUsize::new(0));
    for _ in 0..TASKS {
        let guard = shutdown.guard().unwrap();
        let started = started.clone();
        tokio::spawn(async move {
            let stop = guard.wait_triggered_async();
            started.fetch_add(1, Ordering::Release);
            stop.await;
            drop(guard);
        });
    }
    all_parked(&started).await;
    let start = Instant::now();
    shutdown.trigger();
    let triggered = start.elapsed();
    shutdown.wait_drained_async().await;
    (triggered, start.elapsed())
}

async fn tokio_util_round() -> (Duration, Duration) {
    let cancel = tokio_util::sync::CancellationToken::new();
    let tracker = tokio_util::task::TaskTracker::new();
    let started = Arc::new(AtomicUsize::new(0));
    for _ in 0..TASKS {
        let cancel = cancel.clone();
        let started = started.clone();
        tracker.spawn(async move {
            let stop = cancel.cancelled();
            started.fetch_add(1, Ordering::Release);
            stop.await;
        });
    }
    all_parked(&started).await;
    let start = Instant::now();
    cancel.cancel();
    tracker.close();
    let triggered = start.elapsed();
    tracker.wait().await;
    (triggered, start.elapsed())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // Interleaved rounds, so that both see the same machine.
    let mut phases = [(Vec::new(), Vec::new()), (Vec::new(), Vec::new())];
    for _ in 0..ROUNDS {
        let q = rt.block_on(quiescent_round());
        let t = rt.block_on(tokio_util_round());
        for ((trig, total), (a, b)) in phases.iter_mut().zip([q, t]) {
            trig.push(a);
            total.push(b);
        }
    }
    // Each round's tokio-util drain over the quiescent one run just before
    // it: the spread of the ratio, not only of each side.
    let mut paired: Vec<f64> = phases[1]
        .1
        .iter()
        .zip(&phases[0].1)
        .map(|(t, q)| t.as_secs_f64() / q.as_secs_f64())
        .collect();
    paired.sort_by(f64::total_cmp);
    let at = |p: f64| paired[((paired.len() - 1) as f64 * p).round() as usize];
    let [q, t] = phases.map(|(trig, total)| (median(trig), median(total)));
    for (name, (trig, total)) in [("quiescent", q), ("tokio_util", t)] {
        println!("{name:>10}: trigger returned {trig:?}, drained {total:?} (medians of {ROUNDS}, interleaved)");
    }
    println!(
        "tokio_util / quiescent: {:.2}x (medians); per round p10 {:.2}x, median {:.2}x, p90 {:.2}x",
        t.1.as_secs_f64() / q.1.as_secs_f64(),
        at(0.10),
        at(0.50),
        at(0.90),
    );
}
