//! Persistence. One `Store` in front of two backends, each with its own migrations: SQLite (the
//! embedded default, no service needed) and PostgreSQL (production), chosen by the database URL.

mod accounts;
mod collections;
mod conversations;
mod dispatch;
mod documents;
pub mod failure;
pub mod migrations;
mod oidc;
mod postgres;
mod retrieval;
mod runtime;
mod sqlite;

use crate::domain::settings::DatabaseLocation;
use crate::error::BootError;
/// For maintenance code that runs its own queries on either backend (the backup drill).
pub(crate) use dispatch::on_pool;

pub use accounts::{
    AuditFilter, AuditRow, NewAuditEntry, SessionRow, ThrottleRow, TokenRow, UserRow,
};
pub use collections::CollectionRow;
pub use conversations::{ConversationRow, MessageRow};
pub use documents::{blob_to_f32s, ChunkRow, DocumentRow, NewChunk};
pub use oidc::{Linked, NewIdentity, OidcFlowRow};
pub use postgres::PgStore;
pub use retrieval::Corpus;
pub use runtime::RuntimeSettingRow;
pub use sqlite::SqliteStore;

#[derive(Clone)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl Store {
    /// Opens the database, refuses one written by a newer Berth, and applies pending migrations.
    /// A PostgreSQL server that cannot be reached yet is waited for, up to 30 seconds.
    pub async fn open(location: &DatabaseLocation) -> Result<Store, BootError> {
        Store::open_waiting(location, std::time::Duration::from_secs(30)).await
    }

    /// [`Store::open`], waiting up to `connect_timeout` for a database server that cannot be
    /// reached yet (the `database_connect_timeout` setting).
    pub async fn open_waiting(
        location: &DatabaseLocation,
        connect_timeout: std::time::Duration,
    ) -> Result<Store, BootError> {
        let store = Store::connect_waiting(location, connect_timeout).await?;
        store.apply_migrations().await?;
        Ok(store)
    }

    /// Opens the database without migrating it (`berth migrate`, `berth serve --no-migrate`);
    /// a database written by a newer Berth is still refused.
    pub async fn connect_waiting(
        location: &DatabaseLocation,
        connect_timeout: std::time::Duration,
    ) -> Result<Store, BootError> {
        Ok(match location {
            DatabaseLocation::Sqlite(path) => Store::Sqlite(SqliteStore::connect(path).await?),
            DatabaseLocation::Postgres(url) => {
                Store::Postgres(PgStore::connect(url, connect_timeout).await?)
            }
        })
    }

    /// [`Store::connect_waiting`] for a server that applies no migrations itself: refuses to go on
    /// while one is pending, saying which step was missed.
    pub async fn open_migrated_elsewhere(
        location: &DatabaseLocation,
        connect_timeout: std::time::Duration,
    ) -> Result<Store, BootError> {
        let store = Store::connect_waiting(location, connect_timeout).await?;
        let status = store.migration_status().await?;
        if let Some(problem) = status.problem(&store.describe()) {
            return Err(BootError::Database(problem));
        }
        let pending: Vec<String> = status.pending().map(|k| k.version.to_string()).collect();
        if !pending.is_empty() {
            return Err(BootError::Database(format!(
                "the database at {} lacks migration(s) {} and this server applies none \
                 (migrate = false / --no-migrate): run `berth migrate up` first",
                store.describe(),
                pending.join(", ")
            )));
        }
        Ok(store)
    }

    /// The database for messages: a file, or `host:port/database` (never a password).
    pub fn describe(&self) -> String {
        match self {
            Store::Sqlite(s) => s.describe(),
            Store::Postgres(s) => s.describe(),
        }
    }

    fn migrator(&self) -> &'static sqlx::migrate::Migrator {
        match self {
            Store::Sqlite(_) => &migrations::SQLITE,
            Store::Postgres(_) => &migrations::POSTGRES,
        }
    }

    /// Where the database stands against this binary's migrations.
    pub async fn migration_status(&self) -> Result<migrations::Status, BootError> {
        let read = |e: sqlx::Error| {
            BootError::Database(format!(
                "cannot read the applied migrations of {}: {e}",
                self.describe()
            ))
        };
        type Row = (i64, bool, Vec<u8>, i64);
        let rows: Vec<Row> = match self {
            Store::Sqlite(s) => {
                let exists: Option<String> = sqlx::query_scalar(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
                )
                .fetch_optional(&s.pool)
                .await
                .map_err(read)?;
                if exists.is_none() {
                    Vec::new()
                } else {
                    sqlx::query_as(
                        "SELECT version, success, checksum, \
                         CAST(strftime('%s', installed_on) AS INTEGER) \
                         FROM _sqlx_migrations ORDER BY version",
                    )
                    .fetch_all(&s.pool)
                    .await
                    .map_err(read)?
                }
            }
            Store::Postgres(s) => {
                let exists: Option<String> =
                    sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
                        .fetch_one(&s.pool)
                        .await
                        .map_err(read)?;
                if exists.is_none() {
                    Vec::new()
                } else {
                    sqlx::query_as(
                        "SELECT version, success, checksum, \
                         CAST(extract(epoch FROM installed_on) AS BIGINT) \
                         FROM _sqlx_migrations ORDER BY version",
                    )
                    .fetch_all(&s.pool)
                    .await
                    .map_err(read)?
                }
            }
        };
        let applied: Vec<migrations::Applied> = rows
            .into_iter()
            .map(
                |(version, success, checksum, installed_at)| migrations::Applied {
                    version,
                    success,
                    checksum,
                    installed_at,
                },
            )
            .collect();
        Ok(migrations::Status::new(self.migrator(), &applied))
    }

    /// Applies every pending migration, each in its own transaction; a pending contract migration
    /// is refused (nothing applied) unless `allow_contract`. Returns what was pending.
    pub async fn migrate_up(
        &self,
        allow_contract: bool,
    ) -> Result<Vec<migrations::Known>, BootError> {
        let status = self.migration_status().await?;
        if let Some(problem) = status.problem(&self.describe()) {
            return Err(BootError::Database(problem));
        }
        status.refuse_contract(allow_contract)?;
        let pending: Vec<_> = status.pending().cloned().collect();
        if !pending.is_empty() {
            self.apply_migrations().await?;
        }
        Ok(pending)
    }

    async fn apply_migrations(&self) -> Result<(), BootError> {
        match self {
            Store::Sqlite(s) => s.apply_migrations().await,
            Store::Postgres(s) => s.apply_migrations().await,
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// Readiness: can the database serve reads and take writes right now?
    pub async fn check(&self) -> Result<(), String> {
        match self {
            Store::Sqlite(s) => s.check().await,
            Store::Postgres(s) => s.check().await,
        }
    }

    /// Closes every connection, waiting for the ones in use to come back.
    pub async fn close(&self) {
        match self {
            Store::Sqlite(s) => s.close().await,
            Store::Postgres(s) => s.close().await,
        }
    }
}
