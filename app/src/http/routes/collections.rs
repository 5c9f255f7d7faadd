//! Collections: a user's private ones, and shared ones with members. Every access is checked by
//! `service::access`; a collection the caller may not read does not exist for them (404).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::domain::accounts::{now_ms, rfc3339, AccountState, Username};
use crate::http::auth::CurrentUser;
use crate::http::error::{ApiError, ErrorBody};
use crate::service::access::{self, Access};
use crate::service::audit::{event, outcome};
use crate::store::CollectionRow;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(delete, update))
        .routes(routes!(members, add_member))
        .routes(routes!(remove_member))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Owner {
    pub id: String,
    pub username: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Collection {
    pub id: String,
    pub name: String,
    pub shared: bool,
    /// Members may delete any document; otherwise only what they uploaded (the owner, always).
    pub members_delete_any: bool,
    pub owner: Owner,
    pub role: Access,
    pub document_count: i64,
    pub created_at: String,
}

fn view(c: CollectionRow, user_id: &str) -> Collection {
    Collection {
        role: if c.owner_id == user_id {
            Access::Owner
        } else {
            Access::Member
        },
        owner: Owner {
            id: c.owner_id,
            username: c.owner_name,
        },
        id: c.id,
        name: c.name,
        shared: c.shared != 0,
        members_delete_any: c.members_delete_any != 0,
        document_count: c.document_count,
        created_at: rfc3339(c.created_at),
    }
}

/// Your collections and the shared ones you are a member of.
#[utoipa::path(get, path = "/collections", tag = "documents",
    responses((status = 200, body = [Collection])))]
