//! `berth-bench`: measures Berth the way its users meet it — the release binary over HTTP —
//! plus the embedded vector index on its own. Run through `cargo xtask bench`, which builds
//! the release binary and writes the report. Figures, not asserts: nothing here passes or fails.

#[allow(dead_code, clippy::all)]
#[path = "../../tests/it/support/llm.rs"]
mod llm;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use berth::config::DatabaseLocation;
use berth::domain::accounts::password;
use berth::domain::documents::Kind;
use berth::service::retrieval::vector_index::VectorIndex;
use berth::store::UserRow;
use berth::store::{DocumentRow, NewChunk, Store};
use serde_json::{json, Value};

mod corpus;
mod embedding;
mod idle;
mod ingest;
mod processes;
mod quality;
mod search;
mod vector_index;

use corpus::{Rng, Vocabulary};
use embedding::{embedding_throughput, ingest_with_model};
use idle::idle_and_health;
use ingest::{ingest, wait_for_hnsw};
use processes::{create_admin, rss_kib, sign_in, start, tempdir, which, Postgres, Wrk};
use search::search;
use vector_index::vector_index;

const PW: &str = "B3nch!mark-password";

struct Args {
    berth: PathBuf,
    out: PathBuf,
    quick: bool,
    /// `--only search`: just the hybrid-search figures (for tuning retrieval).
    only_search: bool,
    /// `--only embedding`: just the built-in embedder's figures.
    only_embedding: bool,
    /// `--only vector`: just the vector index beside Chroma (on the full 100k unless --quick).
    only_vector: bool,
    /// `--sizes 10000,100000`: the chunk counts of the search figures.
    sizes: Vec<usize>,
    /// `--stores sqlite,postgres`: which stores the search figures cover.
    stores: Vec<String>,
    /// `--quality DIR`: instead, retrieval quality on the BEIR collection in DIR.
    quality: Option<PathBuf>,
    /// `--model-dir DIR`: the built-in embedder's model, for `--quality`.
    model_dir: Option<PathBuf>,
}

fn args() -> Result<Args> {
    let mut berth = None;
    let mut out = None;
    let mut quick = false;
    let mut only_search = false;
    let mut only_embedding = false;
    let mut only_vector = false;
    let mut sizes = vec![10_000, 100_000];
    let mut stores = vec!["sqlite".to_string(), "postgres".to_string()];
    let mut quality = None;
    let mut model_dir = None;
    let list = |v: Option<String>| -> Vec<String> {
        v.unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let usage =
        "usage: berth-bench --berth BIN --out FILE.json [--quick] [--only search|embedding|vector] \
                 [--sizes 10000,100000] [--stores sqlite,postgres] \
                 [--quality BEIR_DIR --model-dir MODEL_DIR]";
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--berth" => berth = it.next().map(PathBuf::from),
            "--out" => out = it.next().map(PathBuf::from),
            "--quick" => quick = true,
            "--quality" => quality = it.next().map(PathBuf::from),
            "--model-dir" => model_dir = it.next().map(PathBuf::from),
            "--only" => match it.next().as_deref() {
                Some("search") => only_search = true,
                Some("embedding") => only_embedding = true,
                Some("vector") => only_vector = true,
                other => {
                    bail!("--only takes `search`, `embedding` or `vector`, not {other:?}; {usage}")
                }
            },
            "--sizes" => {
                sizes = list(it.next())
                    .iter()
                    .map(|s| s.parse::<usize>())
                    .collect::<Result<_, _>>()
                    .with_context(|| format!("--sizes takes chunk counts; {usage}"))?;
            }
            "--stores" => {
                stores = list(it.next());
                if let Some(s) = stores.iter().find(|s| *s != "sqlite" && *s != "postgres") {
                    bail!("--stores takes sqlite and/or postgres, not {s}; {usage}");
                }
            }
            other => bail!("unknown argument {other}; {usage}"),
        }
    }
    Ok(Args {
        berth: berth.context("--berth BIN is required")?,
        out: out.context("--out FILE.json is required")?,
        quick,
        only_search,
        only_embedding,
        only_vector,
        sizes,
        stores,
        quality,
        model_dir,
    })
}

/// One measured figure, with how it was measured.
struct Figure {
    name: String,
    value: f64,
    unit: &'static str,
    how: String,
}

fn main() -> Result<()> {
    let args = args()?;
    let rt = tokio::runtime::Runtime::new()?;
    if let Some(dir) = &args.quality {
        let model_dir = args
            .model_dir
            .as_deref()
            .context("--quality needs --model-dir")?;
        let report = rt.block_on(quality::quality(&args, dir, model_dir))?;
        std::fs::write(&args.out, serde_json::to_string_pretty(&report)?)?;
        return Ok(());
    }
    let mut figures = Vec::new();
    if args.only_embedding {
        embedding_throughput(&args, &mut figures)?;
        rt.block_on(ingest_with_model(&args, &mut figures))?;
        return report(&args, &figures);
    }
    if args.only_vector {
        vector_index(&args, &mut figures);
        return report(&args, &figures);
    }
    if !args.only_search {
        vector_index(&args, &mut figures);
        if let Err(e) = embedding_throughput(&args, &mut figures) {
            eprintln!("bench: built-in embedding figures skipped: {e:#}");
        }
    }
    rt.block_on(async {
        if !args.only_search {
            idle_and_health(&args, &mut figures).await?;
            ingest(&args, &mut figures).await?;
            ingest_with_model(&args, &mut figures).await?;
        }
        if args.stores.iter().any(|s| s == "sqlite") {
            for &n in &args.sizes {
                search(&args, n, None, &mut figures).await?;
            }
        }
        if args.stores.iter().any(|s| s == "postgres") {
            match Postgres::start().await {
                Ok(pg) => {
                    for &n in &args.sizes {
                        search(&args, n, Some(&pg), &mut figures).await?;
                    }
                }
                Err(e) => {
                    eprintln!("bench: no PostgreSQL, its search figures are skipped: {e:#}")
                }
            }
        }
        anyhow::Ok(())
    })?;
    report(&args, &figures)
}

fn report(args: &Args, figures: &[Figure]) -> Result<()> {
    let json: Vec<Value> = figures
        .iter()
        .map(|f| json!({"name": f.name, "value": f.value, "unit": f.unit, "how": f.how}))
        .collect();
    std::fs::write(&args.out, serde_json::to_string_pretty(&json)?)?;
    println!("| figure | value | how |\n|---|---|---|");
    for f in figures {
        println!("| {} | {} {} | {} |", f.name, round(f.value), f.unit, f.how);
    }
    Ok(())
}

fn round(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn percentile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i]
}
