//! Queries for collections, documents, chunks, vectors and conversations. Shared SQL where the
//! backends agree; the full-text and vector parts are each backend's own.

use super::dispatch::on_pool;
use super::Store;

type Result<T> = std::result::Result<T, sqlx::Error>;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CollectionRow {
    pub id: String,
    pub name: String,
    pub owner_id: String,
    pub owner_name: String,
    pub shared: i64,
    /// Members may delete any document, not only their own uploads.
    pub members_delete_any: i64,
    pub created_at: i64,
    pub document_count: i64,
}

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
}

/// A chunk to store: text and character offsets in the document's text.
pub struct NewChunk<'a> {
    pub text: &'a str,
    pub start: i64,
    pub end: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConversationRow {
    pub id: String,
    pub user_id: String,
    pub title: String,
    pub collection_ids: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageRow {
    pub id: i64,
    pub role: String,
    pub content: String,
    pub mode: Option<String>,
    pub citations: String,
    pub created_at: i64,
}

fn f32s_to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn blob_to_f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn pg_vector(v: &[f32]) -> String {
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
    // ----- collections -----

    pub async fn insert_collection(
        &self,
        id: &str,
        name: &str,
        owner_id: &str,
        shared: bool,
        now: i64,
    ) -> Result<()> {
        let sql = "INSERT INTO collections (id, name, owner_id, shared, created_at) \
                   VALUES ($1, $2, $3, $4, $5)";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(id)
            .bind(name)
            .bind(owner_id)
            .bind(shared as i64)
            .bind(now)
            .execute(pool)
            .await
            .map(drop)?);
        Ok(())
    }

    /// Collections the user owns or is a member of.
    pub async fn collections_for(&self, user_id: &str) -> Result<Vec<CollectionRow>> {
        let sql = "SELECT c.id, c.name, c.owner_id, u.username AS owner_name, c.shared, \
                   c.members_delete_any, c.created_at, (SELECT COUNT(*) FROM documents d WHERE d.collection_id = c.id) \
                   AS document_count FROM collections c JOIN users u ON u.id = c.owner_id \
                   WHERE c.owner_id = $1 OR (c.shared = 1 AND EXISTS (SELECT 1 FROM \
                   collection_members m WHERE m.collection_id = c.id AND m.user_id = $1)) \
                   ORDER BY c.created_at, c.name";
        on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(user_id)
            .fetch_all(pool)
            .await)
    }

    pub async fn collection(&self, id: &str) -> Result<Option<CollectionRow>> {
        let sql = "SELECT c.id, c.name, c.owner_id, u.username AS owner_name, c.shared, \
                   c.members_delete_any, c.created_at, (SELECT COUNT(*) FROM documents d WHERE d.collection_id = c.id) \
                   AS document_count FROM collections c JOIN users u ON u.id = c.owner_id \
                   WHERE c.id = $1";
        on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(id)
            .fetch_optional(pool)
            .await)
    }

    /// Lets members delete any document of the collection, or only their own uploads.
    pub async fn set_members_delete_any(&self, id: &str, any: bool) -> Result<()> {
        let sql = "UPDATE collections SET members_delete_any = $2 WHERE id = $1";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(id)
            .bind(any as i64)
            .execute(pool)
            .await
            .map(drop)?);
        Ok(())
    }

    pub async fn is_member(&self, collection_id: &str, user_id: &str) -> Result<bool> {
        let sql =
            "SELECT COUNT(*) FROM collection_members WHERE collection_id = $1 AND user_id = $2";
        let n: i64 = on_pool!(self, |pool| sqlx::query_scalar(sql)
            .bind(collection_id)
            .bind(user_id)
            .fetch_one(pool)
            .await?);
        Ok(n > 0)
    }

    pub async fn delete_collection(&self, id: &str) -> Result<()> {
        on_pool!(self, |pool| sqlx::query(
            "DELETE FROM collections WHERE id = $1"
        )
        .bind(id)
        .execute(pool)
        .await
        .map(drop)?);
        Ok(())
    }

    pub async fn add_member(&self, collection_id: &str, user_id: &str, now: i64) -> Result<()> {
        let sql = "INSERT INTO collection_members (collection_id, user_id, added_at) \
                   VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(collection_id)
            .bind(user_id)
            .bind(now)
            .execute(pool)
            .await
            .map(drop)?);
        Ok(())
    }

    pub async fn remove_member(&self, collection_id: &str, user_id: &str) -> Result<bool> {
        let sql = "DELETE FROM collection_members WHERE collection_id = $1 AND user_id = $2";
        let n = on_pool!(self, |pool| sqlx::query(sql)
            .bind(collection_id)
            .bind(user_id)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(n > 0)
    }

    /// (user id, user name) of each member.
    pub async fn members(&self, collection_id: &str) -> Result<Vec<(String, String)>> {
        let sql = "SELECT u.id, u.username FROM collection_members m JOIN users u \
                   ON u.id = m.user_id WHERE m.collection_id = $1 ORDER BY u.username";
        on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(collection_id)
            .fetch_all(pool)
            .await)
    }

    // ----- documents -----

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
            let mut tx = pool.begin().await?;
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
                let mut tx = $pool.begin().await?;
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
                         start_offset, end_offset) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                    )
                    .bind(id)
                    .bind(&collection_id)
                    .bind(ordinal as i64)
                    .bind(c.text)
                    .bind(c.start)
                    .bind(c.end)
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
        let sql = "SELECT c.id, c.collection_id, c.text FROM chunks c JOIN documents d ON d.id = c.document_id \
                   LEFT JOIN chunk_vectors v ON v.chunk_id = c.id AND v.model = $1 \
                   WHERE d.status = 'ready' AND v.chunk_id IS NULL ORDER BY c.id LIMIT $2";
        on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(model)
            .bind(limit)
            .fetch_all(pool)
            .await)
    }

    pub async fn put_vectors(&self, model: &str, items: &[(i64, Vec<f32>)]) -> Result<()> {
        macro_rules! body {
            ($pool:expr, $sql:expr, $encode:expr) => {{
                let mut tx = $pool.begin().await?;
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

    // ----- retrieval -----

    /// Full-text search over ready documents in `collections`: (chunk id, score), best first.
    pub async fn lexical_search(
        &self,
        terms: &[String],
        collections: &[String],
        k: i64,
    ) -> Result<Vec<(i64, f64)>> {
        if terms.is_empty() || collections.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            Store::Sqlite(s) => {
                let collections_json =
                    serde_json::to_string(collections).expect("strings serialise");
                // Each term quoted, so user input is never FTS5 syntax; any term may match.
                let query = terms
                    .iter()
                    .map(|t| format!("\"{}\"", t.replace('"', "")))
                    .collect::<Vec<_>>()
                    .join(" OR ");
                // FTS5 must score every row the expression matches, but it sorts them itself
                // (`ORDER BY rank LIMIT`); only the best few are then joined and filtered, instead
                // of every match going through the joins and a temporary B-tree. When the
                // caller's collections hold too few of those few (other tenants' chunks ranked
                // first), the plain plan below answers exactly.
                let ranked_first = "SELECT c.id, -f.score AS score FROM \
                           (SELECT rowid, rank AS score FROM chunks_fts WHERE chunks_fts MATCH $1 \
                            ORDER BY rank LIMIT $4) f \
                           JOIN chunks c ON c.id = f.rowid \
                           JOIN documents d ON d.id = c.document_id \
                           WHERE d.status = 'ready' \
                           AND c.collection_id IN (SELECT value FROM json_each($2)) \
                           ORDER BY f.score, c.id LIMIT $3";
                let rows: Vec<(i64, f64)> = sqlx::query_as(ranked_first)
                    .bind(&query)
                    .bind(&collections_json)
                    .bind(k)
                    .bind(k.saturating_mul(4))
                    .fetch_all(&s.pool)
                    .await?;
                if rows.len() as i64 >= k {
                    return Ok(rows);
                }
                let sql = "SELECT c.id, -bm25(chunks_fts) AS score FROM chunks_fts \
                           JOIN chunks c ON c.id = chunks_fts.rowid \
                           JOIN documents d ON d.id = c.document_id \
                           WHERE chunks_fts MATCH $1 AND d.status = 'ready' \
                           AND c.collection_id IN (SELECT value FROM json_each($2)) \
                           ORDER BY bm25(chunks_fts), c.id LIMIT $3";
                sqlx::query_as(sql)
                    .bind(query)
                    .bind(collections_json)
                    .bind(k)
                    .fetch_all(&s.pool)
                    .await
            }
            Store::Postgres(s) => {
                // Each term through plainto_tsquery (which parses no syntax), OR-ed as tsquery
                // values: user input is never tsquery or websearch syntax. Collections as an array
                // (`= ANY`), which the planner estimates and filters cheaply, unlike a set
                // returned by jsonb_array_elements_text. Ranked by ts_rank (term frequency):
                // every matching row is ranked, and ts_rank_cd's cover-density pass cost about
                // twice as much per row, for an OR of single words where covers are single words.
                let sql =
                    "WITH q AS (SELECT string_agg('(' || p::text || ')', ' | ')::tsquery AS q \
                           FROM unnest($1::text[]) t, plainto_tsquery('english', t) p \
                           WHERE numnode(p) > 0) \
                           SELECT c.id, ts_rank(c.tsv, q.q)::float8 AS score \
                           FROM q, chunks c JOIN documents d ON d.id = c.document_id \
                           WHERE c.tsv @@ q.q AND d.status = 'ready' \
                           AND c.collection_id = ANY($2::text[]) \
                           ORDER BY score DESC, c.id LIMIT $3";
                sqlx::query_as(sql)
                    .bind(terms)
                    .bind(collections)
                    .bind(k)
                    .fetch_all(&s.pool)
                    .await
            }
        }
    }

    /// How many chunks (of any document) hold each term, counting no further than `cap`: the
    /// document frequency that decides whether a term is too common to search by (see
    /// `retrieval::TermStats`). Counted through the full-text index with the same tokenizer as
    /// the search, so a term is looked up the way it is matched. (FTS5's fts5vocab table also
    /// gives document frequencies, but by the stemmed token, which only the tokenizer knows; and
    /// it counts the whole posting list, where the cap stops early.)
    pub async fn term_chunk_counts(&self, terms: &[String], cap: i64) -> Result<Vec<i64>> {
        let mut out = Vec::with_capacity(terms.len());
        for term in terms {
            let n: i64 = match self {
                Store::Sqlite(s) => {
                    sqlx::query_scalar(
                        "SELECT count(*) FROM (SELECT rowid FROM chunks_fts \
                         WHERE chunks_fts MATCH $1 LIMIT $2)",
                    )
                    .bind(format!("\"{}\"", term.replace('"', "")))
                    .bind(cap)
                    .fetch_one(&s.pool)
                    .await?
                }
                Store::Postgres(s) => {
                    sqlx::query_scalar(
                        "SELECT count(*) FROM (SELECT 1 FROM chunks \
                         WHERE tsv @@ plainto_tsquery('english', $1) LIMIT $2) m",
                    )
                    .bind(term)
                    .bind(cap)
                    .fetch_one(&s.pool)
                    .await?
                }
            };
            out.push(n);
        }
        Ok(out)
    }

    /// How many chunks there are (of any document): the N of document frequencies.
    pub async fn chunk_count(&self) -> Result<i64> {
        on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT count(*) FROM chunks"
        )
        .fetch_one(pool)
        .await)
    }

    /// PostgreSQL: the HNSW index (cosine) for vectors of dimension `dim`, created once. A partial
    /// index on `embedding::vector(dim)`, since the column holds vectors of any dimension;
    /// [`Store::pg_vector_search`] orders by the same expression so it is used. No-op on SQLite.
    pub async fn ensure_vector_index(&self, dim: usize) -> Result<()> {
        let Store::Postgres(s) = self else {
            return Ok(());
        };
        // pgvector's HNSW indexes `vector` up to 2,000 dimensions; beyond that search scans.
        if dim == 0 || dim > 2_000 {
            return Ok(());
        }
        let dim = dim as u32; // an integer literal in the SQL, never text from outside
        let mut tx = s.pool.begin().await?;
        // Instances starting together: one creates it, the others then find it there.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('berth.chunk_vectors_hnsw'))")
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!(
            "CREATE INDEX IF NOT EXISTS chunk_vectors_hnsw_{dim} ON chunk_vectors \
             USING hnsw ((embedding::vector({dim})) vector_cosine_ops) WHERE dim = {dim}"
        ))
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// The dimension of some stored vector of `model`, if any.
    pub async fn any_vector_dim(&self, model: &str) -> Result<Option<i64>> {
        let sql = "SELECT dim FROM chunk_vectors WHERE model = $1 LIMIT 1";
        on_pool!(self, |pool| sqlx::query_scalar(sql)
            .bind(model)
            .fetch_optional(pool)
            .await)
    }

    /// Nearest chunks by cosine similarity, in PostgreSQL (pgvector): (chunk id, similarity).
    pub async fn pg_vector_search(
        &self,
        query: &[f32],
        model: &str,
        collections: &[String],
        k: i64,
    ) -> Result<Vec<(i64, f64)>> {
        let Store::Postgres(s) = self else {
            return Ok(Vec::new());
        };
        // The expression and predicate of `chunk_vectors_hnsw_<dim>` (see ensure_vector_index),
        // with the dimension as an integer literal so the planner can match the partial index.
        // The nearest vectors come from the index alone (ORDER BY distance LIMIT on one table,
        // which the HNSW scan answers directly); joins and filters then apply to those few.
        // An HNSW scan returns at most hnsw.ef_search rows, so it is raised to the depth asked
        // (pgvector accepts up to 1000; its default, 40, is the least used, as before: a larger
        // one walks proportionally more of the graph). Vectors of other collections among those
        // leave fewer hits, as before; the lexical half still covers the query.
        let dim = query.len() as u32;
        let sql = format!(
            "SELECT c.id, (1 - nn.dist)::float8 AS score FROM \
             (SELECT v.chunk_id, v.embedding::vector({dim}) <=> $1::vector({dim}) AS dist \
              FROM chunk_vectors v WHERE v.dim = {dim} AND v.model = $2 \
              ORDER BY v.embedding::vector({dim}) <=> $1::vector({dim}) LIMIT $4) nn \
             JOIN chunks c ON c.id = nn.chunk_id \
             JOIN documents d ON d.id = c.document_id \
             WHERE d.status = 'ready' AND c.collection_id = ANY($3::text[]) \
             ORDER BY nn.dist, c.id LIMIT $4"
        );
        let depth = k.clamp(40, 1000);
        let mut tx = s.pool.begin().await?;
        sqlx::query("SELECT set_config('hnsw.ef_search', $1, true)")
            .bind(depth.to_string())
            .execute(&mut *tx)
            .await?;
        let rows = sqlx::query_as(&sql)
            .bind(pg_vector(query))
            .bind(model)
            .bind(collections)
            .bind(k)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// Every vector of `model` for ready documents: (chunk id, collection id, vector).
    pub async fn sqlite_vectors(&self, model: &str) -> Result<Vec<(i64, String, Vec<u8>)>> {
        let Store::Sqlite(s) = self else {
            return Ok(Vec::new());
        };
        let sql = "SELECT c.id, c.collection_id, v.embedding FROM chunk_vectors v \
                   JOIN chunks c ON c.id = v.chunk_id JOIN documents d ON d.id = c.document_id \
                   WHERE v.model = $1 AND d.status = 'ready'";
        sqlx::query_as(sql).bind(model).fetch_all(&s.pool).await
    }

    pub async fn chunks_by_ids(&self, ids: &[i64]) -> Result<Vec<ChunkRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let columns = "SELECT c.id, c.document_id, d.filename AS document_name, c.collection_id, \
                       c.ordinal, c.text, c.start_offset, c.end_offset FROM chunks c \
                       JOIN documents d ON d.id = c.document_id WHERE d.status = 'ready' AND";
        match self {
            Store::Sqlite(s) => {
                let ids_json = serde_json::to_string(ids).expect("numbers serialise");
                sqlx::query_as(&format!(
                    "{columns} c.id IN (SELECT value FROM json_each($1))"
                ))
                .bind(ids_json)
                .fetch_all(&s.pool)
                .await
            }
            Store::Postgres(s) => {
                sqlx::query_as(&format!("{columns} c.id = ANY($1::bigint[])"))
                    .bind(ids)
                    .fetch_all(&s.pool)
                    .await
            }
        }
    }

    pub async fn document_text(&self, document_id: &str) -> Result<Option<String>> {
        let sql = "SELECT text FROM document_texts WHERE document_id = $1";
        on_pool!(self, |pool| sqlx::query_scalar(sql)
            .bind(document_id)
            .fetch_optional(pool)
            .await)
    }

    // ----- conversations -----

    pub async fn insert_conversation(&self, c: &ConversationRow) -> Result<()> {
        let sql = "INSERT INTO conversations (id, user_id, title, collection_ids, created_at, \
                   updated_at) VALUES ($1, $2, $3, $4, $5, $5)";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(&c.id)
            .bind(&c.user_id)
            .bind(&c.title)
            .bind(&c.collection_ids)
            .bind(c.created_at)
            .execute(pool)
            .await
            .map(drop)?);
        Ok(())
    }

    pub async fn conversations_of(&self, user_id: &str) -> Result<Vec<ConversationRow>> {
        let sql = "SELECT id, user_id, title, collection_ids, created_at, updated_at \
                   FROM conversations WHERE user_id = $1 ORDER BY updated_at DESC";
        on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(user_id)
            .fetch_all(pool)
            .await)
    }

    /// The conversation, only if it belongs to `user_id`.
    pub async fn conversation(&self, id: &str, user_id: &str) -> Result<Option<ConversationRow>> {
        let sql = "SELECT id, user_id, title, collection_ids, created_at, updated_at \
                   FROM conversations WHERE id = $1 AND user_id = $2";
        on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(id)
            .bind(user_id)
            .fetch_optional(pool)
            .await)
    }

    pub async fn set_conversation_title(&self, id: &str, title: &str) -> Result<()> {
        on_pool!(self, |pool| sqlx::query(
            "UPDATE conversations SET title = $2 WHERE id = $1"
        )
        .bind(id)
        .bind(title)
        .execute(pool)
        .await
        .map(drop)?);
        Ok(())
    }

    pub async fn delete_conversation(&self, id: &str, user_id: &str) -> Result<bool> {
        let sql = "DELETE FROM conversations WHERE id = $1 AND user_id = $2";
        let n = on_pool!(self, |pool| sqlx::query(sql)
            .bind(id)
            .bind(user_id)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    pub async fn messages(&self, conversation_id: &str) -> Result<Vec<MessageRow>> {
        let sql = "SELECT id, role, content, mode, citations, created_at FROM messages \
                   WHERE conversation_id = $1 ORDER BY id";
        on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(conversation_id)
            .fetch_all(pool)
            .await)
    }

    pub async fn insert_message(
        &self,
        conversation_id: &str,
        role: &str,
        content: &str,
        mode: Option<&str>,
        citations: &str,
        now: i64,
    ) -> Result<i64> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO messages (conversation_id, role, content, mode, citations, \
                 created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(conversation_id)
            .bind(role)
            .bind(content)
            .bind(mode)
            .bind(citations)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query("UPDATE conversations SET updated_at = $2 WHERE id = $1")
                .bind(conversation_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(id)
        })
    }
}
