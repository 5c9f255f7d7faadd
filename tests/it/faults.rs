//! Fault injection: real outages while Berth is under load, and what it must do through them.
//!
//! - PostgreSQL SIGKILLed (a crash, not a clean stop) while clients upload and register:
//!   requests answer 503 (never 500), Berth recovers within seconds of the database's return,
//!   every acknowledged write is stored and every acknowledged document is ingested.
//! - Redis killed while clients search: only the cache is lost, every search answers.
//! - The model server down and back: chat answers 503, then works; ingestion waits, then resumes.
//! - SIGTERM while requests are in flight: each of them finishes, then Berth exits cleanly.
//! - The data volume full (a small tmpfs): uploads are refused with 507 and a JSON body that
//!   says what to do, nothing is left half-written, the database passes its integrity check,
//!   and uploads work again once space returns.
//!
//! Everything here is real: the `berth` binary, a PostgreSQL container (the pgvector stand-in),
//! Debian's `redis-server`, the in-test Ollama-compatible server, a kernel tmpfs. The tests are
//! #[ignore]d (they need Docker and root, and take a minute or two); `cargo xtask ci` runs them
//! in its `faults` step, which prints how many scenarios passed.

use crate::support;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::llm::ModelServer;
use support::redis::Redis;
use support::{json, Berth, Browser, BIN};

const PW: &str = "Fault!injection-pw1";

/// Logs of a run must show no 500 and no panic, whatever was broken meanwhile.
fn assert_no_500s_or_panics(logs: &[String]) {
    let bad: Vec<_> = logs
        .iter()
        .filter(|l| {
            l.contains("\"status\":500") || l.contains("internal error") || l.contains("panicked")
        })
        .collect();
    assert!(bad.is_empty(), "500s or panics in the log:\n{bad:#?}");
}

fn model_env(model: &ModelServer) -> Vec<(&'static str, String)> {
    vec![
        ("BERTH_LLM_URL", model.url()),
        ("BERTH_LLM_MODEL", "test-chat".into()),
        ("BERTH_EMBED_URL", model.url()),
        ("BERTH_EMBED_MODEL", "test-embed".into()),
        ("BERTH_LLM_TIMEOUT", "5".into()),
    ]
}

