//! `--quality DIR`: retrieval quality on a test collection in BEIR's format, through the HTTP
//! API of the release binary with the built-in embedder. The collection is ingested once per
//! store; the server is then run on the same data for each of [`MODES`] — hybrid (the default
//! weights), lexical only (`--retrieval-vector-weight 0`), dense only
//! (`--retrieval-lexical-weight 0`), and fusion with other weights — and every judged query is searched each time. nDCG@10, recall@1, recall@10 and MRR@10
//! (see `metrics`) go to the JSON report, as rows of store × mode.

use super::*;
use std::collections::HashMap;

pub(crate) mod beir;
pub(crate) mod metrics;

use metrics::Scores;

const LEXICAL: &str = "BERTH_RETRIEVAL_LEXICAL_WEIGHT";
const VECTOR: &str = "BERTH_RETRIEVAL_VECTOR_WEIGHT";

/// The rankings measured: name, and the settings that make it (as the environment's
/// `BERTH_RETRIEVAL_*_WEIGHT`, the same as `--retrieval-*-weight`). Beside the default weights
/// and each half alone, fusion with other weights: what the defaults are chosen by.
const MODES: [(&str, &[(&str, &str)]); 6] = [
    ("hybrid", &[]),
    ("lexical", &[(VECTOR, "0")]),
    ("dense", &[(LEXICAL, "0")]),
    (
        "hybrid, lexical weight 0.5",
        &[(LEXICAL, "0.5"), (VECTOR, "1")],
    ),
    (
        "hybrid, lexical weight 0.75",
        &[(LEXICAL, "0.75"), (VECTOR, "1")],
    ),
    (
        "hybrid, lexical weight 1.5",
        &[(LEXICAL, "1.5"), (VECTOR, "1")],
    ),
];

pub(crate) async fn quality(args: &Args, dir: &Path, model_dir: &Path) -> Result<Value> {
    let collection = beir::load(dir)?;
    eprintln!(
        "quality: {} — {} documents, {} judged queries",
        dir.display(),
        collection.corpus.len(),
        collection.queries.len()
    );
    let mut rows = Vec::new();
    for store in &args.stores {
        let pg = if store == "postgres" {
            match Postgres::start().await {
                Ok(pg) => Some(pg),
                Err(e) => {
                    eprintln!("quality: no PostgreSQL, its figures are skipped: {e:#}");
                    continue;
                }
            }
        } else {
            None
        };
        rows.extend(one_store(args, &collection, model_dir, pg.as_ref()).await?);
    }
    let meta = std::fs::read_to_string(dir.join("meta.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok());
    Ok(json!({
        "collection": dir.display().to_string(),
        "collection_meta": meta,
        "documents": collection.corpus.len(),
        "queries": collection.queries.len(),
        "embedder": "built-in, sentence-transformers/all-MiniLM-L6-v2",
        "passages_per_query": beir::PASSAGES,
        "rows": rows,
    }))
}

async fn one_store(
    args: &Args,
    collection: &beir::Collection,
    model_dir: &Path,
    pg: Option<&Postgres>,
) -> Result<Vec<Value>> {
    let data = tempdir("quality")?;
    let database_url = pg.map(Postgres::database).transpose()?;
    let (location, store) = match &database_url {
        Some(url) => (DatabaseLocation::Postgres(url.clone()), "postgres"),
        None => (DatabaseLocation::Sqlite(data.join("berth.db")), "sqlite"),
    };
    {
        let db = Store::open(&location).await?;
        create_admin(&db).await?;
        db.close().await;
    }
    let mut env = vec![
        ("BERTH_EMBED_API", "builtin".to_string()),
        ("BERTH_EMBED_MODEL_DIR", model_dir.display().to_string()),
    ];
    if let Some(url) = &database_url {
        env.push(("BERTH_DATABASE_URL", url.clone()));
    }
    let mut rows = Vec::new();
    let mut cid = String::new();
    let mut documents = HashMap::new();
    let mut ingest_secs = 0.0;
    for (i, (mode, settings)) in MODES.iter().enumerate() {
        let mut env = env.clone();
        env.extend(settings.iter().map(|(k, v)| (*k, v.to_string())));
        let server = start(args, &data, &env).await?;
        if let Some(url) = &database_url {
            if i > 0 {
                wait_for_hnsw(url, 384).await?;
            }
        }
        let (http, csrf) = sign_in(&server).await?;
        let session = beir::Session {
            http: &http,
            api: format!("{}/api/v1", server.base),
            csrf,
        };
        if i == 0 {
            let c: Value = http
                .post(format!("{}/collections", session.api))
                .header("x-csrf-token", &session.csrf)
                .json(&json!({"name": "quality"}))
                .send()
                .await?
                .json()
                .await?;
            cid = c["id"].as_str().context("collection")?.to_string();
            let t = Instant::now();
            documents = beir::ingest(&session, &cid, &collection.corpus, |what, n, of| {
                eprintln!("quality [{store}]: {what} {n}/{of} documents")
            })
            .await?;
            ingest_secs = t.elapsed().as_secs_f64();
            eprintln!("quality [{store}]: ingested in {ingest_secs:.1}s");
            if let Some(url) = &database_url {
                wait_for_hnsw(url, 384).await?;
            }
        }
        let t = Instant::now();
        let (runs, modes) =
            beir::search_all(&session, &cid, &collection.queries, &documents, |n, of| {
                eprintln!("quality [{store}, {mode}]: {n}/{of} queries")
            })
            .await?;
        let secs = t.elapsed().as_secs_f64();
        if modes.len() != 1 || !modes.contains("hybrid") {
            bail!("[{store}, {mode}]: the searches ran in mode {modes:?}, not hybrid: is the built-in embedder loaded?");
        }
        let s: Scores = metrics::evaluate(&runs, &collection.qrels);
        eprintln!(
            "quality [{store}, {mode}]: nDCG@10 {:.3}, recall@1 {:.3}, recall@10 {:.3}, MRR@10 {:.3} ({} queries, {secs:.1}s)",
            s.ndcg_at_10, s.recall_at_1, s.recall_at_10, s.mrr_at_10, s.queries
        );
        rows.push(json!({
            "store": store,
            "mode": mode,
            "setting": if settings.is_empty() {
                "default weights".to_string()
            } else {
                settings.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
            },
            "ndcg_at_10": s.ndcg_at_10,
            "recall_at_1": s.recall_at_1,
            "recall_at_10": s.recall_at_10,
            "mrr_at_10": s.mrr_at_10,
            "queries": s.queries,
            "search_seconds": secs,
            "ingest_seconds": ingest_secs,
        }));
    }
    let _ = std::fs::remove_dir_all(&data);
    Ok(rows)
}
