//! Black-box tests of the server process: health, readiness, metrics, logs, shutdown, start-up
//! refusals. Each test starts the real binary with its own data directory.

mod support;

use std::time::Duration;

use sqlx::Connection;
use support::{client, metrics, run_to_exit, Berth};

#[tokio::test]
async fn health_ready_and_metrics_answer_and_count() {
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start(dir.path());
    let http = client();

    let health = http.get(berth.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = http.get(berth.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["database"]["ok"], true, "{body}");
    assert!(
        dir.path().join("berth.db").exists(),
        "embedded database created in the data dir"
    );

    let scrape = |http: reqwest::Client, url: String| async move {
        let resp = http.get(url).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let ctype = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ctype.starts_with("text/plain"), "{ctype}");
        metrics::parse(&resp.text().await.unwrap())
    };
    let before = scrape(http.clone(), berth.url("/metrics")).await;
    let health_200 = [("route", "/health"), ("status", "200"), ("method", "GET")];
    let count = |s: &[metrics::Sample]| {
        metrics::value(s, "berth_http_requests_total", &health_200).unwrap_or(0.0)
    };
    for _ in 0..3 {
        http.get(berth.url("/health")).send().await.unwrap();
    }
    http.get(berth.url("/no/such/thing")).send().await.unwrap();
    let after = scrape(http.clone(), berth.url("/metrics")).await;
    assert_eq!(count(&after) - count(&before), 3.0);
    assert!(
        metrics::value(
            &after,
            "berth_http_request_duration_seconds_count",
            &health_200
        )
        .unwrap()
            >= 4.0
    );
    assert_eq!(
        metrics::value(
            &after,
            "berth_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ),
        Some(1.0),
        "unknown paths are counted under one label, not one per path"
    );
    assert_eq!(
        metrics::value(
            &after,
            "berth_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    assert!(metrics::value(&after, "berth_uptime_seconds", &[]).unwrap() > 0.0);
    berth.stop();
}

#[tokio::test]
async fn every_request_is_logged_as_json_with_its_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let mut berth = Berth::start(dir.path());
    let http = client();

    let resp = http
        .get(berth.url("/health"))
        .header("x-request-id", "trace-me-7f3a")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["x-request-id"],
        "trace-me-7f3a",
        "propagated"
    );
    let resp = http.get(berth.url("/ready")).send().await.unwrap();
    let made = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(made.len() >= 16, "a generated id is returned: {made}");

    for id in ["trace-me-7f3a", made.as_str()] {
        let line = berth.wait_for_log(|l| l.contains(id), Duration::from_secs(5));
        let v: serde_json::Value = serde_json::from_str(&line).expect("log line is JSON");
        assert_eq!(v["span"]["request_id"], id, "{line}");
        assert!(
            v["timestamp"].is_string() && v["level"].is_string(),
            "{line}"
        );
    }
    let logs = berth.stop();
    for line in logs.iter().filter(|l| l.starts_with('{')) {
        serde_json::from_str::<serde_json::Value>(line).expect("every stdout line is JSON");
    }
}

#[tokio::test]
async fn ready_reports_the_database_down_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start(dir.path());
    let http = client();
    let db = dir.path().join("berth.db");

    // Another process holds the write lock: Berth cannot take writes.
    let mut locker = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut locker)
        .await
        .unwrap();
    let resp = http.get(berth.url("/ready")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["down"], serde_json::json!(["database"]), "{body}");
    assert_eq!(body["checks"]["database"]["ok"], false);
    assert_eq!(
        http.get(berth.url("/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "liveness never depends on the database"
    );
    sqlx::query("COMMIT").execute(&mut locker).await.unwrap();
    locker.close().await.unwrap();
    assert_eq!(
        http.get(berth.url("/ready")).send().await.unwrap().status(),
        200
    );

    // The database file disappears (volume unmounted, file deleted) and comes back.
    let aside = dir.path().join("aside.db");
    std::fs::rename(&db, &aside).unwrap();
    let resp = http.get(berth.url("/ready")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    let body: serde_json::Value = resp.json().await.unwrap();
    let error = body["checks"]["database"]["error"].as_str().unwrap();
    assert!(error.contains("missing"), "{body}");
    std::fs::rename(&aside, &db).unwrap();
    assert_eq!(
        http.get(berth.url("/ready")).send().await.unwrap().status(),
        200
    );
    berth.stop();
}

#[tokio::test]
async fn a_database_from_a_newer_berth_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    Berth::start(dir.path()).stop();
    let db = dir.path().join("berth.db");
    {
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
             execution_time) VALUES (99990101000000, 'from the future', 1, x'00', 0)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    }
    let snapshot = |dir: &std::path::Path| {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.file_name(), std::fs::read(e.path()).unwrap())
            })
            .collect();
        files.sort();
        files
    };
    let before = snapshot(dir.path());
    let data_dir = dir.path().to_str().unwrap();
    let (code, stderr) = run_to_exit(
        &["serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir],
        &[],
    );
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("99990101000000"), "{stderr}");
    assert!(stderr.contains("newer Berth"), "{stderr}");
    assert!(
        before == snapshot(dir.path()),
        "the database directory was modified"
    );
}

#[test]
fn an_invalid_setting_is_reported_by_name_and_origin() {
    let (code, stderr) = run_to_exit(&["serve"], &[("BERTH_LISTEN", "localhost-ish")]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("`listen`")
            && stderr.contains("BERTH_LISTEN")
            && stderr.contains("HOST:PORT"),
        "{stderr}"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("berth.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:0\"\nshutdown_timeout = \"soon\"\n",
    )
    .unwrap();
    let (code, stderr) = run_to_exit(&["serve", "--config", file.to_str().unwrap()], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("`shutdown_timeout`") && stderr.contains("berth.toml:2"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one message: {stderr}");
}

#[test]
fn sigterm_lets_an_in_flight_request_finish() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let mut berth = Berth::start(dir.path());
    let addr = berth.base.trim_start_matches("http://").to_string();

    // A registration whose body arrives slowly: half now, half after the signal.
    let body = r#"{"username":"slowpoke","password":"Sl0w!but-steady"}"#;
    let (first, rest) = body.split_at(20);
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        conn,
        "POST /api/v1/auth/register HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{first}",
        body.len()
    )
    .unwrap();
    conn.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    berth.signal("TERM");
    berth.wait_for_log(|l| l.contains("shutting down"), Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(500));
    conn.write_all(rest.as_bytes()).unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 202"), "{response}");
    assert!(response.contains("slowpoke"), "{response}");

    let status = berth.wait(Duration::from_secs(10));
    assert!(status.success(), "clean exit after the request: {status}");
    // New connections are refused once it has stopped.
    assert!(std::net::TcpStream::connect(&addr).is_err());
    // The registration was committed before the database closed.
    let berth = Berth::start(dir.path());
    support::create_admin(dir.path(), "root", "Adm1n!chosen-well");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut admin = support::Browser::new(&berth);
        admin.sign_in("root", "Adm1n!chosen-well").await;
        let pending = support::json(admin.get("/admin/users?state=pending").await).await;
        assert_eq!(pending[0]["username"], "slowpoke");
    });
}
