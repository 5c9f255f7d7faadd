//! Settings admins change at run time: model names, retrieval, registration. The server's own
//! settings (file, environment, flags) stay the defaults; each change is stored, audited and in
//! effect at once.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::domain::accounts::rfc3339;
use crate::domain::settings::Tunable;
use crate::http::auth::AdminUser;
use crate::http::error::{ApiError, ErrorBody};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, change))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RuntimeSetting {
    /// The key, as in the server's settings (`docs/settings.md`).
    pub key: String,
    /// The value in effect, as text; null when there is none (no LLM configured).
    pub value: Option<String>,
    /// The server's own setting: what applies when no admin changed it.
    pub default: Option<String>,
    /// `admin` (changed here) or `server` (the server's settings: file, environment or default).
    pub source: String,
    /// Who changed it, and when (RFC 3339); absent when the server's setting applies.
    pub updated_by: Option<String>,
    pub updated_at: Option<String>,
}

/// The settings an admin may change at run time, with their values and where each comes from.
#[utoipa::path(get, path = "/admin/settings", tag = "admin",
    responses((status = 200, body = [RuntimeSetting])))]
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> Result<Json<Vec<RuntimeSetting>>, ApiError> {
    state.runtime.refresh().await?;
    Ok(Json(settings(&state)))
}

fn settings(state: &AppState) -> Vec<RuntimeSetting> {
    let (current, defaults) = (state.runtime.current(), state.runtime.defaults());
    let changed = state.runtime.changed();
    Tunable::ALL
        .into_iter()
        .map(|t| {
            let row = changed.iter().find(|r| r.key == t.key());
            RuntimeSetting {
                key: t.key().into(),
                value: t.get(&current),
                default: t.get(defaults),
                source: if row.is_some() { "admin" } else { "server" }.into(),
                updated_by: row.map(|r| r.updated_by.clone()),
                updated_at: row.map(|r| rfc3339(r.updated_at)),
            }
        })
        .collect()
}

/// Changes run-time settings: `{"retrieval_k": 8, "registration_open": false}`; null returns a
/// setting to the server's. All or nothing: one invalid value changes none.
#[utoipa::path(put, path = "/admin/settings", tag = "admin",
    request_body(content = BTreeMap<String, serde_json::Value>,
        description = "Keys to change; a string, number or boolean each, or null for the server's setting"),
    responses((status = 200, body = [RuntimeSetting]), (status = 422, body = ErrorBody)))]
pub async fn change(
    State(state): State<AppState>,
    admin: AdminUser,
    Json(body): Json<BTreeMap<String, serde_json::Value>>,
) -> Result<Json<Vec<RuntimeSetting>>, ApiError> {
    let mut changes = Vec::with_capacity(body.len());
    for (key, value) in body {
        let text = match value {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some(s),
            serde_json::Value::Number(n) => Some(n.to_string()),
            serde_json::Value::Bool(b) => Some(b.to_string()),
            _ => {
                return Err(ApiError::Invalid {
                    message: format!("{key}: give a string, a number, true or false, or null"),
                    details: None,
                })
            }
        };
        changes.push((key, text));
    }
    state
        .runtime
        .change(&state.audit, &admin.0.audit(), &changes)
        .await?;
    Ok(Json(settings(&state)))
}
