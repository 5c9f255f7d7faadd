//! `cargo xtask bench --quality [DIR]`: retrieval quality on a BEIR collection (by default the
//! one bench/quality/build_default.py builds from this machine's Python standard library), and
//! its section of docs/benchmarks.md. Each kind of run rewrites only its own part of that file
//! (the figures above, the "Retrieval quality" section below), so neither erases the other.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::Value;
use xshell::{cmd, Shell};

use crate::util::{project_root, section, test_models_dir};

/// The heading that starts the quality section of docs/benchmarks.md.
pub const HEADING: &str = "## Retrieval quality";

/// The collections built on this machine when no DIR is given: (name, builder script, what it
/// is, whether a build may be reused: the man pages take minutes to render).
const BUILT: &[(&str, &str, &str, bool)] = &[
    (
        "default",
        "bench/quality/build_default.py",
        "docstrings of the Python standard library (bench/quality/build_default.py; each summary \
         line is a query, the rest of its docstring the one relevant document, other docstrings \
         distractors)",
        false,
    ),
    (
        "manpages",
        "bench/quality/build_manpages.py",
        "this machine's section-1 manual pages (bench/quality/build_manpages.py; each NAME \
         description is a query, the rest of its page, cut at 4,000 characters, the one relevant \
         document, other pages distractors; at most 10 pages of one command family)",
        true,
    ),
];

