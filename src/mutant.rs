//! Deliberately broken variants of the crate, which the loom models must
//! catch (`loom-tests/mutants.sh`). Each is a few lines next to the code it
//! breaks, behind `if mutant::is("name")`.
//!
//! Only a `--cfg loom` build (with the `loom` feature) has them: there the
//! variant is chosen by the `QUIESCENT_MUTANT` environment variable when the
//! model runs, so one build of the models serves every mutant. Everywhere
//! else `is` is a `const fn` that returns `false`, and the broken lines are
//! compiled out.

/// Whether this run is the mutant `name` (`QUIESCENT_MUTANT`, read once).
#[cfg(all(loom, feature = "loom"))]
pub(crate) fn is(name: &str) -> bool {
    static MUTANT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    MUTANT.get_or_init(|| std::env::var("QUIESCENT_MUTANT").unwrap_or_default()) == name
}

/// Never a mutant outside loom builds.
#[cfg(not(all(loom, feature = "loom")))]
#[inline(always)]
pub(crate) const fn is(_name: &str) -> bool {
    false
}
