//! B3 — a task panics before `Done`, `Wait` blocks forever (an order service
//! stalled ~15 minutes). The Go shape:
//!
//! ```go
//! wg.Add(1)
//! go func() {
//!     handle(order)   // panics (recovered further up)...
//!     wg.Done()       // ...so this never runs, and wg.Wait() hangs
//! }()
//! ```
//!
//! A token is released by `Drop`, which runs while unwinding, so `wait`
//! returns; and unlike Go 1.25's `wg.Go` (golang/go #76126) the waiter learns
//! that the work did not finish cleanly: `panicked()` counts it.

use quiescent::WaitGroup;

fn handle(order: u32) {
    if order == 3 {
        panic!("deliberate: order {order} is malformed");
    }
}

/// Runs five handlers, one of which panics; returns (count, panicked).
pub fn run() -> (usize, usize) {
    let mut wg = WaitGroup::new();
    let handlers: Vec<_> = (1..=5)
        .map(|order| wg.spawn(move || handle(order)))
        .collect();
    wg.wait(); // does not hang
    for h in handlers {
        let _ = h.join();
    }
    (wg.count(), wg.panicked())
}

#[allow(dead_code)]
fn main() {
    std::panic::set_hook(Box::new(|info| eprintln!("(expected) {info}")));
    let (count, panicked) = run();
    println!(
        "B3: wait returned with {count} tokens left; {panicked} handler panicked and is reported"
    );
}
