//! The database going away under a running server: readiness reports it and recovers, and a
//! restart under load loses nothing.

use super::*;

#[tokio::test]
async fn ready_reports_the_database_down_and_recovers() {
    if support::postgres_backend() {
        println!(
            "skipped: SQLite-specific; see postgres_ready_reports_the_database_down_and_recovers"
        );
        return;
    }
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

/// Polls /ready until it answers `status`; panics after `within`.
async fn ready_becomes(http: &reqwest::Client, berth: &Berth, status: u16, within: Duration) {
    let started = std::time::Instant::now();
    loop {
        let resp = http.get(berth.url("/ready")).send().await.unwrap();
        if resp.status() == status {
            return;
        }
        assert!(
            started.elapsed() < within,
            "/ready still {} after {within:?}: {}",
            resp.status(),
            resp.text().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn postgres_ready_reports_the_database_down_and_recovers() {
    let Some(pg) = support::pg::Dedicated::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start_with(dir.path(), &["--database-url", &pg.url()], &[]);
    let http = client();
    let resp = http.get(berth.url("/ready")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["checks"]["database"]["backend"], "postgres", "{body}");
    assert_eq!(register(&http, &berth, "before").await.status(), 202);

    // Frozen: connections stay open but nothing answers. Readiness must still answer, quickly.
    pg.docker("pause");
    let started = std::time::Instant::now();
    let resp = http.get(berth.url("/ready")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
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
    let started = std::time::Instant::now();
    let resp = register(&http, &berth, "frozen").await;
    assert_eq!(resp.status(), 503, "fails fast, and not with a 500");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    pg.docker("unpause");
    ready_becomes(&http, &berth, 200, Duration::from_secs(10)).await;

    // Stopped (the server shuts down, connections break, the port closes), then started again:
    // Berth recovers by itself.
    pg.docker("stop");
    let resp = http.get(berth.url("/ready")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    let body: serde_json::Value = resp.json().await.unwrap();
    let error = body["checks"]["database"]["error"].as_str().unwrap();
    assert!(error.contains("PostgreSQL at 127.0.0.1:"), "{body}");
    assert!(
        !error.contains(&pg.url()),
        "no password in readiness output: {body}"
    );
    for name in ["down1", "down2", "down3"] {
        let resp = register(&http, &berth, name).await;
        assert_eq!(resp.status(), 503);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unavailable", "{body}");
    }
    pg.docker("start");
    ready_becomes(&http, &berth, 200, Duration::from_secs(30)).await;
    assert_eq!(register(&http, &berth, "after").await.status(), 202);
    let users = pg.psql("SELECT string_agg(username, ',' ORDER BY username) FROM users");
    assert_eq!(
        users.trim(),
        "after,before",
        "nothing acknowledged was lost"
    );
    let logs = berth.stop();
    assert!(
        !logs.iter().any(|l| l.contains("\"status\":500")
            || l.contains("internal error")
            || l.contains("panicked")),
        "no 500s, no panics:\n{}",
        logs.join("\n")
    );
}

#[tokio::test]
async fn postgres_a_restart_under_load_gives_503s_then_recovers_losing_nothing() {
    use std::sync::{Arc, Mutex};
    use std::time::Instant;
    let Some(pg) = support::pg::Dedicated::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // The load registers from one address, far past the per-address limit.
    let berth = Berth::start_with(
        dir.path(),
        &["--database-url", &pg.url()],
        &[("BERTH_REGISTER_MAX_PER_ADDRESS", "1000000")],
    );
    let http = client();
    // (name, status, when it was sent, how long it took)
    let results = Arc::new(Mutex::new(Vec::<(String, u16, Instant, Duration)>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..4 {
        let (http, url, results, stop) = (
            http.clone(),
            berth.url("/api/v1/auth/register"),
            results.clone(),
            stop.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let name = format!("load{w}x{i}");
                i += 1;
                let sent = Instant::now();
                let status = http
                    .post(&url)
                    .json(&serde_json::json!({ "username": name, "password": "L0ad!and-restart" }))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16();
                results
                    .lock()
                    .unwrap()
                    .push((name, status, sent, sent.elapsed()));
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Down for longer than a request waits for a connection, so some requests must fail.
    pg.docker("stop");
    tokio::time::sleep(Duration::from_secs(6)).await;
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
        assert!(restarted.elapsed() < Duration::from_secs(30), "no recovery");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let results = results.lock().unwrap().clone();
    let count = |code: u16| results.iter().filter(|r| r.1 == code).count();
    let slowest = results.iter().map(|r| r.3).max().unwrap();
    println!(
        "{} requests: {} x 202, {} x 503; slowest {slowest:?}; recovered {recovered:?} after the start",
        results.len(),
        count(202),
        count(503)
    );
    assert_eq!(
        count(202) + count(503),
        results.len(),
        "only 202 or 503: {results:?}"
    );
    assert!(count(503) > 0, "the outage was seen");
    assert!(
        slowest < Duration::from_secs(10),
        "requests fail fast: {slowest:?}"
    );
    assert!(
        recovered < Duration::from_secs(10),
        "recovered in {recovered:?}"
    );

    // Every acknowledged registration is there.
    let mut conn = sqlx::PgConnection::connect(&pg.url()).await.unwrap();
    let stored: Vec<String> = sqlx::query_scalar("SELECT username FROM users")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let stored: std::collections::HashSet<_> = stored.into_iter().collect();
    for (name, status, _, _) in &results {
        if *status == 202 {
            assert!(
                stored.contains(name),
                "{name} was acknowledged but is not stored"
            );
        }
    }
    let logs = berth.stop();
    assert!(
        !logs.iter().any(|l| l.contains("\"status\":500")
            || l.contains("internal error")
            || l.contains("panicked")),
        "no 500s, no panics:\n{}",
        logs.join("\n")
    );
}
