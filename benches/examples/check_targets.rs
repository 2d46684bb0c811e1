//! The verdict on DESIGN.md's performance targets, from criterion's last
//! run: reads each bench's samples under `target/criterion`, and prints
//! every target as met, within noise, or missed, with the median ratio and
//! the ratio's spread (from the p10 and p90 of the samples). BENCHMARKS.md
//! and the README quote what this prints; rerun it to check them.
//!
//! ```sh
//! cargo bench -p quiescent-benches --bench compare --bench tower -- --warm-up-time 1 --measurement-time 3
//! cargo run --release -p quiescent-benches --example check_targets
//! ```

use std::path::PathBuf;

use quiescent_benches::spread;

/// What a target compares.
enum Target {
    /// `a / b ≤ limit`.
    Ratio(&'static str, &'static str, f64),
    /// `b / a ≥ limit`: `a` faster than `b` by at least `limit`.
    Faster(&'static str, &'static str, f64),
    /// `a ≤ limit` ns.
    Under(&'static str, f64),
    /// `a - base ≤ guard`: `a`'s overhead over `base` at most a guard's
    /// cost (a layer's cost against a guard's).
    Overhead(&'static str, &'static str, &'static str),
}

const TARGETS: &[(&str, Target)] = &[
    (
        "token clone+drop ≤ 1.3× the raw pair",
        Target::Ratio("clone_drop/quiescent", "clone_drop/raw_atomic", 1.3),
    ),
    (
        "token clone+drop on every core ≤ 1.5× the raw pair",
        Target::Ratio(
            "clone_drop_contended/quiescent",
            "clone_drop_contended/raw_atomic",
            1.5,
        ),
    ),
    (
        "token faster than crossbeam",
        Target::Faster("clone_drop/quiescent", "clone_drop/crossbeam", 1.0),
    ),
    (
        "token faster than tokio-util",
        Target::Faster("clone_drop/quiescent", "clone_drop/tokio_util", 1.0),
    ),
    (
        "token on every core faster than crossbeam",
        Target::Faster(
            "clone_drop_contended/quiescent",
            "clone_drop_contended/crossbeam",
            1.0,
        ),
    ),
    (
        "token on every core faster than tokio-util",
        Target::Faster(
            "clone_drop_contended/quiescent",
            "clone_drop_contended/tokio_util",
            1.0,
        ),
    ),
    (
        "Shutdown::guard+drop ≤ 1.15× token clone+drop",
        Target::Ratio("guard_drop/guard_busy", "guard_drop/token_clone_drop", 1.15),
    ),
    (
        "Guard::clone+drop ≤ 1.15× token clone+drop",
        Target::Ratio(
            "guard_drop/guard_clone",
            "guard_drop/token_clone_drop",
            1.15,
        ),
    ),
    (
        "guard+drop on every core ≤ 1.3× the raw pair",
        Target::Ratio(
            "guard_drop_contended/guard_busy",
            "guard_drop_contended/raw_atomic",
            1.3,
        ),
    ),
    (
        "guard faster than a TaskTracker token",
        Target::Faster("guard_drop/guard_busy", "guard_drop/tokio_util_token", 1.0),
    ),
    (
        "a drained report borrowed ≤ 1 ns",
        Target::Under("drained_report/quiescent_try_wait_drained", 1.0),
    ),
    (
        "10k async guards drained ≥ 1.25× faster than tokio-util",
        Target::Faster(
            "async_shutdown_10k/quiescent/10000",
            "async_shutdown_10k/tokio_util/10000",
            1.25,
        ),
    ),
    (
        "tower layer, one thread: at most one guard's cost over bare",
        Target::Overhead(
            "tower_layer_one_thread/quiescent_unnamed",
            "tower_layer_one_thread/bare",
            "guard_drop/guard_busy",
        ),
    ),
    (
        "tower layer, every core: at most one guard's cost over bare",
        Target::Overhead(
            "tower_layer_every_core/quiescent_unnamed",
            "tower_layer_every_core/bare",
            "guard_drop_contended/guard_busy",
        ),
    ),
    (
        "(not a DESIGN.md target) tower layer, one thread: at most one guard's cost over a layer that only wraps",
        Target::Overhead(
            "tower_layer_one_thread/quiescent_unnamed",
            "tower_layer_one_thread/wrap_only",
            "guard_drop/guard_busy",
        ),
    ),
    (
        "(not a DESIGN.md target) tower layer, every core: at most one guard's cost over a layer that only wraps",
        Target::Overhead(
            "tower_layer_every_core/quiescent_unnamed",
            "tower_layer_every_core/wrap_only",
            "guard_drop_contended/guard_busy",
        ),
    ),
    (
        "(not a DESIGN.md target) tower layer, one thread: ≤ 1.15× a layer counting with one raw atomic",
        Target::Ratio(
            "tower_layer_one_thread/quiescent_unnamed",
            "tower_layer_one_thread/wrap_raw_atomic",
            1.15,
        ),
    ),
    (
        "(not a DESIGN.md target) tower layer, every core: ≤ 1.3× a layer counting with one raw atomic",
        Target::Ratio(
            "tower_layer_every_core/quiescent_unnamed",
            "tower_layer_every_core/wrap_raw_atomic",
            1.3,
        ),
    ),
    (
        "tower layer, one thread: below a TaskTracker layer",
        Target::Faster(
            "tower_layer_one_thread/quiescent_unnamed",
            "tower_layer_one_thread/tokio_util_tracker",
            1.0,
        ),
    ),
    (
        "tower layer, every core: below a TaskTracker layer",
        Target::Faster(
            "tower_layer_every_core/quiescent_unnamed",
            "tower_layer_every_core/tokio_util_tracker",
            1.0,
        ),
    ),
];

fn verdict(best: bool, median: bool) -> &'static str {
    match (best, median) {
        (_, true) if best => "met",
        (true, _) | (_, true) => "within noise",
        _ => "missed",
    }
}

fn main() {
    let target_dir =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    let root = target_dir.join("criterion");
    println!("| target | measured (median; spread from p10/p90) | verdict |");
    println!("|---|---|---|");
    let mut missing = 0;
    for (what, target) in TARGETS {
        let row = match target {
            Target::Ratio(a, b, limit) | Target::Faster(b, a, limit) => {
                let faster = matches!(target, Target::Faster(..));
                match (spread(&root, a), spread(&root, b)) {
                    (Some((a10, a50, a90)), Some((b10, b50, b90))) => {
                        let (lo, mid, hi) = (a10 / b90, a50 / b50, a90 / b10);
                        if faster {
                            // Bound the other way round: `a` is the slower
                            // side, so a/b is the speedup, wanted ≥ limit.
                            let v = verdict(lo >= *limit, mid >= *limit);
                            format!("{mid:.2}× ({lo:.2}–{hi:.2}×), want ≥ {limit} | {v}")
                        } else {
                            let v = verdict(hi <= *limit, mid <= *limit);
                            format!("{mid:.2}× ({lo:.2}–{hi:.2}×), want ≤ {limit} | {v}")
                        }
                    }
                    _ => String::new(),
                }
            }
            Target::Under(a, limit) => match spread(&root, a) {
                Some((a10, a50, a90)) => {
                    let v = verdict(a90 <= *limit, a50 <= *limit);
                    format!("{a50:.2} ns ({a10:.2}–{a90:.2}), want ≤ {limit} ns | {v}")
                }
                None => String::new(),
            },
            Target::Overhead(a, base, guard) => {
                match (spread(&root, a), spread(&root, base), spread(&root, guard)) {
                    (Some((_, a50, _)), Some((_, b50, _)), Some((g10, g50, g90))) => {
                        let over = a50 - b50;
                        let v = verdict(over <= g10, over <= g50.max(g90));
                        let base = base.rsplit('/').next().unwrap_or(base);
                        format!("{over:.1} ns over {base}, a guard {g50:.1} ns | {v}")
                    }
                    _ => String::new(),
                }
            }
        };
        if row.is_empty() {
            missing += 1;
            println!("| {what} | not measured in the last run | — |");
        } else {
            println!("| {what} | {row} |");
        }
    }
    if missing == TARGETS.len() {
        eprintln!(
            "no criterion results under {}: run the benches first",
            root.display()
        );
        std::process::exit(1);
    }
}
