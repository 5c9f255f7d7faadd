//! Documents: upload (streamed to disk, checked, deduplicated, queued), status, download,
//! retry, delete, and passages in context.

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::domain::accounts::{now_ms, rfc3339};
use crate::domain::documents::{detect, sniff, Rejection};
use crate::http::auth::CurrentUser;
use crate::http::error::{ApiError, ErrorBody};
use crate::service::access::{self, AccessError};
use crate::service::audit::{event, outcome};
use crate::service::ingest::Ingestor;
use crate::store::DocumentRow;

pub fn router(max_upload: u64) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, upload))
        // Multipart overhead on top of the largest accepted file.
        .layer(DefaultBodyLimit::max(max_upload as usize + (1 << 20)))
        .layer(axum::middleware::from_fn_with_state(
            max_upload + (1 << 20),
            refuse_declared_oversize,
        ))
        .routes(routes!(get_document, delete))
        .routes(routes!(retry))
        .routes(routes!(file))
        .routes(routes!(chunk))
        .routes(routes!(text))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Document {
    pub id: String,
    pub collection_id: String,
    pub filename: String,
    pub media_type: String,
    pub size: i64,
    /// `queued`, `processing`, `ready` or `failed`.
    pub status: String,
    pub progress: f64,
    pub error: Option<String>,
    pub chunk_count: i64,
    pub created_at: String,
}

impl From<DocumentRow> for Document {
    fn from(d: DocumentRow) -> Self {
        Document {
            id: d.id,
            collection_id: d.collection_id,
            filename: d.filename,
            media_type: d.media_type,
            size: d.size,
            status: d.status,
            progress: d.progress,
            error: d.error,
            chunk_count: d.chunk_count,
            created_at: rfc3339(d.created_at),
        }
    }
}

/// An upload that declares more bytes than could be accepted is refused before one byte of its
/// body is read: otherwise the connection stays busy until the limit is reached mid-stream.
async fn refuse_declared_oversize(
    State(limit): State<u64>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        // `limit` is the upload limit plus the multipart allowance.
        Some(n) if n > limit => too_large(limit - (1 << 20)).into_response(),
        _ => next.run(req).await,
    }
}

/// Documents of a collection, with their ingestion status.
#[utoipa::path(get, path = "/collections/{id}/documents", tag = "documents",
    params(("id" = String, Path)), responses((status = 200, body = [Document])))]
pub async fn list(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Vec<Document>>, ApiError> {
    access::collection(&state.store, &current.user.id, &id).await?;
    let docs = state.store.documents_in(&id).await?;
    Ok(Json(docs.into_iter().map(Document::from).collect()))
}

#[derive(ToSchema)]
#[allow(dead_code)] // documents the multipart body for OpenAPI
pub struct UploadForm {
    /// The file: plain text, Markdown, HTML, PDF (with a text layer) or DOCX.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

fn rejected(r: Rejection) -> ApiError {
    match r {
        Rejection::Unsupported(why) => ApiError::UnsupportedMediaType(why),
        other => ApiError::Invalid {
            message: format!("{other}"),
            details: Some(serde_json::json!({ "reason": other.code() })),
        },
    }
}

/// Uploads a document into a collection; it is ingested in the background.
#[utoipa::path(post, path = "/collections/{id}/documents", tag = "documents",
    params(("id" = String, Path)),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 202, description = "Queued for ingestion", body = Document),
        (status = 409, description = "The same content is already in this collection", body = ErrorBody),
        (status = 413, description = "Too large", body = ErrorBody),
        (status = 415, description = "Not a supported type", body = ErrorBody),
        (status = 422, description = "Empty, encrypted, malformed or over an extraction limit", body = ErrorBody),
        (status = 507, description = "The server's storage is full; nothing was saved", body = ErrorBody),
    ))]
