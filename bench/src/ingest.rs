//! Ingestion: documents per second through upload, extraction, chunking and embedding, and
//! the time each stage takes.

use super::*;

/// Text ingest through the HTTP API with no models: upload, extract, chunk, index.
pub(crate) async fn ingest(args: &Args, figures: &mut Vec<Figure>) -> Result<()> {
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
pub(crate) async fn wait_for_hnsw(url: &str, dim: usize) -> Result<f64> {
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
pub(crate) fn stage_seconds(metrics: &str, stage: &str) -> Option<f64> {
    let prefix = format!("berth_stage_duration_seconds_sum{{stage=\"{stage}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|value| value.trim().parse().ok())
}
