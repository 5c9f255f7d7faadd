//! A real PostgreSQL with pgvector for tests.
//!
//! One server per test process: a container of `pgvector/pgvector:pg17` (here the stand-in that
//! `cargo xtask fixtures` builds; elsewhere the upstream image works the same), started on first
//! use, published on 127.0.0.1 at a port Docker picks. Every test gets a database of its own
//! (`t_<random>`) from [`database`]. With `BERTH_TEST_DATABASE_URL` set to a server URL (a
//! PostgreSQL with pgvector that is already running, e.g. `postgres://postgres:pw@localhost:5432`)
//! no container is started.
//!
//! Nothing runs when a test process exits (no destructor of a static does), so the container is
//! cleaned up two ways: a small watchdog process removes it once this process is gone, and every
//! test process first removes containers left by processes that no longer exist (e.g. after the
//! watchdog itself was killed). Each container is labelled with the process that owns it.
//!
//! Without Docker the PostgreSQL tests skip with a loud notice, except under CI (`CI=true`),
//! where they fail: CI never silently skips a check.

use std::future::Future;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};

/// The image the tests run: the upstream name (the stand-in is tagged with it).
pub const IMAGE: &str = "pgvector/pgvector:pg17";
/// An already-running server to use instead of a container.
pub const URL_VAR: &str = "BERTH_TEST_DATABASE_URL";

const LABEL: &str = "org.berth.test";
const LABEL_PID: &str = "org.berth.test.pid";
const LABEL_PID_START: &str = "org.berth.test.pid-start";
/// Comment on every test database, so old ones on a long-lived server can be found.
const DB_COMMENT: &str = "berth test database, created at unix time ";

/// A PostgreSQL server the tests may create databases on.
pub struct Server {
    /// `postgres://user:password@host:port` with no database.
    base: reqwest::Url,
}

impl Server {
    /// The URL of database `db` on this server.
    pub fn url(&self, db: &str) -> String {
        let mut url = self.base.clone();
        url.set_path(&format!("/{db}"));
        url.to_string()
    }
}

/// A database made for one test; dropped (best effort) when this is dropped.
pub struct TestDb {
    pub name: String,
    pub url: String,
    server: &'static Server,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin = self.server.url("postgres");
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        let _ = block_on(async move {
            let mut conn = PgConnection::connect(&admin).await?;
            sqlx::query(&sql).execute(&mut conn).await?;
            conn.close().await
        });
    }
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
static DOCKER: OnceLock<Result<(), String>> = OnceLock::new();
static NOTICE: std::sync::Once = std::sync::Once::new();

/// True under CI (`CI=true`), where a test that cannot run fails instead of skipping.
pub fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// The shared server; `None` (after a loud notice) when there is none and skipping is allowed.
/// Panics under CI when there is none.
pub fn server() -> Option<&'static Server> {
    match SERVER.get_or_init(start_server) {
        Ok(server) => Some(server),
        Err(why) => {
            skip_or_fail(why);
            None
        }
    }
}

/// A fresh, empty database on the shared server, or `None` when the tests must skip.
/// Use it at the top of a PostgreSQL test: `let Some(db) = pg::database() else { return };`.
pub fn database() -> Option<TestDb> {
    let server = server()?;
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let admin = server.url("postgres");
    let (create, comment) = (
        format!("CREATE DATABASE \"{name}\""),
        format!(
            "COMMENT ON DATABASE \"{name}\" IS '{DB_COMMENT}{}'",
            unix_now()
        ),
    );
    block_on(async move {
        let mut conn = PgConnection::connect(&admin).await?;
        sqlx::query(&create).execute(&mut conn).await?;
        sqlx::query(&comment).execute(&mut conn).await?;
        conn.close().await
    })
    .unwrap_or_else(|e| panic!("creating a test database on PostgreSQL: {e}"));
    Some(TestDb {
        url: server.url(&name),
        name,
        server,
    })
}

/// The database of a black-box test's data directory: made on first use, the same afterwards
/// (so a restarted Berth, or `berth admin`, finds the same data). Kept until the process ends.
/// Panics when PostgreSQL is unavailable: the caller asked for the PostgreSQL backend.
pub fn database_for_dir(data_dir: &Path) -> String {
    static DBS: OnceLock<Mutex<Vec<(PathBuf, TestDb)>>> = OnceLock::new();
    let mut dbs = DBS.get_or_init(Default::default).lock().unwrap();
    if let Some((_, db)) = dbs.iter().find(|(dir, _)| dir == data_dir) {
        return db.url.clone();
    }
    let Some(db) = database() else {
        panic!(
            "BERTH_TEST_BACKEND=postgres, but there is no PostgreSQL to test on (see the notice \
             above); unset it to test the embedded store"
        );
    };
    let url = db.url.clone();
    dbs.push((data_dir.to_owned(), db));
    url
}

