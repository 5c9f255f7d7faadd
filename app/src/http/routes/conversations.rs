//! Conversations and chat: a question is answered from retrieved passages, streamed to the
//! client as Server-Sent Events, and stored with its citations.

use std::convert::Infallible;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::domain::accounts::{now_ms, rfc3339};
use crate::domain::chat::Speaker;
use crate::http::auth::CurrentUser;
use crate::http::error::{ApiError, ErrorBody};
use crate::service::access;
use crate::service::ask::{Progress, StoredAnswer};
use crate::service::chat::Citation;
use crate::store::{ConversationRow, MessageRow};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_conversation, update, delete))
        .routes(routes!(ask))
        .routes(routes!(feedback))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Conversation {
    pub id: String,
    pub title: String,
    pub collection_ids: Vec<String>,
    /// Documents to answer from; when not empty, they (not `collection_ids`) are the scope.
    pub document_ids: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Message {
    pub id: i64,
    /// `user` or `assistant`.
    pub role: String,
    pub content: String,
    /// For answers: `llm`, or `extractive` when no LLM is configured.
    pub mode: Option<String>,
    pub citations: Vec<Citation>,
    /// For answers: the asker's vote, if any.
    pub feedback: Option<Vote>,
    pub created_at: String,
}

/// A thumbs up or down on an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Vote {
    Up,
    Down,
}

