//! The misuses that must not compile, re-checked with trybuild so that the
//! test fails if they start compiling or fail for another reason
//! (regenerate the `.stderr` files with `TRYBUILD=overwrite`).

#[test]
fn misuse_is_rejected_by_the_borrow_checker() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
