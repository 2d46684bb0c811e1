//! Criterion benches of quiescent, side by side with crossbeam-utils'
//! `WaitGroup`, tokio-util's `TaskTracker` and a raw atomic: see
//! `BENCHMARKS.md` at the repository root. Run from the root with
//! `cargo bench -p quiescent-benches --bench compare`.
