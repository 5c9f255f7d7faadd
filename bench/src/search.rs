//! Search and ask over a corpus of a given size, on SQLite or PostgreSQL.

use super::*;

/// Hybrid search through the HTTP API over `n` chunks with 384-dimensional vectors.
pub(crate) async fn search(
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
                    context: "",
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
