//! B5 — a close path spawned ~154k goroutines and nobody could say which task
//! was stuck (coder/websocket #434). The Go shape:
//!
//! ```go
//! for {
//!     select {
//!     case <-ctx.Done():
//!         go c.close()     // one more helper per iteration, forever
//!     ...
//!     }
//! }
//! ```
//!
//! Waiting here spawns nothing, and a bounded shutdown returns `Stragglers`
//! naming each stuck guard, where it was made and how long it has been held.

use std::time::Duration;

use quiescent::Shutdown;

/// Three readers that stop when told and a ping loop that does not; returns
/// the straggler report.
pub fn run() -> quiescent::Stragglers {
    let conn = Shutdown::new();
    for i in 0..3 {
        let guard = conn
            .guard_named(format!("reader-{i}"))
            .expect("fresh latch");
        std::thread::spawn(move || {
            guard.wait_triggered();
            drop(guard);
        });
    }
    let stuck = conn.guard_named("ping-loop").expect("fresh latch");
    std::thread::spawn(move || {
        let _stuck = stuck; // never looks at the latch
        std::thread::sleep(Duration::from_secs(3600));
    });
    conn.shutdown_timeout(Duration::from_millis(200))
        .expect_err("the ping loop is stuck")
}

#[allow(dead_code)]
fn main() {
    println!("B5: {}", run());
}