pub async fn list(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<Vec<Collection>>, ApiError> {
    let rows = state.store.collections_for(&current.user.id).await?;
    Ok(Json(
        rows.into_iter()
            .map(|c| view(c, &current.user.id))
            .collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewCollection {
    /// 1 to 100 characters, not only spaces.
    #[schema(min_length = 1, max_length = 100, pattern = r"[^\s\u0085]")]
    pub name: String,
    /// Shared collections can have members; private ones are yours alone.
    #[serde(default)]
    pub shared: bool,
    /// Members may delete any document, not only what they uploaded. [default: false]
    #[serde(default)]
    pub members_delete_any: bool,
}

/// Creates a collection you own.
#[utoipa::path(post, path = "/collections", tag = "documents", request_body = NewCollection,
    responses((status = 201, body = Collection), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    current: CurrentUser,
    Json(body): Json<NewCollection>,
) -> Result<(StatusCode, Json<Collection>), ApiError> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::Invalid {
            message: "give the collection a name of 1 to 100 characters".into(),
            details: None,
        });
    }
    let id = uuid::Uuid::new_v4().to_string();
    state
        .store
        .insert_collection(&id, name, &current.user.id, body.shared, now_ms())
        .await?;
    if body.members_delete_any {
        state.store.set_members_delete_any(&id, true).await?;
    }
    let row = state.store.collection(&id).await?.expect("just inserted");
    Ok((StatusCode::CREATED, Json(view(row, &current.user.id))))
}

/// Deletes a collection you own, with its documents.
#[utoipa::path(delete, path = "/collections/{id}", tag = "documents",
    params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    access::owned(
        &state.store,
        &current.user.id,
        &id,
        "only the owner can delete a collection",
    )
    .await?;
    for doc in state.store.documents_in(&id).await? {
        super::documents::remove(&state, &doc.id).await?;
    }
    state.store.delete_collection(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CollectionChange {
    /// `true` shares a private collection so members can be added; `false` makes a shared one
    /// private again, once it has no members.
    pub shared: bool,
}

/// Changes a collection you own: shares a private one (or makes a memberless one private).
#[utoipa::path(patch, path = "/collections/{id}", tag = "documents",
    params(("id" = String, Path)), request_body = CollectionChange,
    responses((status = 200, body = Collection), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Members remain", body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
    Json(body): Json<CollectionChange>,
) -> Result<Json<Collection>, ApiError> {
    let c = access::owned(
        &state.store,
        &current.user.id,
        &id,
        "only the owner can change a collection",
    )
    .await?;
    if (c.shared != 0) != body.shared {
        if !body.shared && !state.store.members(&id).await?.is_empty() {
            return Err(ApiError::Conflict(
                "remove the members first, then make the collection private".into(),
            ));
        }
        state.store.set_shared(&id, body.shared).await?;
        if body.shared {
            state
                .audit
                .record(
                    &current.audit(),
                    event::COLLECTION_SHARED,
                    outcome::SUCCESS,
                    None,
                    Some(collection_detail(&c.name, &id)),
                )
                .await;
        }
    }
    let row = state
        .store
        .collection(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound("the collection was deleted meanwhile".into()))?;
    Ok(Json(view(row, &current.user.id)))
}

/// How audit entries name a collection: its name, and its id for when names repeat.
fn collection_detail(name: &str, id: &str) -> String {
    format!("collection \"{name}\" ({id})")
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Member {
    pub id: String,
    pub username: String,
}

/// Members of a shared collection.
#[utoipa::path(get, path = "/collections/{id}/members", tag = "documents",
    params(("id" = String, Path)), responses((status = 200, body = [Member])))]
pub async fn members(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Vec<Member>>, ApiError> {
    access::collection(&state.store, &current.user.id, &id).await?;
    let rows = state.store.members(&id).await?;
    Ok(Json(
        rows.into_iter()
            .map(|(id, username)| Member { id, username })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewMember {
    /// A user name: 3 to 64 of `A-Z a-z 0-9 . _ -`.
    #[schema(pattern = r"^[A-Za-z0-9._-]{3,64}$")]
    pub username: String,
}

/// Adds an active user to a shared collection you own.
#[utoipa::path(post, path = "/collections/{id}/members", tag = "documents",
    params(("id" = String, Path)), request_body = NewMember,
    responses((status = 204), (status = 404, description = "No collection of yours", body = ErrorBody),
        (status = 409, body = ErrorBody),
        (status = 422, description = "No active user of that name", body = ErrorBody)))]
pub async fn add_member(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
    Json(body): Json<NewMember>,
) -> Result<StatusCode, ApiError> {
    let c = access::owned(
        &state.store,
        &current.user.id,
        &id,
        "only the owner can add members",
    )
    .await?;
    if c.shared == 0 {
        return Err(ApiError::Conflict(
            "this collection is private; share it first (PATCH with \"shared\": true), then add members"
                .into(),
        ));
    }
    let name = Username::parse(&body.username).map_err(ApiError::BadRequest)?;
    let user = state
        .store
        .user_by_name(name.as_str())
        .await?
        .filter(|u| u.state() == AccountState::Active)
        // 422, not 404: the collection exists; it is the body's name that names no one who can
        // be added. The same answer whether the account is missing or not active.
        .ok_or_else(|| ApiError::Invalid {
            message: format!("no active user named {name}; check the user name"),
            details: None,
        })?;
    state.store.add_member(&id, &user.id, now_ms()).await?;
    state
        .audit
        .record(
            &current.audit(),
            event::MEMBER_ADDED,
            outcome::SUCCESS,
            Some((&user.id, &user.username)),
            Some(collection_detail(&c.name, &id)),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a member (the owner removes anyone; a member may leave).
#[utoipa::path(delete, path = "/collections/{id}/members/{user_id}", tag = "documents",
    params(("id" = String, Path), ("user_id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn remove_member(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (c, access) = access::collection(&state.store, &current.user.id, &id).await?;
    if access != Access::Owner && user_id != current.user.id {
        return Err(ApiError::forbidden(
            "only the owner can remove other members",
        ));
    }
    // Idempotent, as a DELETE is: removing someone who is not (or no longer) a member leaves
    // the collection as asked, and says nothing about whether that account exists.
    if state.store.remove_member(&id, &user_id).await? {
        let name = state.store.user_by_id(&user_id).await?.map(|u| u.username);
        state
            .audit
            .record(
                &current.audit(),
                event::MEMBER_REMOVED,
                outcome::SUCCESS,
                Some((&user_id, name.as_deref().unwrap_or("-"))),
                Some(collection_detail(&c.name, &id)),
            )
            .await;
    }
    Ok(StatusCode::NO_CONTENT)
}