/// A collection to measure: its name, directory, what it is, and its builder script with whether
/// an earlier build may be reused (none for a directory given on the command line).
type Collection = (String, PathBuf, String, Option<(&'static str, bool)>);

pub fn run(sh: &Shell, dir: Option<PathBuf>, dry_run: bool) -> Result<()> {
    let model = test_models_dir().join("sentence-transformers/all-MiniLM-L6-v2");
    let collections: Vec<Collection> = match dir {
        Some(d) if !dry_run && !is_collection(&d) => bail!(
            "{} is not a BEIR collection: it needs corpus.jsonl, queries.jsonl and qrels/test.tsv",
            d.display()
        ),
        Some(d) => vec![(
            "given".into(),
            d.clone(),
            format!("`{}`", d.display()),
            None,
        )],
        None => BUILT
            .iter()
            .map(|(name, script, what, reuse)| {
                (
                    name.to_string(),
                    PathBuf::from(format!("target/quality/{name}")),
                    what.to_string(),
                    Some((*script, *reuse)),
                )
            })
            .collect(),
    };
    if dry_run {
        for (_, dir, _, build) in &collections {
            if let Some((script, _)) = build {
                println!("would run: python3 {script} {}", dir.display());
            }
        }
        println!("would run: cargo build --release --locked -p berth -p berth-bench");
        for (name, dir, _, _) in &collections {
            println!(
                "would run: target/release/berth-bench --berth target/release/berth --out \
                 target/bench/quality-{name}.json --quality {} --model-dir {}",
                dir.display(),
                model.display()
            );
        }
        println!("would write: the \"Retrieval quality\" section of docs/benchmarks.md");
        return Ok(());
    }
    if !model.join("model.safetensors").is_file() {
        bail!(
            "the built-in embedder's model is missing at {}: run `cargo xtask fixtures models`",
            model.display()
        );
    }
    for (name, dir, _, build) in &collections {
        let Some((script, reuse)) = build else {
            continue;
        };
        if *reuse && is_collection(dir) {
            println!("collection {name}: reusing {}", dir.display());
            continue;
        }
        section(&format!("collection: {name} ({script})"));
        cmd!(sh, "python3 {script} {dir}")
            .run()
            .with_context(|| format!("building the {name} collection needs python3"))?;
    }
    section("build: release binary and bench harness");
    cmd!(sh, "cargo build --release --locked -p berth -p berth-bench").run()?;
    sh.create_dir("target/bench")?;
    let mut reports = Vec::new();
    for (name, dir, what, _) in &collections {
        section(&format!(
            "measure: retrieval quality on {name} (SQLite, then PostgreSQL in Docker)"
        ));
        let out = format!("target/bench/quality-{name}.json");
        cmd!(
            sh,
            "target/release/berth-bench --berth target/release/berth --out {out} --quality {dir} --model-dir {model}"
        )
        .run()
        .with_context(|| format!("the quality harness failed on {name}"))?;
        let report: Value = serde_json::from_str(&sh.read_file(&out)?)?;
        reports.push((what.clone(), report));
    }
    let date = cmd!(sh, "date -u +%Y-%m-%d").read().unwrap_or_default();
    let text = section_text(&reports, &date, &super::machine(sh));
    println!("{text}");
    let doc_path = project_root().join("docs/benchmarks.md");
    let doc = std::fs::read_to_string(&doc_path).unwrap_or_else(|_| "# Benchmarks\n".into());
    std::fs::write(&doc_path, splice(&doc, None, Some(&text)))?;
    println!("wrote docs/benchmarks.md and target/bench/quality-*.json");
    Ok(())
}

/// The quality section of docs/benchmarks.md from the harness's reports, one per collection
/// (what it is, the report), and the fusion weights compared across them.
pub fn section_text(reports: &[(String, Value)], date: &str, machine: &str) -> String {
    let first = reports.first().map(|(_, r)| r);
    let mut s = format!(
        "{HEADING}\n\n`cargo xtask bench --quality` on {date}, {machine}. Built-in embedder \
         (all-MiniLM-L6-v2); for each collection each store ingests through the HTTP API once, \
         then the server restarts on the same data for each mode: hybrid (default RRF weights), \
         lexical only (`--retrieval-vector-weight 0`), dense only \
         (`--retrieval-lexical-weight 0`), and hybrid with other lexical weights (vector weight \
         1), which the defaults are chosen by. Each query asks /api/v1/search for {} passages, \
         ranked as documents by their first passage. nDCG as BEIR computes it (gain = grade, \
         log2 discount).\n",
        first.map_or(Value::Null, |r| r["passages_per_query"].clone()),
    );
    let f = |r: &Value, k: &str| format!("{:.3}", r[k].as_f64().unwrap_or(f64::NAN));
    for (what, report) in reports {
        let rows = report["rows"].as_array().cloned().unwrap_or_default();
        let meta = &report["collection_meta"];
        let what = match meta["python"].as_str() {
            Some(v) => format!("{what}, Python {v}"),
            None => what.clone(),
        };
        s.push_str(&format!(
            "\n### Collection: {what}\n\n{} documents, {} judged queries.\n\n\
             | store | mode | nDCG@10 | recall@1 | recall@10 | MRR@10 |\n|---|---|---|---|---|---|\n",
            report["documents"], report["queries"],
        ));
        for r in &rows {
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                store_name(r["store"].as_str().unwrap_or("?")),
                r["mode"].as_str().unwrap_or("?"),
                f(r, "ndcg_at_10"),
                f(r, "recall_at_1"),
                f(r, "recall_at_10"),
                f(r, "mrr_at_10"),
            ));
        }
        let mut margins = Vec::new();
        for store in ["sqlite", "postgres"] {
            let ndcg = |mode: &str| ndcg_of(&rows, store, mode);
            if let (Some(h), Some(l), Some(d)) = (ndcg("hybrid"), ndcg("lexical"), ndcg("dense")) {
                let (best, which) = if l >= d { (l, "lexical") } else { (d, "dense") };
                margins.push(format!(
                    "{} {:+.3} ({:.3} vs {which} {:.3})",
                    store_name(store),
                    h - best,
                    h,
                    best
                ));
            }
        }
        if !margins.is_empty() {
            s.push_str(&format!(
                "\nHybrid nDCG@10 minus the better of lexical-only and dense-only: {}.\n",
                margins.join("; ")
            ));
        }
    }
    if reports.len() > 1 {
        s.push_str(&fusion_table(reports));
    }
    s
}

fn ndcg_of(rows: &[Value], store: &str, mode: &str) -> Option<f64> {
    rows.iter()
        .find(|r| r["store"] == store && r["mode"] == mode)
        .and_then(|r| r["ndcg_at_10"].as_f64())
}

