//! Queries for documents, their ingestion queue, chunks and vectors. Shared SQL where the
//! backends agree. (Collections, retrieval and conversations have files of their own.)

use super::dispatch::{on_pool, BeginWrite};
use super::Store;
use crate::domain::documents::chunk;

type Result<T> = std::result::Result<T, sqlx::Error>;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DocumentRow {
    pub id: String,
    pub collection_id: String,
    pub filename: String,
    pub media_type: String,
    pub size: i64,
    pub content_hash: String,
    pub status: String,
    pub progress: f64,
    pub error: Option<String>,
    pub chunk_count: i64,
    pub attempts: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// The user who uploaded it; None for documents from before that was recorded.
    pub uploaded_by: Option<String>,
}

const DOC_COLUMNS: &str = "id, collection_id, filename, media_type, size, content_hash, status, \
     progress, error, chunk_count, attempts, created_at, updated_at, uploaded_by";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChunkRow {
    pub id: i64,
    pub document_id: String,
    pub document_name: String,
    pub collection_id: String,
    pub ordinal: i64,
    pub text: String,
    pub start_offset: i64,
    pub end_offset: i64,
    /// The document's title and the headings above the passage (see `chunk::add_context`).
    pub context: String,
}

/// A chunk to store: text and character offsets in the document's text.
pub struct NewChunk<'a> {
    pub text: &'a str,
    pub context: &'a str,
    pub start: i64,
    pub end: i64,
}

pub(super) fn f32s_to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn blob_to_f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

pub(super) fn pg_vector(v: &[f32]) -> String {
    let mut s = String::with_capacity(v.len() * 10);
    s.push('[');
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&x.to_string());
    }
    s.push(']');
    s
}

impl Store {
    /// Inserts a queued document; `Ok(Some(id))` names the existing document with the same
    /// content in that collection instead.
    pub async fn insert_document(&self, d: &DocumentRow) -> Result<Option<String>> {
        let sql = "INSERT INTO documents (id, collection_id, filename, media_type, size, \
                   content_hash, status, created_at, updated_at, uploaded_by) \
                   VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7, $7, $8) \
                   ON CONFLICT (collection_id, content_hash) DO NOTHING";
        let n = on_pool!(self, |pool| sqlx::query(sql)
            .bind(&d.id)
            .bind(&d.collection_id)
            .bind(&d.filename)
            .bind(&d.media_type)
            .bind(d.size)
            .bind(&d.content_hash)
            .bind(d.created_at)
            .bind(&d.uploaded_by)
            .execute(pool)
            .await?
            .rows_affected());
        if n == 1 {
            return Ok(None);
        }
        let sql = "SELECT id FROM documents WHERE collection_id = $1 AND content_hash = $2";
        on_pool!(self, |pool| sqlx::query_scalar(sql)
            .bind(&d.collection_id)
            .bind(&d.content_hash)
            .fetch_optional(pool)
            .await)
    }

