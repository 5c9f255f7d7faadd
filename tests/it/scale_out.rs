//! Scale-out as on Kubernetes: three `berth serve` processes on one PostgreSQL database, each
//! with its OWN data directory (no shared disk), behind one port. The port is a small
//! round-robin TCP proxy that routes like a Service does: only to instances whose /ready
//! answers 200, a new connection per request (the test client keeps none alive).
//!
//! What it assumes of the platform, as Kubernetes does it: an instance leaves the rotation
//! before it gets SIGTERM (the Deployment's preStop sleep gives the endpoint controller that
//! time), and a connection refused before any byte was sent is tried on another instance.
//!
//! Runs on the test PostgreSQL whatever `BERTH_TEST_BACKEND` says (skips without Docker, fails
//! under CI).

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use support::llm::ModelServer;
use support::pg::{self, scalar};
use support::Berth;
use tokio::net::{TcpListener, TcpStream};

const PW: &str = "Adm1n!chosen-well";

// ----- the Service: round robin over ready instances -----

struct Backend {
    addr: SocketAddr,
    /// In the rotation (the test takes it out before SIGTERM, like an endpoint removal).
    routed: bool,
    /// Its /ready answered 200 last time (the readiness probe).
    ready: bool,
    /// Connections it was given.
    served: usize,
}