/// Skips loudly (once per process), or fails under CI.
pub fn skip_or_fail(why: &str) {
    if is_ci() {
        panic!("PostgreSQL tests cannot run: {why}. Under CI they must (CI=true).");
    }
    NOTICE.call_once(|| {
        // Straight to stderr: the test harness would swallow an eprintln! of a passing test.
        let _ = writeln!(
            std::io::stderr(),
            "\n!! SKIPPING PostgreSQL tests: {why}\n!! Start Docker (and run `cargo xtask fixtures`), \
             or set {URL_VAR} to a PostgreSQL server with pgvector.\n"
        );
    });
}

fn start_server() -> Result<Server, String> {
    if let Ok(url) = std::env::var(URL_VAR) {
        return external_server(&url);
    }
    docker_ready()?;
    let name = format!("berth-test-pg-{}", std::process::id());
    let password = uuid::Uuid::new_v4().simple().to_string();
    let mut args = vec!["run".to_string()];
    args.extend(owner_labels());
    args.extend(
        [
            "--detach",
            "--rm",
            "--name",
            &name,
            "--env",
            &format!("POSTGRES_PASSWORD={password}"),
            "--publish",
            "127.0.0.1::5432",
            // Test data needs no durability: keep it in memory, and skip the flushes.
            "--tmpfs",
            "/var/lib/postgresql/data",
            "--shm-size",
            "256m",
            IMAGE,
            "postgres",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=500",
        ]
        .map(String::from),
    );
    docker(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .map_err(|e| format!("cannot start a PostgreSQL container: {e}"))?;
    watch_over(&name);
    let port = published_port(&name)?;
    let base = reqwest::Url::parse(&format!("postgres://postgres:{password}@127.0.0.1:{port}"))
        .expect("a valid URL");
    let server = Server { base };
    wait_until_ready(&server.url("postgres"), &name, Duration::from_secs(90))?;
    Ok(server)
}

/// `BERTH_TEST_DATABASE_URL`: checks it answers, and drops test databases older than a day that
/// earlier runs left on it.
fn external_server(url: &str) -> Result<Server, String> {
    let mut base =
        reqwest::Url::parse(url).map_err(|e| format!("{URL_VAR} is not a valid URL: {e}"))?;
    if !matches!(base.scheme(), "postgres" | "postgresql") {
        return Err(format!("{URL_VAR} is not a postgres:// URL"));
    }
    base.set_path("");
    let server = Server { base };
    let admin = server.url("postgres");
    let stale: Vec<String> = block_on(async move {
        let mut conn = PgConnection::connect(&admin).await?;
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT d.datname, s.description FROM pg_database d JOIN pg_shdescription s \
             ON s.objoid = d.oid AND s.classoid = 'pg_database'::regclass \
             WHERE s.description LIKE $1",
        )
        .bind(format!("{DB_COMMENT}%"))
        .fetch_all(&mut conn)
        .await?;
        conn.close().await?;
        Ok::<_, sqlx::Error>(rows)
    })
    .map_err(|e| format!("{URL_VAR} does not answer: {e}"))?
    .into_iter()
    .filter(|(_, comment)| {
        comment[DB_COMMENT.len()..]
            .parse::<u64>()
            .is_ok_and(|t| t + 24 * 3600 < unix_now())
    })
    .map(|(name, _)| name)
    .collect();
    let admin = server.url("postgres");
    let _ = block_on(async move {
        let mut conn = PgConnection::connect(&admin).await?;
        for name in stale {
            let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
            sqlx::query(&sql).execute(&mut conn).await?;
        }
        conn.close().await
    });
    Ok(server)
}