impl Vote {
    fn as_str(self) -> &'static str {
        match self {
            Vote::Up => "up",
            Vote::Down => "down",
        }
    }

    fn parse(s: &str) -> Option<Vote> {
        match s {
            "up" => Some(Vote::Up),
            "down" => Some(Vote::Down),
            _ => None,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationWithMessages {
    #[serde(flatten)]
    pub conversation: Conversation,
    pub messages: Vec<Message>,
}

fn view(c: ConversationRow) -> Conversation {
    Conversation {
        collection_ids: serde_json::from_str(&c.collection_ids).unwrap_or_default(),
        document_ids: serde_json::from_str(&c.document_ids).unwrap_or_default(),
        id: c.id,
        title: c.title,
        created_at: rfc3339(c.created_at),
        updated_at: rfc3339(c.updated_at),
    }
}

fn message(m: MessageRow) -> Message {
    Message {
        citations: serde_json::from_str(&m.citations).unwrap_or_default(),
        id: m.id,
        role: m.role,
        content: m.content,
        mode: m.mode,
        feedback: m.feedback.as_deref().and_then(Vote::parse),
        created_at: rfc3339(m.created_at),
    }
}

async fn own(
    state: &AppState,
    current: &CurrentUser,
    id: &str,
) -> Result<ConversationRow, ApiError> {
    state
        .store
        .conversation(id, &current.user.id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no conversation {id} of yours")))
}

/// Your conversations, most recent first.
#[utoipa::path(get, path = "/conversations", tag = "chat",
    responses((status = 200, body = [Conversation])))]
pub async fn list(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<Vec<Conversation>>, ApiError> {
    let rows = state.store.conversations_of(&current.user.id).await?;
    Ok(Json(rows.into_iter().map(view).collect()))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewConversation {
    pub title: Option<String>,
    /// Collections to answer from; all you can read when absent or empty.
    pub collection_ids: Option<Vec<String>>,
    /// Documents to answer from (each readable); when not empty, they are the scope.
    pub document_ids: Option<Vec<String>>,
}

/// Checks that the caller may read each document (404 for the first they may not).
async fn readable_documents(
    state: &AppState,
    current: &CurrentUser,
    ids: &[String],
) -> Result<(), ApiError> {
    for id in ids {
        access::document(&state.store, &current.user.id, id).await?;
    }
    Ok(())
}

/// Starts a conversation.
#[utoipa::path(post, path = "/conversations", tag = "chat", request_body = NewConversation,
    responses((status = 201, body = Conversation), (status = 404, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    current: CurrentUser,
    Json(body): Json<NewConversation>,
) -> Result<(StatusCode, Json<Conversation>), ApiError> {
    let ids = body.collection_ids.unwrap_or_default();
    if !ids.is_empty() {
        access::search_scope(&state.store, &current.user.id, Some(&ids)).await?;
    }
    let documents = body.document_ids.unwrap_or_default();
    readable_documents(&state, &current, &documents).await?;
    let now = now_ms();
    let title: String = body
        .title
        .map(|t| t.trim().chars().take(200).collect())
        .filter(|t: &String| !t.is_empty())
        .unwrap_or_else(|| "New conversation".into());
    let row = ConversationRow {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: current.user.id.clone(),
        title,
        collection_ids: serde_json::to_string(&ids).expect("strings serialise"),
        document_ids: serde_json::to_string(&documents).expect("strings serialise"),
        created_at: now,
        updated_at: now,
    };
    state.store.insert_conversation(&row).await?;
    Ok((StatusCode::CREATED, Json(view(row))))
}

/// A conversation with its messages.
#[utoipa::path(get, path = "/conversations/{id}", tag = "chat", params(("id" = String, Path)),
    responses((status = 200, body = ConversationWithMessages), (status = 404, body = ErrorBody)))]
pub async fn get_conversation(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<ConversationWithMessages>, ApiError> {
    let c = own(&state, &current, &id).await?;
    let messages = state.store.messages(&id).await?;
    Ok(Json(ConversationWithMessages {
        conversation: view(c),
        messages: messages.into_iter().map(message).collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ConversationChange {
    /// A new title: 1 to 200 characters, not only spaces.
    pub title: Option<String>,
    /// Collections to answer from; all you can read when empty.
    pub collection_ids: Option<Vec<String>>,
    /// Documents to answer from; `[]`: the collections decide.
    pub document_ids: Option<Vec<String>>,
}

/// Renames a conversation, or changes the collections (or documents) it answers from.
#[utoipa::path(patch, path = "/conversations/{id}", tag = "chat", params(("id" = String, Path)),
    request_body = ConversationChange,
    responses((status = 200, body = Conversation), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
    Json(body): Json<ConversationChange>,
) -> Result<Json<Conversation>, ApiError> {
    own(&state, &current, &id).await?;
    let title = match body.title {
        None => None,
        Some(t) => {
            let t: String = t.trim().chars().take(200).collect();
            if t.is_empty() {
                return Err(ApiError::Invalid {
                    message: "a conversation's title cannot be empty".into(),
                    details: None,
                });
            }
            Some(t)
        }
    };
    let scope = match body.collection_ids {
        None => None,
        Some(ids) => {
            if !ids.is_empty() {
                access::search_scope(&state.store, &current.user.id, Some(&ids)).await?;
            }
            Some(serde_json::to_string(&ids).expect("strings serialise"))
        }
    };
    let documents = match body.document_ids {
        None => None,
        Some(ids) => {
            readable_documents(&state, &current, &ids).await?;
            Some(serde_json::to_string(&ids).expect("strings serialise"))
        }
    };
    state
        .store
        .update_conversation(
            &id,
            &current.user.id,
            title.as_deref(),
            scope.as_deref(),
            documents.as_deref(),
        )
        .await?;
    Ok(Json(view(own(&state, &current, &id).await?)))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct Feedback {
    /// `up`, `down`, or null to take the vote back.
    pub vote: Option<Vote>,
}

/// Your thumbs up or down on an answer: one vote per answer, replaced by the next.
#[utoipa::path(put, path = "/conversations/{id}/messages/{message_id}/feedback", tag = "chat",
    params(("id" = String, Path), ("message_id" = i64, Path)), request_body = Feedback,
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn feedback(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((id, message_id)): Path<(String, i64)>,
    Json(body): Json<Feedback>,
) -> Result<StatusCode, ApiError> {
    let vote = body.vote.map(Vote::as_str);
    if !state
        .store
        .set_feedback(&id, &current.user.id, message_id, vote)
        .await?
    {
        return Err(ApiError::NotFound(format!(
            "no answer {message_id} in a conversation {id} of yours"
        )));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a conversation.
#[utoipa::path(delete, path = "/conversations/{id}", tag = "chat", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !state
        .store
        .delete_conversation(&id, &current.user.id)
        .await?
    {
        return Err(ApiError::NotFound(format!("no conversation {id} of yours")));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct Question {
    /// 1 to 8000 characters, not only spaces.
    #[schema(min_length = 1, max_length = 8000, pattern = r"[^\s\u0085]")]
    pub content: String,
}

fn sse(name: &str, data: serde_json::Value) -> Result<Event, Infallible> {
    Ok(Event::default().event(name).data(data.to_string()))
}

/// Asks a question. The answer streams as Server-Sent Events: `sources` (the numbered
/// passages), `token` (text as it is generated), then `done` (the stored message, with the
/// citations the answer uses) or `error`. Closing the connection stops generation.
#[utoipa::path(post, path = "/conversations/{id}/messages", tag = "chat",
    params(("id" = String, Path)), request_body = Question,
    responses(
        (status = 200, description = "text/event-stream of sources, token, done | error", content_type = "text/event-stream"),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The conversation was deleted while the question was saved", body = ErrorBody),
        (status = 503, description = "The LLM server is unavailable", body = ErrorBody),
    ))]
pub async fn ask(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
    Json(body): Json<Question>,
) -> Result<Response, ApiError> {
    let answering = state
        .chat()
        .ask(&current.user.id, &id, &body.content)
        .await?;
    let head = vec![sse(
        "sources",
        serde_json::json!({ "citations": answering.sources }),
    )];
    let first = answering.first.map(into_event);
    let stream = futures_util::stream::iter(head.into_iter().chain(first)).chain(
        futures_util::stream::unfold(answering.rest, |mut rx| async move {
            rx.recv().await.map(|p| (into_event(p), rx))
        }),
    );
    use futures_util::StreamExt as _;
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

fn into_event(p: Progress) -> Result<Event, Infallible> {
    match p {
        Progress::Token(text) => sse("token", serde_json::json!({ "text": text })),
        Progress::Done(answer) => sse("done", serde_json::json!({ "message": answered(answer) })),
        Progress::Failed(e) => sse(
            "error",
            serde_json::json!({ "code": "llm_failed", "message": e.to_string() }),
        ),
    }
}

fn answered(a: StoredAnswer) -> Message {
    Message {
        id: a.id,
        role: Speaker::Assistant.as_str().into(),
        content: a.content,
        mode: Some(a.mode.as_str().into()),
        citations: a.citations,
        feedback: None,
        created_at: rfc3339(a.created_at),
    }
}
