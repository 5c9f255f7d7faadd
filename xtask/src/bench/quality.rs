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

const DEFAULT_DIR: &str = "target/quality/default";
const OUT: &str = "target/bench/quality.json";

pub fn run(sh: &Shell, dir: Option<PathBuf>, dry_run: bool) -> Result<()> {
    let model = test_models_dir().join("sentence-transformers/all-MiniLM-L6-v2");
    let (dir, build) = match dir {
        Some(d) if !dry_run && !is_collection(&d) => bail!(
            "{} is not a BEIR collection: it needs corpus.jsonl, queries.jsonl and qrels/test.tsv",
            d.display()
        ),
        Some(d) => (d, false),
        None => (PathBuf::from(DEFAULT_DIR), true),
    };
    if dry_run {
        if build {
            println!("would run: python3 bench/quality/build_default.py {DEFAULT_DIR}");
        }
        println!("would run: cargo build --release --locked -p berth -p berth-bench");
        println!(
            "would run: target/release/berth-bench --berth target/release/berth --out {OUT} \
             --quality {} --model-dir {}",
            dir.display(),
            model.display()
        );
        println!("would write: the \"Retrieval quality\" section of docs/benchmarks.md");
        return Ok(());
    }
    if !model.join("model.safetensors").is_file() {
        bail!(
            "the built-in embedder's model is missing at {}: run `cargo xtask fixtures models`",
            model.display()
        );
    }
    if build {
        section("collection: Python standard-library docstrings (bench/quality/build_default.py)");
        cmd!(sh, "python3 bench/quality/build_default.py {DEFAULT_DIR}")
            .run()
            .context("building the default collection needs python3")?;
    }
    section("build: release binary and bench harness");
    cmd!(sh, "cargo build --release --locked -p berth -p berth-bench").run()?;
    sh.create_dir("target/bench")?;
    section("measure: retrieval quality (SQLite, then PostgreSQL in Docker)");
    cmd!(
        sh,
        "target/release/berth-bench --berth target/release/berth --out {OUT} --quality {dir} --model-dir {model}"
    )
    .run()
    .context("the quality harness failed")?;
    let report: Value = serde_json::from_str(&sh.read_file(OUT)?)?;
    let date = cmd!(sh, "date -u +%Y-%m-%d").read().unwrap_or_default();
    let text = section_text(&report, &date, &super::machine(sh));
    println!("{text}");
    let doc_path = project_root().join("docs/benchmarks.md");
    let doc = std::fs::read_to_string(&doc_path).unwrap_or_else(|_| "# Benchmarks\n".into());
    std::fs::write(&doc_path, splice(&doc, None, Some(&text)))?;
    println!("wrote docs/benchmarks.md and {OUT}");
    Ok(())
}

/// The quality section of docs/benchmarks.md from the harness's report.
pub fn section_text(report: &Value, date: &str, machine: &str) -> String {
    let rows = report["rows"].as_array().cloned().unwrap_or_default();
    let meta = &report["collection_meta"];
    let collection = if meta["python"].is_string() {
        format!(
            "the default collection: docstrings of Python {}'s standard library \
             (bench/quality/build_default.py; each summary line is a query, the rest of its \
             docstring the one relevant document, other docstrings distractors)",
            meta["python"].as_str().unwrap_or("?")
        )
    } else {
        format!("`{}`", report["collection"].as_str().unwrap_or("?"))
    };
    let mut s = format!(
        "{HEADING}\n\n`cargo xtask bench --quality` on {date}, {machine}. Collection: {collection}; \
         {} documents, {} judged queries. Built-in embedder (all-MiniLM-L6-v2); each store \
         ingests through the HTTP API once, then the server restarts on the same data for each \
         mode: hybrid (default RRF weights), lexical only (`--retrieval-vector-weight 0`), dense \
         only (`--retrieval-lexical-weight 0`), and hybrid with other lexical weights (vector \
         weight 1), which the defaults are chosen by. Each query asks /api/v1/search for {} passages, \
         ranked as documents by their first passage. nDCG as BEIR computes it (gain = grade, \
         log2 discount).\n\n\
         | store | mode | nDCG@10 | recall@1 | recall@10 | MRR@10 |\n|---|---|---|---|---|---|\n",
        report["documents"],
        report["queries"],
        report["passages_per_query"],
    );
    let f = |r: &Value, k: &str| format!("{:.3}", r[k].as_f64().unwrap_or(f64::NAN));
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
        let ndcg = |mode: &str| {
            rows.iter()
                .find(|r| r["store"] == store && r["mode"] == mode)
                .and_then(|r| r["ndcg_at_10"].as_f64())
        };
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
        let s = section_text(&report, "2026-01-01", "2 cores");
        assert!(s.starts_with(HEADING), "{s}");
        assert!(s.contains("| SQLite (embedded) | hybrid | 0.700 | 0.500 | 0.900 | 0.600 |"));
        assert!(
            s.contains("SQLite (embedded) +0.050 (0.700 vs dense 0.650)"),
            "{s}"
        );
        assert!(s.contains("Python 3.11.2"));
    }
}
