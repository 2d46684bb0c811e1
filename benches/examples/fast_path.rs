//! The fast paths, each in a function of its own, for reading the generated
//! code (issue "performance": a token, an unnamed guard and a guard clone
//! should each be one atomic read-modify-write to take and one to drop):
//!
//! ```sh
//! cargo build --release -p quiescent-benches --example fast_path
//! objdump -d --no-show-raw-insn -C target/release/examples/fast_path | \
//!     awk '/<fast_path::(token|guard|guard_clone|raw)_cycle/,/^$/'
//! ```
#![allow(clippy::disallowed_types)] // the raw atomic pair, for comparison

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A token clone and drop.
#[inline(never)]
pub fn token_cycle(token: &quiescent::Token) {
    drop(black_box(token.clone()));
}

/// An unnamed guard's admission and drop.
#[inline(never)]
pub fn guard_cycle(shutdown: &quiescent::Shutdown) {
    drop(black_box(shutdown.guard()));
}

/// An unnamed guard's clone and drop.
#[inline(never)]
pub fn guard_clone_cycle(guard: &quiescent::Guard) {
    drop(black_box(guard.clone()));
}

/// The raw atomic pair.
#[inline(never)]
pub fn raw_cycle(count: &AtomicUsize) {
    count.fetch_add(1, Ordering::Relaxed);
    black_box(count.fetch_sub(1, Ordering::Release));
}

fn main() {
    let wg = quiescent::WaitGroup::new();
    let token = wg.token();
    let shutdown = quiescent::Shutdown::new();
    let guard = shutdown.guard().unwrap();
    let count = AtomicUsize::new(1);
    for _ in 0..1000 {
        token_cycle(&token);
        guard_cycle(&shutdown);
        guard_clone_cycle(&guard);
        raw_cycle(&count);
    }
    println!("ran each fast path 1000 times");
}
