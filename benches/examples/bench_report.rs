//! Turns the last `cargo bench --bench compare` run into the table and chart
//! of BENCHMARKS.md: reads criterion's estimates under `target/criterion`,
//! prints a Markdown table of medians and ratios to quiescent, and draws
//! `benchmarks.svg` with plotters (the plotting crate criterion uses).
//!
//! ```sh
//! cargo bench --bench compare -- --warm-up-time 1 --measurement-time 3
//! cargo run --release -p quiescent-benches --example bench_report > /tmp/table.md
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

/// Group → (implementation → median in nanoseconds), in the bench's order.
type Results = Vec<(String, Vec<(String, f64)>)>;

/// The order the groups appear in benches/compare.rs.
const GROUPS: &[&str] = &[
    "clone_drop",
    "clone_drop_contended",
    "guard_drop",
    "guard_drop_contended",
    "drained_report",
    "go_uncontended",
    "go_add_done",
    "go_add_done_work",
    "go_wait",
    "go_wait_work",
    "go_actually_wait",
    "wakeup_latency",
    "fan_in_1m",
    "async_shutdown_10k",
    "select_loop",
    "tower_layer_one_thread",
    "tower_layer_every_core",
    "tower_layer_text_body",
];

/// The sizes of the `tree_growth` group (child latches × 100 guards).
const TREE_SIZES: &[usize] = &[1, 10, 100, 1_000];
/// Its implementations.
const TREE_IMPLS: &[&str] = &["quiescent_blocking", "quiescent_async", "tokio_util_async"];

/// The median's point estimate in criterion's `estimates.json`.
fn median(json: &str) -> Option<f64> {
    let rest = &json[json.find("\"median\"")?..];
    let rest = &rest[rest.find("\"point_estimate\":")? + "\"point_estimate\":".len()..];
    let end = rest.find([',', '}'])?;
    rest[..end].trim().parse().ok()
}

fn collect(dir: &Path, prefix: &str, out: &mut BTreeMap<String, f64>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "new" {
            if let Some(m) = fs::read_to_string(path.join("estimates.json"))
                .ok()
                .and_then(|j| median(&j))
            {
                out.insert(prefix.trim_end_matches('/').to_string(), m);
            }
        } else if path.is_dir() && name != "report" && name != "base" && name != "change" {
            collect(&path, &format!("{prefix}{name}/"), out);
        }
    }
}

fn load(root: &Path) -> Results {
    GROUPS
        .iter()
        .filter_map(|group| {
            let mut benches = BTreeMap::new();
            collect(&root.join(group), "", &mut benches);
            if benches.is_empty() {
                return None;
            }
            let mut rows: Vec<(String, f64)> = benches.into_iter().collect();
            // quiescent's rows first, then the others by time.
            rows.sort_by(|a, b| {
                let qa = !a.0.starts_with("quiescent")
                    && !a.0.starts_with("token")
                    && !a.0.starts_with("guard");
                let qb = !b.0.starts_with("quiescent")
                    && !b.0.starts_with("token")
                    && !b.0.starts_with("guard");
                qa.cmp(&qb).then(a.1.total_cmp(&b.1))
            });
            Some((group.to_string(), rows))
        })
        .collect()
}

fn human(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.2} ns")
    }
}

fn table(results: &Results, root: &Path) {
    println!("| group | implementation | median | p10–p90 | ratio to the first row |");
    println!("|---|---|---:|---:|---:|");
    for (group, rows) in results {
        let base = rows[0].1;
        for (name, ns) in rows {
            let range = quiescent_benches::spread(root, &format!("{group}/{name}"))
                .map_or_else(String::new, |(lo, _, hi)| {
                    format!("{}–{}", human(lo), human(hi))
                });
            println!(
                "| {group} | {name} | {} | {range} | {:.2}× |",
                human(*ns),
                ns / base
            );
        }
    }
}

