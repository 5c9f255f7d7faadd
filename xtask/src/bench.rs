//! `cargo xtask bench`: builds the release binary and the bench harness, runs it, and writes
//! the figures as a table to docs/benchmarks.md (with the date and machine) and as JSON.

mod quality;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use xshell::{cmd, Shell};

use crate::util::{project_root, section};

#[derive(clap::Args, Debug)]
#[command(
    about = "Measure Berth: index, ingest, search, throughput, memory",
    long_about = "Builds the release binary and the `berth-bench` harness, then measures: the \
                  embedded vector index (top-10 over 100k×384), text ingest through the HTTP API \
                  without a model, hybrid search latency through the HTTP API at 10k and 100k \
                  chunks, process start, idle RSS, and /health throughput at 64 connections \
                  (needs `wrk`). Writes target/bench/bench.json and docs/benchmarks.md.\n\n\
                  With --quality: retrieval quality instead (nDCG@10, recall@1/10, MRR@10 of \
                  lexical, dense and hybrid search, on SQLite and PostgreSQL) on a BEIR \
                  collection, by default on two built on this machine (the Python standard \
                  library's docstrings, the section-1 manual pages), with the fusion weights \
                  compared across them; writes target/bench/quality-NAME.json and its section \
                  of docs/benchmarks.md.\n\n\
                  Figures are reported, never asserted: a slow run does not fail."
)]
pub struct Args {
    /// Fewer queries and smaller inputs (finishes in a few minutes)
    #[arg(long)]
    quick: bool,
    /// Instead: a soak at modest load for MINUTES (30 for the reference figure), reporting RSS
    /// growth (target/faults/soak.json; the next bench run puts it in docs/benchmarks.md)
    #[arg(long, value_name = "MINUTES", num_args = 0..=1, default_missing_value = "30")]
    soak: Option<u64>,
    /// Instead: retrieval quality on the BEIR collection in DIR (corpus.jsonl, queries.jsonl,
    /// qrels/test.tsv); without DIR, the two collections built into target/quality/ by
    /// bench/quality/build_default.py (Python's standard-library docstrings) and
    /// bench/quality/build_manpages.py (this machine's manual pages)
    #[arg(long, value_name = "DIR", num_args = 0..=1)]
    quality: Option<Option<PathBuf>>,
    /// Print what would run, change nothing
    #[arg(long)]
    dry_run: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let sh = Shell::new()?;
    let root = project_root();
    sh.change_dir(&root);
    let quick = args.quick.then_some("--quick");
    if let Some(minutes) = args.soak {
        return soak(minutes, args.dry_run);
    }
    if let Some(dir) = args.quality {
        quality::run(&sh, dir, args.dry_run)?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.dry_run {
        println!("would run: cargo build --release --locked -p berth -p berth-bench");
        println!(
            "would run: target/release/berth-bench --berth target/release/berth --out target/bench/bench.json {}",
            quick.unwrap_or("")
        );
        println!("would write: docs/benchmarks.md");
        return Ok(ExitCode::SUCCESS);
    }
    section("build: release binary and bench harness");
    cmd!(sh, "cargo build --release --locked -p berth -p berth-bench").run()?;
    sh.create_dir("target/bench")?;
    section("measure");
    let table = cmd!(
        sh,
        "target/release/berth-bench --berth target/release/berth --out target/bench/bench.json {quick...}"
    )
    .read()
    .context("the bench harness failed")?;
    // `read` drops the harness's last newline; the extra rows continue the same table.
    let table = format!("{table}\n{}", extra_rows(&sh));
    println!("{table}");
    let machine = machine(&sh);
    let date = cmd!(sh, "date -u +%Y-%m-%d").read().unwrap_or_default();
    let doc = format!(
        "# Benchmarks\n\n`cargo xtask bench{}` on {date}, {machine}.\n\nEach figure says how it \
         was measured. Client and server share the machine's cores.\n\n{table}\n",
        if args.quick { " --quick" } else { "" }
    );
    // The quality section (`--quality`) is kept as the last quality run left it.
    let old = std::fs::read_to_string(root.join("docs/benchmarks.md")).unwrap_or_default();
    sh.write_file(
        "docs/benchmarks.md",
        quality::splice(&old, Some(&doc), None),
    )?;
    println!("\nwrote docs/benchmarks.md and target/bench/bench.json");
    Ok(ExitCode::SUCCESS)
}

/// Figures measured outside the harness: the app image's size (when `cargo xtask build` made
/// it) and the last soak's RSS growth (when `cargo xtask bench --soak` ran).
fn extra_rows(sh: &Shell) -> String {
    let mut rows = String::new();
    let (size_format, created_format) = ("{{.Size}}", "{{.Created}}");
    if let Ok(size) = cmd!(
        sh,
        "docker image inspect --format {size_format} berth:latest"
    )
    .quiet()
    .ignore_stderr()
    .read()
    {
        if let Ok(bytes) = size.trim().parse::<f64>() {
            let created = cmd!(
                sh,
                "docker image inspect --format {created_format} berth:latest"
            )
            .quiet()
            .read()
            .unwrap_or_default();
            rows.push_str(&format!(
                "| app image size (berth:latest) | {:.1} MiB | `docker image inspect`, the image `cargo xtask build` made ({}) |\n",
                bytes / 1048576.0,
                created.get(..10).unwrap_or("")
            ));
        }
    }
    let soak = project_root().join("target/faults/soak.json");
    if let Ok(text) = std::fs::read_to_string(&soak) {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
            let mib = |k: &str| v[k].as_f64().unwrap_or(f64::NAN) / 1024.0;
            rows.push_str(&format!(
                "| soak: RSS growth over {} min | {:+.1} MiB | {:.1} → {:.1} MiB (peak {:.1}) after {} s warm-up; {} requests, {} failed; 4 clients, ~40 req/s of search, list, health, uploads; debug binary (`cargo xtask bench --soak`) |\n",
                v["seconds"].as_u64().unwrap_or(0) / 60,
                mib("rss_growth_kib"),
                mib("rss_kib_after_warm_up"),
                mib("rss_kib_at_end"),
                mib("rss_kib_peak"),
                v["warm_up_seconds"],
                v["requests"],
                v["failures"],
            ));
        }
    }
    rows
}

