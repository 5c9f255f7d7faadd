//! Who may do what with a collection and its documents. A collection (or a document, or a
//! passage) the caller may not read does not exist for them: [`AccessError::NotFound`]. A
//! database failure is never read as "not readable": it stays [`AccessError::Store`], so that a
//! request fails (503) instead of silently narrowing what it covers.

use serde::Serialize;
use utoipa::ToSchema;

use crate::store::{CollectionRow, DocumentRow, Store};

/// The caller's relation to a collection they may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    Owner,
    Member,
}

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("{0}")]
    NotFound(String),
    /// Readable, but this needs more than the caller's access.
    #[error("{0}")]
    Forbidden(&'static str),
    #[error(transparent)]
    Store(#[from] sqlx::Error),
}

/// The collection and the caller's access to it.
pub async fn collection(
    store: &Store,
    user_id: &str,
    collection_id: &str,
) -> Result<(CollectionRow, Access), AccessError> {
    let not_found = || AccessError::NotFound(format!("no collection {collection_id} of yours"));
    let c = store
        .collection(collection_id)
        .await?
        .ok_or_else(not_found)?;
    if c.owner_id == user_id {
        return Ok((c, Access::Owner));
    }
    if c.shared != 0 && store.is_member(collection_id, user_id).await? {
        return Ok((c, Access::Member));
    }
    Err(not_found())
}

/// A collection only its owner may change (delete it, add members): its row.
pub async fn owned(
    store: &Store,
    user_id: &str,
    collection_id: &str,
    what: &'static str,
) -> Result<CollectionRow, AccessError> {
    match collection(store, user_id, collection_id).await? {
        (c, Access::Owner) => Ok(c),
        (_, Access::Member) => Err(AccessError::Forbidden(what)),
    }
}

/// Ids of every collection the user may read.
pub async fn readable_ids(store: &Store, user_id: &str) -> Result<Vec<String>, sqlx::Error> {
    Ok(store
        .collections_for(user_id)
        .await?
        .into_iter()
        .map(|c| c.id)
        .collect())
}

/// What a search covers: the collections asked for (each must be readable), or, when none are
/// named, every readable one.
pub async fn search_scope(
    store: &Store,
    user_id: &str,
    asked: Option<&[String]>,
) -> Result<Vec<String>, AccessError> {
    match asked {
        Some(ids) if !ids.is_empty() => {
            for id in ids {
                collection(store, user_id, id).await?;
            }
            Ok(ids.to_vec())
        }
        _ => Ok(readable_ids(store, user_id).await?),
    }
}

/// What a conversation's question covers: its collections that are still readable (one the
/// user lost access to drops out rather than failing the conversation), or every readable one
/// when it names none.
pub async fn conversation_scope(
    store: &Store,
    user_id: &str,
    asked: &[String],
) -> Result<Vec<String>, AccessError> {
    if asked.is_empty() {
        return Ok(readable_ids(store, user_id).await?);
    }
    let mut readable = Vec::new();
    for id in asked {
        match collection(store, user_id, id).await {
            Ok(_) => readable.push(id.clone()),
            Err(AccessError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(readable)
}

/// The documents a conversation asked for that the user may still read (a deleted one, or one
/// of a collection no longer shared with them, drops out; a database failure does not).
pub async fn conversation_documents(
    store: &Store,
    user_id: &str,
    asked: &[String],
) -> Result<Vec<DocumentRow>, AccessError> {
    let mut readable = Vec::new();
    for id in asked {
        match document(store, user_id, id).await {
            Ok(doc) => readable.push(doc),
            Err(AccessError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(readable)
}

/// The document, if the caller may read its collection.
pub async fn document(store: &Store, user_id: &str, id: &str) -> Result<DocumentRow, AccessError> {
    let not_found = || AccessError::NotFound(format!("no document {id}"));
    let doc = store.document(id).await?.ok_or_else(not_found)?;
    readable_or(store, user_id, &doc.collection_id, not_found).await?;
    Ok(doc)
}

/// Checks that the caller may read `collection_id`, answering `not_found` for what hides in
/// it (a document, a passage) when they may not.
pub async fn readable_or(
    store: &Store,
    user_id: &str,
    collection_id: &str,
    not_found: impl Fn() -> AccessError,
) -> Result<(CollectionRow, Access), AccessError> {
    match collection(store, user_id, collection_id).await {
        Err(AccessError::NotFound(_)) => Err(not_found()),
        other => other,
    }
}

/// A document the caller may delete: the collection's owner deletes anything; a member only
/// what they uploaded, unless the owner lets members delete any document.
pub async fn deletable_document(
    store: &Store,
    user_id: &str,
    id: &str,
) -> Result<DocumentRow, AccessError> {
    // One access check: the document's, which also says how the caller may act on it.
    let not_found = || AccessError::NotFound(format!("no document {id}"));
    let doc = store.document(id).await?.ok_or_else(not_found)?;
    let (collection, access) = readable_or(store, user_id, &doc.collection_id, not_found).await?;
    let uploader = doc.uploaded_by.as_deref() == Some(user_id);
    if access != Access::Owner && !uploader && collection.members_delete_any == 0 {
        return Err(AccessError::Forbidden(
            "only the collection's owner, or whoever uploaded the document, may delete it",
        ));
    }
    Ok(doc)
}