pub async fn upload(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
    mut multipart: Multipart,
) -> Result<Response, ApiError> {
    let (collection, _) = access::collection(&state.store, &current.user.id, &id).await?;
    let bad = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large(state.rag.max_upload_bytes)
        } else if crate::http::error::body_timed_out(&e) {
            ApiError::TimedOut(crate::http::error::BODY_STALLED.into())
        } else {
            ApiError::BadRequest(format!("the upload is not valid multipart data: {e}"))
        }
    };
    let mut field = loop {
        match multipart.next_field().await.map_err(bad)? {
            Some(f) if f.name() == Some("file") => break f,
            Some(_) => continue,
            None => {
                return Err(ApiError::BadRequest(
                    "send the file as multipart/form-data in a field named `file`".into(),
                ))
            }
        }
    };
    let filename = clean_filename(field.file_name().unwrap_or("upload"));

    // Streamed to a temporary file, hashed on the way; never held whole in memory here.
    let tmp_dir = state.data_dir.join("tmp");
    tokio::fs::create_dir_all(&tmp_dir)
        .await
        .map_err(ApiError::from)?;
    let tmp = tmp_dir.join(uuid::Uuid::new_v4().to_string());
    let result = async {
        let mut out = tokio::fs::File::create(&tmp)
            .await
            .map_err(ApiError::from)?;
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        let mut head = Vec::with_capacity(8192);
        while let Some(bytes) = field.chunk().await.map_err(bad)? {
            size += bytes.len() as u64;
            if size > state.rag.max_upload_bytes {
                return Err(too_large(state.rag.max_upload_bytes));
            }
            if head.len() < 8192 {
                head.extend_from_slice(&bytes[..bytes.len().min(8192 - head.len())]);
            }
            hasher.update(&bytes);
            out.write_all(&bytes).await.map_err(ApiError::from)?;
        }
        out.sync_all().await.map_err(ApiError::from)?;
        let kind = detect(&head, &filename).map_err(rejected)?;
        // A bounded look now (no extraction: that is the worker's, under its budget), so a
        // file that can never be read is refused at once, with why.
        let bytes = tokio::fs::read(&tmp).await.map_err(ApiError::from)?;
        let budget = state.rag.extract.clone();
        tokio::task::spawn_blocking(move || sniff(kind, &bytes, &budget))
            .await
            .map_err(|_| ApiError::Internal(anyhow::anyhow!("checking the upload failed")))?
            .map_err(rejected)?;
        let hash: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok::<_, ApiError>((kind, size, hash))
    }
    .await;
    let (kind, size, hash) = match result {
        Ok(v) => v,
        Err(e) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
    };
    let now = now_ms();
    let row = DocumentRow {
        id: uuid::Uuid::new_v4().to_string(),
        collection_id: id,
        filename,
        media_type: kind.media_type().into(),
        size: size as i64,
        content_hash: hash,
        status: "queued".into(),
        progress: 0.0,
        error: None,
        chunk_count: 0,
        attempts: 0,
        created_at: now,
        updated_at: now,
        uploaded_by: Some(current.user.id.clone()),
    };
    // The bytes go into the database with the row (one transaction), so any instance's worker
    // can ingest it and replicas share no disk.
    let stored = async {
        let bytes = tokio::fs::read(&tmp).await.map_err(ApiError::from)?;
        Ok::<_, ApiError>(state.store.insert_document_with_file(&row, &bytes).await?)
    }
    .await;
    let _ = tokio::fs::remove_file(&tmp).await;
    if let Some(existing) = stored? {
        // Named by its file name: people know their files by name, not by id.
        let name = state
            .store
            .document(&existing)
            .await?
            .map_or_else(|| row.filename.clone(), |d| d.filename);
        return Err(ApiError::Duplicate { existing, name });
    }
    state.wake.notify_one();
    let doc = state.store.document(&row.id).await?.expect("just inserted");
    state
        .audit
        .record(
            &current.audit(),
            event::DOCUMENT_UPLOADED,
            outcome::SUCCESS,
            None,
            Some(document_detail(&doc.filename, &doc.id, &collection.name)),
        )
        .await;
    Ok((StatusCode::ACCEPTED, Json(Document::from(doc))).into_response())
}

/// How audit entries name a document: file name, id, and the collection it is in.
fn document_detail(filename: &str, id: &str, collection: &str) -> String {
    format!("\"{filename}\" ({id}) in collection \"{collection}\"")
}