fn start(dir: &Path, args: &[&str], env: &[(&'static str, String)]) -> Berth {
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // The load runs register from one address, far past the per-address limit.
    env.push(("BERTH_REGISTER_MAX_PER_ADDRESS", "1000000"));
    Berth::start_with(dir, args, &env)
}

/// The parts of a signed-in browser that many tasks can share.
#[derive(Clone)]
struct Session {
    http: reqwest::Client,
    base: String,
    csrf: String,
}

impl Session {
    fn of(b: &Browser) -> Session {
        Session {
            http: b.http.clone(),
            base: b.base.clone(),
            csrf: b.csrf.clone().unwrap_or_default(),
        }
    }

    async fn upload(&self, collection: &str, name: &str, bytes: Vec<u8>) -> (u16, Value) {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()),
        );
        let resp = self
            .http
            .post(format!("{}/collections/{collection}/documents", self.base))
            .header("x-csrf-token", &self.csrf)
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("x-csrf-token", &self.csrf)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn document(&self, id: &str) -> Value {
        let resp = self
            .http
            .get(format!("{}/documents/{id}", self.base))
            .send()
            .await
            .unwrap();
        resp.json().await.unwrap_or(Value::Null)
    }

    async fn wait_ready(&self, id: &str, timeout: Duration) {
        let start = Instant::now();
        loop {
            let doc = self.document(id).await;
            if doc["status"] == "ready" {
                return;
            }
            assert!(
                start.elapsed() < timeout,
                "document {id} never became ready: {doc}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A text of its own for each upload, so none is a duplicate of another.
fn unique_text(tag: &str) -> Vec<u8> {
    format!(
        "Report {tag}\n\nThe {tag} shipment of rocket parts arrived on time and was stored in \
         hangar {tag}. Fuel levels were checked twice."
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Docker; run by `cargo xtask ci` (faults)"]
async fn postgres_killed_under_load_gives_503s_recovers_and_loses_no_acknowledged_write() {
    let Some(pg) = support::pg::Dedicated::start() else {
        return;
    };
    let model = ModelServer::start();
    let dir = tempfile::tempdir().unwrap();
    support::create_admin_on(dir.path(), Some(&pg.url()), "root", PW);
    let berth = start(
        dir.path(),
        &["--database-url", &pg.url()],
        &model_env(&model),
    );
    let (me, collection) = support::signed_in(&berth, "root", PW, "faults").await;
    let session = Session::of(&me);

    // (what, status, when it was sent, document id when one was acknowledged)
    type Outcome = (String, u16, Instant, Option<String>);
    let results = Arc::new(Mutex::new(Vec::<Outcome>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..4 {
        let (session, collection, results, stop) = (
            session.clone(),
            collection.clone(),
            results.clone(),
            stop.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let tag = format!("w{w}n{i}");
                i += 1;
                let sent = Instant::now();
                let outcome = if w % 2 == 0 {
                    let (status, body) = session
                        .upload(&collection, &format!("{tag}.txt"), unique_text(&tag))
                        .await;
                    let id = body["id"].as_str().map(String::from);
                    (tag, status, sent, id.filter(|_| status == 202))
                } else {
                    // Registration is for people not signed in: no session cookie.
                    let status = reqwest::Client::new()
                        .post(format!("{}/auth/register", session.base))
                        .json(&json!({"username": tag, "password": "L0ad!and-restart"}))
                        .send()
                        .await
                        .unwrap()
                        .status()
                        .as_u16();
                    (tag, status, sent, None)
                };
                results.lock().unwrap().push(outcome);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // SIGKILL: no shutdown, no checkpoint; PostgreSQL replays its WAL when it starts again.
    pg.docker("kill");
    tokio::time::sleep(Duration::from_secs(5)).await;
    pg.docker("start");
    let restarted = Instant::now();
    let recovered = loop {
        let ok_after = results
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, status, sent, _)| *status == 202 && *sent > restarted)
            .count();
        if ok_after >= 8 {
            break restarted.elapsed();
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(30),
            "no recovery within 30 s of the database's return"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let results = results.lock().unwrap().clone();
    let count = |code: u16| results.iter().filter(|r| r.1 == code).count();
    println!(
        "postgres kill: {} requests, {} x 202, {} x 503; recovered {recovered:?} after the start",
        results.len(),
        count(202),
        count(503)
    );
    let others: Vec<_> = results
        .iter()
        .filter(|r| r.1 != 202 && r.1 != 503)
        .collect();
    assert!(others.is_empty(), "only 202 or 503: {others:?}");
    assert!(count(503) > 0, "the outage was seen");
    assert!(
        recovered < Duration::from_secs(15),
        "recovered in {recovered:?}"
    );

    // Every acknowledged registration and upload is stored; every acknowledged document is
    // ingested once the database is back (the job queue survived the crash).
    let users = pg.psql("SELECT username FROM users");
    let documents = pg.psql("SELECT id FROM documents");
    for (tag, status, _, id) in &results {
        if *status != 202 {
            continue;
        }
        match id {
            Some(id) => {
                assert!(
                    documents.lines().any(|l| l == id),
                    "{tag} ({id}) acknowledged but not stored"
                );
                session.wait_ready(id, Duration::from_secs(60)).await;
            }
            None => assert!(
                users.lines().any(|l| l == tag),
                "{tag} acknowledged but not stored"
            ),
        }
    }
    assert_no_500s_or_panics(&berth.stop());
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs redis-server; run by `cargo xtask ci` (faults)"]
async fn redis_killed_under_search_load_costs_only_the_cache() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let model = ModelServer::start();
    let dir = tempfile::tempdir().unwrap();
    support::create_admin(dir.path(), "root", PW);
    let mut env = model_env(&model);
    env.push(("BERTH_REDIS_URL", redis.url()));
    env.push(("BERTH_CACHE_TTL", "600".into()));
    let berth = start(dir.path(), &[], &env);
    let (me, collection) = support::signed_in(&berth, "root", PW, "faults").await;
    let session = Session::of(&me);
    for i in 0..3 {
        let (status, body) = session
            .upload(
                &collection,
                &format!("r{i}.txt"),
                unique_text(&format!("r{i}")),
            )
            .await;
        assert_eq!(status, 202, "{body}");
        session
            .wait_ready(body["id"].as_str().unwrap(), Duration::from_secs(30))
            .await;
    }

    // (status, mode, latency)
    let results = Arc::new(Mutex::new(Vec::<(u16, String, Duration)>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..8 {
        let (session, results, stop) = (session.clone(), results.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                // A few queries over and over: most are cache hits while Redis is up.
                let query = format!("rocket parts in hangar r{}", (w + i) % 3);
                i += 1;
                let sent = Instant::now();
                let (status, body) = session
                    .post("/search", json!({"query": query, "k": 5}))
                    .await;
                let mode = body["mode"].as_str().unwrap_or_default().to_string();
                results.lock().unwrap().push((status, mode, sent.elapsed()));
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    redis.kill();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ready: Value = json(reqwest::get(berth.url("/ready")).await.unwrap()).await;
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["checks"]["cache"]["ok"], false, "{ready}");
    redis.restart();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let results = results.lock().unwrap().clone();
    let slowest = results.iter().map(|r| r.2).max().unwrap();
    println!(
        "redis kill: {} searches, slowest {slowest:?}",
        results.len()
    );
    let bad: Vec<_> = results
        .iter()
        .filter(|r| r.0 != 200 || r.1 != "hybrid")
        .collect();
    assert!(bad.is_empty(), "every search answers, in full: {bad:?}");
    assert!(
        slowest < Duration::from_secs(5),
        "a dead Redis stalls nothing: {slowest:?}"
    );
    let start = Instant::now();
    loop {
        let ready: Value = json(reqwest::get(berth.url("/ready")).await.unwrap()).await;
        if ready["checks"]["cache"]["ok"] == true {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the cache never came back: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_no_500s_or_panics(&berth.stop());
}

/// Server-Sent Event names of a chat answer.
async fn event_names(resp: reqwest::Response) -> Vec<String> {
    let text = resp.text().await.unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("event:"))
        .map(|e| e.trim().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "run by `cargo xtask ci` (faults)"]
async fn model_server_down_and_back_chat_503_then_answers_and_ingestion_resumes() {
    let model = ModelServer::start();
    let dir = tempfile::tempdir().unwrap();
    support::create_admin(dir.path(), "root", PW);
    let berth = start(dir.path(), &[], &model_env(&model));
    let (me, collection) = support::signed_in(&berth, "root", PW, "faults").await;
    let session = Session::of(&me);
    let (status, body) = session
        .upload(&collection, "before.txt", unique_text("before"))
        .await;
    assert_eq!(status, 202, "{body}");
    session
        .wait_ready(body["id"].as_str().unwrap(), Duration::from_secs(30))
        .await;
    let conv = json(me.post("/conversations", json!({})).await).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let messages = format!("/conversations/{conv}/messages");
    let ask = || me.post(&messages, json!({"content": "Where are the rocket parts?"}));
    let resp = ask().await;
    assert_eq!(resp.status(), 200);
    assert_eq!(event_names(resp).await.last().unwrap(), "done");

    // Down: the port closes.
    let addr = model.stop();
    let resp = ask().await;
    assert_eq!(resp.status(), 503);
    let body = json(resp).await;
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    let (status, body) = session
        .upload(&collection, "during.txt", unique_text("during"))
        .await;
    assert_eq!(status, 202, "uploads are still accepted: {body}");
    let during = body["id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let doc = session.document(&during).await;
    assert_eq!(doc["status"], "queued", "waits for the model server: {doc}");

    // Back on the same address: chat answers, and the waiting document is ingested.
    let model = ModelServer::start_on(addr);
    let back = Instant::now();
    session.wait_ready(&during, Duration::from_secs(60)).await;
    println!(
        "model server back: queued document ready {:?} later",
        back.elapsed()
    );
    let resp = ask().await;
    assert_eq!(resp.status(), 200);
    assert_eq!(event_names(resp).await.last().unwrap(), "done");
    drop(model);
    assert_no_500s_or_panics(&berth.stop());
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "run by `cargo xtask ci` (faults)"]
async fn sigterm_under_load_lets_every_in_flight_request_finish() {
    let model = ModelServer::start();
    let dir = tempfile::tempdir().unwrap();
    support::create_admin(dir.path(), "root", PW);
    let mut berth = start(dir.path(), &[], &model_env(&model));
    let (me, collection) = support::signed_in(&berth, "root", PW, "faults").await;
    let session = Session::of(&me);
    let (status, body) = session
        .upload(&collection, "doc.txt", unique_text("doc"))
        .await;
    assert_eq!(status, 202, "{body}");
    session
        .wait_ready(body["id"].as_str().unwrap(), Duration::from_secs(30))
        .await;

    // Every search waits 1.5 s for its query embedding, so all are in flight at the signal.
    model.set(|b| b.embed_delay = Duration::from_millis(1500));
    let mut in_flight = Vec::new();
    for i in 0..24 {
        let session = session.clone();
        in_flight.push(tokio::spawn(async move {
            session
                .post("/search", json!({"query": format!("rocket fuel {i}")}))
                .await
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    berth.signal("TERM");
    let mut finished = 0;
    for r in in_flight {
        let (status, body) = r.await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["mode"], "hybrid", "{body}");
        finished += 1;
    }
    println!("sigterm: {finished} in-flight searches finished");
    let status = berth.wait(Duration::from_secs(30));
    assert!(status.success(), "clean exit: {status}");
    assert_no_500s_or_panics(&berth.logs());
}

/// A tmpfs of `size` mounted on a fresh directory; unmounted when dropped.
struct SmallVolume {
    dir: tempfile::TempDir,
}

impl SmallVolume {
    /// `None` (after a notice) when mounting is not allowed here (not root); fails under CI.
    fn mount(size: &str) -> Option<SmallVolume> {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output();
        match out {
            Ok(out) if out.status.success() => Some(SmallVolume { dir }),
            other => {
                let why = format!("cannot mount a tmpfs (needs root): {other:?}");
                assert!(
                    !support::pg::is_ci(),
                    "{why}; under CI this scenario must run"
                );
                eprintln!("\n!! SKIPPING the full-disk scenario: {why}\n");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallVolume {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Writes 256 KiB blocks to `path` until the disk refuses: the volume is full.
fn fill(path: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let block = vec![0x5au8; 256 * 1024];
    loop {
        match f.write_all(&block).and_then(|()| f.sync_all()) {
            Ok(()) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
            Err(e) => panic!("filling the volume: {e}"),
        }
    }
    // Whatever partial block fit is on disk too: now not one byte is free.
    let _ = f.write_all(&[0u8; 4096]);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs root (mounts a tmpfs); run by `cargo xtask ci` (faults)"]
async fn a_full_data_volume_is_a_clear_error_corrupts_nothing_and_recovers() {
    let Some(volume) = SmallVolume::mount("32m") else {
        return;
    };
    let data = volume.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let model = ModelServer::start();
    support::create_admin(&data, "root", PW);
    let berth = start(&data, &[], &model_env(&model));
    let (me, collection) = support::signed_in(&berth, "root", PW, "faults").await;
    let session = Session::of(&me);
    let (status, body) = session
        .upload(&collection, "kept.txt", unique_text("kept"))
        .await;
    assert_eq!(status, 202, "{body}");
    let kept = body["id"].as_str().unwrap().to_string();
    session.wait_ready(&kept, Duration::from_secs(30)).await;

    let filler = volume.path().join("filler");
    fill(&filler);
    let mut refused = 0;
    for i in 0..5 {
        // 600 KiB: more than could fit in any slack left.
        let text = format!("Large report {i}. ").repeat(40_000).into_bytes();
        let (status, body) = session
            .upload(&collection, &format!("big{i}.txt"), text)
            .await;
        assert_eq!(status, 507, "a full disk is a 507: {body}");
        assert_eq!(body["error"]["code"], "insufficient_storage", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("storage is full"), "{message}");
        refused += 1;
        // Small database writes meanwhile: done, or refused the same way; never a 500.
        let resp = reqwest::Client::new()
            .post(format!("{}/auth/register", session.base))
            .json(&json!({"username": format!("full{i}"), "password": "Fu11!disk-pw"}))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        assert!(
            status == 202 || status == 507,
            "a write on a full disk: {status} {body}"
        );
    }
    // Nothing half-written was left behind by the refused uploads.
    let leftovers: Vec<_> = std::fs::read_dir(data.join("tmp"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    let ready = reqwest::get(berth.url("/health")).await.unwrap();
    assert_eq!(ready.status(), 200, "still alive");

    // Space returns: uploads work again, and what was there before is intact.
    std::fs::remove_file(&filler).unwrap();
    let (status, body) = session
        .upload(&collection, "after.txt", unique_text("after"))
        .await;
    assert_eq!(status, 202, "{body}");
    session
        .wait_ready(body["id"].as_str().unwrap(), Duration::from_secs(30))
        .await;
    assert_eq!(session.document(&kept).await["status"], "ready");
    let (status, body) = session
        .post("/search", json!({"query": "hangar kept"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["document_id"], kept.as_str(), "{body}");
    println!("full disk: {refused} uploads refused with 507, then accepted again");
    let logs = berth.stop();
    assert_no_500s_or_panics(&logs);

    // The database is whole.
    use sqlx::Connection;
    let url = format!("sqlite://{}", data.join("berth.db").display());
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(check, "ok");
    db.close().await.unwrap();
    drop(model);
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// A soak at modest load: 4 clients searching, listing, checking health and uploading now and
/// then, for `BERTH_SOAK_SECS` seconds (30 in CI; `cargo xtask bench --soak` runs 30 minutes).
/// Every request must succeed; the RSS growth is reported (a figure, not an assert) in
/// target/faults/soak.json.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "run by `cargo xtask ci` (faults) and `cargo xtask bench --soak`"]
async fn soak_at_modest_load_every_request_succeeds_and_rss_growth_is_reported() {
    let secs: u64 = std::env::var("BERTH_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let model = ModelServer::start();
    let dir = tempfile::tempdir().unwrap();
    support::create_admin(dir.path(), "root", PW);
    let berth = start(dir.path(), &[], &model_env(&model));
    let (me, collection) = support::signed_in(&berth, "root", PW, "faults").await;
    let session = Session::of(&me);
    let pid = berth.pid();
    let stop = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut workers = Vec::new();
    for w in 0..4u64 {
        let (session, collection, stop, requests, failures, health) = (
            session.clone(),
            collection.clone(),
            stop.clone(),
            requests.clone(),
            failures.clone(),
            berth.url("/health"),
        );
        workers.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let (status, what) = match i % 10 {
                    0 if w == 0 => {
                        let tag = format!("soak{i}");
                        let (s, _) = session
                            .upload(&collection, &format!("{tag}.txt"), unique_text(&tag))
                            .await;
                        (s, "upload")
                    }
                    1..=5 => {
                        let q = format!("rocket parts hangar soak{}", i % 50);
                        (
                            session.post("/search", json!({"query": q})).await.0,
                            "search",
                        )
                    }
                    6 => {
                        let url = format!("{}/collections/{collection}/documents", session.base);
                        let s = session.http.get(url).send().await.unwrap().status();
                        (s.as_u16(), "list")
                    }
                    _ => {
                        let s = session.http.get(&health).send().await.unwrap().status();
                        (s.as_u16(), "health")
                    }
                };
                requests.fetch_add(1, Ordering::Relaxed);
                if !(200..300).contains(&status) {
                    failures.lock().unwrap().push(format!("{what}: {status}"));
                }
                // Modest: about 40 requests a second in all.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }));
    }
    let started = Instant::now();
    let warm_up = Duration::from_secs((secs / 10).clamp(5, 60));
    tokio::time::sleep(warm_up).await;
    let mut samples = vec![(started.elapsed().as_secs(), rss_kib(pid))];
    while started.elapsed() < Duration::from_secs(secs) {
        tokio::time::sleep(Duration::from_secs(5)).await;
        samples.push((started.elapsed().as_secs(), rss_kib(pid)));
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let (first, last) = (samples[0].1, samples.last().unwrap().1);
    let peak = samples.iter().map(|s| s.1).max().unwrap();
    let total = requests.load(Ordering::Relaxed);
    let report = json!({
        "seconds": secs,
        "requests": total,
        "failures": failures.lock().unwrap().len(),
        "rss_kib_after_warm_up": first,
        "rss_kib_at_end": last,
        "rss_kib_peak": peak,
        "rss_growth_kib": last as i64 - first as i64,
        "warm_up_seconds": warm_up.as_secs(),
        "binary": BIN,
        "samples": samples,
    });
    let out = support::pg::repo_root().join("target/faults");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        out.join("soak.json"),
        serde_json::to_string_pretty(&report).unwrap(),
    )
    .unwrap();
    println!(
        "soak: {secs} s, {total} requests, RSS {:.1} MiB after warm-up → {:.1} MiB at the end \
         (peak {:.1} MiB)",
        first as f64 / 1024.0,
        last as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    let failures = failures.lock().unwrap().clone();
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    assert_no_500s_or_panics(&berth.stop());
}
