//! The embedded store: one SQLite file in WAL mode.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::Mutex;

use super::migrations;
use crate::error::BootError;

#[derive(Clone)]
pub struct SqliteStore {
    pub pool: SqlitePool,
    path: PathBuf,
    /// (device, inode) of the file when opened: a file deleted or swapped underneath us is an
    /// outage even though open connections still read the old one.
    identity: (u64, u64),
    /// A connection of its own for readiness probes, with a short lock wait.
    probe: std::sync::Arc<Mutex<Option<SqliteConnection>>>,
}

fn options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5))
}

impl SqliteStore {
    /// [`SqliteStore::connect`], then every pending migration applied.
    pub async fn open(path: &Path) -> Result<SqliteStore, BootError> {
        let store = SqliteStore::connect(path).await?;
        store.apply_migrations().await?;
        Ok(store)
    }

    /// Opens (creating) the database and refuses one written by a newer Berth; migrates nothing.
    pub async fn connect(path: &Path) -> Result<SqliteStore, BootError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                BootError::Config(format!(
                    "cannot create the data directory {} ({e}); set --data-dir / BERTH_DATA_DIR \
                     to a writable directory",
                    dir.display()
                ))
            })?;
        }
        if path.exists() {
            refuse_newer_schema(path).await?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options(path).create_if_missing(true))
            .await
            .map_err(|e| {
                BootError::Database(format!("cannot open database {}: {e}", path.display()))
            })?;
        let meta = std::fs::metadata(path).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(SqliteStore {
            pool,
            path: path.to_owned(),
            identity: (meta.dev(), meta.ino()),
            probe: Default::default(),
        })
    }

    pub async fn apply_migrations(&self) -> Result<(), BootError> {
        migrations::SQLITE.run(&self.pool).await.map_err(|e| {
            BootError::Database(format!(
                "cannot migrate database {}: {e}; no migration was half-applied",
                self.path.display()
            ))
        })
    }

    pub fn describe(&self) -> String {
        self.path.display().to_string()
    }

    pub async fn check(&self) -> Result<(), String> {
        match std::fs::metadata(&self.path) {
            Err(_) => return Err(format!("database file {} is missing", self.path.display())),
            Ok(m) if (m.dev(), m.ino()) != self.identity => {
                return Err(format!(
                    "database file {} was replaced while open; restart Berth",
                    self.path.display()
                ))
            }
            Ok(_) => {}
        }
        let mut probe = self.probe.lock().await;
        if probe.is_none() {
            let conn = options(&self.path)
                .busy_timeout(Duration::from_secs(1))
                .connect()
                .await
                .map_err(|e| format!("cannot connect: {e}"))?;
            *probe = Some(conn);
        }
        let conn = probe.as_mut().expect("set above");
        // Taking the write lock proves the database can accept writes, not only serve reads.
        let result = async {
            sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
            sqlx::query("ROLLBACK").execute(&mut *conn).await?;
            Ok::<_, sqlx::Error>(())
        }
        .await;
        if let Err(e) = result {
            // Start afresh next time rather than reuse a connection in an unknown state.
            if let Some(conn) = probe.take() {
                let _ = conn.close().await;
            }
            return Err(format!("cannot take the write lock: {e}"));
        }
        Ok(())
    }

    pub async fn close(&self) {
        if let Some(conn) = self.probe.lock().await.take() {
            let _ = conn.close().await;
        }
        self.pool.close().await;
    }
}

/// Reads the applied migrations through a read-only connection, so a database from a newer
/// Berth is refused before anything could write to it.
async fn refuse_newer_schema(path: &Path) -> Result<(), BootError> {
    let url = format!("sqlite://{}", path.display());
    // With no pending write-ahead log the file is all there is: open it `immutable`, which
    // creates no -wal/-shm files beside it. Otherwise the log must be read too.
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    let pending_wal = std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0);
    let mut conn = SqliteConnectOptions::from_str(&url)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .read_only(true)
        .immutable(!pending_wal)
        .connect()
        .await
        .map_err(|e| {
            BootError::Database(format!("cannot open database {}: {e}", path.display()))
        })?;
    let has_table: Option<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_optional(&mut conn)
    .await
    .map_err(|e| {
        BootError::Database(format!(
            "{} is not a usable SQLite database ({e}); move it away or point --data-dir elsewhere",
            path.display()
        ))
    })?;
    let applied: Vec<i64> = if has_table.is_some() {
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations")
            .fetch_all(&mut conn)
            .await
            .map_err(|e| anyhow::anyhow!("reading applied migrations: {e}"))?
    } else {
        Vec::new()
    };
    let _ = conn.close().await;
    migrations::refuse_unknown(&migrations::SQLITE, &applied, &path.display().to_string())
}