fn too_large(max: u64) -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "the file is larger than the {} MiB limit (setting max_upload_mb)",
        max >> 20
    ))
}

/// The name without any path, control characters or excess length.
fn clean_filename(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    let clean: String = base.chars().filter(|c| !c.is_control()).take(200).collect();
    if clean.trim().is_empty() {
        "upload".into()
    } else {
        clean.trim().to_string()
    }
}

/// One document and its ingestion status.
#[utoipa::path(get, path = "/documents/{id}", tag = "documents",
    params(("id" = String, Path)), responses((status = 200, body = Document), (status = 404, body = ErrorBody)))]
pub async fn get_document(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Document>, ApiError> {
    Ok(Json(
        access::document(&state.store, &current.user.id, &id)
            .await?
            .into(),
    ))
}

/// Deletes a document, its chunks, vectors and file.
pub async fn remove(state: &AppState, id: &str) -> Result<(), ApiError> {
    let chunk_ids = state.store.chunk_ids_of(id).await?;
    let collection = state.store.document(id).await?.map(|d| d.collection_id);
    state.store.delete_document(id).await?;
    state.retriever.forget(&chunk_ids);
    state.retriever.changed(&Vec::from_iter(collection)).await;
    let _ = tokio::fs::remove_file(Ingestor::file_path(&state.files_dir, id)).await;
    Ok(())
}

/// Deletes a document with its chunks, vectors and stored file.
#[utoipa::path(delete, path = "/documents/{id}", tag = "documents",
    params(("id" = String, Path)), responses((status = 204),
        (status = 403, description = "A member deleting what someone else uploaded", body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let doc = access::deletable_document(&state.store, &current.user.id, &id).await?;
    remove(&state, &id).await?;
    let collection = state.store.collection(&doc.collection_id).await?;
    let collection = collection.map_or_else(|| doc.collection_id.clone(), |c| c.name);
    state
        .audit
        .record(
            &current.audit(),
            event::DOCUMENT_DELETED,
            outcome::SUCCESS,
            None,
            Some(document_detail(&doc.filename, &doc.id, &collection)),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Queues a failed document again.
#[utoipa::path(post, path = "/documents/{id}/retry", tag = "documents",
    params(("id" = String, Path)),
    responses((status = 202, body = Document), (status = 409, body = ErrorBody)))]
pub async fn retry(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Document>), ApiError> {
    access::document(&state.store, &current.user.id, &id).await?;
    if !state.store.retry_document(&id, now_ms()).await? {
        return Err(ApiError::Conflict(
            "only a failed document can be retried".into(),
        ));
    }
    state.wake.notify_one();
    let doc = state.store.document(&id).await?.expect("exists");
    Ok((StatusCode::ACCEPTED, Json(doc.into())))
}

/// The original file, as uploaded.
#[utoipa::path(get, path = "/documents/{id}/file", tag = "documents",
    params(("id" = String, Path)),
    responses((status = 200, description = "The file's bytes"), (status = 404, body = ErrorBody)))]
pub async fn file(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let doc = access::document(&state.store, &current.user.id, &id).await?;
    let disposition = format!(
        "attachment; filename=\"{}\"",
        doc.filename.replace(['"', '\\'], "_")
    );
    let headers = download_headers(&doc.media_type, disposition);
    if let Some(bytes) = state.store.document_file(&id).await? {
        return Ok((headers, bytes).into_response());
    }
    // Uploaded before the files moved into the database: on this instance's disk.
    let file = tokio::fs::File::open(Ingestor::file_path(&state.files_dir, &id))
        .await
        .map_err(|_| ApiError::NotFound("the stored file is missing".into()))?;
    let stream = tokio_util_stream(file);
    Ok((headers, Body::from_stream(stream)).into_response())
}

