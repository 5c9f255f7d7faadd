//! Consistent snapshots of the database and loading them back, per backend: SQLite through
//! `VACUUM INTO` (one read transaction, the same guarantee as the online backup API), PostgreSQL
//! through `pg_dump --snapshot` of a transaction that also counts the rows, so the manifest
//! describes exactly what was dumped.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context as _};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};

use super::archive::EmbeddingSet;

/// What a snapshot holds, as recorded in (and compared with) the manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Description {
    pub migration_level: i64,
    pub embeddings: Vec<EmbeddingSet>,
    pub row_counts: BTreeMap<String, i64>,
    /// Documents whose uploaded file is under DATA_DIR/files rather than in the database.
    pub document_ids: Vec<String>,
}

/// Reads a description through any connection; only the table list differs per backend.
macro_rules! describe {
    ($conn:expr, $tables_sql:expr) => {{
        let tables: Vec<String> = sqlx::query_scalar($tables_sql).fetch_all(&mut *$conn).await?;
        let mut row_counts = BTreeMap::new();
        for table in tables {
            let sql = format!("SELECT count(*) FROM \"{}\"", table.replace('"', "\"\""));
            let n: i64 = sqlx::query_scalar(&sql).fetch_one(&mut *$conn).await?;
            row_counts.insert(table, n);
        }
        let migration_level: i64 = sqlx::query_scalar(
            "SELECT coalesce(max(version), 0) FROM _sqlx_migrations WHERE success",
        )
        .fetch_one(&mut *$conn)
        .await
        .context("reading the schema migrations (is this a Berth database?)")?;
        let embeddings = sqlx::query_as::<_, (String, i64, i64)>(
            "SELECT model, dim, count(*) FROM chunk_vectors GROUP BY model, dim ORDER BY model, dim",
        )
        .fetch_all(&mut *$conn)
        .await?
        .into_iter()
        .map(|(model, dim, vectors)| EmbeddingSet { model, dim, vectors })
        .collect();
        // Since migration 4 uploads live in the database (document_files); older documents
        // keep theirs under DATA_DIR/files.
        let on_disk = if row_counts.contains_key("document_files") {
            "SELECT id FROM documents WHERE id NOT IN (SELECT document_id FROM document_files) \
             ORDER BY id"
        } else {
            "SELECT id FROM documents ORDER BY id"
        };
        let document_ids: Vec<String> = sqlx::query_scalar(on_disk)
            .fetch_all(&mut *$conn)
            .await?;
        anyhow::Ok(Description {
            migration_level,
            embeddings,
            row_counts,
            document_ids,
        })
    }};
}

const SQLITE_TABLES: &str = "SELECT name FROM sqlite_master WHERE type = 'table' \
     AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE 'chunks\\_fts%' ESCAPE '\\' \
     ORDER BY name";
const PG_TABLES: &str =
    "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename";

/// Writes a consistent copy of the SQLite database `db` to `out` and describes it.
pub async fn sqlite_snapshot(db: &Path, out: &Path) -> anyhow::Result<Description> {
    if !db.exists() {
        bail!(
            "there is no database at {}; check --data-dir / --database-url",
            db.display()
        );
    }
    let mut conn = SqliteConnectOptions::new()
        .filename(db)
        .read_only(true)
        .busy_timeout(Duration::from_secs(30))
        .connect()
        .await
        .with_context(|| format!("opening {}", db.display()))?;
    sqlx::query("VACUUM INTO ?")
        .bind(out.to_string_lossy().into_owned())
        .execute(&mut conn)
        .await
        .context("copying the database (VACUUM INTO)")?;
    conn.close().await?;
    sqlite_describe(out).await
}

/// Describes a SQLite file (a snapshot, or a restored copy), after checking its integrity.
pub async fn sqlite_describe(path: &Path) -> anyhow::Result<Description> {
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .connect()
        .await
        .with_context(|| format!("opening {}", path.display()))?;
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await?;
    if check != "ok" {
        bail!("the database copy fails SQLite's integrity check: {check}");
    }
    let conn = &mut conn;
    let description = describe!(conn, SQLITE_TABLES)?;
    Ok(description)
}

/// How `pg_dump`, `pg_restore` and `psql` are run: straight from PATH, or behind a prefix such as
/// `docker run --rm -i --network host -e PGPASSWORD pgvector/pgvector:pg17` so that no client
/// needs installing on the host (the tool's name and arguments are appended).
#[derive(Debug, Clone, Default)]
pub struct PgTools {
    pub prefix: Option<String>,
}

impl PgTools {
    /// The command for `tool`, with the database password (if any) in PGPASSWORD rather than on
    /// the command line, where other users of the machine could read it.
    fn command(&self, tool: &str, url: &str) -> anyhow::Result<(Command, String)> {
        let mut parts = self.prefix.as_deref().unwrap_or("").split_whitespace();
        let mut cmd = match parts.next() {
            Some(program) => {
                let mut cmd = Command::new(program);
                cmd.args(parts).arg(tool);
                cmd
            }
            None => Command::new(tool),
        };
        let mut parsed = reqwest::Url::parse(url).context("parsing the database URL")?;
        if let Some(password) = parsed.password() {
            cmd.env("PGPASSWORD", percent_decode(password));
            let _ = parsed.set_password(None);
        }
        Ok((cmd, parsed.to_string()))
    }

