//! `cargo xtask bench`: builds the release binary and the bench harness, runs it, and writes
//! the figures as a table to docs/benchmarks.md (with the date and machine) and as JSON.

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
                  Figures are reported, never asserted: a slow run does not fail."
)]
pub struct Args {
    /// Fewer queries and smaller inputs (finishes in a few minutes)
    #[arg(long)]
    quick: bool,
    /// Print what would run, change nothing
    #[arg(long)]
    dry_run: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let sh = Shell::new()?;
    let root = project_root();
    sh.change_dir(&root);
    let quick = args.quick.then_some("--quick");
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
    println!("{table}");
    let machine = machine(&sh);
    let date = cmd!(sh, "date -u +%Y-%m-%d").read().unwrap_or_default();
    let doc = format!(
        "# Benchmarks\n\n`cargo xtask bench{}` on {date}, {machine}.\n\nEach figure says how it \
         was measured. Client and server share the machine's cores.\n\n{table}\n",
        if args.quick { " --quick" } else { "" }
    );
    sh.write_file("docs/benchmarks.md", doc)?;
    println!("\nwrote docs/benchmarks.md and target/bench/bench.json");
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
