//! Administration: the approval queue, users and roles, and the audit log.

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::domain::accounts::{now_ms, rfc3339, AccountState, Role, User};
use crate::http::auth::AdminUser;
use crate::http::error::{ApiError, ErrorBody};
use crate::service::audit::{event, outcome};
use crate::service::auth::check_password;
use crate::service::throttle;
use crate::store::AuditFilter;
use crate::store::UserRow;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users))
        .routes(routes!(approve))
        .routes(routes!(deny))
        .routes(routes!(disable))
        .routes(routes!(enable))
        .routes(routes!(set_role))
        .routes(routes!(reset_password))
        .routes(routes!(unlock))
        .routes(routes!(audit_log))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct UserQuery {
    /// Only users in this state (`pending` for the approval queue).
    pub state: Option<AccountState>,
}

/// A user as admins see one: with the sign-in lock, when one is on.
#[derive(Debug, Serialize, ToSchema)]
pub struct Account {
    #[serde(flatten)]
    pub user: User,
    /// Until when (RFC 3339) repeated failed sign-ins lock the account; absent when not locked.
    pub locked_until: Option<String>,
}

/// Users, oldest first; `?state=pending` is the approval queue.
#[utoipa::path(get, path = "/admin/users", tag = "admin", params(UserQuery),
    responses((status = 200, body = [Account]),
              (status = 403, description = "Not an admin", body = ErrorBody)))]
pub async fn list_users(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(q): Query<UserQuery>,
) -> Result<Json<Vec<Account>>, ApiError> {
    let users = state.store.list_users(q.state).await?;
    let now = now_ms();
    let mut accounts = Vec::with_capacity(users.len());
    for u in &users {
        let lock = state
            .store
            .throttle(&throttle::account_key(&u.username))
            .await?;
        accounts.push(Account {
            user: u.public(),
            locked_until: lock
                .and_then(|t| t.locked_until)
                .filter(|until| *until > now)
                .map(rfc3339),
        });
    }
    Ok(Json(accounts))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewPassword {
    /// The new password; the password policy applies.
    pub password: String,
}

/// Sets a user's password (the policy applies), ends their sessions and tokens, lifts their
/// sign-in lock: for someone who forgot theirs. Tell them the new one in person.
#[utoipa::path(post, path = "/admin/users/{id}/password", tag = "admin",
    params(("id" = String, Path)), request_body = NewPassword,
    responses((status = 200, body = User), (status = 422, body = ErrorBody)))]
pub async fn reset_password(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
    Json(body): Json<NewPassword>,
) -> Result<Json<User>, ApiError> {
    let user = target_user(&state, &id).await?;
    check_password(&state.auth.password_policy, &body.password)?;
    state
        .accounts()
        .reset_password(&admin.0.audit(), &user, body.password)
        .await?;
    Ok(Json(user.public()))
}

/// Lifts the lock repeated failed sign-ins put on an account.
#[utoipa::path(post, path = "/admin/users/{id}/unlock", tag = "admin",
    params(("id" = String, Path)), responses((status = 200, body = User)))]
pub async fn unlock(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
) -> Result<Json<User>, ApiError> {
    let user = target_user(&state, &id).await?;
    state
        .store
        .clear_throttle(&throttle::account_key(&user.username))
        .await?;
    state
        .audit
        .record(
            &admin.0.audit(),
            event::UNLOCKED,
            outcome::SUCCESS,
            Some((user.id.as_str(), user.username.as_str())),
            None,
        )
        .await;
    Ok(Json(user.public()))
}

/// One state change: which states it applies to, the new state, its audit event.
struct Transition {
    from: &'static [AccountState],
    to: AccountState,
    event: &'static str,
    verb: &'static str,
}

const APPROVE: Transition = Transition {
    from: &[AccountState::Pending, AccountState::Denied],
    to: AccountState::Active,
    event: event::APPROVED,
    verb: "approve",
};
const DENY: Transition = Transition {
    from: &[AccountState::Pending],
    to: AccountState::Denied,
    event: event::DENIED,
    verb: "deny",
};
const DISABLE: Transition = Transition {
    from: &[AccountState::Active],
    to: AccountState::Disabled,
    event: event::DISABLED,
    verb: "disable",
};
const ENABLE: Transition = Transition {
    from: &[AccountState::Disabled],
    to: AccountState::Active,
    event: event::ENABLED,
    verb: "enable",
};

async fn target_user(state: &AppState, id: &str) -> Result<UserRow, ApiError> {
    state
        .store
        .user_by_id(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no user with id {id}")))
}

async fn apply(
    state: &AppState,
    admin: &AdminUser,
    id: &str,
    t: Transition,
) -> Result<Json<User>, ApiError> {
    let user = target_user(state, id).await?;
    let ctx = admin.0.audit();
    let target = Some((user.id.as_str(), user.username.as_str()));
    if !t.from.contains(&user.state()) {
        return Err(ApiError::Conflict(format!(
            "cannot {} {}: the account is {}",
            t.verb, user.username, user.state
        )));
    }
    let now = now_ms();
    if !state
        .store
        .update_user_access(&user.id, t.to, user.role(), now)
        .await?
    {
        state
            .audit
            .record(
                &ctx,
                t.event,
                outcome::DENIED,
                target,
                Some("last active admin".into()),
            )
            .await;
        return Err(ApiError::Conflict(format!(
            "cannot {} {}: it is the last active admin",
            t.verb, user.username
        )));
    }
    if t.to != AccountState::Active {
        state
            .store
            .end_user_sessions_and_tokens(&user.id, now)
            .await?;
    }
    state
        .audit
        .record(&ctx, t.event, outcome::SUCCESS, target, None)
        .await;
    let updated = target_user(state, id).await?;
    Ok(Json(updated.public()))
}

/// Approves a pending (or previously denied) account.
#[utoipa::path(post, path = "/admin/users/{id}/approve", tag = "admin",
    params(("id" = String, Path)),
    responses((status = 200, body = User), (status = 409, body = ErrorBody)))]