/// Headers for serving an uploaded file back. Its bytes are someone's upload: a browser that
/// opened it anyway (a link, "open in new tab") must not run it on Berth's origin. So markup
/// that scripts (HTML, SVG, XML) goes out as plain text, and every download is sandboxed.
fn download_headers(media_type: &str, disposition: String) -> [(header::HeaderName, String); 3] {
    let essence = media_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let scriptable = essence.contains("html")
        || essence.contains("xml")
        || essence.contains("svg")
        || essence.contains("javascript");
    let served = if scriptable {
        "text/plain; charset=utf-8".to_string()
    } else {
        media_type.to_string()
    };
    [
        (header::CONTENT_TYPE, served),
        (header::CONTENT_DISPOSITION, disposition),
        (
            header::CONTENT_SECURITY_POLICY,
            "sandbox; default-src 'none'".to_string(),
        ),
    ]
}

/// Reads a file as a stream of chunks without another dependency.
fn tokio_util_stream(
    file: tokio::fs::File,
) -> impl futures_util::Stream<Item = std::io::Result<Vec<u8>>> {
    use tokio::io::AsyncReadExt;
    futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = vec![0u8; 64 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(buf), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Passage {
    pub id: i64,
    pub document_id: String,
    pub document_name: String,
    pub ordinal: i64,
    pub text: String,
    /// The document's title and the headings above the passage.
    pub section: String,
    pub start: i64,
    pub end: i64,
    /// Up to 500 characters of the document before and after the passage.
    pub before: String,
    pub after: String,
}

/// A passage (chunk) in the context of its document, for opening a citation.
#[utoipa::path(get, path = "/chunks/{id}", tag = "documents",
    params(("id" = i64, Path)), responses((status = 200, body = Passage), (status = 404, body = ErrorBody)))]
pub async fn chunk(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<Passage>, ApiError> {
    const GONE: &str =
        "this passage is no longer there: its document was deleted or indexed again; ask again";
    let not_found = || ApiError::NotFound(GONE.into());
    let chunk = state
        .store
        .chunks_by_ids(&[id])
        .await?
        .pop()
        .ok_or_else(not_found)?;
    access::readable_or(&state.store, &current.user.id, &chunk.collection_id, || {
        AccessError::NotFound(GONE.into())
    })
    .await?;
    let text = state
        .store
        .document_text(&chunk.document_id)
        .await?
        .unwrap_or_default();
    let chars: Vec<char> = text.chars().collect();
    let (start, end) = (chunk.start_offset as usize, chunk.end_offset as usize);
    let before: String = chars[start.saturating_sub(500).min(chars.len())..start.min(chars.len())]
        .iter()
        .collect();
    let after: String = chars[end.min(chars.len())..(end + 500).min(chars.len())]
        .iter()
        .collect();
    Ok(Json(Passage {
        id: chunk.id,
        document_id: chunk.document_id,
        document_name: chunk.document_name,
        ordinal: chunk.ordinal,
        text: chunk.text,
        section: chunk.context,
        start: chunk.start_offset,
        end: chunk.end_offset,
        before,
        after,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PassageSpan {
    pub id: i64,
    /// Character (Unicode scalar) offsets into `text`.
    pub start: i64,
    pub end: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentText {
    pub id: String,
    pub collection_id: String,
    pub filename: String,
    pub media_type: String,
    /// The text Berth extracted and searches (empty until the document is ready).
    pub text: String,
    /// Its passages, in order; they may overlap.
    pub passages: Vec<PassageSpan>,
}

/// The text Berth extracted from a document, with where each passage lies in it: for reading a
/// cited passage in its document.
#[utoipa::path(get, path = "/documents/{id}/text", tag = "documents",
    params(("id" = String, Path)),
    responses((status = 200, body = DocumentText), (status = 404, body = ErrorBody)))]
pub async fn text(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<DocumentText>, ApiError> {
    let doc = access::document(&state.store, &current.user.id, &id).await?;
    let text = state.store.document_text(&id).await?.unwrap_or_default();
    let passages = state
        .store
        .passage_spans(&id)
        .await?
        .into_iter()
        .map(|(id, start, end)| PassageSpan { id, start, end })
        .collect();
    Ok(Json(DocumentText {
        id: doc.id,
        collection_id: doc.collection_id,
        filename: doc.filename,
        media_type: doc.media_type,
        text,
        passages,
    }))
}
