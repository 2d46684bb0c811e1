//! Wake-up latency, measured the controlled way: a waiter blocks, a helper
//! thread spins 50 µs (so the waiter is surely asleep), takes a timestamp and
//! releases the last count; the latency is the time until the waiter runs.
//! All implementations are measured in the same process, interleaved round
//! by round, and reported as percentiles, because the cost is dominated by
//! the OS waking a sleeping thread on an idle core, which drifts over a run
//! far more than any difference between the libraries.
//!
//! Run: `cargo bench --bench wakeup`. `thread::park` is the floor: the least
//! any blocking wait can do.
#![allow(clippy::disallowed_types)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

type Job = Box<dyn FnOnce() + Send>;

struct Helper {
    jobs: mpsc::Sender<Job>,
    stamps: mpsc::Receiver<Instant>,
}

impl Helper {
    fn new() -> Self {
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let (stamp_tx, stamps) = mpsc::channel();
        thread::spawn(move || {
            for job in job_rx {
                let until = Instant::now() + Duration::from_micros(50);
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
                let at = Instant::now();
                job();
                stamp_tx.send(at).unwrap();
            }
        });
        Self { jobs, stamps }
    }

    /// Hands `release` to the helper, runs `wait`, returns the latency.
    fn once(&self, release: Job, wait: impl FnOnce()) -> Duration {
        self.jobs.send(release).unwrap();
        wait();
        let woke = Instant::now();
        woke.saturating_duration_since(self.stamps.recv().unwrap())
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing
    // and gets a quick smoke run.
    let full = std::env::args().any(|a| a == "--bench");
    let (rounds, per_round) = if full { (10, 300) } else { (1, 20) };
    let helper = Helper::new();
    let names = [
        "quiescent",
        "crossbeam",
        "tokio_util",
        "naive_mutex",
        "thread_park",
    ];
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); names.len()];
    for _ in 0..rounds {
        for _ in 0..per_round {
            samples[0].push({
                let mut wg = quiescent::WaitGroup::new();
                let t = wg.token();
                helper.once(Box::new(move || drop(t)), || wg.wait())
            });
            samples[1].push({
                let wg = crossbeam_utils::sync::WaitGroup::new();
                let t = wg.clone();
                helper.once(Box::new(move || drop(t)), || wg.wait())
            });
            samples[2].push({
                let tracker = tokio_util::task::TaskTracker::new();
                let t = tracker.token();
                tracker.close();
                helper.once(Box::new(move || drop(t)), || {
                    futures_executor::block_on(tracker.wait())
                })
            });
            samples[3].push({
                let pair = Arc::new((Mutex::new(1usize), Condvar::new()));
                let p = pair.clone();
                let release = move || {
                    *p.0.lock().unwrap() = 0;
                    p.1.notify_all();
                };
                helper.once(Box::new(release), || {
                    let mut n = pair.0.lock().unwrap();
                    while *n != 0 {
                        n = pair.1.wait(n).unwrap();
                    }
                })
            });
            samples[4].push({
                let me = thread::current();
                let flag = Arc::new(AtomicBool::new(false));
                let f = flag.clone();
                let release = move || {
                    f.store(true, Ordering::Release);
                    me.unpark();
                };
                helper.once(Box::new(release), || {
                    while !flag.load(Ordering::Acquire) {
                        thread::park();
                    }
                })
            });
        }
    }
    print_table(
        &format!(
            "wake-up latency ({} samples each, interleaved)",
            rounds * per_round
        ),
        &names,
        samples,
    );

    // Go's ActuallyWait, interleaved the same way: a new group, a token into
    // a new thread that drops it, wait.
    let names = ["quiescent", "crossbeam", "tokio_util", "naive_mutex"];
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); names.len()];
    let timed = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        f();
        start.elapsed()
    };
    for _ in 0..rounds {
        for _ in 0..per_round {
            samples[0].push(timed(&mut || {
                let mut wg = quiescent::WaitGroup::new();
                let t = wg.token();
                thread::spawn(move || drop(t));
                wg.wait();
            }));
            samples[1].push(timed(&mut || {
                let wg = crossbeam_utils::sync::WaitGroup::new();
                let t = wg.clone();
                thread::spawn(move || drop(t));
                wg.wait();
            }));
            samples[2].push(timed(&mut || {
                let tracker = tokio_util::task::TaskTracker::new();
                let t = tracker.token();
                thread::spawn(move || drop(t));
                tracker.close();
                futures_executor::block_on(tracker.wait());
            }));
            samples[3].push(timed(&mut || {
                let pair = Arc::new((Mutex::new(1usize), Condvar::new()));
                let p = pair.clone();
                thread::spawn(move || {
                    *p.0.lock().unwrap() = 0;
                    p.1.notify_all();
                });
                let mut n = pair.0.lock().unwrap();
                while *n != 0 {
                    n = pair.1.wait(n).unwrap();
                }
            }));
        }
    }
    print_table(
        &format!(
            "Go's ActuallyWait ({} samples each, interleaved)",
            rounds * per_round
        ),
        &names,
        samples,
    );
}

fn print_table(title: &str, names: &[&str], samples: Vec<Vec<Duration>>) {
    println!("{title}");
    println!("| implementation | p10 | p50 | p90 |");
    println!("|---|---:|---:|---:|");
    for (name, mut s) in names.iter().zip(samples) {
        s.sort();
        let p = |q: usize| s[(s.len() - 1) * q / 100];
        println!("| {name} | {:.1?} | {:.1?} | {:.1?} |", p(10), p(50), p(90));
    }
    println!();
}