    /// [`Store::insert_document`] and the uploaded file's bytes, in one transaction: a queued
    /// document always has its file, wherever the instance that ingests it runs.
    pub async fn insert_document_with_file(
        &self,
        d: &DocumentRow,
        bytes: &[u8],
    ) -> Result<Option<String>> {
        let insert = "INSERT INTO documents (id, collection_id, filename, media_type, size, \
                      content_hash, status, created_at, updated_at, uploaded_by) \
                      VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7, $7, $8) \
                      ON CONFLICT (collection_id, content_hash) DO NOTHING";
        let existing = "SELECT id FROM documents WHERE collection_id = $1 AND content_hash = $2";
        on_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let n = sqlx::query(insert)
                .bind(&d.id)
                .bind(&d.collection_id)
                .bind(&d.filename)
                .bind(&d.media_type)
                .bind(d.size)
                .bind(&d.content_hash)
                .bind(d.created_at)
                .bind(&d.uploaded_by)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n != 1 {
                return sqlx::query_scalar(existing)
                    .bind(&d.collection_id)
                    .bind(&d.content_hash)
                    .fetch_optional(&mut *tx)
                    .await;
            }
            sqlx::query("INSERT INTO document_files (document_id, bytes) VALUES ($1, $2)")
                .bind(&d.id)
                .bind(bytes)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(None)
        })
    }

    /// The uploaded file's bytes, when the database holds them (uploads since migration 4).
    pub async fn document_file(&self, id: &str) -> Result<Option<Vec<u8>>> {
        let sql = "SELECT bytes FROM document_files WHERE document_id = $1";
        on_pool!(self, |pool| sqlx::query_scalar(sql)
            .bind(id)
            .fetch_optional(pool)
            .await)
    }

    pub async fn document(&self, id: &str) -> Result<Option<DocumentRow>> {
        let sql = format!("SELECT {DOC_COLUMNS} FROM documents WHERE id = $1");
        on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(pool)
            .await)
    }

    pub async fn documents_in(&self, collection_id: &str) -> Result<Vec<DocumentRow>> {
        let sql = format!(
            "SELECT {DOC_COLUMNS} FROM documents WHERE collection_id = $1 ORDER BY created_at"
        );
        on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(collection_id)
            .fetch_all(pool)
            .await)
    }

    /// Chunk ids of a document (to drop them from an in-memory index).
    pub async fn chunk_ids_of(&self, document_id: &str) -> Result<Vec<i64>> {
        let sql = "SELECT id FROM chunks WHERE document_id = $1";
        on_pool!(self, |pool| sqlx::query_scalar(sql)
            .bind(document_id)
            .fetch_all(pool)
            .await)
    }

    pub async fn delete_document(&self, id: &str) -> Result<()> {
        on_pool!(self, |pool| sqlx::query(
            "DELETE FROM documents WHERE id = $1"
        )
        .bind(id)
        .execute(pool)
        .await
        .map(drop)?);
        Ok(())
    }

    /// Puts a failed document back in the queue; false if it was not failed.
    pub async fn retry_document(&self, id: &str, now: i64) -> Result<bool> {
        let sql = "UPDATE documents SET status = 'queued', error = NULL, attempts = 0, \
                   progress = 0, not_before = 0, updated_at = $2 \
                   WHERE id = $1 AND status = 'failed'";
        let n = on_pool!(self, |pool| sqlx::query(sql)
            .bind(id)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// Claims the next document to ingest: a queued one that is due, or one whose previous
    /// worker's lease ran out (it crashed). Several workers and instances never claim the same.
    pub async fn claim_document(&self, now: i64, lease_ms: i64) -> Result<Option<DocumentRow>> {
        let pick = "SELECT id FROM documents WHERE (status = 'queued' AND not_before <= $1) \
                    OR (status = 'processing' AND lease_until < $1) ORDER BY created_at LIMIT 1";
        let sql = match self {
            Store::Sqlite(_) => format!(
                "UPDATE documents SET status = 'processing', lease_until = $1 + $2, \
                 attempts = attempts + 1, progress = 0, updated_at = $1 \
                 WHERE id = ({pick}) RETURNING {DOC_COLUMNS}"
            ),
            Store::Postgres(_) => format!(
                "UPDATE documents SET status = 'processing', lease_until = $1 + $2, \
                 attempts = attempts + 1, progress = 0, updated_at = $1 \
                 WHERE id = ({pick} FOR UPDATE SKIP LOCKED) RETURNING {DOC_COLUMNS}"
            ),
        };
        on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(now)
            .bind(lease_ms)
            .fetch_optional(pool)
            .await)
    }

    pub async fn set_progress(&self, id: &str, progress: f64, lease_until: i64) -> Result<()> {
        let sql = "UPDATE documents SET progress = $2, lease_until = $3 \
                   WHERE id = $1 AND status = 'processing'";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(id)
            .bind(progress)
            .bind(lease_until)
            .execute(pool)
            .await
            .map(drop)?);
        Ok(())
    }

    /// Back to the queue after a transient failure (the model server is down), due again later.
    pub async fn requeue_document(&self, id: &str, not_before: i64, why: &str) -> Result<()> {
        let sql = "UPDATE documents SET status = 'queued', not_before = $2, error = $3, \
                   attempts = attempts - 1, progress = 0, lease_until = NULL \
                   WHERE id = $1 AND status = 'processing'";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(id)
            .bind(not_before)
            .bind(why)
            .execute(pool)
            .await
            .map(drop)?);
        Ok(())
    }

    pub async fn fail_document(&self, id: &str, error: &str, now: i64) -> Result<()> {
        let sql = "UPDATE documents SET status = 'failed', error = $2, lease_until = NULL, \
                   updated_at = $3 WHERE id = $1";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(id)
            .bind(error)
            .bind(now)
            .execute(pool)
            .await
            .map(drop)?);
        Ok(())
    }

    /// After a crash of the only instance (the embedded store), its claims are void: requeue.
    pub async fn release_claims(&self) -> Result<u64> {
        let sql = "UPDATE documents SET status = 'queued', lease_until = NULL, progress = 0 \
                   WHERE status = 'processing'";
        on_pool!(self, |pool| Ok(sqlx::query(sql)
            .execute(pool)
            .await?
            .rows_affected()))
    }

    pub async fn queue_depth(&self) -> Result<i64> {
        let sql = "SELECT COUNT(*) FROM documents WHERE status IN ('queued', 'processing')";
        on_pool!(self, |pool| sqlx::query_scalar(sql).fetch_one(pool).await)
    }

    /// Stores the text, chunks and vectors and marks the document ready, in one transaction:
    /// a document is either fully searchable or not at all. Returns the new chunk ids, or None
    /// if the document is no longer ours to complete (deleted, or reclaimed after our lease).
    pub async fn complete_document(
        &self,
        id: &str,
        text: &str,
        chunks: &[NewChunk<'_>],
        vectors: Option<(&str, &[Vec<f32>])>,
        now: i64,
    ) -> Result<Option<Vec<i64>>> {
        macro_rules! body {
            ($pool:expr, $vec_sql:expr, $encode:expr) => {{
                let mut tx = $pool.begin_write().await?;
                let owned: Option<String> = sqlx::query_scalar(
                    "SELECT collection_id FROM documents WHERE id = $1 AND status = 'processing'",
                )
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(collection_id) = owned else {
                    return Ok(None);
                };
                sqlx::query("DELETE FROM chunks WHERE document_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO document_texts (document_id, text) VALUES ($1, $2) \
                     ON CONFLICT (document_id) DO UPDATE SET text = excluded.text",
                )
                .bind(id)
                .bind(text)
                .execute(&mut *tx)
                .await?;
                let mut ids = Vec::with_capacity(chunks.len());
                for (ordinal, c) in chunks.iter().enumerate() {
                    let chunk_id: i64 = sqlx::query_scalar(
                        "INSERT INTO chunks (document_id, collection_id, ordinal, text, \
                         start_offset, end_offset, context) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                         RETURNING id",
                    )
                    .bind(id)
                    .bind(&collection_id)
                    .bind(ordinal as i64)
                    .bind(c.text)
                    .bind(c.start)
                    .bind(c.end)
                    .bind(c.context)
                    .fetch_one(&mut *tx)
                    .await?;
                    ids.push(chunk_id);
                }
                if let Some((model, vectors)) = vectors {
                    for (chunk_id, v) in ids.iter().zip(vectors) {
                        sqlx::query($vec_sql)
                            .bind(chunk_id)
                            .bind(model)
                            .bind(v.len() as i64)
                            .bind($encode(v))
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                sqlx::query(
                    "UPDATE documents SET status = 'ready', progress = 1, error = NULL, \
                     chunk_count = $2, lease_until = NULL, updated_at = $3 WHERE id = $1",
                )
                .bind(id)
                .bind(ids.len() as i64)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(Some(ids))
            }};
        }
        match self {
            Store::Sqlite(s) => body!(
                s.pool,
                "INSERT INTO chunk_vectors (chunk_id, model, dim, embedding) VALUES ($1, $2, $3, $4)",
                |v: &Vec<f32>| f32s_to_blob(v)
            ),
            Store::Postgres(s) => body!(
                s.pool,
                "INSERT INTO chunk_vectors (chunk_id, model, dim, embedding) \
                 VALUES ($1, $2, $3, CAST($4 AS vector))",
                |v: &Vec<f32>| pg_vector(v)
            ),
        }
    }

    // ----- vectors -----

    /// Chunks of ready documents that have no vector from `model` yet (after a model change).
    pub async fn chunks_missing_vectors(
        &self,
        model: &str,
        limit: i64,
    ) -> Result<Vec<(i64, String, String)>> {
        let sql = "SELECT c.id, c.collection_id, c.context, c.text FROM chunks c JOIN documents d ON d.id = c.document_id \
                   LEFT JOIN chunk_vectors v ON v.chunk_id = c.id AND v.model = $1 \
                   WHERE d.status = 'ready' AND v.chunk_id IS NULL ORDER BY c.id LIMIT $2";
        let rows: Vec<(i64, String, String, String)> = on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(model)
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        // Embedded as ingestion embeds them: with their context.
        Ok(rows
            .into_iter()
            .map(|(id, collection, context, text)| {
                (id, collection, chunk::indexed_text(&context, &text))
            })
            .collect())
    }

    pub async fn put_vectors(&self, model: &str, items: &[(i64, Vec<f32>)]) -> Result<()> {
        macro_rules! body {
            ($pool:expr, $sql:expr, $encode:expr) => {{
                let mut tx = $pool.begin_write().await?;
                for (id, v) in items {
                    sqlx::query($sql)
                        .bind(id)
                        .bind(model)
                        .bind(v.len() as i64)
                        .bind($encode(v))
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
            }};
        }
        let upsert = " ON CONFLICT (chunk_id) DO UPDATE SET model = excluded.model, \
                      dim = excluded.dim, embedding = excluded.embedding";
        match self {
            Store::Sqlite(s) => body!(
                s.pool,
                &format!("INSERT INTO chunk_vectors (chunk_id, model, dim, embedding) VALUES ($1, $2, $3, $4){upsert}"),
                |v: &Vec<f32>| f32s_to_blob(v)
            ),
            Store::Postgres(s) => body!(
                s.pool,
                &format!("INSERT INTO chunk_vectors (chunk_id, model, dim, embedding) VALUES ($1, $2, $3, CAST($4 AS vector)){upsert}"),
                |v: &Vec<f32>| pg_vector(v)
            ),
        }
        Ok(())
    }

    pub async fn meta(&self, key: &str) -> Result<Option<String>> {
        on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT value FROM berth_meta WHERE key = $1"
        )
        .bind(key)
        .fetch_optional(pool)
        .await)
    }

    pub async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        let sql = "INSERT INTO berth_meta (key, value) VALUES ($1, $2) \
                   ON CONFLICT (key) DO UPDATE SET value = excluded.value";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(key)
            .bind(value)
            .execute(pool)
            .await
            .map(drop)?);
        Ok(())
    }
}
