//! The built-in embedder: its throughput against the machine's own matrix-multiply rate (the
//! physical limit, measured with the same kernel in the same run), and a text ingest with it
//! end to end, with search and `/health` latency during that ingest against idle.

use super::*;
use berth_embed::{math, Kind, Model};

/// Real English prose, so chunks have the token counts real documents have: the license
/// texts every Debian system carries, paragraphs reordered per document.
fn prose_paragraphs() -> Vec<String> {
    let mut paragraphs = Vec::new();
    for entry in std::fs::read_dir("/usr/share/common-licenses")
        .into_iter()
        .flatten()
        .flatten()
    {
        if let Ok(text) = std::fs::read_to_string(entry.path()) {
            paragraphs.extend(
                text.split("\n\n")
                    .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
                    .filter(|p| p.len() > 80),
            );
        }
    }
    paragraphs.sort();
    paragraphs.dedup();
    paragraphs
}

fn document(paragraphs: &[String], rng: &mut Rng, size: usize) -> String {
    let mut s = String::with_capacity(size + 2000);
    while s.len() < size {
        s.push_str(&paragraphs[(rng.next() % paragraphs.len() as u64) as usize]);
        s.push_str("\n\n");
    }
    s
}

/// GFLOP/s of `threads` single-threaded 1024³ products running at once.
fn matmul_rate(threads: usize, reps: usize) -> f64 {
    let n = 1024;
    let a: Vec<f32> = (0..n * n).map(|i| (i % 7) as f32 * 0.1).collect();
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut c = vec![0.0f32; n * n];
                for _ in 0..reps {
                    let view = math::View::new(&a, n, n);
                    math::matmul_transposed(view, view, &mut c, n, false);
                }
                std::hint::black_box(&c);
            });
        }
    });
    2.0 * (n * n * n * reps * threads) as f64 / t.elapsed().as_secs_f64() / 1e9
}

/// (chunks/s, GFLOP/s) of `threads` threads each embedding batches of 32 chunks.
fn embed_rate(model: &Model, batch: &[String], threads: usize, batches: usize) -> (f64, f64) {
    let t = Instant::now();
    let flops: f64 = std::thread::scope(|s| {
        let jobs: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    (0..batches)
                        .map(|_| model.embed_counted(batch, Kind::Passage).expect("embeds").1)
                        .sum::<f64>()
                })
            })
            .collect();
        jobs.into_iter().map(|j| j.join().expect("no panic")).sum()
    });
    let secs = t.elapsed().as_secs_f64();
    (
        (batch.len() * batches * threads) as f64 / secs,
        flops / secs / 1e9,
    )
}

pub(crate) fn embedding_throughput(args: &Args, figures: &mut Vec<Figure>) -> Result<()> {
    let dir = berth_embed::test_model_dir();
    let model = Model::load(&dir, "all-MiniLM-L6-v2").map_err(|e| anyhow::anyhow!("{e}"))?;
    let paragraphs = prose_paragraphs();
    let mut rng = Rng(11);
    // ~256-token chunks: prose cut to the model's length.
    let batch: Vec<String> = (0..32)
        .map(|_| document(&paragraphs, &mut rng, 1400))
        .collect();
    let tokens = model.token_counts(&batch).map_err(|e| anyhow::anyhow!(e))?;
    let mean_tokens = tokens.iter().sum::<usize>() as f64 / tokens.len() as f64;
    let batches = if args.quick { 2 } else { 6 };
    let reps = if args.quick { 8 } else { 24 };
    for threads in [1, 2] {
        let peak = matmul_rate(threads, reps);
        let (chunks, gflops) = embed_rate(&model, &batch, threads, batches);
        figures.push(Figure {
            name: format!("matrix multiply, {threads} thread(s)"),
            value: peak,
            unit: "GFLOP/s",
            how: format!(
                "{threads} × single-threaded f32 1024³ sgemm at once (matrixmultiply, the kernel the \
                 embedder uses), {reps} each"
            ),
        });
        figures.push(Figure {
            name: format!("built-in embedding, {threads} thread(s)"),
            value: chunks,
            unit: "chunks/s",
            how: format!(
                "all-MiniLM-L6-v2, batches of 32 chunks of {mean_tokens:.0} tokens (prose), \
                 {batches} batch(es) per thread; {gflops:.1} GFLOP/s = {:.0} % of the matrix \
                 multiply rate measured beside it",
                100.0 * gflops / peak
            ),
        });
    }
    Ok(())
}

/// p95 in ms of sequential search and `/health` round trips, while `keep_going(i)` says so.
async fn latencies(
    http: &reqwest::Client,
    csrf: &str,
    base: &str,
    mut keep_going: impl FnMut(usize) -> bool,
) -> Result<(f64, f64)> {
    let (mut search, mut health) = (Vec::new(), Vec::new());
    let queries = [
        "software license warranty",
        "distribution of modified copies",
        "patent grant",
    ];
    let mut i = 0;
    while keep_going(i) {
        let t = Instant::now();
        let r = http
            .post(format!("{base}/api/v1/search"))
            .header("x-csrf-token", csrf)
            .json(&json!({"query": queries[i % queries.len()], "k": 10}))
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("search answered {}", r.status());
        }
        r.bytes().await?;
        search.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        http.get(format!("{base}/health"))
            .send()
            .await?
            .bytes()
            .await?;
        health.push(t.elapsed().as_secs_f64() * 1000.0);
        i += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok((percentile(&mut search, 0.95), percentile(&mut health, 0.95)))
}

