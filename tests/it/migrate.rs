//! `berth migrate status|up|check` and `berth serve --no-migrate`: migrations as their own step.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::support::{self, database_args, Berth, BIN};

/// `berth migrate ARGS…` on the data dir's database: (exit code, stdout + stderr).
fn migrate(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(BIN)
        .arg("migrate")
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .args(database_args(dir))
        .output()
        .expect("run berth migrate");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn serve_no_migrate(dir: &Path) -> (i32, String) {
    let dir_arg = dir.to_str().unwrap();
    let mut args = vec![
        "serve",
        "--no-migrate",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir_arg,
    ];
    let db = database_args(dir);
    args.extend(db.iter().map(String::as_str));
    support::run_to_exit(&args, &[])
}

#[test]
fn a_server_that_does_not_migrate_refuses_a_database_with_pending_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = serve_no_migrate(dir.path());
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("run `berth migrate up` first"), "{err}");
}

#[test]
fn up_applies_what_status_lists_as_pending_and_check_then_passes() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = migrate(dir.path(), &["check"]);
    assert_eq!(code, 3, "a fresh database is not at this schema: {out}");
    assert!(out.contains("run `berth migrate up`"), "{out}");

    let (code, out) = migrate(dir.path(), &["status", "--json"]);
    assert_eq!(code, 0, "{out}");
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    let pending = status["pending"].as_array().unwrap().len();
    assert!(pending >= 6, "{status}");
    assert!(status["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["kind"] == "expand" || m["kind"] == "contract"));

    let (code, out) = migrate(dir.path(), &["up", "--dry-run"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.matches("would apply").count(), pending, "{out}");
    let (code, _) = migrate(dir.path(), &["check"]);
    assert_eq!(code, 3, "a dry run changes nothing");

    let (code, out) = migrate(dir.path(), &["up"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.matches("migrate: applied").count(), pending, "{out}");
    let (code, out) = migrate(dir.path(), &["check"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = migrate(dir.path(), &["up"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("up to date"), "{out}");
}

#[test]
fn a_server_that_does_not_migrate_starts_once_the_migrations_ran_as_their_own_step() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = migrate(dir.path(), &["up"]);
    assert_eq!(code, 0, "{out}");
    let berth = Berth::start_with(dir.path(), &["--no-migrate"], &[]);
    berth.stop();
}

#[tokio::test]
async fn check_names_a_migration_edited_after_it_was_applied() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = migrate(dir.path(), &["up"]);
    assert_eq!(code, 0, "{out}");
    support::db_execute(
        dir.path(),
        "UPDATE _sqlx_migrations SET checksum = checksum || checksum WHERE version = 2",
    )
    .await
    .unwrap();
    let (code, out) = migrate(dir.path(), &["check"]);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("[2]") && out.contains("was edited after it was applied"),
        "{out}"
    );
    let (code, out) = migrate(dir.path(), &["up"]);
    assert_eq!(code, 3, "up refuses it too: {out}");
}

/// Tables and their columns, as the database describes itself (the migration bookkeeping left out).
async fn schema_sqlite(url: &str) -> BTreeMap<String, BTreeSet<String>> {
    use sqlx::Connection;
    let mut db = sqlx::SqliteConnection::connect(url).await.unwrap();
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    group(rows)
}

async fn schema_postgres(url: &str) -> BTreeMap<String, BTreeSet<String>> {
    use sqlx::Connection;
    let mut db = sqlx::PgConnection::connect(url).await.unwrap();
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = current_schema()",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    group(rows)
}

fn group(rows: Vec<(String, String)>) -> BTreeMap<String, BTreeSet<String>> {
    let mut tables: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (table, column) in rows {
        tables.entry(table).or_default().insert(column);
    }
    tables.remove("_sqlx_migrations");
    tables
}

/// What each backend has that the other need not: the full-text index is FTS5's virtual table
/// (and its shadow tables) on SQLite; on PostgreSQL the chunk's tsvector and BM25 length,
/// generated columns.
fn backend_specific(table: &str, column: Option<&str>) -> bool {
    table.starts_with("chunks_fts")
        || matches!((table, column), ("chunks", Some("tsv" | "term_count")))
}

/// on a scratch database of each backend, and the two end with the same tables and columns.
#[tokio::test]
async fn every_migration_applies_on_both_backends_to_the_same_schema() {
    let dir = tempfile::tempdir().unwrap();
    let Some(pg) = crate::support::pg::database() else {
        return;
    };
    for database in [
        format!("sqlite://{}", dir.path().join("berth.db").display()),
        pg.url.clone(),
    ] {
        let (code, out) = support::run_to_exit(
            &[
                "migrate",
                "up",
                "--allow-contract",
                "--database-url",
                &database,
            ],
            &[],
        );
        assert_eq!(code, 0, "{out}");
    }
    let sqlite = schema_sqlite(&format!(
        "sqlite://{}",
        dir.path().join("berth.db").display()
    ))
    .await;
    let postgres = schema_postgres(&pg.url).await;
    let mut differences = Vec::new();
    for table in sqlite
        .keys()
        .chain(postgres.keys())
        .collect::<BTreeSet<_>>()
    {
        if backend_specific(table, None) {
            continue;
        }
        let (s, p) = (sqlite.get(table), postgres.get(table));
        let (Some(s), Some(p)) = (s, p) else {
            differences.push(format!(
                "table {table}: SQLite {}, PostgreSQL {}",
                s.is_some(),
                p.is_some()
            ));
            continue;
        };
        for column in s.symmetric_difference(p) {
            if !backend_specific(table, Some(column)) {
                differences.push(format!("{table}.{column} on one backend only"));
            }
        }
    }
    assert!(
        differences.is_empty(),
        "the backends' schemas differ:\n{}",
        differences.join("\n")
    );
    assert!(
        sqlite.contains_key("users") && postgres.contains_key("chunks"),
        "{sqlite:?}"
    );
}
