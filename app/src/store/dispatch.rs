//! `on_pool!`: run the same query code on whichever backend is open, type-checked for each.

/// Runs `$body` with `$pool` bound to the open backend's pool.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store {
            Store::Sqlite(s) => {
                let $pool = &s.pool;
                $body
            }
            Store::Postgres(s) => {
                let $pool = &s.pool;
                $body
            }
        }
    };
}

pub(crate) use on_pool;

/// A transaction that will write. On SQLite it takes the write lock at `BEGIN IMMEDIATE`, where
/// the busy timeout applies: a deferred transaction that reads first and then writes fails at
/// once with "database is locked" when another connection wrote in between (SQLITE_BUSY_SNAPSHOT,
/// or BUSY to avoid a deadlock), whatever the timeout. PostgreSQL has no such upgrade.
pub(crate) trait BeginWrite {
    type Db: sqlx::Database;
    async fn begin_write(&self) -> sqlx::Result<sqlx::Transaction<'static, Self::Db>>;
}

impl BeginWrite for sqlx::SqlitePool {
    type Db = sqlx::Sqlite;
    async fn begin_write(&self) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl BeginWrite for sqlx::PgPool {
    type Db = sqlx::Postgres;
    async fn begin_write(&self) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        self.begin().await
    }
}
