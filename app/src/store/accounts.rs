//! Queries for accounts, sessions, API tokens, sign-in throttling and the audit log. The SQL is
//! written once, with `$N` parameters that both SQLite and PostgreSQL accept; `on_pool!` runs it
//! on whichever backend is open, type-checked for each.

use serde::Serialize;
use utoipa::ToSchema;

use super::Store;
use crate::domain::accounts::{rfc3339, AccountState, Role, User};

use super::dispatch::{on_pool, BeginWrite};

/// A user as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub role: String,
    pub state: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl UserRow {
    pub fn role(&self) -> Role {
        Role::parse(&self.role).unwrap_or(Role::User)
    }
    pub fn state(&self) -> AccountState {
        // An unreadable state locks the account rather than opening it.
        AccountState::parse(&self.state).unwrap_or(AccountState::Disabled)
    }
    pub fn public(&self) -> User {
        User {
            id: self.id.clone(),
            username: self.username.clone(),
            role: self.role(),
            state: self.state(),
            created_at: rfc3339(self.created_at),
        }
    }
}

type Result<T> = std::result::Result<T, sqlx::Error>;

const USER_COLUMNS: &str = "id, username, password_hash, role, state, created_at, updated_at";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub token_hash: String,
    pub user_id: String,
    pub csrf_token: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, ToSchema)]
pub struct TokenRow {
    pub id: String,
    #[serde(skip)]
    pub user_id: String,
    pub name: String,
    /// The first characters of the token, to tell tokens apart.
    pub prefix: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ThrottleRow {
    pub failures: i64,
    pub window_start: i64,
    pub locked_until: Option<i64>,
}

/// One audit entry, as written.
#[derive(Debug, Clone, Default)]
pub struct NewAuditEntry {
    pub at: i64,
    pub event: &'static str,
    pub outcome: &'static str,
    pub actor_id: Option<String>,
    pub actor_name: Option<String>,
    pub target_id: Option<String>,
    pub target_name: Option<String>,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub at: i64,
    pub event: String,
    pub outcome: String,
    pub actor_id: Option<String>,
    pub actor_name: Option<String>,
    pub target_id: Option<String>,
    pub target_name: Option<String>,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
    pub detail: Option<String>,
}

/// Audit query: every filter optional; newest first; `before_id` pages backwards.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub event: Option<String>,
    /// Matches the actor or the target (id or name).
    pub user: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub before_id: Option<i64>,
    pub limit: i64,
}

impl Store {
    // ----- users -----