/// `--soak MINUTES`: the soak scenario of the fault suite, run long.
fn soak(minutes: u64, dry_run: bool) -> Result<ExitCode> {
    let secs = (minutes * 60).to_string();
    let args = [
        "test",
        "--locked",
        "-p",
        "berth",
        "--test",
        "it",
        "faults::soak",
        "--",
        "--ignored",
        "--nocapture",
    ];
    if dry_run {
        println!("would run: BERTH_SOAK_SECS={secs} cargo {}", args.join(" "));
        println!("would write: target/faults/soak.json");
        return Ok(ExitCode::SUCCESS);
    }
    section(&format!("soak: {minutes} min at modest load"));
    let (tally, ok) = crate::util::cargo::cargo_test_tallied(&args, &[("BERTH_SOAK_SECS", &secs)])?;
    if !ok || tally.passed == 0 {
        anyhow::bail!("the soak failed");
    }
    println!("wrote target/faults/soak.json; `cargo xtask bench` adds it to docs/benchmarks.md");
    Ok(ExitCode::SUCCESS)
}

fn machine(sh: &Shell) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = cmd!(sh, "nproc").read().unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            let kb: f64 = s.lines().next()?.split_whitespace().nth(1)?.parse().ok()?;
            Some(format!("{:.0} GiB", kb / 1024.0 / 1024.0))
        })
        .unwrap_or_default();
    format!("{cores} cores ({cpu}), {mem} RAM")
}
