//! TLS to PostgreSQL and Redis, for real: a PostgreSQL container with `ssl=on` and a Redis
//! speaking only TLS, each presenting a certificate for 127.0.0.1 signed by a CA made here. Berth
//! checks the certificate against `database_ca_file` / `redis_ca_file`; with another CA it says
//! so in one line naming the setting (PostgreSQL: it does not start; Redis: it searches without
//! the cache). Without Docker the PostgreSQL test skips loudly (fails under CI), without
//! `redis-server` the Redis tests do.

use crate::cache::{fixture_on, HOLIDAYS, UNAVAILABLE};
use crate::support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use support::pg::Dedicated;
use support::redis::Redis;
use support::{run_to_exit, Berth};

/// A certificate authority of the test's own.
struct TestCa {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl TestCa {
    fn new(name: &str) -> TestCa {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        TestCa {
            cert: params.self_signed(&key).unwrap(),
            key,
        }
    }

    /// A server certificate for `names` (host names or addresses): (certificate, key), in PEM.
    fn server_cert(&self, names: &[&str]) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let cert = rcgen::CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &self.cert, &self.key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// The CA's certificate, written as a PEM file in `dir`.
    fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, self.cert.pem()).unwrap();
        path
    }
}

/// A PostgreSQL that accepts TCP connections over TLS only (`hostssl` in pg_hba.conf), with
/// `cert`/`key`. They go in through the environment and the server's user gets the key with
/// mode 0600 (PostgreSQL refuses a key others can read), so no host directory is mounted.
fn postgres_with_tls(cert: &str, key: &str) -> Option<Dedicated> {
    const SETUP: &str = r#"set -e
d=/var/lib/postgresql/tls
install -d -o postgres -g postgres -m 700 "$d"
printf '%s\n' "$TLS_CERT" > "$d/server.crt"
printf '%s\n' "$TLS_KEY" > "$d/server.key"
printf 'local all all trust\nhostssl all all all scram-sha-256\n' > "$d/pg_hba.conf"
chown postgres:postgres "$d"/*
chmod 600 "$d/server.key"
exec docker-entrypoint.sh postgres -c ssl=on -c ssl_cert_file="$d/server.crt" \
    -c ssl_key_file="$d/server.key" -c hba_file="$d/pg_hba.conf" -c fsync=off"#;
    let (cert_env, key_env) = (format!("TLS_CERT={cert}"), format!("TLS_KEY={key}"));
    Dedicated::start_with(
        &["--env", &cert_env, "--env", &key_env, "--entrypoint", "sh"],
        &["-c", SETUP],
    )
}

/// `berth admin create` with `env`, which must succeed.
fn admin_create(data_dir: &Path, env: &[(&str, &str)]) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(support::BIN)
        .args(["admin", "create", "--username", "root", "--password-stdin"])
        .arg("--data-dir")
        .arg(data_dir)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn berth admin");
    writeln!(child.stdin.take().unwrap(), "Adm1n!chosen-well").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "berth admin create over TLS: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `berth serve` that must fail at start: (exit code, stderr, how long it took).
fn serve_fails(dir: &Path, env: &[(&str, &str)]) -> (i32, String, Duration) {
    let started = Instant::now();
    let dir = dir.to_str().unwrap();
    let (code, stderr) = run_to_exit(
        &["serve", "--listen", "127.0.0.1:0", "--data-dir", dir],
        env,
    );
    (code, stderr, started.elapsed())
}

/// The one stderr line that says why, checked to be the only one that mentions `needle`.
fn the_line<'a>(stderr: &'a str, needle: &str) -> &'a str {
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains(needle)).collect();
    assert_eq!(lines.len(), 1, "one line says {needle:?}: {stderr}");
    lines[0]
}

#[test]
fn postgres_over_verified_tls_and_a_wrong_ca_named_in_one_line() {
    let ca = TestCa::new("Berth test CA");
    // For the address only: `localhost` is a name the certificate does not hold.
    let (cert, key) = ca.server_cert(&["127.0.0.1"]);
    let Some(pg) = postgres_with_tls(&cert, &key) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (right, wrong) = (
        ca.write(dir.path(), "ca.pem"),
        TestCa::new("Some other CA").write(dir.path(), "other-ca.pem"),
    );
    let password = pg
        .url()
        .split(':')
        .nth(2)
        .unwrap()
        .split('@')
        .next()
        .unwrap()
        .to_string();
    let verify_full = format!("{}?sslmode=verify-full", pg.url());

    // The right CA: Berth starts and its connections are encrypted.
    let data = dir.path().join("data");
    let env = [
        ("BERTH_DATABASE_URL", verify_full.as_str()),
        ("BERTH_DATABASE_CA_FILE", right.to_str().unwrap()),
    ];
    let berth = Berth::start_with(&data, &[], &env);
    let ready = support::pg::block_on({
        let url = berth.url("/ready");
        async move { reqwest::get(url).await.unwrap().status() }
    });
    assert_eq!(ready, StatusCode::OK);
    let encrypted = pg.psql(
        "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.application_name = 'berth'",
    );
    assert_eq!(encrypted.trim(), "t", "Berth's connections use TLS");
    drop(berth);
    // The other commands that open the database take the same settings.
    admin_create(&data, &env);

    // Another CA: no start, at once, and one line naming the setting and the file.
    let env = [
        ("BERTH_DATABASE_URL", verify_full.as_str()),
        ("BERTH_DATABASE_CA_FILE", wrong.to_str().unwrap()),
    ];
    let (code, stderr, took) = serve_fails(&dir.path().join("wrong"), &env);
    assert_ne!(code, 0, "{stderr}");
    let line = the_line(&stderr, "database_ca_file");
    assert!(
        line.contains(&format!(
            "not signed by the CA in database_ca_file ({})",
            wrong.display()
        )) && line.contains("UnknownIssuer"),
        "{line}"
    );
    assert!(!stderr.contains(&password), "no password in {stderr}");
    assert!(took < Duration::from_secs(10), "not retried: {took:?}");

    // By a name the certificate does not hold: refused, the name and the certificate's named.
    let by_name = verify_full.replace("@127.0.0.1:", "@localhost:");
    let env = [
        ("BERTH_DATABASE_URL", by_name.as_str()),
        ("BERTH_DATABASE_CA_FILE", right.to_str().unwrap()),
    ];
    let (code, stderr, _) = serve_fails(&dir.path().join("name"), &env);
    assert_ne!(code, 0, "{stderr}");
    let line = the_line(&stderr, "not issued for localhost");
    assert!(
        line.contains("only valid for IpAddress(127.0.0.1)"),
        "{line}"
    );

    // TLS off against a server that takes TLS only: told to turn it on.
    let disable = format!("{}?sslmode=disable", pg.url());
    let (code, stderr, _) = serve_fails(
        &dir.path().join("plain"),
        &[("BERTH_DATABASE_URL", disable.as_str())],
    );
    assert_ne!(code, 0, "{stderr}");
    let line = the_line(&stderr, "no encryption");
    assert!(line.contains("sslmode=verify-full"), "{line}");
}

#[tokio::test]
async fn redis_over_tls_caches_and_a_wrong_ca_only_costs_the_cache() {
    let ca = TestCa::new("Berth test CA");
    let (cert, key) = ca.server_cert(&["127.0.0.1", "localhost"]);
    let Some(redis) = Redis::start_tls(&cert, &key) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write(dir.path(), "ca.pem");
    let f = fixture_on(redis, &[("BERTH_REDIS_CA_FILE", ca_file.to_str().unwrap())]).await;
    f.me.ingest(&f.collection, "holidays.md", HOLIDAYS).await;
    let (first, embeds) = f.search_counting(None).await;
    assert_eq!(embeds, 1);
    let (again, embeds) = f.search_counting(None).await;
    assert_eq!(
        (again, embeds),
        (first, 0),
        "the second search came from Redis"
    );
    assert!(
        f.metric("berth_cache_hits_total", &[("kind", "results")])
            .await
            >= 1.0
    );
    assert_eq!(f.metric("berth_cache_errors_total", &[]).await, 0.0);
    assert_eq!(f.ready().await["checks"]["cache"]["ok"], true);
}

#[tokio::test]
async fn redis_with_a_wrong_ca_says_so_once_and_searches_without_the_cache() {
    let ca = TestCa::new("Berth test CA");
    let (cert, key) = ca.server_cert(&["127.0.0.1", "localhost"]);
    let Some(redis) = Redis::start_tls(&cert, &key) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let wrong = TestCa::new("Some other CA").write(dir.path(), "other-ca.pem");
    let f = fixture_on(redis, &[("BERTH_REDIS_CA_FILE", wrong.to_str().unwrap())]).await;
    // Said at start, before any search: one line naming the setting and the file.
    let said: Vec<String> = f
        .berth
        .logs()
        .into_iter()
        .filter(|l| l.contains("redis_ca_file"))
        .collect();
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0].contains(UNAVAILABLE), "{}", said[0]);
    assert!(
        said[0].contains(&format!(
            "not signed by the CA in redis_ca_file ({})",
            wrong.display()
        )),
        "{}",
        said[0]
    );
    f.me.ingest(&f.collection, "holidays.md", HOLIDAYS).await;
    for _ in 0..3 {
        let (results, embeds) = f.search_counting(None).await;
        assert!(!results.is_empty(), "the search still works");
        assert_eq!(embeds, 1, "computed each time: there is no cache");
    }
    assert_eq!(
        f.metric("berth_cache_hits_total", &[("kind", "results")])
            .await,
        0.0
    );
    let ready = f.ready().await;
    assert_eq!(ready["checks"]["cache"]["ok"], false, "{ready}");
    assert_eq!(
        f.log_count(UNAVAILABLE),
        1,
        "one warning, not one per search"
    );
}
