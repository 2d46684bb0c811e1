//! B1 — "sync: negative WaitGroup counter" during shutdown (gocryptotrader
//! #1738). The Go shape:
//!
//! ```go
//! g.Wg.Add(2)
//! go g.wsReadData(publicConn)   // defer g.Wg.Done()
//! go g.wsReadData(privateConn)  // defer g.Wg.Done()
//! // later, the authenticated connection:
//! go g.wsReadData(authConn)     // defer g.Wg.Done()  <- no Add: 3 Done, 2 Add
//! g.Wg.Wait()                   // panic: sync: negative WaitGroup counter
//! ```
//!
//! With quiescent a count exists only as a `Token` the spawner hands out, and
//! it is released once, by `Drop`. There is no `done()` to call a third time;
//! dropping a token twice does not compile (error[E0382], see the `Token`
//! docs and ui-tests/tests/ui/token_released_twice.rs).
#![allow(clippy::disallowed_types)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use quiescent::WaitGroup;

/// Runs the scenario; returns (readers that exited, count after wait).
pub fn run() -> (usize, usize) {
    let mut wg = WaitGroup::new();
    let exited = Arc::new(AtomicUsize::new(0));
    for conn in ["public", "private", "auth"] {
        let exited = exited.clone();
        // `spawn` takes the token: a reader cannot exist without one.
        wg.spawn(move || {
            let _ = conn; // ... read until the connection closes ...
            exited.fetch_add(1, Ordering::Relaxed);
        });
    }
    wg.wait();
    (exited.load(Ordering::Relaxed), wg.count())
}

#[allow(dead_code)]
fn main() {
    let (exited, count) = run();
    println!("B1: {exited} readers exited, each released its own token once; count is {count}, never negative");
}
