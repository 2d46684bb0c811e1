//! B2 — two closers at once: "WaitGroup is reused before previous Wait has
//! returned" (coder/websocket #437, IBM/sarama #883).
//!
//! Any number of threads may call `shutdown()` on one latch: exactly one
//! `trigger` wins, every caller returns only after the drain, none panics.
#![allow(clippy::disallowed_types)]

use crate::common;

use std::sync::{Arc, Barrier};
use std::thread;

use common::bounded;
use quiescent::Shutdown;

#[test]
fn two_to_sixteen_closers_at_once() {
    bounded(60, || {
        for closers in [2, 4, 8, 16] {
            for _ in 0..50 {
                let conn = Shutdown::new();
                // The connection's helpers: hold a guard until told to stop.
                let helpers: Vec<_> = (0..2)
                    .map(|_| conn.spawn(|guard| guard.wait_triggered()).unwrap())
                    .collect();
                let barrier = Arc::new(Barrier::new(closers));
                let results: Vec<_> = (0..closers)
                    .map(|_| {
                        let conn = conn.clone();
                        let barrier = barrier.clone();
                        thread::spawn(move || {
                            barrier.wait();
                            let first = conn.trigger();
                            let report = conn.wait_drained();
                            // Returned after the drain: nothing is left.
                            (first, conn.count(), report.panicked)
                        })
                    })
                    .collect::<Vec<_>>()
                    .into_iter()
                    .map(|h| h.join().expect("a closer panicked"))
                    .collect();
                assert_eq!(results.iter().filter(|r| r.0).count(), 1);
                assert!(results.iter().all(|r| r.1 == 0 && r.2 == 0));
                for h in helpers {
                    h.join().unwrap();
                }
            }
        }
    });
}

#[test]
fn sixteen_threads_calling_shutdown() {
    bounded(30, || {
        let conn = Shutdown::new();
        let guard = conn.guard().unwrap();
        let barrier = Arc::new(Barrier::new(17));
        let closers: Vec<_> = (0..16)
            .map(|_| {
                let conn = conn.clone();
                let barrier = barrier.clone();
                thread::spawn(move || {
                    barrier.wait();
                    conn.shutdown()
                })
            })
            .collect();
        barrier.wait();
        guard.wait_triggered();
        drop(guard);
        for c in closers {
            assert_eq!(c.join().expect("shutdown panicked").panicked, 0);
        }
    });
}
