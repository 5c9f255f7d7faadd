//! The production store: PostgreSQL (with pgvector for retrieval).

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};

use super::migrations;
use crate::error::BootError;

#[derive(Clone)]
pub struct PgStore {
    pub pool: PgPool,
}

impl PgStore {
    pub async fn open(url: &str) -> Result<PgStore, BootError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(3))
            .connect(url)
            .await
            .map_err(|e| BootError::Database(format!("cannot connect to PostgreSQL: {e}")))?;
        let has_table: Option<String> =
            sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
                .fetch_one(&pool)
                .await
                .map_err(|e| BootError::Database(format!("cannot query PostgreSQL: {e}")))?;
        if has_table.is_some() {
            let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations")
                .fetch_all(&pool)
                .await
                .map_err(|e| anyhow::anyhow!("reading applied migrations: {e}"))?;
            migrations::refuse_unknown(&migrations::POSTGRES, &applied, "the PostgreSQL URL")?;
        }
        // sqlx takes an advisory lock around the run, so instances starting together apply each
        // migration once; each migration runs in its own transaction.
        migrations::POSTGRES.run(&pool).await.map_err(|e| {
            BootError::Database(format!(
                "cannot migrate PostgreSQL: {e}; no migration was half-applied"
            ))
        })?;
        Ok(PgStore { pool })
    }

    pub async fn check(&self) -> Result<(), String> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
