//! Several Berth processes on one PostgreSQL database: they start together (migrations applied
//! once), ingest together (every document indexed exactly once) and share sessions. Runs on the
//! test PostgreSQL whatever `BERTH_TEST_BACKEND` says (skips without Docker, fails under CI).

use crate::support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::Connection;
use support::llm::ModelServer;
use support::{json, pg, Berth, Browser};

const PW: &str = "Adm1n!chosen-well";

fn env(model: &ModelServer) -> Vec<(&'static str, String)> {
    vec![
        ("BERTH_EMBED_URL", model.url()),
        ("BERTH_EMBED_API", "ollama".into()),
        ("BERTH_EMBED_MODEL", "test-embed".into()),
        ("BERTH_LLM_TIMEOUT", "5".into()),
    ]
}

fn start(dir: &std::path::Path, url: &str, env: &[(&'static str, String)]) -> Berth {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Berth::start_with(dir, &["--database-url", url], &env)
}

/// Ten documents of several chunks each, every one distinct.
fn documents() -> Vec<(String, String)> {
    (0..10)
        .map(|d| {
            let text: String = (0..(20 + d * 7))
                .map(|p| {
                    format!(
                        "Section {p} of report {d}: the committee reviewed item {p} and \
                             recorded decision number {} for the harbour board.\n\n",
                        d * 1000 + p
                    )
                })
                .collect();
            (format!("report-{d}.txt"), text)
        })
        .collect()
}

/// Waits until every document is ready: filename → chunk count.
async fn wait_all_ready(b: &Browser, collection: &str, n: usize) -> BTreeMap<String, i64> {
    let start = Instant::now();
    loop {
        let docs = json(b.get(&format!("/collections/{collection}/documents")).await).await;
        let docs = docs
            .as_array()
            .cloned()
            .or_else(|| docs["documents"].as_array().cloned());
        let docs = docs.expect("a document list");
        let ready: BTreeMap<String, i64> = docs
            .iter()
            .filter(|d| d["status"] == "ready")
            .map(|d| {
                (
                    d["filename"].as_str().unwrap().to_string(),
                    d["chunk_count"].as_i64().unwrap(),
                )
            })
            .collect();
        assert!(docs.iter().all(|d| d["status"] != "failed"), "{docs:?}");
        if ready.len() == n {
            return ready;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "not all ready: {docs:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn scalar(url: &str, sql: &str) -> i64 {
    let mut db = sqlx::PgConnection::connect(url).await.unwrap();
    let n = sqlx::query_scalar(sql).fetch_one(&mut db).await.unwrap();
    db.close().await.unwrap();
    n
}

#[tokio::test]
async fn two_instances_share_one_database() {
    let Some(db) = pg::database() else { return };
    let Some(single_db) = pg::database() else {
        return;
    };
    let model = ModelServer::start();
    let env = env(&model);
    let docs = documents();

    // The reference: one instance alone.
    let single_dir = tempfile::tempdir().unwrap();
    let single = start(single_dir.path(), &single_db.url, &env);
    support::create_admin_on(single_dir.path(), Some(&single_db.url), "root", PW);
    let (me, collection) = support::signed_in(&single, "root", PW, "reports").await;
    for (name, text) in &docs {
        me.uploaded(&collection, name, text).await;
    }
    let expected = wait_all_ready(&me, &collection, docs.len()).await;
    assert!(expected.values().all(|&n| n > 1), "{expected:?}");
    drop(single);

    // Two instances starting together on an empty database. They share the data directory (a
    // shared volume in production): uploaded originals are files there, and the instance that
    // ingests a document is not always the one that received it.
    let shared = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| start(shared.path(), &db.url, &env));
        let b = s.spawn(|| start(shared.path(), &db.url, &env));
        (a.join().unwrap(), b.join().unwrap())
    });
    eprintln!("both started in {:?}", started.elapsed());
    let files = std::fs::read_dir(support::pg::repo_root().join("app/migrations/postgres"))
        .unwrap()
        .count() as i64;
    assert_eq!(
        scalar(&db.url, "SELECT COUNT(*) FROM _sqlx_migrations").await,
        files
    );
    assert_eq!(
        scalar(
            &db.url,
            "SELECT COUNT(DISTINCT version) FROM _sqlx_migrations WHERE success"
        )
        .await,
        files,
        "each migration applied once"
    );

    // A session made on A is accepted by B (same cookie, same CSRF token).
    support::create_admin_on(shared.path(), Some(&db.url), "root", PW);
    let (on_a, collection) = support::signed_in(&a, "root", PW, "reports").await;
    let mut on_b = Browser::new(&b);
    on_b.http = on_a.http.clone();
    on_b.csrf = on_a.csrf.clone();
    assert_eq!(on_b.get("/auth/session").await.status(), 200);
    let listed = json(on_b.get("/collections").await).await;
    assert!(listed.to_string().contains(&collection), "{listed}");

    // Uploads alternate between the instances; both workers run.
    for (i, (name, text)) in docs.iter().enumerate() {
        let via = if i % 2 == 0 { &on_a } else { &on_b };
        via.uploaded(&collection, name, text).await;
    }
    let got = wait_all_ready(&on_b, &collection, docs.len()).await;
    assert_eq!(got, expected, "chunk counts as with one instance");
    assert_eq!(
        wait_all_ready(&on_a, &collection, docs.len()).await,
        expected
    );

    // Indexed exactly once: one claim each, no duplicate chunk or vector.
    let total: i64 = expected.values().sum();
    assert_eq!(scalar(&db.url, "SELECT COUNT(*) FROM chunks").await, total);
    assert_eq!(
        scalar(
            &db.url,
            "SELECT COUNT(*) FROM (SELECT document_id, ordinal FROM chunks \
                         GROUP BY document_id, ordinal HAVING COUNT(*) > 1) dup"
        )
        .await,
        0
    );
    assert_eq!(
        scalar(&db.url, "SELECT COUNT(*) FROM chunk_vectors").await,
        total
    );
    assert_eq!(
        scalar(
            &db.url,
            "SELECT COUNT(*) FROM documents WHERE attempts <> 1"
        )
        .await,
        0
    );
    let worked = |berth: &Berth| {
        berth
            .logs()
            .iter()
            .filter(|l| l.contains("document ready"))
            .count()
    };
    let (by_a, by_b) = (worked(&a), worked(&b));
    eprintln!("ingested by A: {by_a}, by B: {by_b}");
    assert_eq!(
        by_a + by_b,
        docs.len(),
        "each document ingested by exactly one instance"
    );
    // The HNSW index for the dimension exists once.
    assert_eq!(
        scalar(
            &db.url,
            "SELECT COUNT(*) FROM pg_indexes WHERE indexname LIKE 'chunk_vectors_hnsw_%'"
        )
        .await,
        1
    );
    // Search on either instance finds what the other indexed.
    for via in [&on_a, &on_b] {
        let r = json(
            via.post("/search", json!({"query": "decision number 9005", "k": 3}))
                .await,
        )
        .await;
        assert_eq!(
            r["results"][0]["document_name"].as_str(),
            Some("report-9.txt"),
            "{r}"
        );
    }
    drop((a, b));
}