async fn statuses(http: &reqwest::Client, base: &str, cid: &str) -> Result<Vec<String>> {
    let docs: Value = http
        .get(format!("{base}/api/v1/collections/{cid}/documents"))
        .send()
        .await?
        .json()
        .await?;
    Ok(docs
        .as_array()
        .context("documents")?
        .iter()
        .map(|d| d["status"].as_str().unwrap_or_default().to_string())
        .collect())
}

async fn upload(
    http: &reqwest::Client,
    csrf: &str,
    base: &str,
    cid: &str,
    name: String,
    text: String,
) -> Result<()> {
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(text.into_bytes()).file_name(name),
    );
    let r = http
        .post(format!("{base}/api/v1/collections/{cid}/documents"))
        .header("x-csrf-token", csrf)
        .multipart(form)
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("upload answered {}", r.status());
    }
    Ok(())
}

/// Text ingest with the built-in embedder, end to end, and what it does to search and health.
pub(crate) async fn ingest_with_model(args: &Args, figures: &mut Vec<Figure>) -> Result<()> {
    let dir = tempdir("ingest-model")?;
    {
        let store = Store::open(&DatabaseLocation::Sqlite(dir.join("berth.db"))).await?;
        create_admin(&store).await?;
        store.close().await;
    }
    let model_dir = berth_embed::test_model_dir().to_string_lossy().into_owned();
    let env = [
        ("BERTH_EMBED_API", "builtin".to_string()),
        ("BERTH_EMBED_MODEL_DIR", model_dir),
    ];
    let server = start(args, &dir, &env).await?;
    let (http, csrf) = sign_in(&server).await?;
    let base = server.base.clone();
    let c: Value = http
        .post(format!("{base}/api/v1/collections"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"name": "bench"}))
        .send()
        .await?
        .json()
        .await?;
    let cid = c["id"].as_str().context("collection")?.to_string();
    let paragraphs = prose_paragraphs();
    let mut rng = Rng(5);
    // Something to search while idle: a first document, ready before the clock starts.
    upload(
        &http,
        &csrf,
        &base,
        &cid,
        "seed.txt".into(),
        document(&paragraphs, &mut rng, 50_000),
    )
    .await?;
    while statuses(&http, &base, &cid)
        .await?
        .iter()
        .any(|s| s != "ready")
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (idle_search, idle_health) = latencies(&http, &csrf, &base, |i| i < 200).await?;

    let (files, size) = if args.quick {
        (4, 256 << 10)
    } else {
        (10, 1 << 20)
    };
    let total = files * size;
    eprintln!(
        "bench: ingesting {} MiB of prose with the built-in embedder",
        total >> 20
    );
    let t = Instant::now();
    for i in 0..files {
        upload(
            &http,
            &csrf,
            &base,
            &cid,
            format!("doc{i}.txt"),
            document(&paragraphs, &mut rng, size),
        )
        .await?;
    }
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (http, base, cid, done) = (http.clone(), base.clone(), cid.clone(), done.clone());
        tokio::spawn(async move {
            loop {
                match statuses(&http, &base, &cid).await {
                    Ok(s) if s.iter().any(|s| s == "failed") => {
                        return Err(anyhow::anyhow!("an ingest failed"))
                    }
                    Ok(s) if s.iter().all(|s| s == "ready") => break,
                    _ => tokio::time::sleep(Duration::from_millis(500)).await,
                }
            }
            done.store(true, Ordering::SeqCst);
            anyhow::Ok(t.elapsed().as_secs_f64())
        })
    };
    let (busy_search, busy_health) = latencies(&http, &csrf, &base, |i| {
        i < 2 || !done.load(Ordering::SeqCst)
    })
    .await?;
    let secs = watcher.await??;
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let embed_secs = ingest::stage_seconds(&metrics, "embed").unwrap_or(0.0);
    figures.push(Figure {
        name: "text ingest with the built-in embedder".into(),
        value: total as f64 / secs / (1 << 20) as f64,
        unit: "MiB/s",
        how: format!(
            "{files} × {} KiB of prose over HTTP, all-MiniLM-L6-v2 in-process (embed_threads auto), \
             upload to all ready in {secs:.0} s; embedding {embed_secs:.0} s of it",
            size >> 10
        ),
    });
    for (name, idle, busy) in [
        ("search", idle_search, busy_search),
        ("/health", idle_health, busy_health),
    ] {
        figures.push(Figure {
            name: format!("{name} p95 during that ingest ÷ idle"),
            value: busy / idle,
            unit: "×",
            how: format!(
                "one client, sequential requests 20 ms apart: p95 {busy:.1} ms during the ingest, \
                 {idle:.1} ms idle (same server, after a first document)"
            ),
        });
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