pub async fn approve(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
) -> Result<Json<User>, ApiError> {
    apply(&state, &admin, &id, APPROVE).await
}

/// Denies a pending account.
#[utoipa::path(post, path = "/admin/users/{id}/deny", tag = "admin",
    params(("id" = String, Path)),
    responses((status = 200, body = User), (status = 409, body = ErrorBody)))]
pub async fn deny(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
) -> Result<Json<User>, ApiError> {
    apply(&state, &admin, &id, DENY).await
}

/// Disables an active account; its sessions and tokens end at once.
#[utoipa::path(post, path = "/admin/users/{id}/disable", tag = "admin",
    params(("id" = String, Path)),
    responses((status = 200, body = User), (status = 409, body = ErrorBody)))]
pub async fn disable(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
) -> Result<Json<User>, ApiError> {
    apply(&state, &admin, &id, DISABLE).await
}

/// Re-enables a disabled account.
#[utoipa::path(post, path = "/admin/users/{id}/enable", tag = "admin",
    params(("id" = String, Path)),
    responses((status = 200, body = User), (status = 409, body = ErrorBody)))]
pub async fn enable(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
) -> Result<Json<User>, ApiError> {
    apply(&state, &admin, &id, ENABLE).await
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RoleChange {
    pub role: Role,
}

/// Makes a user an admin, or an admin a user (never the last active admin).
#[utoipa::path(put, path = "/admin/users/{id}/role", tag = "admin",
    params(("id" = String, Path)), request_body = RoleChange,
    responses((status = 200, body = User), (status = 409, body = ErrorBody)))]
pub async fn set_role(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
    Json(body): Json<RoleChange>,
) -> Result<Json<User>, ApiError> {
    let user = target_user(&state, &id).await?;
    let ctx = admin.0.audit();
    let target = Some((user.id.as_str(), user.username.as_str()));
    let detail = format!("{} -> {}", user.role, body.role.as_str());
    if !state
        .store
        .update_user_access(&user.id, user.state(), body.role, now_ms())
        .await?
    {
        state
            .audit
            .record(
                &ctx,
                event::ROLE_CHANGED,
                outcome::DENIED,
                target,
                Some(detail),
            )
            .await;
        return Err(ApiError::Conflict(format!(
            "cannot change the role of {}: it is the last active admin",
            user.username
        )));
    }
    state
        .audit
        .record(
            &ctx,
            event::ROLE_CHANGED,
            outcome::SUCCESS,
            target,
            Some(detail),
        )
        .await;
    Ok(Json(target_user(&state, &id).await?.public()))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct AuditQuery {
    /// Only this event, e.g. `auth.sign_in` (the document lists them all).
    pub event: Option<String>,
    /// Only entries where this user (id or name) is the actor or the target.
    pub user: Option<String>,
    /// Entries at or after this time (RFC 3339).
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// Entries before this time (RFC 3339).
    #[param(format = DateTime)]
    pub until: Option<String>,
    /// Page backwards: entries with an id below this (the previous page's `next_before`).
    pub before: Option<i64>,
    /// Page size, 1–500. [default: 100]
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    /// RFC 3339, UTC.
    pub at: String,
    pub event: String,
    /// `success`, `failure` or `denied`.
    pub outcome: String,
    pub actor_id: Option<String>,
    pub actor_name: Option<String>,
    pub target_id: Option<String>,
    pub target_name: Option<String>,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
    pub detail: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    pub next_before: Option<i64>,
}

fn parse_time(name: &str, value: Option<&String>) -> Result<Option<i64>, ApiError> {
    value
        .map(|v| {
            chrono::DateTime::parse_from_rfc3339(v)
                .map(|t| t.timestamp_millis())
                .map_err(|_| {
                    ApiError::BadRequest(format!(
                        "`{name}` must be an RFC 3339 time such as 2026-01-31T12:00:00Z"
                    ))
                })
        })
        .transpose()
}

/// The audit log, newest first, with filters and pagination.
#[utoipa::path(get, path = "/admin/audit", tag = "admin", params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody)))]
pub async fn audit_log(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(q): Query<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    if let Some(e) = &q.event {
        if !event::ALL.contains(&e.as_str()) {
            return Err(ApiError::BadRequest(format!(
                "unknown event {e:?}; events are: {}",
                event::ALL.join(", ")
            )));
        }
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::BadRequest("`limit` must be from 1 to 500".into()));
    }
    let filter = AuditFilter {
        event: q.event.clone(),
        user: q.user.clone(),
        since: parse_time("since", q.since.as_ref())?,
        until: parse_time("until", q.until.as_ref())?,
        before_id: q.before,
        limit: limit + 1,
    };
    let mut rows = state.store.list_audit(&filter).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_before = more.then(|| rows.last().map(|r| r.id)).flatten();
    let entries = rows
        .into_iter()
        .map(|r| AuditEntry {
            id: r.id,
            at: rfc3339(r.at),
            event: r.event,
            outcome: r.outcome,
            actor_id: r.actor_id,
            actor_name: r.actor_name,
            target_id: r.target_id,
            target_name: r.target_name,
            client_addr: r.client_addr,
            user_agent: r.user_agent,
            detail: r.detail,
        })
        .collect();
    Ok(Json(AuditPage {
        entries,
        next_before,
    }))
}
