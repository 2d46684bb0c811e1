//! B4 — `Add` inside the goroutine races `Wait` (go vet's `waitgroup`
//! analyzer, staticcheck SA2000).
//!
//! `spawn` takes the token before the thread exists, so a wait issued the
//! moment the last spawn returns still counts every worker.
#![allow(clippy::disallowed_types)]

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::bounded;
use quiescent::{Shutdown, WaitGroup};

#[test]
fn wait_group_spawn_counts_before_the_thread_runs() {
    bounded(30, || {
        for _ in 0..20 {
            let mut wg = WaitGroup::new();
            let ran = Arc::new(AtomicUsize::new(0));
            for _ in 0..50 {
                let ran = ran.clone();
                wg.spawn(move || {
                    ran.fetch_add(1, Ordering::Relaxed);
                });
            }
            wg.wait();
            assert_eq!(ran.load(Ordering::Relaxed), 50);
        }
    });
}

#[test]
fn shutdown_spawn_counts_before_the_thread_runs() {
    bounded(30, || {
        for _ in 0..20 {
            let shutdown = Shutdown::new();
            let ran = Arc::new(AtomicUsize::new(0));
            for _ in 0..50 {
                let ran = ran.clone();
                shutdown
                    .spawn(move |_guard| {
                        ran.fetch_add(1, Ordering::Relaxed);
                    })
                    .unwrap();
            }
            shutdown.shutdown();
            assert_eq!(ran.load(Ordering::Relaxed), 50);
        }
    });
}
