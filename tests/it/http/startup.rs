//! Starting against a database: waiting for it, refusing a wrong password, a newer schema or an
//! invalid setting, each with a message that names the cause.

use super::*;

#[tokio::test]
async fn a_database_from_a_newer_berth_is_refused_untouched() {
    if support::postgres_backend() {
        println!("skipped: SQLite-specific; see postgres_a_database_from_a_newer_berth_is_refused_untouched");
        return;
    }
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
                // Folders (e.g. files/ for uploads) by name only.
                let bytes = if e.file_type().unwrap().is_dir() {
                    Vec::new()
                } else {
                    std::fs::read(e.path()).unwrap()
                };
                (e.file_name(), bytes)
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

#[tokio::test]
async fn postgres_start_waits_for_the_database() {
    let Some(pg) = support::pg::Dedicated::start() else {
        return;
    };
    pg.docker("stop");
    let starter = std::thread::spawn({
        let name = pg.name.clone();
        move || {
            std::thread::sleep(Duration::from_secs(2));
            support::pg::docker(&["start", &name]).unwrap();
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let mut berth = Berth::start_with(
        dir.path(),
        &[
            "--database-url",
            &pg.url(),
            "--database-connect-timeout",
            "60",
        ],
        &[],
    );
    starter.join().unwrap();
    let line = berth.wait_for_log(|l| l.contains("not reachable yet"), Duration::from_secs(1));
    assert!(!line.contains(&pg.url()), "no password in logs: {line}");
    let http = client();
    assert_eq!(
        http.get(berth.url("/ready")).send().await.unwrap().status(),
        200
    );
    berth.stop();
}

#[test]
fn an_unreachable_database_is_waited_for_then_refused() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://berth:hunter2@127.0.0.1:{port}/berth");
    let started = std::time::Instant::now();
    let (code, stderr) = run_to_exit(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--database-url",
            &url,
            "--database-connect-timeout",
            "2",
        ],
        &[],
    );
    let took = started.elapsed();
    assert_eq!(code, 3, "{stderr}");
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(10),
        "waited {took:?}"
    );
    let last = stderr.trim().lines().last().unwrap();
    assert!(
        last.contains("cannot connect to PostgreSQL at 127.0.0.1:"),
        "{stderr}"
    );
    assert!(last.contains("database-connect-timeout"), "{stderr}");
    assert!(
        !stderr.contains("hunter2"),
        "no password in output: {stderr}"
    );
}

#[test]
fn a_wrong_database_password_is_refused_at_once() {
    let Some(db) = support::pg::database() else {
        return;
    };
    let mut url = reqwest::Url::parse(&db.url).unwrap();
    url.set_password(Some("not-the-password")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let (code, stderr) = run_to_exit(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--database-url",
            url.as_str(),
        ],
        &[],
    );
    assert_eq!(code, 3, "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(5), "not retried");
    assert!(
        stderr.contains("password authentication failed"),
        "{stderr}"
    );
    assert!(!stderr.contains("not-the-password"), "{stderr}");
}

/// Everything a PostgreSQL database holds that Berth could change: each table's columns and
/// rows, indexes, triggers, functions, extensions.
async fn fingerprint(url: &str) -> Vec<String> {
    let mut db = sqlx::PgConnection::connect(url).await.unwrap();
    let mut out: Vec<String> = sqlx::query_scalar(
        "SELECT format('%s.%s %s %s', table_name, column_name, data_type, is_nullable) \
         FROM information_schema.columns WHERE table_schema = 'public' \
         UNION ALL SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' \
         UNION ALL SELECT format('trigger %s on %s', tgname, tgrelid::regclass) FROM pg_trigger \
           WHERE NOT tgisinternal \
         UNION ALL SELECT format('function %s', proname) FROM pg_proc \
           WHERE pronamespace = 'public'::regnamespace \
         UNION ALL SELECT format('extension %s %s', extname, extversion) FROM pg_extension \
         ORDER BY 1",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    for table in tables {
        let sql = format!(
            "SELECT format('%s: %s rows, md5 %s', '{table}', count(*), \
             md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))) FROM \"{table}\" t"
        );
        out.push(sqlx::query_scalar(&sql).fetch_one(&mut db).await.unwrap());
    }
    db.close().await.unwrap();
    out
}

#[tokio::test]
async fn postgres_a_database_from_a_newer_berth_is_refused_untouched() {
    let Some(db) = support::pg::database() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start_with(dir.path(), &["--database-url", &db.url], &[]);
    assert_eq!(
        register(&client(), &berth, "someone").await.status(),
        202,
        "some data to keep"
    );
    berth.stop();
    {
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
             execution_time) VALUES (99990101000000, 'from the future', true, '\\x00', 0)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
    }
    let before = fingerprint(&db.url).await;
    assert!(
        before.iter().any(|l| l.starts_with("users: 1 rows")),
        "{before:#?}"
    );
    let (code, stderr) = run_to_exit(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--database-url",
            &db.url,
        ],
        &[],
    );
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("99990101000000"), "{stderr}");
    assert!(stderr.contains("newer Berth"), "{stderr}");
    assert!(!stderr.contains(&db.url), "no password in output: {stderr}");
    assert_eq!(
        before,
        fingerprint(&db.url).await,
        "the database was modified"
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
