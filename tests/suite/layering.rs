//! The rooms of `src/` keep their layering (issue "one room per concept"):
//! only the core (`src/core/`) names an atomic read-modify-write, the
//! reference protocol or `unsafe`; the core imports nothing from the layers
//! above it; and no file grows past about 600 lines of code, tests aside.
//! Read from the sources at test time, so a new file is checked too.

use std::fs;
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's lines before its unit tests (a `mod tests` behind
/// `#[cfg(test)]`), and whether the whole file is a test module.
fn non_test_lines(path: &Path, text: &str) -> Vec<String> {
    if path.file_name().is_some_and(|n| n == "tests.rs") {
        return Vec::new();
    }
    let lines: Vec<&str> = text.lines().collect();
    let end = lines
        .windows(2)
        .position(|w| {
            w[0].starts_with("#[cfg(") && w[0].contains("test") && w[1].starts_with("mod tests")
        })
        .unwrap_or(lines.len());
    lines[..end].iter().map(|l| l.to_string()).collect()
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with("//")
}

fn all() -> Vec<(String, Vec<String>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    sources(&root.join("src"), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = fs::read_to_string(&path).unwrap();
            let name = path.strip_prefix(root).unwrap().display().to_string();
            let lines = non_test_lines(&path, &text);
            (name, lines)
        })
        .collect()
}

#[test]
fn only_the_core_touches_atomics_references_and_unsafe() {
    const CORE_ONLY: [&str; 10] = [
        "fetch_add",
        "fetch_sub",
        "fetch_or",
        "fetch_and",
        "compare_exchange",
        "increment_strong_count",
        "decrement_strong_count",
        "Atomic",
        "unsafe",
        "fence(",
    ];
    let mut found = Vec::new();
    for (name, lines) in all() {
        if name.starts_with("src/core/") {
            continue;
        }
        for (i, line) in lines.iter().enumerate() {
            if is_comment(line) {
                continue;
            }
            for word in CORE_ONLY {
                if line.contains(word) {
                    found.push(format!("{name}:{}: {}", i + 1, line.trim()));
                }
            }
        }
    }
    assert!(found.is_empty(), "outside src/core/:\n{}", found.join("\n"));
}

#[test]
fn the_core_imports_nothing_from_above() {
    let mut found = Vec::new();
    for (name, lines) in all() {
        if !name.starts_with("src/core/") {
            continue;
        }
        for (i, line) in lines.iter().enumerate() {
            let upward = [
                "crate::shutdown",
                "crate::wait_group",
                "crate::report",
                "crate::signals",
            ];
            if !is_comment(line) && upward.iter().any(|up| line.contains(up)) {
                found.push(format!("{name}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "the core imports upward:\n{}",
        found.join("\n")
    );
}

#[test]
fn no_file_is_over_about_600_lines_of_code() {
    let mut found = Vec::new();
    for (name, lines) in all() {
        let code = lines
            .iter()
            .filter(|l| !is_comment(l) && !l.trim().is_empty())
            .count();
        if code > 600 {
            found.push(format!("{name}: {code} lines of code"));
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}
