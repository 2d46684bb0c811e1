//! A worker's write must be visible after the drain, in every interleaving
//! of the drop, the trigger and the wait.
#![cfg(loom)]

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use quiescent::Shutdown;

#[test]
fn worker_write_is_visible_after_the_drain() {
    loom::model(|| {
        let shutdown = Shutdown::new();
        let result = Arc::new(AtomicUsize::new(0));
        let guard = shutdown.guard().unwrap();
        let worker = {
            let result = result.clone();
            loom::thread::spawn(move || {
                result.store(42, Ordering::Relaxed);
                drop(guard);
            })
        };
        shutdown.shutdown();
        // The drain is a happens-before edge: a Relaxed load suffices.
        assert_eq!(result.load(Ordering::Relaxed), 42);
        worker.join().unwrap();
    });
}