/// Hybrid nDCG@10 by lexical weight, averaged over the collections, per store: what the default
/// weight is chosen by.
fn fusion_table(reports: &[(String, Value)]) -> String {
    let modes: Vec<String> = reports[0].1["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["mode"].as_str())
        .filter(|m| m.starts_with("hybrid"))
        .map(String::from)
        .fold(Vec::new(), |mut v, m| {
            if !v.contains(&m) {
                v.push(m);
            }
            v
        });
    let mut s = format!(
        "\n### Fusion weights across the {} collections\n\nHybrid nDCG@10, the mean of the \
         collections'.\n\n| store | {} |\n|---|{}\n",
        reports.len(),
        modes.join(" | "),
        "---|".repeat(modes.len())
    );
    for store in ["sqlite", "postgres"] {
        let cells: Vec<String> = modes
            .iter()
            .map(|mode| {
                let values: Vec<f64> = reports
                    .iter()
                    .filter_map(|(_, r)| ndcg_of(r["rows"].as_array()?, store, mode))
                    .collect();
                if values.len() == reports.len() {
                    format!("{:.3}", values.iter().sum::<f64>() / values.len() as f64)
                } else {
                    "–".into()
                }
            })
            .collect();
        s.push_str(&format!(
            "| {} | {} |\n",
            store_name(store),
            cells.join(" | ")
        ));
    }
    s
}

fn store_name(store: &str) -> &str {
    match store {
        "sqlite" => "SQLite (embedded)",
        "postgres" => "PostgreSQL + pgvector",
        other => other,
    }
}

/// docs/benchmarks.md with its figures part (everything before the quality section) and/or
/// its quality section replaced; the part given as `None` is kept as it is.
pub fn splice(doc: &str, figures: Option<&str>, quality: Option<&str>) -> String {
    let (old_figures, old_quality) = match doc.find(&format!("\n{HEADING}\n")) {
        Some(i) => (&doc[..i + 1], &doc[i + 1..]),
        None => (doc, ""),
    };
    let figures = figures.unwrap_or(old_figures).trim_end();
    let quality = quality.unwrap_or(old_quality).trim();
    if quality.is_empty() {
        format!("{figures}\n")
    } else {
        format!("{figures}\n\n{quality}\n")
    }
}

/// Whether `dir` looks like a BEIR collection (for a clearer error than the harness's).
pub fn is_collection(dir: &Path) -> bool {
    dir.join("corpus.jsonl").is_file()
        && dir.join("queries.jsonl").is_file()
        && dir.join("qrels/test.tsv").is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_run_replaces_only_its_own_part() {
        let doc = "# Benchmarks\n\nold figures\n";
        let with_q = splice(doc, None, Some("## Retrieval quality\n\nq1\n"));
        assert_eq!(
            with_q,
            "# Benchmarks\n\nold figures\n\n## Retrieval quality\n\nq1\n"
        );
        let new_figures = splice(&with_q, Some("# Benchmarks\n\nnew figures\n"), None);
        assert_eq!(
            new_figures,
            "# Benchmarks\n\nnew figures\n\n## Retrieval quality\n\nq1\n"
        );
        let new_q = splice(&new_figures, None, Some("## Retrieval quality\n\nq2"));
        assert_eq!(
            new_q,
            "# Benchmarks\n\nnew figures\n\n## Retrieval quality\n\nq2\n"
        );
    }

    #[test]
    fn the_section_states_the_margin_per_store() {
        let row = |store: &str, mode: &str, ndcg: f64| {
            serde_json::json!({"store": store, "mode": mode, "ndcg_at_10": ndcg,
                "recall_at_1": 0.5, "recall_at_10": 0.9, "mrr_at_10": 0.6})
        };
        let report = serde_json::json!({
            "documents": 10, "queries": 5, "passages_per_query": 50,
            "collection": "x", "collection_meta": {"python": "3.11.2"},
            "rows": [row("sqlite", "hybrid", 0.70), row("sqlite", "lexical", 0.60),
                     row("sqlite", "dense", 0.65)],
        });
        let mut other = report.clone();
        other["collection_meta"] = serde_json::json!({});
        other["rows"][0]["ndcg_at_10"] = serde_json::json!(0.5);
        let s = section_text(
            &[("docstrings".into(), report), ("man pages".into(), other)],
            "2026-01-01",
            "2 cores",
        );
        assert!(s.starts_with(HEADING), "{s}");
        assert!(s.contains("### Collection: man pages"), "{s}");
        assert!(
            s.contains("| SQLite (embedded) | 0.600 |"),
            "the mean of 0.70 and 0.50: {s}"
        );
        assert!(s.contains("| SQLite (embedded) | hybrid | 0.700 | 0.500 | 0.900 | 0.600 |"));
        assert!(
            s.contains("SQLite (embedded) +0.050 (0.700 vs dense 0.650)"),
            "{s}"
        );
        assert!(s.contains("Python 3.11.2"));
    }
}
