//! The documentation keeps its promises: every public type and every public
//! function of them has a runnable example, every blocking one says so in a
//! `# Blocking` section, and every one that returns a future has a
//! `# Cancel safety` section, and every timed wait a `# Loom` section. Read from the sources, so a new method without
//! them fails here.

/// `(file, source)` of the modules that define the public types.
const SOURCES: [(&str, &str); 13] = [
    ("src/wait_group.rs", include_str!("../../src/wait_group.rs")),
    (
        "src/shutdown/mod.rs",
        include_str!("../../src/shutdown/mod.rs"),
    ),
    (
        "src/shutdown/drain.rs",
        include_str!("../../src/shutdown/drain.rs"),
    ),
    (
        "src/shutdown/spawn.rs",
        include_str!("../../src/shutdown/spawn.rs"),
    ),
    (
        "src/shutdown/guard.rs",
        include_str!("../../src/shutdown/guard.rs"),
    ),
    (
        "src/shutdown/futures.rs",
        include_str!("../../src/shutdown/futures.rs"),
    ),
    (
        "src/shutdown/latch.rs",
        include_str!("../../src/shutdown/latch.rs"),
    ),
    (
        "src/shutdown/tree.rs",
        include_str!("../../src/shutdown/tree.rs"),
    ),
    ("src/report/mod.rs", include_str!("../../src/report/mod.rs")),
    (
        "src/report/text.rs",
        include_str!("../../src/report/text.rs"),
    ),
    (
        "src/report/registry.rs",
        include_str!("../../src/report/registry.rs"),
    ),
    ("src/signals.rs", include_str!("../../src/signals.rs")),
    ("src/tower.rs", include_str!("../../src/tower.rs")),
];

/// Each `pub fn` with its doc comment (the `///` lines above it).
fn public_fns() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (file, source) in SOURCES {
        let lines: Vec<&str> = source.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start();
            let Some(rest) = trimmed
                .strip_prefix("pub fn ")
                .or_else(|| trimmed.strip_prefix("pub struct "))
            else {
                continue;
            };
            if rest.starts_with("__") {
                continue; // hidden, for the loom models only
            }
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let mut doc = Vec::new();
            for above in lines[..i].iter().rev() {
                let above = above.trim_start();
                if above.starts_with("///") {
                    doc.push(above);
                } else if !above.starts_with("#[") {
                    break;
                }
            }
            doc.reverse();
            // The signature may span lines: up to the opening brace.
            let signature: String = lines[i..]
                .iter()
                .take_while(|l| !l.trim_end().ends_with('{'))
                .chain(lines[i..].iter().find(|l| l.trim_end().ends_with('{')))
                .copied()
                .collect();
            out.push((
                format!("{file}:{} {name}", i + 1),
                doc.join("\n"),
                signature,
            ));
        }
    }
    out
}

#[test]
fn every_public_type_and_fn_has_a_runnable_example() {
    let missing: Vec<_> = public_fns()
        .into_iter()
        .filter(|(_, doc, _)| !doc.contains("```"))
        .map(|(at, _, _)| at)
        .collect();
    assert!(missing.len() < public_fns().len(), "the scan found nothing");
    assert!(missing.is_empty(), "no example: {missing:#?}");
}

#[test]
fn every_blocking_fn_has_a_blocking_section() {
    let blocking = |name: &str| {
        (name.starts_with("wait") || name.starts_with("shutdown")) && !name.ends_with("_async")
    };
    let fns = public_fns();
    let checked = fns
        .iter()
        .filter(|(at, _, _)| blocking(at.rsplit(' ').next().unwrap()));
    assert!(checked.clone().count() >= 10, "the scan found too few");
    let missing: Vec<_> = checked
        .filter(|(_, doc, _)| !doc.contains("# Blocking"))
        .map(|(at, _, _)| at.clone())
        .collect();
    assert!(missing.is_empty(), "no `# Blocking` section: {missing:#?}");
}

#[test]
fn every_fn_returning_a_future_has_a_cancel_safety_section() {
    let futures = [
        "Wait<",
        "Triggered",
        "Drained",
        "DrainedUntil<",
        "Tracked<",
        "UntilTriggered<",
        "Forced",
        "PhasedDrain<",
    ];
    let fns = public_fns();
    let returning: Vec<_> = fns
        .iter()
        .filter(|(_, _, sig)| {
            sig.split("->")
                .nth(1)
                .is_some_and(|ret| futures.iter().any(|f| ret.contains(f)))
        })
        .collect();
    assert!(
        returning.len() >= 8,
        "the scan found too few: {}",
        returning.len()
    );
    let missing: Vec<_> = returning
        .iter()
        .filter(|(_, doc, _)| !doc.contains("# Cancel safety"))
        .map(|(at, _, _)| at.clone())
        .collect();
    assert!(
        missing.is_empty(),
        "no `# Cancel safety` section: {missing:#?}"
    );
}

#[test]
fn every_timed_wait_has_a_loom_section() {
    let fns = public_fns();
    let timed: Vec<_> = fns
        .iter()
        .filter(|(at, _, _)| {
            let name = at.rsplit(' ').next().unwrap();
            name.ends_with("_timeout") || name.ends_with("_deadline")
        })
        .collect();
    assert!(timed.len() >= 6, "the scan found too few: {}", timed.len());
    let missing: Vec<_> = timed
        .iter()
        .filter(|(_, doc, _)| !doc.contains("# Loom"))
        .map(|(at, _, _)| at.clone())
        .collect();
    assert!(missing.is_empty(), "no `# Loom` section: {missing:#?}");
}

/// The README's loom figures are the suite's: the models in
/// `loom-tests/tests/`, how many run with a preemption bound, and the
/// mutants of `loom-tests/mutants.sh`.
#[test]
fn the_readme_counts_the_loom_models_and_mutants_it_has() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let (mut models, mut bounded) = (0, 0);
    for entry in std::fs::read_dir(root.join("loom-tests/tests")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        models += text.matches("#[test]").count();
        bounded += text.matches("    bounded(").count() + text.matches("    bounded_at(").count();
    }
    let script = std::fs::read_to_string(root.join("loom-tests/mutants.sh")).unwrap();
    let mut mutants: Vec<&str> = script
        .lines()
        .filter_map(|l| l.trim().strip_prefix('"'))
        .filter_map(|l| l.split('|').next())
        .filter(|m| !m.is_empty() && m.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        .collect();
    mutants.sort_unstable();
    mutants.dedup();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let claim = format!(
        "runs {models} models in CI, {} of them exhaustively",
        models - bounded
    );
    assert!(readme.contains(&claim), "README should say: {claim}");
    let claim = format!("shows each can fail: {} deliberately broken", mutants.len());
    assert!(readme.contains(&claim), "README should say: {claim}");
}
