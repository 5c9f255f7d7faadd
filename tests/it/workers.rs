//! The worker role: `berth worker` processes ingest from the queue in PostgreSQL while
//! `berth serve --ingest false` instances only answer the API. Every document is ingested
//! exactly once whichever worker claims it, with the real built-in embedder.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::support::pg::{self, scalar};
use crate::support::{self, json, Berth, Browser};
use serde_json::json;

const PW: &str = "Adm1n!chosen-well";

fn start(worker: bool, dir: &std::path::Path, url: &str) -> Berth {
    let env = support::builtin_embeddings();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    if worker {
        Berth::start_worker(dir, &["--database-url", url], &env)
    } else {
        Berth::start_with(dir, &["--database-url", url, "--ingest", "false"], &env)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_and_two_api_instances_ingest_each_document_once() {
    let Some(db) = pg::database() else { return };
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let url = db.url.as_str();
    let processes: Vec<Berth> = std::thread::scope(|s| {
        let handles: Vec<_> = dirs
            .iter()
            .enumerate()
            .map(|(i, d)| s.spawn(move || start(i >= 2, d.path(), url)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let (apis, workers) = processes.split_at(2);
    support::create_admin_on(dirs[0].path(), Some(&db.url), "root", PW);
    let mut me = Browser::new(&apis[0]);
    me.sign_in("root", PW).await;
    let collection = json(me.post("/collections", json!({"name": "minutes"})).await).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let n_docs = 12;
    let mut ids = BTreeSet::new();
    for d in 0..n_docs {
        let text: String = (0..6)
            .map(|p| format!("Minutes {d}, item {p}: the harbour board approved berth {p}.\n\n"))
            .collect();
        ids.insert(
            me.uploaded(&collection, &format!("minutes-{d}.txt"), text)
                .await,
        );
    }
    assert_eq!(ids.len(), n_docs);
    let started = Instant::now();
    loop {
        let ready = scalar(
            &db.url,
            "SELECT COUNT(*) FROM documents WHERE status = 'ready'",
        )
        .await;
        let failed = scalar(
            &db.url,
            "SELECT COUNT(*) FROM documents WHERE status = 'failed'",
        )
        .await;
        assert_eq!(failed, 0, "no ingestion failed");
        if ready == n_docs as i64 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{ready}/{n_docs} ready"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let done_by = |b: &Berth| {
        b.logs()
            .iter()
            .filter(|l| l.contains("document ready"))
            .count()
    };
    assert_eq!(
        apis.iter().map(done_by).sum::<usize>(),
        0,
        "the API instances ingested nothing"
    );
    let by_worker: Vec<usize> = workers.iter().map(done_by).collect();
    assert_eq!(
        by_worker.iter().sum::<usize>(),
        n_docs,
        "each document once: {by_worker:?}"
    );
    pg::assert_each_document_ingested_once(&db.url).await;
    // The workers' vectors serve the API's searches.
    let found = json(
        me.post(
            "/search",
            json!({"query": "harbour board approval", "k": 3}),
        )
        .await,
    )
    .await;
    assert_eq!(found["mode"], "hybrid", "{found}");
    assert!(!found["results"].as_array().unwrap().is_empty(), "{found}");
}

#[tokio::test]
async fn a_worker_serves_health_and_metrics_and_no_api() {
    let Some(db) = pg::database() else { return };
    let dir = tempfile::tempdir().unwrap();
    let worker = start(true, dir.path(), &db.url);
    let http = support::client();
    for path in ["/health", "/ready", "/metrics"] {
        let r = http.get(worker.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    let r = http
        .get(worker.url("/api/v1/auth/session"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("ingestion worker"));
}

#[test]
fn workers_need_postgresql() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    for args in [
        vec!["worker", "--data-dir", data],
        vec!["serve", "--data-dir", data, "--ingest", "false"],
    ] {
        let (code, err) = support::run_to_exit(&args, &[]);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("need PostgreSQL"), "{args:?}: {err}");
    }
}
