//! Persistence. One `Store` in front of two backends, each with its own migrations: SQLite (the
//! embedded default, no service needed) and PostgreSQL (production), chosen by the database URL.

mod accounts;
mod collections;
mod conversations;
mod dispatch;
mod documents;
pub mod failure;
pub(crate) mod migrations;
mod oidc;
mod postgres;
mod retrieval;
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
        Ok(match location {
            DatabaseLocation::Sqlite(path) => Store::Sqlite(SqliteStore::open(path).await?),
            DatabaseLocation::Postgres(url) => {
                Store::Postgres(PgStore::open(url, connect_timeout).await?)
            }
        })
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