    /// Inserts a user; `Ok(false)` when the name is taken.
    pub async fn insert_user(&self, u: &UserRow) -> Result<bool> {
        let sql = "INSERT INTO users (id, username, password_hash, role, state, created_at, \
                   updated_at, password_changed_at) VALUES ($1, $2, $3, $4, $5, $6, $6, $6) \
                   ON CONFLICT (username) DO NOTHING";
        let done = on_pool!(self, |pool| sqlx::query(sql)
            .bind(&u.id)
            .bind(&u.username)
            .bind(&u.password_hash)
            .bind(&u.role)
            .bind(&u.state)
            .bind(u.created_at)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(done == 1)
    }

    pub async fn user_by_name(&self, username: &str) -> Result<Option<UserRow>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1");
        on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(username)
            .fetch_optional(pool)
            .await)
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(pool)
            .await)
    }

    pub async fn list_users(&self, state: Option<AccountState>) -> Result<Vec<UserRow>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE ($1 IS NULL OR state = $1) \
             ORDER BY created_at, username"
        );
        let state = state.map(|s| s.as_str().to_string());
        on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(state)
            .fetch_all(pool)
            .await)
    }

    pub async fn count_active_admins(&self) -> Result<i64> {
        let sql = "SELECT COUNT(*) FROM users WHERE role = 'admin' AND state = 'active'";
        on_pool!(self, |pool| sqlx::query_scalar(sql).fetch_one(pool).await)
    }

    /// Changes state and role together. Unless `allow_last_admin`, refuses (`Ok(false)`) a change
    /// that would leave no active admin; the check and the write are one statement.
    pub async fn update_user_access(
        &self,
        id: &str,
        state: AccountState,
        role: Role,
        now: i64,
    ) -> Result<bool> {
        let sql = "UPDATE users SET state = $2, role = $3, updated_at = $4 WHERE id = $1 AND \
                   (($2 = 'active' AND $3 = 'admin') OR EXISTS (SELECT 1 FROM users o WHERE \
                   o.role = 'admin' AND o.state = 'active' AND o.id <> $1))";
        let n = on_pool!(self, |pool| sqlx::query(sql)
            .bind(id)
            .bind(state.as_str())
            .bind(role.as_str())
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    pub async fn set_password_hash(&self, id: &str, hash: &str, now: i64) -> Result<bool> {
        let sql = "UPDATE users SET password_hash = $2, password_changed_at = $3, \
                   updated_at = $3 WHERE id = $1";
        let n = on_pool!(self, |pool| sqlx::query(sql)
            .bind(id)
            .bind(hash)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    // ----- sessions -----

    #[allow(clippy::too_many_arguments)]
    pub async fn insert_session(
        &self,
        token_hash: &str,
        user_id: &str,
        csrf_token: &str,
        now: i64,
        expires_at: i64,
        client_addr: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<()> {
        let sql = "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, \
                   last_seen_at, expires_at, client_addr, user_agent) \
                   VALUES ($1, $2, $3, $4, $4, $5, $6, $7)";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(token_hash)
            .bind(user_id)
            .bind(csrf_token)
            .bind(now)
            .bind(expires_at)
            .bind(client_addr)
            .bind(user_agent)
            .execute(pool)
            .await
            .map(drop)?);
        Ok(())
    }

    pub async fn session(&self, token_hash: &str) -> Result<Option<SessionRow>> {
        let sql = "SELECT token_hash, user_id, csrf_token, created_at, last_seen_at, expires_at \
                   FROM sessions WHERE token_hash = $1";
        on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(token_hash)
            .fetch_optional(pool)
            .await)
    }

    pub async fn touch_session(&self, token_hash: &str, now: i64) -> Result<()> {
        let sql = "UPDATE sessions SET last_seen_at = $2 WHERE token_hash = $1";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(token_hash)
            .bind(now)
            .execute(pool)
            .await
            .map(drop)?);
        Ok(())
    }

    pub async fn delete_session(&self, token_hash: &str) -> Result<()> {
        let sql = "DELETE FROM sessions WHERE token_hash = $1";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(token_hash)
            .execute(pool)
            .await
            .map(drop)?);
        Ok(())
    }

    /// Ends every session and revokes every API token of a user, at once.
    pub async fn end_user_sessions_and_tokens(&self, user_id: &str, now: i64) -> Result<()> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE api_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
            )
            .bind(user_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    // ----- API tokens -----

    pub async fn insert_token(&self, t: &TokenRow, token_hash: &str) -> Result<()> {
        let sql = "INSERT INTO api_tokens (id, user_id, name, token_hash, prefix, created_at) \
                   VALUES ($1, $2, $3, $4, $5, $6)";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(&t.id)
            .bind(&t.user_id)
            .bind(&t.name)
            .bind(token_hash)
            .bind(&t.prefix)
            .bind(t.created_at)
            .execute(pool)
            .await
            .map(drop)?);
        Ok(())
    }

    /// The live (unrevoked) token with this hash.
    pub async fn live_token(&self, token_hash: &str) -> Result<Option<TokenRow>> {
        let sql = "SELECT id, user_id, name, prefix, created_at, last_used_at, revoked_at \
                   FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL";
        on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(token_hash)
            .fetch_optional(pool)
            .await)
    }

    pub async fn touch_token(&self, id: &str, now: i64) -> Result<()> {
        let sql = "UPDATE api_tokens SET last_used_at = $2 WHERE id = $1";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(id)
            .bind(now)
            .execute(pool)
            .await
            .map(drop)?);
        Ok(())
    }

    pub async fn list_tokens(&self, user_id: &str) -> Result<Vec<TokenRow>> {
        let sql = "SELECT id, user_id, name, prefix, created_at, last_used_at, revoked_at \
                   FROM api_tokens WHERE user_id = $1 ORDER BY created_at DESC";
        on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(user_id)
            .fetch_all(pool)
            .await)
    }

    /// Revokes one of the user's tokens; the revoked token's name, or None if there was none.
    pub async fn revoke_token(&self, user_id: &str, id: &str, now: i64) -> Result<Option<String>> {
        let sql = "UPDATE api_tokens SET revoked_at = $3 WHERE id = $1 AND user_id = $2 \
                   AND revoked_at IS NULL RETURNING name";
        on_pool!(self, |pool| sqlx::query_scalar(sql)
            .bind(id)
            .bind(user_id)
            .bind(now)
            .fetch_optional(pool)
            .await)
    }

    // ----- sign-in throttling -----

    pub async fn throttle(&self, key: &str) -> Result<Option<ThrottleRow>> {
        let sql = "SELECT failures, window_start, locked_until FROM login_throttle WHERE key = $1";
        on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(key)
            .fetch_optional(pool)
            .await)
    }

    /// Counts a failure in the window that started at `window_start` or later (older windows
    /// restart at one), locking until `lock_until` once `max` is reached. Returns the new row.
    pub async fn record_failure(
        &self,
        key: &str,
        now: i64,
        window_ms: i64,
        max: i64,
    ) -> Result<ThrottleRow> {
        let sql = "INSERT INTO login_throttle (key, failures, window_start, locked_until) \
                   VALUES ($1, 1, $2, CASE WHEN $4 <= 1 THEN $2 + $3 ELSE NULL END) \
                   ON CONFLICT (key) DO UPDATE SET \
                     failures = CASE WHEN login_throttle.window_start + $3 < $2 THEN 1 \
                                ELSE login_throttle.failures + 1 END, \
                     window_start = CASE WHEN login_throttle.window_start + $3 < $2 THEN $2 \
                                ELSE login_throttle.window_start END, \
                     locked_until = CASE WHEN (CASE WHEN login_throttle.window_start + $3 < $2 \
                                THEN 1 ELSE login_throttle.failures + 1 END) >= $4 THEN $2 + $3 \
                                ELSE login_throttle.locked_until END \
                   RETURNING failures, window_start, locked_until";
        on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(key)
            .bind(now)
            .bind(window_ms)
            .bind(max)
            .fetch_one(pool)
            .await)
    }

    pub async fn clear_throttle(&self, key: &str) -> Result<()> {
        let sql = "DELETE FROM login_throttle WHERE key = $1";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(key)
            .execute(pool)
            .await
            .map(drop)?);
        Ok(())
    }

    // ----- audit log -----

    pub async fn append_audit(&self, e: &NewAuditEntry) -> Result<()> {
        let sql = "INSERT INTO audit_log (at, event, outcome, actor_id, actor_name, target_id, \
                   target_name, client_addr, user_agent, detail) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(e.at)
            .bind(e.event)
            .bind(e.outcome)
            .bind(&e.actor_id)
            .bind(&e.actor_name)
            .bind(&e.target_id)
            .bind(&e.target_name)
            .bind(&e.client_addr)
            .bind(&e.user_agent)
            .bind(&e.detail)
            .execute(pool)
            .await
            .map(drop)?);
        Ok(())
    }

    pub async fn list_audit(&self, f: &AuditFilter) -> Result<Vec<AuditRow>> {
        let sql = "SELECT id, at, event, outcome, actor_id, actor_name, target_id, target_name, \
                   client_addr, user_agent, detail FROM audit_log WHERE \
                   ($1 IS NULL OR event = $1) AND \
                   ($2 IS NULL OR actor_id = $2 OR actor_name = $2 OR target_id = $2 \
                    OR target_name = $2) AND \
                   ($3 IS NULL OR at >= $3) AND ($4 IS NULL OR at < $4) AND \
                   ($5 IS NULL OR id < $5) \
                   ORDER BY id DESC LIMIT $6";
        on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(&f.event)
            .bind(&f.user)
            .bind(f.since)
            .bind(f.until)
            .bind(f.before_id)
            .bind(f.limit)
            .fetch_all(pool)
            .await)
    }
}