/// Docker answers and the image exists (once per process): starts the engine with the
/// machine's script and builds the image with `cargo xtask fixtures` when needed, and removes
/// containers that dead test processes left behind.
pub fn docker_ready() -> Result<(), String> {
    DOCKER
        .get_or_init(|| {
            if docker(&["info", "--format", "{{.ServerVersion}}"]).is_err() {
                let script = repo_root().join("../shared/ci/docker-engine.sh");
                if script.is_file() {
                    let _ = writeln!(
                        std::io::stderr(),
                        "pg: starting Docker with {}",
                        script.display()
                    );
                    let _ = Command::new("bash")
                        .arg(&script)
                        .stdout(Stdio::null())
                        .status();
                }
                docker(&["info", "--format", "{{.ServerVersion}}"])
                    .map_err(|e| format!("no Docker engine ({e})"))?;
            }
            if docker(&["image", "inspect", "--format", "{{.Id}}", IMAGE]).is_err() {
                let _ = writeln!(
                    std::io::stderr(),
                    "pg: image {IMAGE} is missing; running `cargo xtask fixtures pgvector`"
                );
                let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
                let status = Command::new(cargo)
                    .args(["xtask", "fixtures", "pgvector"])
                    .current_dir(repo_root())
                    .stdout(Stdio::null())
                    .status()
                    .map_err(|e| format!("cannot run cargo xtask fixtures: {e}"))?;
                if !status.success() {
                    return Err(format!("`cargo xtask fixtures pgvector` failed ({status})"));
                }
            }
            remove_stale_containers();
            Ok(())
        })
        .clone()
}

/// A PostgreSQL container of one test's own, to stop, start or pause without disturbing others.
/// Its host port stays the same across restarts. Removed when dropped.
pub struct Dedicated {
    pub name: String,
    port: u16,
    password: String,
}

impl Dedicated {
    /// `None` (after a notice) when Docker is unavailable and skipping is allowed.
    pub fn start() -> Option<Dedicated> {
        Dedicated::start_with(&[], &[])
    }

    /// [`Dedicated::start`] with more `docker run` options (before the image) and a command
    /// instead of the image's (after it).
    pub fn start_with(docker_args: &[&str], command: &[&str]) -> Option<Dedicated> {
        if let Err(why) = docker_ready() {
            if std::env::var(URL_VAR).is_ok() && is_ci() {
                eprintln!("skipped: needs Docker ({why}); {URL_VAR} cannot stand in for it");
                return None;
            }
            skip_or_fail(&why);
            return None;
        }
        let name = format!(
            "berth-test-pg-{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let password = uuid::Uuid::new_v4().simple().to_string();
        let port = free_port();
        let mut args = vec!["run".to_string()];
        args.extend(owner_labels());
        args.extend(
            [
                "--detach",
                "--name",
                &name,
                "--env",
                &format!("POSTGRES_PASSWORD={password}"),
                "--publish",
                &format!("127.0.0.1:{port}:5432"),
            ]
            .map(String::from),
        );
        args.extend(docker_args.iter().map(|a| a.to_string()));
        args.push(IMAGE.into());
        args.extend(command.iter().map(|a| a.to_string()));
        docker(&args.iter().map(String::as_str).collect::<Vec<_>>())
            .unwrap_or_else(|e| panic!("cannot start a PostgreSQL container: {e}"));
        watch_over(&name);
        let pg = Dedicated {
            name,
            port,
            password,
        };
        pg.wait_ready(Duration::from_secs(90));
        Some(pg)
    }

    pub fn url(&self) -> String {
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/postgres",
            self.password, self.port
        )
    }

    /// `docker ACTION NAME` (stop, start, pause, unpause, kill).
    pub fn docker(&self, action: &str) {
        docker(&[action, &self.name]).unwrap_or_else(|e| panic!("{e}"));
    }

