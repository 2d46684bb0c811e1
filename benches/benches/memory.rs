//! Memory as the work grows: heap bytes per guard, per named guard and per
//! child latch, next to tokio-util's `TaskTracker` token and child
//! `CancellationToken`, counted by a global allocator that tallies live
//! bytes. Each figure is the growth of live heap bytes over 10,000 items,
//! divided by 10,000, plus the item's own inline size. Deterministic, so a
//! plain `harness = false` bench that prints a table:
//! `cargo bench -p quiescent-benches --bench memory`.
#![allow(clippy::disallowed_types)] // the counter and the peer use std types

use std::alloc::{GlobalAlloc, Layout, System};
use std::mem::size_of_val;
use std::sync::atomic::{AtomicIsize, Ordering};

/// The system allocator, counting live bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const N: usize = 10_000;

/// Bytes per item: heap growth while `N` items made by `make` live, over
/// `N`, plus the inline size of one item (the `Vec` holding them is
/// allocated before counting starts).
fn per_item<T>(mut make: impl FnMut(usize) -> T) -> f64 {
    let mut items: Vec<T> = Vec::with_capacity(N);
    let before = LIVE.load(Ordering::Relaxed);
    for i in 0..N {
        items.push(make(i));
    }
    let heap = (LIVE.load(Ordering::Relaxed) - before) as f64 / N as f64;
    let inline = items.first().map_or(0, |item| size_of_val(item));
    drop(items);
    heap + inline as f64
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not run it.
    // A fresh root per row: dead children of an earlier row would be pruned
    // (freed) while a later row allocates, and hide its growth.
    let root = quiescent::Shutdown::new;
    let tracker = tokio_util::task::TaskTracker::new();
    let token = tokio_util::sync::CancellationToken::new();
    let wg = quiescent::WaitGroup::new();
    let rows = [
        ("quiescent Token", per_item(|_| wg.token())),
        ("quiescent Guard", {
            let root = root();
            per_item(|_| root.guard().unwrap())
        }),
        ("quiescent Guard, named (static name)", {
            let root = root();
            per_item(|_| root.guard_named("worker").unwrap())
        }),
        ("quiescent Guard, named (owned name)", {
            let root = root();
            per_item(|i| root.guard_named(format!("worker {i}")).unwrap())
        }),
        ("quiescent child latch", {
            let root = root();
            per_item(|_| root.child().unwrap())
        }),
        ("quiescent child latch + 1 guard", {
            let root = root();
            per_item(|_| {
                let child = root.child().unwrap();
                let guard = child.guard().unwrap();
                (child, guard)
            })
        }),
        (
            "tokio-util TaskTracker token",
            per_item(|_| tracker.token()),
        ),
        (
            "tokio-util child CancellationToken",
            per_item(|_| token.child_token()),
        ),
    ];
    println!("| item | bytes each (inline + heap) |");
    println!("|---|---:|");
    for (name, bytes) in rows {
        println!("| {name} | {bytes:.1} |");
    }
}
