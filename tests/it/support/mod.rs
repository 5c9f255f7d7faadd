//! Test support for black-box tests: start the real `berth` binary on a free port with its own
//! data directory, read its JSON logs, stop it with a signal.

pub mod files;
pub mod hub;
pub mod llama;
pub mod llm;
pub mod metrics;
pub mod oidc;
pub mod pg;
pub mod redis;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_berth");

pub struct Berth {
    child: Child,
    pub base: String,
    pub data_dir: PathBuf,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Berth {
    /// Starts `berth serve` on 127.0.0.1:0 (the kernel picks the port; the log line tells it).
    pub fn start(data_dir: &Path) -> Berth {
        Berth::start_with(data_dir, &[], &[])
    }

    pub fn start_with(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Berth {
        Berth::start_as("serve", data_dir, args, env)
    }

    /// `berth worker` (ingestion only; /health, /ready, /metrics over HTTP).
    pub fn start_worker(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Berth {
        Berth::start_as("worker", data_dir, args, env)
    }

    fn start_as(command: &str, data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Berth {
        Berth::start_bin(Path::new(BIN), command, data_dir, args, env)
    }

    /// `BIN COMMAND …` of another build of Berth (the previous release, in `upgrade::`).
    pub fn start_bin(
        bin: &Path,
        command: &str,
        data_dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Berth {
        let mut cmd = Command::new(bin);
        cmd.arg(command);
        // A test that must know the port beforehand (a public URL) passes its own --listen.
        if !args.contains(&"--listen") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        cmd.arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .args(database_args_unless_given(data_dir, args, env))
            .env("BERTH_LOG_FORMAT", "json")
            .env("BERTH_LOG_LEVEL", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn berth");
        let logs = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    logs.lock().unwrap().push(line);
                }
            });
        }
        let mut berth = Berth {
            child,
            base: String::new(),
            data_dir: data_dir.to_owned(),
            logs,
        };
        let line = berth.wait_for_log(
            |l| l.contains("Berth is listening") || l.contains("Berth worker is ingesting"),
            Duration::from_secs(30),
        );
        let v: serde_json::Value = serde_json::from_str(&line).expect("listening line is JSON");
        berth.base = format!("http://{}", v["address"].as_str().expect("address field"));
        berth
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Waits for a log line matching `pred`; panics with every line seen so far on timeout.
    pub fn wait_for_log(&mut self, pred: impl Fn(&str) -> bool, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            if let Some(line) = self.logs().into_iter().find(|l| pred(l)) {
                return line;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "berth exited ({status}) early; logs:\n{}",
                    self.logs().join("\n")
                );
            }
            if start.elapsed() > timeout {
                panic!(
                    "timed out waiting for a log line; logs:\n{}",
                    self.logs().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// Waits for the process to exit; panics after `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < timeout,
                "berth did not exit within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(mut self) -> Vec<String> {
        self.signal("TERM");
        let status = self.wait(Duration::from_secs(30));
        assert!(status.success(), "berth exited with {status}");
        std::thread::sleep(Duration::from_millis(50));
        self.logs()
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// True when the black-box tests run Berth on PostgreSQL (`BERTH_TEST_BACKEND=postgres`): each
/// data directory then gets a fresh database of its own (see `pg`). Otherwise, the default, they
/// run on the embedded SQLite store.
pub fn postgres_backend() -> bool {
    match std::env::var("BERTH_TEST_BACKEND").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite" | "") | Err(_) => false,
        Ok(other) => panic!("BERTH_TEST_BACKEND={other}: expected sqlite or postgres"),
    }
}

/// `--database-url URL` for the data directory's database under the PostgreSQL backend.
pub fn database_args(data_dir: &Path) -> Vec<String> {
    if postgres_backend() {
        vec!["--database-url".into(), pg::database_for_dir(data_dir)]
    } else {
        Vec::new()
    }
}

fn database_args_unless_given(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Vec<String> {
    let given = args.iter().any(|a| a.starts_with("--database-url"))
        || env.iter().any(|(k, _)| *k == "BERTH_DATABASE_URL");
    if given {
        Vec::new()
    } else {
        database_args(data_dir)
    }
}

/// The URL of the data directory's database, whichever the backend.
pub fn database_url(data_dir: &Path) -> String {
    if postgres_backend() {
        pg::database_for_dir(data_dir)
    } else {
        format!("sqlite://{}", data_dir.join("berth.db").display())
    }
}

/// Runs `sql` straight on the data directory's database: the first column of each row, as text.
pub async fn db_strings(data_dir: &Path, sql: &str) -> Vec<String> {
    use sqlx::Connection;
    let url = database_url(data_dir);
    if postgres_backend() {
        let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query_scalar(sql).fetch_all(&mut db).await.unwrap()
    } else {
        let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query_scalar(sql).fetch_all(&mut db).await.unwrap()
    }
}

/// Executes `sql` straight on the data directory's database: rows affected, or the database's
/// refusal.
pub async fn db_execute(data_dir: &Path, sql: &str) -> Result<u64, String> {
    use sqlx::Connection;
    let url = database_url(data_dir);
    let result = if postgres_backend() {
        let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query(sql)
            .execute(&mut db)
            .await
            .map(|r| r.rows_affected())
    } else {
        let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query(sql)
            .execute(&mut db)
            .await
            .map(|r| r.rows_affected())
    };
    result.map_err(|e| e.to_string())
}

/// Settings for the real built-in embedder (all-MiniLM-L6-v2 from `cargo xtask fixtures`), one
/// bulk thread.
pub fn builtin_embeddings() -> Vec<(String, String)> {
    vec![
        ("BERTH_EMBED_API".into(), "builtin".into()),
        (
            "BERTH_EMBED_MODEL_DIR".into(),
            berth_embed::test_model_dir().to_string_lossy().into_owned(),
        ),
        ("BERTH_EMBED_THREADS".into(), "1".into()),
    ]
}

/// Runs `berth` to completion (for commands that must fail at start): (exit code, stderr).
pub fn run_to_exit(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env("BERTH_LOG_FORMAT", "json");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run berth");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Runs `berth admin create` for the data dir, password on stdin.
pub fn create_admin(data_dir: &Path, username: &str, password: &str) {
    create_admin_on(data_dir, None, username, password)
}

/// [`create_admin`] on an explicit database (`None`: the test backend's for `data_dir`).
pub fn create_admin_on(
    data_dir: &Path,
    database_url: Option<&str>,
    username: &str,
    password: &str,
) {
    let (code, out) = admin_cli_on(data_dir, database_url, "create", username, password);
    assert_eq!(code, 0, "berth admin create failed: {out}");
}

/// Runs `berth admin ACTION --username NAME --password-stdin`: (exit code, stdout + stderr).
pub fn admin_cli(data_dir: &Path, action: &str, username: &str, password: &str) -> (i32, String) {
    admin_cli_on(data_dir, None, action, username, password)
}

fn admin_cli_on(
    data_dir: &Path,
    database_url: Option<&str>,
    action: &str,
    username: &str,
    password: &str,
) -> (i32, String) {
    use std::io::Write;
    let database = match database_url {
        Some(url) => vec!["--database-url".to_string(), url.to_string()],
        None => database_args(data_dir),
    };
    let mut child = Command::new(BIN)
        .args([
            "admin",
            action,
            "--username",
            username,
            "--password-stdin",
            "--data-dir",
        ])
        .arg(data_dir)
        .args(database)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn berth admin");
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// A browser-like API client: keeps the session cookie and sends the CSRF token on changes.
pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
    pub csrf: Option<String>,
}

impl Browser {
    pub fn new(berth: &Berth) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .user_agent("berth-tests/1")
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            base: berth.url("/api/v1"),
            csrf: None,
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .json(&body);
        if let Some(csrf) = &self.csrf {
            req = req.header("x-csrf-token", csrf);
        }
        req.send().await.unwrap()
    }

    /// Uploads `bytes` as the file `name` into a collection (multipart, as the web UI does).
    pub async fn upload(&self, collection: &str, name: &str, bytes: Vec<u8>) -> reqwest::Response {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()),
        );
        let mut req = self
            .http
            .post(format!("{}/collections/{collection}/documents", self.base))
            .multipart(form);
        if let Some(csrf) = &self.csrf {
            req = req.header("x-csrf-token", csrf);
        }
        req.send().await.unwrap()
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> reqwest::Response {
        self.send(reqwest::Method::POST, path, body).await
    }

    /// Signs in; returns the status, keeping the CSRF token on success.
    pub async fn sign_in(&mut self, username: &str, password: &str) -> reqwest::StatusCode {
        let resp = self
            .post(
                "/auth/sign-in",
                serde_json::json!({ "username": username, "password": password }),
            )
            .await;
        let status = resp.status();
        if status.is_success() {
            let body: serde_json::Value = resp.json().await.unwrap();
            self.csrf = body["csrf_token"].as_str().map(String::from);
        }
        status
    }

    /// Uploads a document and checks it was accepted (202): its id.
    pub async fn uploaded(&self, collection: &str, name: &str, bytes: impl AsRef<[u8]>) -> String {
        let resp = self.upload(collection, name, bytes.as_ref().to_vec()).await;
        let status = resp.status();
        let body = resp.text().await.unwrap();
        assert_eq!(
            status,
            reqwest::StatusCode::ACCEPTED,
            "upload of {name}: {body}"
        );
        let body: serde_json::Value = serde_json::from_str(&body).expect("a JSON body");
        body["id"].as_str().expect("the document's id").to_string()
    }

    /// Waits until a document has `status` (failing after `timeout`): the document.
    pub async fn wait_status(
        &self,
        id: &str,
        status: &str,
        timeout: Duration,
    ) -> serde_json::Value {
        let start = Instant::now();
        loop {
            let doc = json(self.get(&format!("/documents/{id}")).await).await;
            if doc["status"] == status {
                return doc;
            }
            assert!(
                start.elapsed() < timeout,
                "document never became {status}: {doc}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Uploads a document and waits until it is ready (30 s at most): its id.
    pub async fn ingest(&self, collection: &str, name: &str, bytes: impl AsRef<[u8]>) -> String {
        let id = self.uploaded(collection, name, bytes).await;
        self.wait_status(&id, "ready", Duration::from_secs(30))
            .await;
        id
    }

    /// Signs in and creates a collection: the collection's id.
    pub async fn sign_in_with_collection(
        &mut self,
        username: &str,
        password: &str,
        name: &str,
    ) -> String {
        assert_eq!(
            self.sign_in(username, password).await,
            reqwest::StatusCode::OK,
            "sign-in of {username}"
        );
        let c = json(
            self.post("/collections", serde_json::json!({ "name": name }))
                .await,
        )
        .await;
        c["id"].as_str().expect("the collection's id").to_string()
    }

    pub async fn register(&self, username: &str, password: &str) -> reqwest::Response {
        self.post(
            "/auth/register",
            serde_json::json!({ "username": username, "password": password }),
        )
        .await
    }
}

/// Signs in as an existing user and creates a collection: (the browser, the collection's id).
pub async fn signed_in(
    berth: &Berth,
    username: &str,
    password: &str,
    collection: &str,
) -> (Browser, String) {
    let mut me = Browser::new(berth);
    let id = me
        .sign_in_with_collection(username, password, collection)
        .await;
    (me, id)
}

pub async fn json(resp: reqwest::Response) -> serde_json::Value {
    resp.json().await.expect("a JSON body")
}
