//! The processes under measurement: the release binary on a free port, `wrk`, a throwaway
//! PostgreSQL, and the admin the figures sign in as.

use super::*;

/// The release binary on a data dir; stopped on drop.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) async fn start(args: &Args, dir: &Path, env: &[(&str, String)]) -> Result<Server> {
    let port = free_port();
    let mut cmd = Command::new(&args.berth);
    cmd.args([
        "serve",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--data-dir",
    ])
    .arg(dir)
    .env("BERTH_LOG_LEVEL", "warn")
    .env("BERTH_LOG_FORMAT", "json")
    .stdout(Stdio::null())
    .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let server = Server {
        child: cmd.spawn().context("starting berth")?,
        base: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(120) {
        if let Ok(r) = http.get(format!("{}/ready", server.base)).send().await {
            if r.status().is_success() {
                return Ok(server);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("berth did not become ready")
}

pub(crate) fn rss_kib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0.0)
}

/// What wrk reported: requests/s and latency percentiles (from `--latency`).
pub(crate) struct Wrk {
    pub(crate) rps: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
}

impl Wrk {
    pub(crate) fn parse(text: &str) -> Wrk {
        let ms = |v: &str| -> f64 {
            let v = v.trim();
            let (num, scale) = if let Some(n) = v.strip_suffix("us") {
                (n, 0.001)
            } else if let Some(n) = v.strip_suffix("ms") {
                (n, 1.0)
            } else if let Some(n) = v.strip_suffix('s') {
                (n, 1000.0)
            } else {
                (v, f64::NAN)
            };
            num.parse::<f64>().map_or(f64::NAN, |n| n * scale)
        };
        let pct = |p: &str| {
            text.lines()
                .find_map(|l| l.trim().strip_prefix(p))
                .map_or(f64::NAN, ms)
        };
        Wrk {
            rps: text
                .lines()
                .find_map(|l| l.strip_prefix("Requests/sec:"))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(f64::NAN),
            p50_ms: pct("50%"),
            p99_ms: pct("99%"),
        }
    }
}

/// A PostgreSQL with pgvector in a container (the image `cargo xtask fixtures` builds), for the
/// search figures on the PostgreSQL store; removed when dropped.
pub(crate) struct Postgres {
    pub(crate) container: String,
    pub(crate) base: String,
}

impl Postgres {
    pub(crate) async fn start() -> Result<Postgres> {
        let container = format!("berth-bench-pg-{}", std::process::id());
        let password = uuid::Uuid::new_v4().simple().to_string();
        let out = Command::new("docker")
            .args(["run", "--detach", "--rm", "--name", &container])
            .args(["--env", &format!("POSTGRES_PASSWORD={password}")])
            .args(["--publish", "127.0.0.1::5432", "--shm-size", "512m"])
            .args([
                "pgvector/pgvector:pg17",
                "postgres",
                "-c",
                "max_connections=200",
            ])
            .output()
            .context("running docker")?;
        if !out.status.success() {
            bail!(
                "docker run: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let mut pg = Postgres {
            container,
            base: String::new(),
        };
        let port = Command::new("docker")
            .args(["port", &pg.container, "5432/tcp"])
            .output()?;
        let port = String::from_utf8_lossy(&port.stdout);
        let port = port
            .lines()
            .next()
            .and_then(|l| l.rsplit(':').next())
            .context("published port")?
            .trim()
            .to_string();
        pg.base = format!("postgres://postgres:{password}@127.0.0.1:{port}");
        let t = Instant::now();
        while pg.psql("SELECT 1").is_err() {
            if t.elapsed() > Duration::from_secs(90) {
                bail!("PostgreSQL did not start");
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        // psql answers on the socket before TCP is up; wait for TCP too.
        tokio::time::sleep(Duration::from_secs(2)).await;
        Ok(pg)
    }

    pub(crate) fn psql(&self, sql: &str) -> Result<String> {
        let out = Command::new("docker")
            .args([
                "exec",
                &self.container,
                "psql",
                "-U",
                "postgres",
                "-Atc",
                sql,
            ])
            .output()?;
        if !out.status.success() {
            bail!("{}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// A fresh database: its URL.
    pub(crate) fn database(&self) -> Result<String> {
        let name = format!("bench_{}", uuid::Uuid::new_v4().simple());
        self.psql(&format!("CREATE DATABASE {name}"))?;
        Ok(format!("{}/{name}", self.base))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "--force", &self.container])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

pub(crate) fn which(bin: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {bin}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub(crate) fn tempdir(name: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("berth-bench-{name}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

pub(crate) async fn sign_in(server: &Server) -> Result<(reqwest::Client, String)> {
    let http = reqwest::Client::builder().cookie_store(true).build()?;
    let resp: Value = http
        .post(format!("{}/api/v1/auth/sign-in", server.base))
        .json(&json!({"username": "bench", "password": PW}))
        .send()
        .await?
        .json()
        .await?;
    let csrf = resp["csrf_token"]
        .as_str()
        .context("signed in")?
        .to_string();
    Ok((http, csrf))
}

pub(crate) async fn create_admin(store: &Store) -> Result<String> {
    let id = uuid::Uuid::new_v4().to_string();
    let row = UserRow {
        id: id.clone(),
        username: "bench".into(),
        password_hash: password::hash_blocking(PW),
        role: "admin".into(),
        state: "active".into(),
        created_at: 0,
        updated_at: 0,
    };
    store.insert_user(&row).await?;
    Ok(id)
}
