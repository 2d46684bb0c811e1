//! B4 — `Add` inside the goroutine races `Wait` (go vet's `waitgroup`
//! analyzer, staticcheck SA2000). The Go shape:
//!
//! ```go
//! for _, job := range jobs {
//!     go func() {
//!         wg.Add(1)       // may run after wg.Wait() below has returned
//!         defer wg.Done()
//!         do(job)
//!     }()
//! }
//! wg.Wait()
//! ```
//!
//! `WaitGroup::spawn` takes the token before the thread exists, so the wait
//! that follows counts every job. (Minting a token inside the thread would
//! need `&WaitGroup` there while `wait` needs `&mut`: it does not compile.)
#![allow(clippy::disallowed_types)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use quiescent::WaitGroup;

/// Spawns `jobs` jobs and waits at once; returns how many had run.
pub fn run(jobs: usize) -> usize {
    let mut wg = WaitGroup::new();
    let done = Arc::new(AtomicUsize::new(0));
    for _ in 0..jobs {
        let done = done.clone();
        wg.spawn(move || {
            done.fetch_add(1, Ordering::Relaxed);
        });
    }
    wg.wait();
    done.load(Ordering::Relaxed)
}

#[allow(dead_code)]
fn main() {
    let ran = run(100);
    println!("B4: waited right after spawning 100 jobs: {ran} of 100 had finished");
}
