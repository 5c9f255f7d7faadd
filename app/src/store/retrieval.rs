//! Retrieval queries: full-text search and vector search, each backend's own, and the chunks
//! they find.

use super::dispatch::on_pool;
use super::Store;

type Result<T> = std::result::Result<T, sqlx::Error>;
use super::documents::{pg_vector, ChunkRow};

impl Store {
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
}
