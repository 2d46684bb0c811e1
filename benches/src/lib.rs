//! Criterion benches of quiescent, side by side with crossbeam-utils'
//! `WaitGroup`, tokio-util's `TaskTracker` and a raw atomic: see
//! `BENCHMARKS.md` at the repository root. Run from the root with
//! `cargo bench -p quiescent-benches --bench compare`.

use std::fs;
use std::path::Path;

/// ns per iteration of each sample of the bench `id` (`group/name`), from
/// criterion's `sample.json` under `root` (`target/criterion`).
pub fn samples(root: &Path, id: &str) -> Option<Vec<f64>> {
    let json = fs::read_to_string(root.join(id).join("new/sample.json")).ok()?;
    let numbers = |key: &str| -> Option<Vec<f64>> {
        let start = json.find(&format!("\"{key}\":["))? + key.len() + 4;
        let end = start + json[start..].find(']')?;
        json[start..end]
            .split(',')
            .map(|n| n.trim().parse().ok())
            .collect()
    };
    let (iters, times) = (numbers("iters")?, numbers("times")?);
    Some(iters.iter().zip(&times).map(|(i, t)| t / i).collect())
}

/// The p10, median and p90 of the bench `id`'s samples.
pub fn spread(root: &Path, id: &str) -> Option<(f64, f64, f64)> {
    let mut v = samples(root, id)?;
    v.sort_by(f64::total_cmp);
    let at = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    Some((at(0.10), at(0.50), at(0.90)))
}
