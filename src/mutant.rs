//! Deliberately broken variants of the crate, which the loom models must
//! catch (`loom-tests/mutants.sh`). Each is a few lines next to the code it
//! breaks, behind `if mutant::is("name")`.
//!
//! The variant is chosen by the `QUIESCENT_MUTANT` environment variable *at
//! compile time*, and only in a `--cfg loom` build: everywhere else `is` is
//! `false` in a `const`, so the broken lines are compiled out. An environment
//! variable rather than a `--cfg` so that switching mutants rebuilds this
//! crate alone (cargo tracks `option_env!`), not every dependency as a change
//! of `RUSTFLAGS` would.

/// The mutant of this build, or `""`.
const MUTANT: &str = match option_env!("QUIESCENT_MUTANT") {
    Some(mutant) if cfg!(loom) => mutant,
    _ => "",
};

/// Whether this build is the mutant `name`.
pub(crate) const fn is(name: &str) -> bool {
    let (a, b) = (MUTANT.as_bytes(), name.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}
