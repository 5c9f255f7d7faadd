//! Queries for sign-in with an OpenID provider: the identities linked to accounts (by issuer and
//! subject) and the sign-ins under way (one use each).

use super::dispatch::on_pool;
use super::{Store, UserRow};

type Result<T> = std::result::Result<T, sqlx::Error>;

/// A sign-in under way, from /start to /callback.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OidcFlowRow {
    pub state_hash: String,
    pub provider: String,
    pub browser_hash: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub created_at: i64,
}

/// The provider's side of a new link.
#[derive(Debug, Clone)]
pub struct NewIdentity<'a> {
    pub issuer: &'a str,
    pub subject: &'a str,
    pub provider: &'a str,
    pub email: Option<&'a str>,
    pub now: i64,
}

/// What [`Store::insert_user_with_identity`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linked {
    Created,
    /// The user name is taken: nothing was written.
    NameTaken,
    /// Another request linked this identity first: nothing was written.
    IdentityTaken,
}

impl Store {
    /// The account linked to (issuer, subject), if any.
    pub async fn user_by_identity(&self, issuer: &str, subject: &str) -> Result<Option<UserRow>> {
        let sql = "SELECT u.id, u.username, u.password_hash, u.role, u.state, u.created_at, \
                   u.updated_at FROM oidc_identities i JOIN users u ON u.id = i.user_id \
                   WHERE i.issuer = $1 AND i.subject = $2";
        on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(issuer)
            .bind(subject)
            .fetch_optional(pool)
            .await)
    }

    /// Creates an account and links it to an identity, both or neither.
    pub async fn insert_user_with_identity(
        &self,
        u: &UserRow,
        identity: &NewIdentity<'_>,
    ) -> Result<Linked> {
        let user_sql = "INSERT INTO users (id, username, password_hash, role, state, created_at, \
                        updated_at, password_changed_at) VALUES ($1, $2, $3, $4, $5, $6, $6, $6) \
                        ON CONFLICT (username) DO NOTHING";
        let link_sql = "INSERT INTO oidc_identities (issuer, subject, user_id, provider, email, \
                        created_at, last_sign_in_at) VALUES ($1, $2, $3, $4, $5, $6, $6) \
                        ON CONFLICT (issuer, subject) DO NOTHING";
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let user = sqlx::query(user_sql)
                .bind(&u.id)
                .bind(&u.username)
                .bind(&u.password_hash)
                .bind(&u.role)
                .bind(&u.state)
                .bind(u.created_at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if user != 1 {
                tx.rollback().await?;
                return Ok(Linked::NameTaken);
            }
            let link = sqlx::query(link_sql)
                .bind(identity.issuer)
                .bind(identity.subject)
                .bind(&u.id)
                .bind(identity.provider)
                .bind(identity.email)
                .bind(identity.now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if link != 1 {
                tx.rollback().await?;
                return Ok(Linked::IdentityTaken);
            }
            tx.commit().await?;
            Ok(Linked::Created)
        })
    }

    pub async fn touch_identity(&self, issuer: &str, subject: &str, now: i64) -> Result<()> {
        let sql = "UPDATE oidc_identities SET last_sign_in_at = $3 \
                   WHERE issuer = $1 AND subject = $2";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(issuer)
            .bind(subject)
            .bind(now)
            .execute(pool)
            .await
            .map(drop)?);
        Ok(())
    }

    pub async fn insert_oidc_flow(&self, f: &OidcFlowRow) -> Result<()> {
        let sql = "INSERT INTO oidc_flows (state_hash, provider, browser_hash, nonce, \
                   pkce_verifier, created_at) VALUES ($1, $2, $3, $4, $5, $6)";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(&f.state_hash)
            .bind(&f.provider)
            .bind(&f.browser_hash)
            .bind(&f.nonce)
            .bind(&f.pkce_verifier)
            .bind(f.created_at)
            .execute(pool)
            .await
            .map(drop)?);
        Ok(())
    }

    /// Takes the flow with this state: it is deleted in the same statement, so a second
    /// callback with the same state finds nothing.
    pub async fn take_oidc_flow(&self, state_hash: &str) -> Result<Option<OidcFlowRow>> {
        let sql = "DELETE FROM oidc_flows WHERE state_hash = $1 RETURNING state_hash, provider, \
                   browser_hash, nonce, pkce_verifier, created_at";
        on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(state_hash)
            .fetch_optional(pool)
            .await)
    }

    /// Forgets flows started before `before` (abandoned sign-ins).
    pub async fn delete_oidc_flows_before(&self, before: i64) -> Result<u64> {
        let sql = "DELETE FROM oidc_flows WHERE created_at < $1";
        on_pool!(self, |pool| Ok(sqlx::query(sql)
            .bind(before)
            .execute(pool)
            .await?
            .rows_affected()))
    }

    /// Records which provider a session's sign-in came from.
    pub async fn set_session_provider(&self, token_hash: &str, provider: &str) -> Result<()> {
        let sql = "UPDATE sessions SET oidc_provider = $2 WHERE token_hash = $1";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(token_hash)
            .bind(provider)
            .execute(pool)
            .await
            .map(drop)?);
        Ok(())
    }

    /// The provider a session's sign-in came from; None for a password sign-in.
    pub async fn session_provider(&self, token_hash: &str) -> Result<Option<String>> {
        let sql = "SELECT oidc_provider FROM sessions WHERE token_hash = $1";
        let found: Option<Option<String>> = on_pool!(self, |pool| sqlx::query_scalar(sql)
            .bind(token_hash)
            .fetch_optional(pool)
            .await?);
        Ok(found.flatten())
    }
}
