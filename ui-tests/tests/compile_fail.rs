//! The misuses that must not compile, re-checked with trybuild so that the
//! test fails if they start compiling or fail for another reason
//! (regenerate the `.stderr` files with `TRYBUILD=overwrite`).

use std::path::Path;

#[test]
fn misuse_is_rejected_by_the_borrow_checker() {
    // Every case has its expected error next to it, so none is skipped
    // silently (trybuild would only write a missing `.stderr`, not fail).
    let ui = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui");
    let cases: Vec<_> = std::fs::read_dir(&ui)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    assert_eq!(cases.len(), 5, "{cases:?}");
    for case in &cases {
        assert!(
            case.with_extension("stderr").exists(),
            "no .stderr for {case:?}"
        );
    }
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
