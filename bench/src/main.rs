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

const PW: &str = "B3nch!mark-password";

struct Args {
    berth: PathBuf,
    out: PathBuf,
    quick: bool,
    /// `--only search`: just the hybrid-search figures (for tuning retrieval).
    only_search: bool,
    /// `--sizes 10000,100000`: the chunk counts of the search figures.
    sizes: Vec<usize>,
    /// `--stores sqlite,postgres`: which stores the search figures cover.
    stores: Vec<String>,
}

fn args() -> Result<Args> {
    let mut berth = None;
    let mut out = None;
    let mut quick = false;
    let mut only_search = false;
    let mut sizes = vec![10_000, 100_000];
    let mut stores = vec!["sqlite".to_string(), "postgres".to_string()];
    let list = |v: Option<String>| -> Vec<String> {
        v.unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let usage = "usage: berth-bench --berth BIN --out FILE.json [--quick] [--only search] \
                 [--sizes 10000,100000] [--stores sqlite,postgres]";
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--berth" => berth = it.next().map(PathBuf::from),
            "--out" => out = it.next().map(PathBuf::from),
            "--quick" => quick = true,
            "--only" => match it.next().as_deref() {
                Some("search") => only_search = true,
                other => bail!("--only takes `search`, not {other:?}; {usage}"),
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
        sizes,
        stores,
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
    let mut figures = Vec::new();
    if !args.only_search {
        vector_index(&args, &mut figures);
    }
    rt.block_on(async {
        if !args.only_search {
            idle_and_health(&args, &mut figures).await?;
            ingest(&args, &mut figures).await?;
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
    let json: Vec<Value> = figures
        .iter()
        .map(|f| json!({"name": f.name, "value": f.value, "unit": f.unit, "how": f.how}))
        .collect();
    std::fs::write(&args.out, serde_json::to_string_pretty(&json)?)?;
    println!("| figure | value | how |\n|---|---|---|");
    for f in &figures {
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

/// A deterministic pseudo-random stream (xorshift), so runs compare.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }
}

/// A vocabulary of pseudo-words drawn with a Zipf-like skew, so full-text queries meet the
/// mix of common and rare terms real text has (a tiny uniform vocabulary would make every
/// query term match every chunk).
struct Vocabulary(Vec<String>);

impl Vocabulary {
    fn new(size: usize) -> Vocabulary {
        const SYLLABLES: &[&str] = &[
            "ba", "co", "di", "fe", "ga", "hi", "jo", "ku", "la", "me", "ni", "po", "qu", "ra",
            "se", "ti", "vo", "wa", "xe", "yo", "zu", "bri", "cla", "dro", "fle", "gru", "pla",
            "str", "tre", "vin",
        ];
        let mut rng = Rng(3);
        let words = (0..size)
            .map(|_| {
                let n = 2 + (rng.next() % 3) as usize;
                (0..n)
                    .map(|_| SYLLABLES[(rng.next() % SYLLABLES.len() as u64) as usize])
                    .collect()
            })
            .collect();
        Vocabulary(words)
    }

    fn word(&self, rng: &mut Rng) -> &str {
        let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
        &self.0[((u * u * u) * self.0.len() as f64) as usize]
    }

    fn sentence(&self, rng: &mut Rng, words: usize) -> String {
        let mut s = String::new();
        for i in 0..words {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(self.word(rng));
        }
        s.push('.');
        s
    }
}

fn vector_index(args: &Args, figures: &mut Vec<Figure>) {
    let (n, dim, queries) = (100_000usize, 384usize, if args.quick { 200 } else { 1000 });
    // Clustered like embeddings are (topics), not uniform noise.
    let mut rng = Rng(42);
    let centres: Vec<Vec<f32>> = (0..1000)
        .map(|_| (0..dim).map(|_| rng.unit()).collect())
        .collect();
    let near = |rng: &mut Rng, c: usize| -> Vec<f32> {
        centres[c].iter().map(|x| x + 0.3 * rng.unit()).collect()
    };
    let vectors: Vec<(i64, String, Vec<f32>)> = (0..n)
        .map(|i| (i as i64, "c".to_string(), near(&mut rng, i % 1000)))
        .collect();
    let exact_copy: Vec<Vec<f32>> = vectors.iter().map(|v| v.2.clone()).collect();
    let index = VectorIndex::default();
    let start = Instant::now();
    index.insert(vectors);
    let secs = start.elapsed().as_secs_f64();
    figures.push(Figure {
        name: "vector index: insert 100k×384".into(),
        value: n as f64 / secs,
        unit: "vectors/s",
        how: "in-process, one batch: normalise, sign bits, copy".into(),
    });
    let collections = vec!["c".to_string()];
    let mut lat = Vec::with_capacity(queries);
    let mut found = 0;
    let checked = 20;
    let query_vectors: Vec<Vec<f32>> = (0..queries)
        .map(|i| near(&mut rng, (i * 37) % 1000))
        .collect();
    for (i, q) in query_vectors.iter().enumerate() {
        let q = q.clone();
        let t = Instant::now();
        let hits = index.search(&q, &collections, 10);
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        if i < checked {
            // Recall against an exact scan.
            let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
            let qn = norm(&q);
            let mut exact: Vec<(f32, i64)> = exact_copy
                .iter()
                .enumerate()
                .map(|(j, v)| {
                    (
                        v.iter().zip(&q).map(|(a, b)| a * b).sum::<f32>() / (norm(v) * qn),
                        j as i64,
                    )
                })
                .collect();
            exact.sort_by(|a, b| b.0.total_cmp(&a.0));
            found += exact
                .iter()
                .take(10)
                .filter(|e| hits.iter().any(|h| h.0 == e.1))
                .count();
        }
    }
    for (p, name) in [(0.5, "p50"), (0.95, "p95")] {
        figures.push(Figure {
            name: format!("vector index: top-10 of 100k×384 {name}"),
            value: percentile(&mut lat, p),
            unit: "ms",
            how: format!("sign-bit scan + exact rescoring, {queries} queries, one thread"),
        });
    }
    figures.push(Figure {
        name: "vector index: recall@10 vs exact".into(),
        value: found as f64 / (checked * 10) as f64,
        unit: "",
        how: format!("{checked} queries compared with a brute-force cosine scan"),
    });
    let berth_p50 = percentile(&mut lat, 0.5);
    let berth_p95 = percentile(&mut lat, 0.95);
    // Chroma adds only a few hundred vectors a second here: --quick gives it the first 20k.
    let chroma_n = if args.quick { 20_000 } else { n };
    if let Err(e) = chroma(
        &exact_copy[..chroma_n],
        &query_vectors,
        (n as f64 / secs, berth_p50, berth_p95),
        figures,
    ) {
        eprintln!("bench: the Chroma comparison did not run: {e:#}");
    }
}

/// The same vectors and queries through Chroma (PyPI `chromadb`, in-process, in a virtualenv
/// under target/bench), reported as ratios to Berth's index. `berth` is (inserts/s, p50, p95).
fn chroma(
    vectors: &[Vec<f32>],
    queries: &[Vec<f32>],
    berth: (f64, f64, f64),
    figures: &mut Vec<Figure>,
) -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("root")?;
    let dir = root.join("target/bench");
    let python = dir.join("venv/bin/python");
    if !python.is_file() {
        eprintln!("bench: installing chromadb into target/bench/venv (once)");
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(dir.join("venv"))
            .status()?
            .success()
            && Command::new(&python)
                .args(["-m", "pip", "install", "--quiet", "chromadb", "numpy"])
                .status()?
                .success();
        if !ok {
            bail!("could not install chromadb");
        }
    }
    let write = |path: &Path, rows: &[Vec<f32>]| {
        let bytes: Vec<u8> = rows
            .iter()
            .flat_map(|r| r.iter().flat_map(|x| x.to_le_bytes()))
            .collect();
        std::fs::write(path, bytes)
    };
    let (vpath, qpath) = (dir.join("vectors.f32"), dir.join("queries.f32"));
    write(&vpath, vectors)?;
    write(&qpath, queries)?;
    let dim = vectors[0].len().to_string();
    let out = Command::new(&python)
        .arg(root.join("bench/chroma.py"))
        .args([&vpath, &qpath])
        .arg(&dim)
        .env("ANONYMIZED_TELEMETRY", "False")
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        bail!("bench/chroma.py failed ({})", out.status);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let result: Value = serde_json::from_str(text.lines().last().unwrap_or_default())
        .with_context(|| format!("bench/chroma.py printed {text}"))?;
    let field = |k: &str| result[k].as_f64().unwrap_or(f64::NAN);
    let version = result["chromadb"].as_str().unwrap_or("?");
    let how = format!(
        "chromadb {version} in-process (EphemeralClient, HNSW, cosine), the same {}×{dim} vectors \
         (Berth's index held 100k) and {} queries as above; recall@10 {:.2}",
        vectors.len(),
        queries.len(),
        field("recall_at_10")
    );
    for (name, value, unit) in [
        ("Chroma: insert", field("insert_per_s"), "vectors/s"),
        ("Chroma: top-10 p50", field("p50_ms"), "ms"),
        ("Chroma: top-10 p95", field("p95_ms"), "ms"),
    ] {
        figures.push(Figure {
            name: name.into(),
            value,
            unit,
            how: how.clone(),
        });
    }
    for (name, value) in [
        (
            "Berth vs Chroma: insert rate",
            berth.0 / field("insert_per_s"),
        ),
        (
            "Berth vs Chroma: top-10 p50 speed-up",
            field("p50_ms") / berth.1,
        ),
        (
            "Berth vs Chroma: top-10 p95 speed-up",
            field("p95_ms") / berth.2,
        ),
    ] {
        figures.push(Figure {
            name: name.into(),
            value,
            unit: "×",
            how: "ratio of the two rows above (>1: Berth is faster)".into(),
        });
    }
    Ok(())
}

/// The release binary on a data dir; stopped on drop.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start(args: &Args, dir: &Path, env: &[(&str, String)]) -> Result<Server> {
    let port = free_port();
    let mut cmd = Command::new(&args.berth);
    cmd.args([
        "serve",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--data-dir",
    ])
    .arg(dir)
    .env("BERTH_LOG_LEVEL", "warn")
    .env("BERTH_LOG_FORMAT", "json")
    .stdout(Stdio::null())
    .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let server = Server {
        child: cmd.spawn().context("starting berth")?,
        base: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(120) {
        if let Ok(r) = http.get(format!("{}/ready", server.base)).send().await {
            if r.status().is_success() {
                return Ok(server);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("berth did not become ready")
}

fn rss_kib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0.0)
}

async fn idle_and_health(args: &Args, figures: &mut Vec<Figure>) -> Result<()> {
    let dir = tempdir("idle")?;
    let t = Instant::now();
    let server = start(args, &dir, &[]).await?;
    figures.push(Figure {
        name: "process start → ready".into(),
        value: t.elapsed().as_secs_f64() * 1000.0,
        unit: "ms",
        how: "fresh data dir, embedded store, until GET /ready is 200".into(),
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    figures.push(Figure {
        name: "idle RSS".into(),
        value: rss_kib(server.child.id()) / 1024.0,
        unit: "MiB",
        how: "VmRSS 2 s after start, embedded store, no models".into(),
    });
    let secs = if args.quick { 5 } else { 10 };
    if which("wrk") {
        let out = Command::new("wrk")
            .args([
                "-t2",
                "-c64",
                &format!("-d{secs}s"),
                "--latency",
                &format!("{}/health", server.base),
            ])
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let load = Wrk::parse(&text);
        let how = format!("wrk -t2 -c64 -d{secs}s on the same 2 cores as the server");
        for (name, value, unit) in [
            ("/health throughput, 64 connections", load.rps, "req/s"),
            ("/health latency at 64 connections, p50", load.p50_ms, "ms"),
            ("/health latency at 64 connections, p99", load.p99_ms, "ms"),
        ] {
            figures.push(Figure {
                name: name.into(),
                value,
                unit,
                how: how.clone(),
            });
        }
        figures.push(Figure {
            name: "RSS after /health load".into(),
            value: rss_kib(server.child.id()) / 1024.0,
            unit: "MiB",
            how: "VmRSS right after the wrk run".into(),
        });
    } else {
        eprintln!("bench: wrk not found; /health throughput skipped (apt-get install wrk)");
    }
    Ok(())
}

/// What wrk reported: requests/s and latency percentiles (from `--latency`).
struct Wrk {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

impl Wrk {
    fn parse(text: &str) -> Wrk {
        let ms = |v: &str| -> f64 {
            let v = v.trim();
            let (num, scale) = if let Some(n) = v.strip_suffix("us") {
                (n, 0.001)
            } else if let Some(n) = v.strip_suffix("ms") {
                (n, 1.0)
            } else if let Some(n) = v.strip_suffix('s') {
                (n, 1000.0)
            } else {
                (v, f64::NAN)
            };
            num.parse::<f64>().map_or(f64::NAN, |n| n * scale)
        };
        let pct = |p: &str| {
            text.lines()
                .find_map(|l| l.trim().strip_prefix(p))
                .map_or(f64::NAN, ms)
        };
        Wrk {
            rps: text
                .lines()
                .find_map(|l| l.strip_prefix("Requests/sec:"))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(f64::NAN),
            p50_ms: pct("50%"),
            p99_ms: pct("99%"),
        }
    }
}

/// A PostgreSQL with pgvector in a container (the image `cargo xtask fixtures` builds), for the
/// search figures on the PostgreSQL store; removed when dropped.
struct Postgres {
    container: String,
    base: String,
}

impl Postgres {
    async fn start() -> Result<Postgres> {
        let container = format!("berth-bench-pg-{}", std::process::id());
        let password = uuid::Uuid::new_v4().simple().to_string();
        let out = Command::new("docker")
            .args(["run", "--detach", "--rm", "--name", &container])
            .args(["--env", &format!("POSTGRES_PASSWORD={password}")])
            .args(["--publish", "127.0.0.1::5432", "--shm-size", "512m"])
            .args([
                "pgvector/pgvector:pg17",
                "postgres",
                "-c",
                "max_connections=200",
            ])
            .output()
            .context("running docker")?;
        if !out.status.success() {
            bail!(
                "docker run: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let mut pg = Postgres {
            container,
            base: String::new(),
        };
        let port = Command::new("docker")
            .args(["port", &pg.container, "5432/tcp"])
            .output()?;
        let port = String::from_utf8_lossy(&port.stdout);
        let port = port
            .lines()
            .next()
            .and_then(|l| l.rsplit(':').next())
            .context("published port")?
            .trim()
            .to_string();
        pg.base = format!("postgres://postgres:{password}@127.0.0.1:{port}");
        let t = Instant::now();
        while pg.psql("SELECT 1").is_err() {
            if t.elapsed() > Duration::from_secs(90) {
                bail!("PostgreSQL did not start");
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        // psql answers on the socket before TCP is up; wait for TCP too.
        tokio::time::sleep(Duration::from_secs(2)).await;
        Ok(pg)
    }

    fn psql(&self, sql: &str) -> Result<String> {
        let out = Command::new("docker")
            .args([
                "exec",
                &self.container,
                "psql",
                "-U",
                "postgres",
                "-Atc",
                sql,
            ])
            .output()?;
        if !out.status.success() {
            bail!("{}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// A fresh database: its URL.
    fn database(&self) -> Result<String> {
        let name = format!("bench_{}", uuid::Uuid::new_v4().simple());
        self.psql(&format!("CREATE DATABASE {name}"))?;
        Ok(format!("{}/{name}", self.base))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "--force", &self.container])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn which(bin: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {bin}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn tempdir(name: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("berth-bench-{name}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

async fn sign_in(server: &Server) -> Result<(reqwest::Client, String)> {
    let http = reqwest::Client::builder().cookie_store(true).build()?;
    let resp: Value = http
        .post(format!("{}/api/v1/auth/sign-in", server.base))
        .json(&json!({"username": "bench", "password": PW}))
        .send()
        .await?
        .json()
        .await?;
    let csrf = resp["csrf_token"]
        .as_str()
        .context("signed in")?
        .to_string();
    Ok((http, csrf))
}

async fn create_admin(store: &Store) -> Result<String> {
    let id = uuid::Uuid::new_v4().to_string();
    let row = UserRow {
        id: id.clone(),
        username: "bench".into(),
        password_hash: password::hash_blocking(PW),
        role: "admin".into(),
        state: "active".into(),
        created_at: 0,
        updated_at: 0,
    };
    store.insert_user(&row).await?;
    Ok(id)
}

/// Text ingest through the HTTP API with no models: upload, extract, chunk, index.
async fn ingest(args: &Args, figures: &mut Vec<Figure>) -> Result<()> {
    let dir = tempdir("ingest")?;
    {
        let store = Store::open(&DatabaseLocation::Sqlite(dir.join("berth.db"))).await?;
        create_admin(&store).await?;
        store.close().await;
    }
    let server = start(args, &dir, &[]).await?;
    let (http, csrf) = sign_in(&server).await?;
    let c: Value = http
        .post(format!("{}/api/v1/collections", server.base))
        .header("x-csrf-token", &csrf)
        .json(&json!({"name": "bench"}))
        .send()
        .await?
        .json()
        .await?;
    let cid = c["id"].as_str().context("collection")?.to_string();
    let (files, size) = if args.quick {
        (8, 1 << 20)
    } else {
        (20, 2 << 20)
    };
    let mut rng = Rng(7);
    let vocabulary = Vocabulary::new(20_000);
    let docs: Vec<String> = (0..files)
        .map(|_| {
            let mut s = String::with_capacity(size + 200);
            while s.len() < size {
                s.push_str(&vocabulary.sentence(&mut rng, 12));
                s.push(if rng.next().is_multiple_of(5) {
                    '\n'
                } else {
                    ' '
                });
                if rng.next().is_multiple_of(9) {
                    s.push('\n');
                }
            }
            s
        })
        .collect();
    let total: usize = docs.iter().map(String::len).sum();
    let t = Instant::now();
    let mut ids = Vec::new();
    for (i, text) in docs.into_iter().enumerate() {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(text.into_bytes()).file_name(format!("doc{i}.txt")),
        );
        let resp: Value = http
            .post(format!(
                "{}/api/v1/collections/{cid}/documents",
                server.base
            ))
            .header("x-csrf-token", &csrf)
            .multipart(form)
            .send()
            .await?
            .json()
            .await?;
        ids.push(resp["id"].as_str().context("uploaded")?.to_string());
    }
    loop {
        let docs: Value = http
            .get(format!(
                "{}/api/v1/collections/{cid}/documents",
                server.base
            ))
            .send()
            .await?
            .json()
            .await?;
        let docs = docs.as_array().context("documents")?;
        if docs.iter().all(|d| d["status"] == "ready") {
            break;
        }
        if docs.iter().any(|d| d["status"] == "failed") {
            bail!("an ingest failed: {docs:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = t.elapsed().as_secs_f64();
    // Where the ingest worker spent it: the server's per-stage histograms. The upload handler's
    // own extraction check, its file write and the queue wait are not in them.
    let metrics = http
        .get(format!("{}/metrics", server.base))
        .send()
        .await?
        .text()
        .await?;
    let stages: Vec<String> = ["extract", "chunk", "index"]
        .iter()
        .filter_map(|stage| {
            let sum = stage_seconds(&metrics, stage)?;
            Some(format!("{stage} {:.0} ms", sum * 1000.0))
        })
        .collect();
    figures.push(Figure {
        name: "text ingest (no model)".into(),
        value: total as f64 / secs / (1 << 20) as f64,
        unit: "MiB/s",
        how: format!(
            "{files} × {} MiB plain text over HTTP: upload, extract, chunk (1000 chars), FTS5 index, until all ready \
             ({:.0} ms; server stages: {})",
            size >> 20,
            secs * 1000.0,
            stages.join(", ")
        ),
    });
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Seconds until PostgreSQL has the HNSW index for `dim`-dimensional vectors.
async fn wait_for_hnsw(url: &str, dim: usize) -> Result<f64> {
    use sqlx::Connection as _;
    let t = Instant::now();
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let name = format!("chunk_vectors_hnsw_{dim}");
    loop {
        let found: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_indexes WHERE indexname = $1")
            .bind(&name)
            .fetch_one(&mut conn)
            .await?;
        if found > 0 {
            return Ok(t.elapsed().as_secs_f64());
        }
        if t.elapsed() > Duration::from_secs(1800) {
            bail!("no {name} index after 30 minutes");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The total seconds of one pipeline stage in a Prometheus text exposition.
fn stage_seconds(metrics: &str, stage: &str) -> Option<f64> {
    let prefix = format!("berth_stage_duration_seconds_sum{{stage=\"{stage}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|value| value.trim().parse().ok())
}

/// Hybrid search through the HTTP API over `n` chunks with 384-dimensional vectors.
async fn search(
    args: &Args,
    n: usize,
    pg: Option<&Postgres>,
    figures: &mut Vec<Figure>,
) -> Result<()> {
    let dir = tempdir("search")?;
    let model = llm::ModelServer::start();
    model.shared.dim.store(384, Ordering::SeqCst);
    let populate = Instant::now();
    let database_url = pg.map(Postgres::database).transpose()?;
    let location = match &database_url {
        Some(url) => DatabaseLocation::Postgres(url.clone()),
        None => DatabaseLocation::Sqlite(dir.join("berth.db")),
    };
    let store_name = if pg.is_some() {
        "PostgreSQL"
    } else {
        "embedded store"
    };
    {
        let store = Store::open(&location).await?;
        let owner = create_admin(&store).await?;
        let cid = uuid::Uuid::new_v4().to_string();
        store
            .insert_collection(&cid, "bench", &owner, false, 0)
            .await?;
        store.set_meta("embedding_model", "bench-embed").await?;
        let mut rng = Rng(11);
        let vocabulary = Vocabulary::new(20_000);
        let per_doc = 1000;
        for d in 0..n / per_doc {
            let text: Vec<String> = (0..per_doc)
                .map(|_| vocabulary.sentence(&mut rng, 60))
                .collect();
            let mut full = String::new();
            let mut chunks = Vec::new();
            for t in &text {
                let start = full.chars().count() as i64;
                full.push_str(t);
                chunks.push((start, start + t.chars().count() as i64));
                full.push('\n');
            }
            let vectors: Vec<Vec<f32>> = text.iter().map(|t| llm::embed_text(t, 384)).collect();
            let doc = DocumentRow {
                id: uuid::Uuid::new_v4().to_string(),
                collection_id: cid.clone(),
                filename: format!("doc{d}.txt"),
                media_type: Kind::Text.media_type().into(),
                size: full.len() as i64,
                content_hash: format!("{d}"),
                status: "queued".into(),
                progress: 0.0,
                error: None,
                chunk_count: 0,
                attempts: 0,
                created_at: d as i64,
                updated_at: 0,
                uploaded_by: None,
            };
            store.insert_document(&doc).await?;
            store.claim_document(i64::MAX / 2, 1).await?;
            let new: Vec<NewChunk<'_>> = text
                .iter()
                .zip(&chunks)
                .map(|(t, (s, e))| NewChunk {
                    text: t,
                    start: *s,
                    end: *e,
                })
                .collect();
            store
                .complete_document(&doc.id, &full, &new, Some(("bench-embed", &vectors)), 0)
                .await?
                .context("completed")?;
        }
        store.close().await;
    }
    eprintln!(
        "bench: {n} chunks populated in {:.1}s ({store_name})",
        populate.elapsed().as_secs_f64()
    );
    let mut env = vec![
        ("BERTH_EMBED_URL", model.url()),
        ("BERTH_EMBED_MODEL", "bench-embed".to_string()),
    ];
    if let Some(url) = &database_url {
        env.push(("BERTH_DATABASE_URL", url.clone()));
    }
    let t = Instant::now();
    let server = start(args, &dir, &env).await?;
    let load = t.elapsed().as_secs_f64();
    if let Some(url) = &database_url {
        // Berth builds the HNSW index in the background after it is ready (the rows were
        // loaded in bulk here); the search figures are of the indexed steady state.
        let built = wait_for_hnsw(url, 384).await?;
        eprintln!("bench: HNSW index over {n} vectors built {built:.1}s after ready");
        figures.push(Figure {
            name: format!(
                "HNSW index build after start, {} chunks, PostgreSQL",
                if n >= 100_000 { "100k" } else { "10k" }
            ),
            value: built,
            unit: "s",
            how: "from ready until the index exists (built in the background; searches scan until then)"
                .into(),
        });
    }
    let (http, csrf) = sign_in(&server).await?;
    let queries = if args.quick { 100 } else { 300 };
    let mut rng = Rng(99);
    let vocabulary = Vocabulary::new(20_000);
    let mut lat = Vec::with_capacity(queries);
    for i in 0..queries + 10 {
        let q = vocabulary.sentence(&mut rng, 4);
        let t = Instant::now();
        let resp: Value = http
            .post(format!("{}/api/v1/search", server.base))
            .header("x-csrf-token", &csrf)
            .json(&json!({"query": q, "k": 10}))
            .send()
            .await?
            .json()
            .await?;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        if resp["mode"] != "hybrid" {
            bail!("search was not hybrid: {resp}");
        }
        if i >= 10 {
            lat.push(ms); // the first few warm caches
        }
    }
    let label = if n >= 100_000 { "100k" } else { "10k" };
    let on = if pg.is_some() { ", PostgreSQL" } else { "" };
    for (p, name) in [(0.5, "p50"), (0.95, "p95")] {
        figures.push(Figure {
            name: format!("hybrid search via HTTP, {label} chunks{on}, {name}"),
            value: percentile(&mut lat, p),
            unit: "ms",
            how: format!(
                "{store_name}, 384-dim vectors, k=10, {queries} sequential queries incl. query embedding by a local model server"
            ),
        });
    }
    figures.push(Figure {
        name: format!("start with {label} chunks{on} → ready"),
        value: load * 1000.0,
        unit: "ms",
        how: if pg.is_some() {
            "PostgreSQL (pgvector HNSW); nothing to load, the index is built after ready".into()
        } else {
            "loads the vector index from SQLite".into()
        },
    });
    figures.push(Figure {
        name: format!("RSS with {label} chunks{on} loaded"),
        value: rss_kib(server.child.id()) / 1024.0,
        unit: "MiB",
        how: "VmRSS after the sequential search run".into(),
    });
    // 64 clients at once: throughput, tail latency, and memory under that load.
    if which("wrk") && n == 10_000 {
        let token: Value = http
            .post(format!("{}/api/v1/account/tokens", server.base))
            .header("x-csrf-token", &csrf)
            .json(&json!({"name": "bench"}))
            .send()
            .await?
            .json()
            .await?;
        let token = token["token"].as_str().context("an API token")?;
        let script = dir.join("search.lua");
        std::fs::write(
            &script,
            format!(
                "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n\
                 wrk.headers[\"Authorization\"] = \"Bearer {token}\"\n\
                 wrk.body = '{{\"query\": \"{}\", \"k\": 10}}'\n",
                vocabulary.sentence(&mut rng, 4)
            ),
        )?;
        let secs = if args.quick { 10 } else { 20 };
        let out = Command::new("wrk")
            .args([
                "-t2",
                "-c64",
                &format!("-d{secs}s"),
                "--timeout",
                "10s",
                "--latency",
                "-s",
            ])
            .arg(&script)
            .arg(format!("{}/api/v1/search", server.base))
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        if text.contains("Non-2xx") {
            bail!("search under load answered errors:\n{text}");
        }
        let load = Wrk::parse(&text);
        let how = format!(
            "wrk -t2 -c64 -d{secs}s, one query (hybrid, k=10, embedded by the local model server), {store_name}"
        );
        for (name, value, unit) in [
            ("search throughput at 64 connections", load.rps, "req/s"),
            ("search latency at 64 connections, p50", load.p50_ms, "ms"),
            ("search latency at 64 connections, p99", load.p99_ms, "ms"),
        ] {
            figures.push(Figure {
                name: format!("{name}, {label} chunks{on}"),
                value,
                unit,
                how: how.clone(),
            });
        }
        figures.push(Figure {
            name: format!("RSS under search load, {label} chunks{on}"),
            value: rss_kib(server.child.id()) / 1024.0,
            unit: "MiB",
            how: "VmRSS right after the 64-connection search run".into(),
        });
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