    fn describe(&self, tool: &str) -> String {
        match &self.prefix {
            Some(p) if !p.trim().is_empty() => format!("`{p} {tool}`"),
            _ => format!("`{tool}` (from PATH; set --pg-tools to run it in a container)"),
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Dumps the PostgreSQL database at `url` to `out` (custom format, uncompressed: the archive
/// compresses) from one snapshot, and describes that same snapshot.
pub async fn pg_snapshot(url: &str, tools: &PgTools, out: &Path) -> anyhow::Result<Description> {
    let mut conn = PgConnection::connect(url)
        .await
        .context("connecting to PostgreSQL")?;
    sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut conn)
        .await?;
    let snapshot: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
        .fetch_one(&mut conn)
        .await?;
    let description = {
        let conn = &mut conn;
        describe!(conn, PG_TABLES)?
    };
    let (mut cmd, bare_url) = tools.command("pg_dump", url)?;
    let log = out.with_extension("log");
    cmd.args([
        "--format=custom",
        "--compress=0",
        &format!("--snapshot={snapshot}"),
        &format!("--dbname={bare_url}"),
    ])
    .stdin(Stdio::null())
    .stdout(File::create(out)?)
    .stderr(File::create(&log)?);
    // The exporting transaction stays open until pg_dump is done, as --snapshot requires.
    let status = cmd
        .status()
        .with_context(|| format!("running {}", tools.describe("pg_dump")))?;
    let _ = sqlx::query("COMMIT").execute(&mut conn).await;
    let _ = conn.close().await;
    if !status.success() {
        bail!(
            "{} failed ({status}): {}",
            tools.describe("pg_dump"),
            std::fs::read_to_string(&log).unwrap_or_default().trim()
        );
    }
    let _ = std::fs::remove_file(&log);
    Ok(description)
}

/// Replaces everything in the database at `url` with the dump, in one transaction: the old
/// schema is dropped and the dump loaded by one `psql --single-transaction`, so a failure leaves
/// the database as it was. Gives up after 10 s waiting for locks (a Berth still running).
pub fn pg_load(url: &str, tools: &PgTools, dump: &Path) -> anyhow::Result<()> {
    let dir = dump.parent().context("dump has no directory")?;
    let (mut restore, _) = tools.command("pg_restore", url)?;
    let restore_log = dir.join("pg_restore.log");
    restore
        .args(["--no-owner", "--no-privileges", "--file=-"])
        .stdin(File::open(dump)?)
        .stdout(Stdio::piped())
        .stderr(File::create(&restore_log)?);
    let (mut psql, bare_url) = tools.command("psql", url)?;
    let psql_log = dir.join("psql.log");
    psql.args([
        "-X",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "--single-transaction",
        &format!("--dbname={bare_url}"),
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::null())
    .stderr(File::create(&psql_log)?);
    let mut restore = restore
        .spawn()
        .with_context(|| format!("running {}", tools.describe("pg_restore")))?;
    let mut psql = psql
        .spawn()
        .with_context(|| format!("running {}", tools.describe("psql")))?;
    let copied = (|| {
        let mut sql_in = psql.stdin.take().context("psql stdin")?;
        let mut script = restore.stdout.take().context("pg_restore stdout")?;
        sql_in.write_all(
            b"SET lock_timeout = '10s';\n\
              DROP SCHEMA IF EXISTS public CASCADE;\n\
              CREATE SCHEMA public;\n",
        )?;
        std::io::copy(&mut script, &mut sql_in)?;
        anyhow::Ok(())
    })();
    let restore_status = restore.wait()?;
    let psql_status = psql.wait()?;
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    if !restore_status.success() {
        bail!(
            "{} failed ({restore_status}): {}; the database was not changed",
            tools.describe("pg_restore"),
            read(&restore_log).trim()
        );
    }
    if !psql_status.success() || copied.is_err() {
        let log = read(&psql_log);
        let hint = if log.contains("lock timeout") {
            " (is Berth still running on this database? stop it first)"
        } else {
            ""
        };
        bail!(
            "loading the dump failed{hint}: {}; the transaction was rolled back, the database \
             was not changed",
            log.trim()
        );
    }
    Ok(())
}

/// Describes the PostgreSQL database at `url`.
pub async fn pg_describe(url: &str) -> anyhow::Result<Description> {
    let mut conn = PgConnection::connect(url)
        .await
        .context("connecting to PostgreSQL")?;
    let description = {
        let conn = &mut conn;
        describe!(conn, PG_TABLES)?
    };
    conn.close().await?;
    Ok(description)
}

/// A database of its own on the server of `url`, named `berth_<purpose>_<random>`, for
/// verifying or drilling an archive; dropped by [`drop_scratch`].
pub async fn create_scratch(url: &str, purpose: &str) -> anyhow::Result<(String, String)> {
    let name = format!("berth_{purpose}_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(url)
        .await
        .context("connecting to PostgreSQL")?;
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .context("creating a scratch database to restore into (the role needs CREATEDB)")?;
    conn.close().await?;
    let mut scratch = reqwest::Url::parse(url)?;
    scratch.set_path(&format!("/{name}"));
    Ok((name, scratch.to_string()))
}

pub async fn drop_scratch(url: &str, name: &str) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect(url).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_leave_the_url_for_the_environment() {
        let tools = PgTools::default();
        let (cmd, bare) = tools
            .command("pg_dump", "postgres://berth:p%40ss@db:5432/berth")
            .unwrap();
        assert_eq!(bare, "postgres://berth@db:5432/berth");
        let env: Vec<_> = cmd.get_envs().collect();
        assert_eq!(
            env,
            vec![(
                std::ffi::OsStr::new("PGPASSWORD"),
                Some(std::ffi::OsStr::new("p@ss"))
            )]
        );
    }
}
