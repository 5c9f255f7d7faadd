//! Retrieval queries: full-text search and vector search, each backend's own, and the chunks
//! they find.

use super::dispatch::on_pool;
use super::Store;

type Result<T> = std::result::Result<T, sqlx::Error>;
use super::documents::{pg_vector, ChunkRow};

/// What BM25 needs to know of all chunks (of any collection, as FTS5 counts them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Corpus {
    pub chunks: i64,
    /// Mean length in indexed terms. PostgreSQL's; FTS5 keeps its own (0 on SQLite).
    pub mean_terms: f64,
}

impl Store {
    /// Full-text search over ready documents in `collections`, ranked by BM25 (k1 = 1.2,
    /// b = 0.75, FTS5's idf) on both backends: (chunk id, score), best first. `corpus` is
    /// read by PostgreSQL, whose full-text ranking has no BM25 of its own.
    pub async fn lexical_search(
        &self,
        terms: &[String],
        collections: &[String],
        k: i64,
        corpus: Corpus,
    ) -> Result<Vec<(i64, f64)>> {
        if terms.is_empty() || collections.is_empty() {
            return Ok(Vec::new());
        }
        // A term said twice counts once, as PostgreSQL's set of lexemes counts it (FTS5 would
        // score each phrase of the query).
        let mut seen = std::collections::HashSet::new();
        let terms: Vec<&str> = terms
            .iter()
            .map(String::as_str)
            .filter(|t| seen.insert(*t))
            .collect();
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
                // BM25 by hand: ts_rank has no idf, so a common word outranked a rare one.
                // The query's lexemes (each term through to_tsvector, which parses no syntax:
                // user input is never tsquery syntax); each one's document frequency counted
                // exactly through the GIN index; a matching chunk's term frequencies read from
                // its tsvector cut down to the query's lexemes (setweight marks them, ts_filter
                // keeps them) instead of walking all of it. Collections as an array (`= ANY`),
                // which the planner estimates and filters cheaply. The CTEs are MATERIALIZED:
                // inlined, the document-frequency counts ran again for every matching chunk
                // (over a minute a query at 10k chunks).
                let sql = "WITH lexemes AS ( \
                             SELECT DISTINCT u.lexeme, plainto_tsquery('simple', u.lexeme) AS tq \
                             FROM unnest($1::text[]) t, unnest(to_tsvector('berth', t)) u), \
                           weighted AS MATERIALIZED ( \
                             SELECT l.lexeme, \
                                    greatest(ln(($4 - df.n + 0.5) / (df.n + 0.5)), 1e-6) AS idf \
                             FROM lexemes l, LATERAL (SELECT count(*)::float8 AS n FROM chunks \
                                                      WHERE tsv @@ l.tq) df \
                             WHERE numnode(l.tq) > 0), \
                           q AS MATERIALIZED ( \
                             SELECT array_agg(lexeme) AS lexemes, \
                                    string_agg('(' || tq::text || ')', ' | ')::tsquery AS q \
                             FROM lexemes WHERE numnode(tq) > 0) \
                           SELECT c.id, \
                                  sum(w.idf * f.tf * 2.2 \
                                      / (f.tf + 1.2 * (0.25 + 0.75 * c.term_count / $5))) AS score \
                           FROM q, chunks c JOIN documents d ON d.id = c.document_id \
                           CROSS JOIN LATERAL ( \
                             SELECT lexeme, coalesce(cardinality(positions), 1)::float8 AS tf \
                             FROM unnest(ts_filter(setweight(c.tsv, 'A', q.lexemes), '{a}'))) f \
                           JOIN weighted w ON w.lexeme = f.lexeme \
                           WHERE c.tsv @@ q.q AND d.status = 'ready' \
                           AND c.collection_id = ANY($2::text[]) \
                           GROUP BY c.id ORDER BY score DESC, c.id LIMIT $3";
                sqlx::query_as(sql)
                    .bind(terms)
                    .bind(collections)
                    .bind(k)
                    .bind(corpus.chunks as f64)
                    .bind(corpus.mean_terms.max(1.0))
                    .fetch_all(&s.pool)
                    .await
            }
        }
    }

    /// How many chunks there are (of any document), the N of document frequencies, and on
    /// PostgreSQL their mean length in terms.
    pub async fn corpus(&self) -> Result<Corpus> {
        let (chunks, mean_terms): (i64, f64) = match self {
            Store::Sqlite(s) => {
                sqlx::query_as("SELECT count(*), 0.0 FROM chunks")
                    .fetch_one(&s.pool)
                    .await?
            }
            Store::Postgres(s) => {
                sqlx::query_as("SELECT count(*), coalesce(avg(term_count), 0)::float8 FROM chunks")
                    .fetch_one(&s.pool)
                    .await?
            }
        };
        Ok(Corpus { chunks, mean_terms })
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
                       c.ordinal, c.text, c.start_offset, c.end_offset, c.context FROM chunks c \
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

    /// (chunk id, start, end) of each passage of a document, in order: character offsets into
    /// its text.
    pub async fn passage_spans(&self, document_id: &str) -> Result<Vec<(i64, i64, i64)>> {
        let sql = "SELECT id, start_offset, end_offset FROM chunks WHERE document_id = $1 \
                   ORDER BY ordinal";
        on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(document_id)
            .fetch_all(pool)
            .await)
    }
}
