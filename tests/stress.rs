//! Stress outside loom: many threads and tasks hammering tokens, guards,
//! triggers and drains with random panics, asserting counts and reports
//! exactly. The default is short (CI); set `QUIESCENT_STRESS_ROUNDS` for a
//! long run (README.md gives the command).
#![allow(clippy::disallowed_types)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use common::{bounded, quiet_panics};
use quiescent::{Shutdown, WaitGroup};

fn rounds(default: usize) -> usize {
    std::env::var("QUIESCENT_STRESS_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(default)
}

/// A small deterministic generator (xorshift64*), seeded per thread.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

#[test]
fn wait_group_tokens_with_random_panics() {
    quiet_panics();
    let rounds = rounds(200);
    bounded(120, move || {
        let mut wg = WaitGroup::new();
        let mut panics = 0;
        for round in 0..rounds {
            let handles: Vec<_> = (0..4u64)
                .map(|t| {
                    let token = wg.token();
                    thread::spawn(move || {
                        let mut rng = Rng::new(round as u64 * 31 + t);
                        let mut held = vec![token];
                        for _ in 0..200 {
                            if rng.below(2) == 0 || held.len() == 1 {
                                held.push(held[0].clone());
                            } else {
                                held.pop();
                            }
                        }
                        assert!(held[0].count() >= held.len());
                        if rng.below(8) == 0 {
                            held.truncate(1); // exactly one token unwinds
                            panic!("deliberate stress panic");
                        }
                    })
                })
                .collect();
            wg.wait();
            assert_eq!(wg.count(), 0);
            panics += handles
                .into_iter()
                .map(|h| h.join())
                .filter(Result::is_err)
                .count();
            assert_eq!(wg.panicked(), panics);
        }
    });
}

#[test]
fn shutdown_guards_triggers_and_drains_with_random_panics() {
    quiet_panics();
    let rounds = rounds(100);
    bounded(120, move || {
        for round in 0..rounds {
            let root = Shutdown::new();
            let child = root.child().unwrap();
            let admitted = Arc::new(AtomicUsize::new(0));
            let start = Arc::new(Barrier::new(7));
            let workers: Vec<_> = (0..4u64)
                .map(|t| {
                    let (root, child) = (root.clone(), child.clone());
                    let (admitted, start) = (admitted.clone(), start.clone());
                    thread::spawn(move || {
                        let mut rng = Rng::new(round as u64 * 131 + t);
                        start.wait();
                        loop {
                            let latch = if rng.below(2) == 0 { &root } else { &child };
                            let guard = match rng.below(3) {
                                0 => latch.guard_named(format!("worker-{t}")),
                                _ => latch.guard(),
                            };
                            let Ok(guard) = guard else { return };
                            admitted.fetch_add(1, Ordering::Relaxed);
                            let extra = guard.clone();
                            if rng.below(64) == 0 {
                                panic!("deliberate stress panic");
                            }
                            if guard.is_triggered() {
                                return;
                            }
                            drop((guard, extra));
                        }
                    })
                })
                .collect();
            let drainers: Vec<_> = (0..2)
                .map(|_| {
                    let (root, start) = (root.clone(), start.clone());
                    thread::spawn(move || {
                        start.wait();
                        root.wait_drained_timeout(Duration::from_secs(30))
                    })
                })
                .collect();
            start.wait();
            // Trigger while the workers are admitting: once the first
            // guard is in (the test's time bound turns a stall into a failure).
            while admitted.load(Ordering::Relaxed) == 0 {
                thread::yield_now();
            }
            let first = root.trigger();
            assert!(first);
            assert!(root.guard().is_err() && child.guard().is_err());
            // Each worker panics at most once, holding two guards.
            let panicked: usize = workers
                .into_iter()
                .map(|w| if w.join().is_err() { 2 } else { 0 })
                .sum();
            for d in drainers {
                let report = d.join().unwrap().expect("drain timed out");
                assert_eq!(report.panicked, panicked);
            }
            assert_eq!(root.count(), 0);
        }
    });
}

#[test]
fn tokio_tasks_hammering_guards_and_tokens() {
    let rounds = rounds(20);
    bounded(120, move || {
        let rt = common::multi_thread_runtime();
        rt.block_on(async move {
            for _ in 0..rounds {
                let shutdown = Shutdown::new();
                let mut wg = WaitGroup::new();
                for i in 0..500 {
                    let guard = shutdown.guard().unwrap();
                    let token = wg.token();
                    tokio::spawn(async move {
                        if i % 2 == 0 {
                            guard.wait_triggered_async().await;
                        }
                        let copy = token.clone();
                        tokio::task::yield_now().await;
                        drop((guard, token, copy));
                    });
                }
                let drained = tokio::spawn(shutdown.wait_drained_async());
                tokio::task::yield_now().await;
                let report = shutdown.shutdown_async().await;
                assert_eq!(report.panicked, 0);
                wg.wait_async().await;
                assert_eq!((shutdown.count(), wg.count()), (0, 0));
                assert_eq!(drained.await.unwrap().panicked, 0);
            }
        });
    });
}