#[derive(Clone)]
struct Proxy {
    addr: SocketAddr,
    backends: Arc<Mutex<Vec<Backend>>>,
    next: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    async fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Proxy {
            addr: listener.local_addr().unwrap(),
            backends: Arc::default(),
            next: Arc::default(),
            stop: Arc::default(),
        };
        let p = proxy.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let p = p.clone();
                tokio::spawn(async move { p.serve(client).await });
            }
        });
        let p = proxy.clone();
        // The readiness probe: every 100 ms.
        tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_millis(500))
                .build()
                .unwrap();
            while !p.stop.load(Ordering::Relaxed) {
                let addrs: Vec<SocketAddr> =
                    p.backends.lock().unwrap().iter().map(|b| b.addr).collect();
                for addr in addrs {
                    let ok = http
                        .get(format!("http://{addr}/ready"))
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success());
                    if let Some(b) = p
                        .backends
                        .lock()
                        .unwrap()
                        .iter_mut()
                        .find(|b| b.addr == addr)
                    {
                        b.ready = ok;
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        proxy
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn add(&self, berth: &Berth) {
        let addr: SocketAddr = berth.base.trim_start_matches("http://").parse().unwrap();
        self.backends.lock().unwrap().push(Backend {
            addr,
            routed: true,
            ready: false,
            served: 0,
        });
    }

    fn unroute(&self, berth: &Berth) {
        let addr: SocketAddr = berth.base.trim_start_matches("http://").parse().unwrap();
        for b in self.backends.lock().unwrap().iter_mut() {
            if b.addr == addr {
                b.routed = false;
            }
        }
    }

    /// Connections each backend got, by address.
    fn served(&self) -> BTreeMap<SocketAddr, usize> {
        self.backends
            .lock()
            .unwrap()
            .iter()
            .map(|b| (b.addr, b.served))
            .collect()
    }

    async fn wait_ready(&self, n: usize) {
        let start = Instant::now();
        while self
            .backends
            .lock()
            .unwrap()
            .iter()
            .filter(|b| b.routed && b.ready)
            .count()
            < n
        {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "instances not ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn serve(&self, mut client: TcpStream) {
        // Try each routable backend once, starting at the next in turn.
        for _ in 0..6 {
            let candidates: Vec<SocketAddr> = self
                .backends
                .lock()
                .unwrap()
                .iter()
                .filter(|b| b.routed && b.ready)
                .map(|b| b.addr)
                .collect();
            if candidates.is_empty() {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            let addr = candidates[self.next.fetch_add(1, Ordering::Relaxed) % candidates.len()];
            match TcpStream::connect(addr).await {
                Ok(mut upstream) => {
                    if let Some(b) = self
                        .backends
                        .lock()
                        .unwrap()
                        .iter_mut()
                        .find(|b| b.addr == addr)
                    {
                        b.served += 1;
                    }
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    return;
                }
                // Refused: nothing was sent yet, so another instance may take it.
                Err(_) => continue,
            }
        }
    }
}

// ----- helpers -----

fn start(dir: &std::path::Path, url: &str, embed: &str) -> Berth {
    let env = [
        ("BERTH_EMBED_URL", embed),
        ("BERTH_EMBED_API", "ollama"),
        ("BERTH_EMBED_MODEL", "test-embed"),
        ("BERTH_LLM_TIMEOUT", "5"),
    ];
    Berth::start_with(dir, &["--database-url", url], &env)
}

/// A browser session against `base` that opens a new connection per request, so that each
/// request through the proxy may reach another instance.
struct Session {
    http: reqwest::Client,
    base: String,
    csrf: String,
}

impl Session {
    async fn sign_in(base: &str) -> Session {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let base = format!("{base}/api/v1");
        let resp = http
            .post(format!("{base}/auth/sign-in"))
            .json(&json!({ "username": "root", "password": PW }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body: serde_json::Value = resp.json().await.unwrap();
        let csrf = body["csrf_token"].as_str().unwrap().to_string();
        Session { http, base, csrf }
    }

    /// The same cookie and CSRF token, sent to another address.
    fn via(&self, base: &str) -> Session {
        Session {
            http: self.http.clone(),
            base: format!("{base}/api/v1"),
            csrf: self.csrf.clone(),
        }
    }

    async fn get(&self, path: &str) -> reqwest::Result<reqwest::Response> {
        self.http.get(format!("{}{path}", self.base)).send().await
    }

    async fn post(
        &self,
        path: &str,
        body: serde_json::Value,
    ) -> reqwest::Result<reqwest::Response> {
        self.http
            .post(format!("{}{path}", self.base))
            .header("x-csrf-token", &self.csrf)
            .json(&body)
            .send()
            .await
    }

    async fn upload(&self, collection: &str, name: &str, text: &str) -> String {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(text.as_bytes().to_vec()).file_name(name.to_string()),
        );
        let resp = self
            .http
            .post(format!("{}/collections/{collection}/documents", self.base))
            .header("x-csrf-token", &self.csrf)
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202, "{}", resp.text().await.unwrap());
        let body: serde_json::Value = resp.json().await.unwrap();
        body["id"].as_str().unwrap().to_string()
    }
}

fn document(d: usize) -> (String, String) {
    let text: String = (0..(20 + d % 9 * 4))
        .map(|p| {
            format!(
                "Paragraph {p} of minutes {d}: the harbour board discussed berth {p} and \
                 logged resolution {}.\n\n",
                d * 1000 + p
            )
        })
        .collect();
    (format!("minutes-{d}.txt"), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_behind_one_port() {
    let Some(db) = pg::database() else { return };
    let model = ModelServer::start();
    let embed = model.url();
    let proxy = Proxy::start().await;

    // Three instances, three data directories: nothing on disk is shared.
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut instances: Vec<Berth> = std::thread::scope(|s| {
        let handles: Vec<_> = dirs
            .iter()
            .map(|d| s.spawn(|| start(d.path(), &db.url, &embed)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for b in &instances {
        proxy.add(b);
    }
    proxy.wait_ready(3).await;
    support::create_admin_on(dirs[0].path(), Some(&db.url), "root", PW);

    // 1. A session works whichever instance answers.
    let me = Session::sign_in(&proxy.url()).await;
    for _ in 0..12 {
        let r = me.get("/auth/session").await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let served = proxy.served();
    assert!(
        served.values().all(|&n| n >= 3),
        "round robin reached every instance: {served:?}"
    );
    // ...and made on one instance, it is accepted by each of the others directly.
    let on_first = Session::sign_in(&instances[0].base).await;
    for b in &instances[1..] {
        let r = on_first.via(&b.base).get("/auth/session").await.unwrap();
        assert_eq!(r.status(), 200, "a session from instance 0 on {}", b.base);
        let made = on_first
            .via(&b.base)
            .post("/collections", json!({ "name": format!("via {}", b.base) }))
            .await
            .unwrap();
        assert_eq!(made.status(), 201, "CSRF token from instance 0 accepted");
    }

    // 2. Concurrent ingestion through the port: each document indexed exactly once, by
    // whichever instance claims it, from the bytes in the database.
    let c = me
        .post("/collections", json!({ "name": "minutes" }))
        .await
        .unwrap();
    let collection = c.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let n_docs = 30;
    let uploads = (0..n_docs).map(|d| {
        let (name, text) = document(d);
        let me = &me;
        let collection = &collection;
        async move { me.upload(collection, &name, &text).await }
    });
    let ids: BTreeSet<String> = futures_util::future::join_all(uploads)
        .await
        .into_iter()
        .collect();
    assert_eq!(ids.len(), n_docs);
    let start_wait = Instant::now();
    loop {
        let ready = scalar(
            &db.url,
            "SELECT COUNT(*) FROM documents WHERE status = 'ready' AND filename LIKE 'minutes-%'",
        )
        .await;
        let failed = scalar(
            &db.url,
            "SELECT COUNT(*) FROM documents WHERE status = 'failed'",
        )
        .await;
        assert_eq!(
            failed, 0,
            "no ingestion failed (a worker could not read an upload?)"
        );
        if ready == n_docs as i64 {
            break;
        }
        assert!(
            start_wait.elapsed() < Duration::from_secs(90),
            "{ready}/{n_docs} ready"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    pg::assert_each_document_ingested_once(&db.url).await;
    assert_eq!(
        scalar(
            &db.url,
            "SELECT COUNT(*) FROM documents d WHERE d.chunk_count < 2 OR d.chunk_count <> \
             (SELECT COUNT(*) FROM chunks c WHERE c.document_id = d.id)"
        )
        .await,
        0,
        "every document's chunks are all there, once"
    );
    let ingested: Vec<usize> = instances
        .iter()
        .map(|b| {
            b.logs()
                .iter()
                .filter(|l| l.contains("document ready"))
                .count()
        })
        .collect();
    eprintln!("documents ingested per instance: {ingested:?}");
    assert_eq!(
        ingested.iter().sum::<usize>(),
        n_docs,
        "each by exactly one instance"
    );
    assert!(
        ingested.iter().filter(|&&n| n > 0).count() >= 2,
        "ingestion spread over instances: {ingested:?}"
    );
    // No instance's disk holds an upload: the database does.
    for d in &dirs {
        let files = d.path().join("files");
        let n = std::fs::read_dir(&files).map(|r| r.count()).unwrap_or(0);
        assert_eq!(n, 0, "{} holds uploads", files.display());
    }

    // 3. A rolling restart under steady load: every acknowledged write survives.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let requests = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for worker in 0..4 {
        let s = me.via(&proxy.url());
        let (stop, acked, failures, requests) = (
            stop.clone(),
            acked.clone(),
            failures.clone(),
            requests.clone(),
        );
        load.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                requests.fetch_add(1, Ordering::Relaxed);
                let name = format!("load {worker}-{i}");
                match s.post("/collections", json!({ "name": name })).await {
                    Ok(r) if r.status().is_success() => {
                        let v: serde_json::Value = r.json().await.unwrap();
                        acked
                            .lock()
                            .unwrap()
                            .push(v["id"].as_str().unwrap().to_string());
                    }
                    Ok(r) => failures
                        .lock()
                        .unwrap()
                        .push(format!("{name}: {}", r.status())),
                    Err(e) => failures.lock().unwrap().push(format!("{name}: {e}")),
                }
                requests.fetch_add(1, Ordering::Relaxed);
                match s.get("/collections").await {
                    Ok(r) if r.status().is_success() => {}
                    Ok(r) => failures
                        .lock()
                        .unwrap()
                        .push(format!("list: {}", r.status())),
                    Err(e) => failures.lock().unwrap().push(format!("list: {e}")),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // maxSurge 1, maxUnavailable 0: a new instance is ready before an old one leaves.
    let mut new_dirs = Vec::new();
    for _ in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let fresh = start(dir.path(), &db.url, &embed);
        new_dirs.push(dir);
        proxy.add(&fresh);
        proxy.wait_ready(4).await;
        let old = instances.remove(0);
        proxy.unroute(&old);
        // The endpoint is gone before the signal (preStop), then a graceful stop.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let logs = tokio::task::spawn_blocking(move || old.stop())
            .await
            .unwrap();
        assert!(!logs.is_empty());
        instances.push(fresh);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let failures = failures.lock().unwrap().clone();
    let total = requests.load(Ordering::Relaxed);
    eprintln!(
        "rolling restart: {total} requests, {} writes acknowledged, {} failed: {failures:?}",
        acked.len(),
        failures.len()
    );
    assert!(acked.len() > 20, "the load ran during the restart");
    let listed = me.get("/collections").await.unwrap().text().await.unwrap();
    let lost: Vec<&String> = acked
        .iter()
        .filter(|id| !listed.contains(id.as_str()))
        .collect();
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    assert!(
        failures.is_empty(),
        "requests failed during the rolling restart: {failures:?}"
    );
    proxy.stop.store(true, Ordering::Relaxed);
    drop(instances);
}
