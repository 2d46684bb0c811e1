//! B1 — "sync: negative WaitGroup counter" on shutdown (gocryptotrader #1738).
//!
//! The Go connector did `Wg.Add(2)`, started two readers, and then a third
//! reader with no `Add`; each deferred `Done`: three `Done`s for two `Add`s.
//! Here a count exists only as a token handed out by the spawner, released
//! exactly once by `Drop`; there is no call that could release it twice
//! (`ui-tests/tests/ui/token_released_twice.rs` shows the attempt does not compile).
#![allow(clippy::disallowed_types)]

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::bounded;
use quiescent::WaitGroup;

#[test]
fn three_readers_three_tokens_wait_sees_all_three_exit() {
    bounded(20, || {
        for _ in 0..200 {
            let mut wg = WaitGroup::new();
            let exited = Arc::new(AtomicUsize::new(0));
            // Two readers for the public connection, and a third for the
            // authenticated one: each takes its own token from the spawner.
            for reader in 0..3 {
                let exited = exited.clone();
                wg.spawn(move || {
                    thread::sleep(Duration::from_micros(reader * 50));
                    exited.fetch_add(1, Ordering::Relaxed);
                });
            }
            assert!(wg.count() <= 3);
            wg.wait();
            assert_eq!(exited.load(Ordering::Relaxed), 3);
            assert_eq!(wg.count(), 0, "the count never goes below zero");
        }
    });
}