    pub fn wait_ready(&self, timeout: Duration) {
        wait_until_ready(&self.url(), &self.name, timeout).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Runs `psql -c SQL` inside the container: its output.
    pub fn psql(&self, sql: &str) -> String {
        docker(&[
            "exec",
            &self.name,
            "psql",
            "-U",
            "postgres",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .unwrap_or_else(|e| panic!("{e}"))
    }
}

impl Drop for Dedicated {
    fn drop(&mut self) {
        let _ = docker(&["rm", "--force", "--volumes", &self.name]);
    }
}

/// Runs `docker ARGS`: stdout, or an error with its stderr.
pub fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run docker: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`docker {}` failed: {}",
            args.first().copied().unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// `--label` arguments naming this process as the container's owner.
fn owner_labels() -> Vec<String> {
    let pid = std::process::id();
    let start = process_start(pid).unwrap_or_default();
    vec![
        "--label".into(),
        format!("{LABEL}=postgres"),
        "--label".into(),
        format!("{LABEL_PID}={pid}"),
        "--label".into(),
        format!("{LABEL_PID_START}={start}"),
    ]
}

/// When the process started (clock ticks since boot, from /proc), to tell a live owner from a
/// new process that reuses its pid. None where there is no /proc.
fn process_start(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name (field 2) may hold spaces and parentheses: count from the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19).map(String::from)
}

fn process_alive(pid: &str, start: &str) -> bool {
    if Path::new("/proc/self/stat").exists() {
        let Ok(pid) = pid.parse::<u32>() else {
            return false;
        };
        process_start(pid).is_some_and(|s| start.is_empty() || s == start)
    } else {
        Command::new("kill")
            .args(["-0", pid])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

/// Removes test containers whose owning process is gone.
fn remove_stale_containers() {
    let format = format!(
        "{{{{.ID}}}}\t{{{{.Label \"{LABEL_PID}\"}}}}\t{{{{.Label \"{LABEL_PID_START}\"}}}}"
    );
    let Ok(list) = docker(&[
        "ps",
        "--all",
        "--filter",
        &format!("label={LABEL}"),
        "--format",
        &format,
    ]) else {
        return;
    };
    for line in list.lines() {
        let mut fields = line.split('\t');
        let (Some(id), Some(pid)) = (fields.next(), fields.next()) else {
            continue;
        };
        let start = fields.next().unwrap_or_default();
        if !process_alive(pid, start) {
            let _ = docker(&["rm", "--force", "--volumes", id]);
        }
    }
}

/// Starts a watchdog that removes the container once this process has exited. It runs in a
/// process group of its own, so Ctrl-C on the test run does not stop it before its work.
fn watch_over(container: &str) {
    use std::os::unix::process::CommandExt;
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
         docker rm --force --volumes {container} >/dev/null 2>&1",
        pid = std::process::id()
    );
    let spawned = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
    if let Err(e) = spawned {
        eprintln!("pg: no watchdog for {container} ({e}); the next test run removes it");
    }
}

fn published_port(container: &str) -> Result<u16, String> {
    let out = docker(&["port", container, "5432/tcp"])?;
    out.lines()
        .filter_map(|l| l.trim().rsplit_once(':'))
        .find_map(|(_, port)| port.parse().ok())
        .ok_or_else(|| format!("`docker port {container}` printed no port: {out:?}"))
}

/// Waits until a connection to `url` succeeds (the image's first start initialises the
/// database with the network closed, so this means it is really ready).
fn wait_until_ready(url: &str, container: &str, timeout: Duration) -> Result<(), String> {
    let started = Instant::now();
    loop {
        let url_ = url.to_string();
        let result = block_on(async move {
            let conn = PgConnection::connect(&url_).await?;
            conn.close().await
        });
        let error = match result {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if started.elapsed() > timeout {
            let logs = Command::new("docker")
                .args(["logs", "--tail", "30", container])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                .unwrap_or_default();
            return Err(format!(
                "PostgreSQL in container {container} did not accept connections within \
                 {timeout:?} ({error}); its last log lines:\n{logs}"
            ));
        }
        let running = docker(&["inspect", "--format", "{{.State.Running}}", container]);
        if running.as_deref().map(str::trim) != Ok("true") {
            return Err(format!(
                "the PostgreSQL container {container} stopped while starting; try \
                 `docker run --rm -e POSTGRES_PASSWORD=x {IMAGE}` to see why"
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().unwrap().port()
}

/// The repository root (the berth package is its `app/` folder).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("app/ has a parent")
        .to_owned()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Runs a future to completion on a thread of its own, so it works from sync code and from
/// inside a test's runtime alike.
pub fn block_on<F>(future: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(future)
    })
    .join()
    .expect("the helper thread panicked")
}

/// One number from the database at `url` (`SELECT COUNT(*) …`).
pub async fn scalar(url: &str, sql: &str) -> i64 {
    use sqlx::Connection;
    let mut db = sqlx::PgConnection::connect(url).await.unwrap();
    let n = sqlx::query_scalar(sql).fetch_one(&mut db).await.unwrap();
    db.close().await.unwrap();
    n
}

/// However many processes ingested: every document was claimed once and no chunk stored twice.
pub async fn assert_each_document_ingested_once(url: &str) {
    assert_eq!(
        scalar(url, "SELECT COUNT(*) FROM documents WHERE attempts <> 1").await,
        0,
        "each document claimed once"
    );
    assert_eq!(
        scalar(
            url,
            "SELECT COUNT(*) FROM (SELECT document_id, ordinal FROM chunks \
             GROUP BY document_id, ordinal HAVING COUNT(*) > 1) dup"
        )
        .await,
        0,
        "no chunk indexed twice"
    );
}
