//! B2 — two closers at once: "WaitGroup is reused before previous Wait has
//! returned" (coder/websocket #437; IBM/sarama #883). The Go shape:
//!
//! ```go
//! func (c *Conn) CloseNow() error {
//!     defer c.wg.Wait()     // even on the already-closed path
//!     if c.isClosed() { return errClosed }
//!     c.wg.Add(1)           // Add from zero while another closer Waits
//!     go c.closeHelper()
//!     ...
//! }
//! ```
//!
//! A `WaitGroup` cannot be waited on while tokens are minted (`wait` takes
//! `&mut self`), and a `Shutdown` may be drained by any number of closers:
//! one trigger wins, all return after the drain, none panics.
#![allow(clippy::disallowed_types)]

use std::sync::{Arc, Barrier};
use std::thread;

use quiescent::Shutdown;

/// Runs `closers` concurrent closers; returns (winners, closers that saw a
/// completed drain).
pub fn run(closers: usize) -> (usize, usize) {
    let conn = Shutdown::new();
    let helper = conn
        .spawn(|guard| guard.wait_triggered())
        .expect("fresh latch");
    let barrier = Arc::new(Barrier::new(closers));
    let results: Vec<(bool, usize)> = (0..closers)
        .map(|_| {
            let (conn, barrier) = (conn.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                let won = conn.trigger();
                conn.wait_drained();
                (won, conn.count())
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().expect("a closer panicked"))
        .collect();
    helper.join().expect("helper panicked");
    let winners = results.iter().filter(|r| r.0).count();
    let drained = results.iter().filter(|r| r.1 == 0).count();
    (winners, drained)
}

#[allow(dead_code)]
fn main() {
    let (winners, drained) = run(16);
    println!("B2: 16 concurrent closers: {winners} started the shutdown, {drained} returned after the drain, none panicked");
}
