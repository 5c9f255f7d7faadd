//! Settings admins changed at run time: one row per changed key (`runtime_settings`).

use super::dispatch::on_pool;
use super::Store;

type Result<T> = std::result::Result<T, sqlx::Error>;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RuntimeSettingRow {
    pub key: String,
    pub value: String,
    pub updated_at: i64,
    pub updated_by: String,
}

impl Store {
    pub async fn runtime_settings(&self) -> Result<Vec<RuntimeSettingRow>> {
        let sql = "SELECT key, value, updated_at, updated_by FROM runtime_settings ORDER BY key";
        on_pool!(self, |pool| sqlx::query_as(sql).fetch_all(pool).await)
    }

    /// Sets `key` to `value`, or back to the server's setting (the row deleted) for None.
    pub async fn set_runtime_setting(
        &self,
        key: &str,
        value: Option<&str>,
        now: i64,
        by: &str,
    ) -> Result<()> {
        match value {
            Some(value) => {
                let sql = "INSERT INTO runtime_settings (key, value, updated_at, updated_by) \
                           VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO UPDATE SET \
                           value = excluded.value, updated_at = excluded.updated_at, \
                           updated_by = excluded.updated_by";
                on_pool!(self, |pool| sqlx::query(sql)
                    .bind(key)
                    .bind(value)
                    .bind(now)
                    .bind(by)
                    .execute(pool)
                    .await
                    .map(drop)?);
            }
            None => {
                let sql = "DELETE FROM runtime_settings WHERE key = $1";
                on_pool!(self, |pool| sqlx::query(sql)
                    .bind(key)
                    .execute(pool)
                    .await
                    .map(drop)?);
            }
        }
        Ok(())
    }
}