fn chart(results: &Results, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let rows: usize = results.iter().map(|(_, r)| r.len() + 1).sum();
    let (width, row_h, label_w) = (900u32, 18i32, 300i32);
    let height = (rows as i32 * row_h + 60) as u32;
    let root = SVGBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let text = ("sans-serif", 13).into_font();
    let bold = ("sans-serif", 14).into_font().style(FontStyle::Bold);
    root.draw(&Text::new(
        "median time relative to the group's first row (quiescent), capped at 8×",
        (10, 10),
        bold.clone(),
    ))?;
    let max_ratio = 8.0;
    let bar_w = (width as i32 - label_w - 80) as f64;
    let mut y = 40;
    for (group, rows) in results {
        root.draw(&Text::new(group.clone(), (10, y), bold.clone()))?;
        y += row_h;
        let base = rows[0].1;
        for (name, ns) in rows {
            let ratio = ns / base;
            let w = (ratio.min(max_ratio) / max_ratio * bar_w) as i32;
            let colour = if name.starts_with("quiescent")
                || name.starts_with("token")
                || name.starts_with("guard")
            {
                RGBColor(46, 125, 50)
            } else if name.starts_with("raw") {
                RGBColor(120, 120, 120)
            } else {
                RGBColor(198, 40, 40)
            };
            root.draw(&Text::new(name.clone(), (24, y), text.clone()))?;
            root.draw(&Rectangle::new(
                [(label_w, y), (label_w + w.max(1), y + row_h - 5)],
                colour.filled(),
            ))?;
            root.draw(&Text::new(
                format!("{:.2}× ({})", ratio, human(*ns)),
                (label_w + w.max(1) + 6, y),
                text.clone(),
            ))?;
            y += row_h;
        }
    }
    root.present()?;
    Ok(())
}

/// `tree_growth`: implementation → (children, median ns) per size.
fn load_tree(root: &Path) -> Vec<(&'static str, Vec<(usize, f64)>)> {
    let mut medians = BTreeMap::new();
    collect(&root.join("tree_growth"), "", &mut medians);
    TREE_IMPLS
        .iter()
        .map(|imp| {
            let points = TREE_SIZES
                .iter()
                .filter_map(|n| Some((*n, *medians.get(&format!("{imp}/{n}"))?)))
                .collect();
            (*imp, points)
        })
        .filter(|(_, points): &(_, Vec<_>)| !points.is_empty())
        .collect()
}

fn tree_table(tree: &[(&str, Vec<(usize, f64)>)]) {
    println!();
    println!(
        "| tree_growth: children × 100 guards | implementation | trigger → drained | per guard |"
    );
    println!("|---:|---|---:|---:|");
    for n in TREE_SIZES {
        for (imp, points) in tree {
            if let Some((_, ns)) = points.iter().find(|(m, _)| m == n) {
                let per = ns / (*n as f64 * 100.0);
                println!("| {n} | {imp} | {} | {} |", human(*ns), human(per));
            }
        }
    }
}

/// Time to drain against the tree's size, log-log, one line per
/// implementation.
fn tree_chart(
    tree: &[(&str, Vec<(usize, f64)>)],
    path: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (700, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let max = tree
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, ns)| *ns))
        .fold(1.0, f64::max);
    let min = tree
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, ns)| *ns))
        .fold(f64::MAX, f64::min);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "trigger → drained, N child latches × 100 guards (log-log)",
            ("sans-serif", 16),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (0.5f64..2_000f64).log_scale(),
            (min / 2.0 / 1e3..max * 2.0 / 1e3).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc("child latches (× 100 guards)")
        .y_desc("µs")
        .draw()?;
    let colours = [
        RGBColor(46, 125, 50),
        RGBColor(25, 118, 210),
        RGBColor(198, 40, 40),
    ];
    for ((imp, points), colour) in tree.iter().zip(colours) {
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|(n, ns)| (*n as f64, ns / 1e3)),
                colour.stroke_width(2),
            ))?
            .label(*imp)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}

fn main() {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    let results = load(&target.join("criterion"));
    if results.is_empty() {
        eprintln!(
            "no criterion results under {}: run `cargo bench -p quiescent-benches --bench compare` first",
            target.display()
        );
        std::process::exit(1);
    }
    table(&results, &target.join("criterion"));
    // The chart compares implementations; the tower groups compare layers
    // against a bare service, and stay in the table.
    let compared: Results = results
        .iter()
        .filter(|(group, _)| !group.starts_with("tower_"))
        .cloned()
        .collect();
    let svg = Path::new(env!("CARGO_MANIFEST_DIR")).join("../benchmarks.svg");
    if let Err(e) = chart(&compared, &svg) {
        eprintln!("could not draw {}: {e}", svg.display());
        std::process::exit(1);
    }
    eprintln!("wrote {}", svg.display());
    let tree = load_tree(&target.join("criterion"));
    if !tree.is_empty() {
        tree_table(&tree);
        let svg = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tree_growth.svg");
        if let Err(e) = tree_chart(&tree, &svg) {
            eprintln!("could not draw {}: {e}", svg.display());
            std::process::exit(1);
        }
        eprintln!("wrote {}", svg.display());
    }
}
