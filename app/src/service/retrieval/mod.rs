//! Hybrid retrieval: the database's persistent full-text index and vector similarity, fused by
//! reciprocal rank. Without an embedding model it is lexical only, and says so.

pub mod vector_index;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cache::{self, Cache};
use crate::domain::settings::RagSettings;
use crate::embed::Embedder;
use crate::metrics::Metrics;
use crate::store::{blob_to_f32s, ChunkRow, Corpus, DocumentRow, Store};
use vector_index::VectorIndex;

/// The fusion constant of reciprocal rank fusion (Cormack et al.): 60 is the usual choice.
const RRF_K: f64 = 60.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Hybrid,
    Lexical,
}

/// What a result is: a passage, or a document (its best passage). Ten passages of a search
/// often come from six or seven documents; asking for documents gives ten of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    #[default]
    Chunk,
    Document,
}

/// How many passages are ranked to find `k` documents: enough that `k` distinct ones are almost
/// always among them (the quality harness asks 50 for its ten).
fn passages_for_documents(k: usize) -> usize {
    (k * 5).max(50)
}

#[derive(Debug, Clone)]
pub struct Hit {
    pub chunk: ChunkRow,
    pub score: f64,
}

pub struct Retriever {
    store: Store,
    pub embedder: Option<Embedder>,
    /// The embedded store's vectors (PostgreSQL searches its own with pgvector).
    index: Option<Arc<VectorIndex>>,
    /// (lexical, vector) fusion weights: the settings', until an admin changes them at run time.
    weights: std::sync::RwLock<(f64, f64)>,
    metrics: Arc<Metrics>,
    /// Query embeddings and hybrid results on Redis, when configured.
    cache: Cache,
    /// The chunk count and mean length BM25 needs, and when they were counted.
    corpus: Mutex<Option<(Corpus, Instant)>>,
}

/// How long the chunk count and mean length are reused. PostgreSQL's BM25 scores with them; this
/// process forgets them itself whenever a document of its own becomes ready or goes, so only
/// other processes' ingests (workers) wait this long to count, and BM25 moves little meanwhile.
const CORPUS_TTL: Duration = Duration::from_secs(30);

const META_MODEL: &str = "embedding_model";
const META_DIM: &str = "embedding_dimension";

impl Retriever {
    /// Retrieval over `store`, with `embedder` (opened by the caller: a model server's client,
    /// or the loaded built-in model) or lexical only.
    pub async fn open(
        store: Store,
        embedder: Option<Embedder>,
        settings: &RagSettings,
        metrics: Arc<Metrics>,
    ) -> Result<Retriever, sqlx::Error> {
        let index = match (&store, &embedder) {
            (Store::Sqlite(_), Some(e)) => {
                let index = VectorIndex::default();
                let rows = store.sqlite_vectors(e.model()).await?;
                index.insert(
                    rows.into_iter()
                        .map(|(id, collection, blob)| (id, collection, blob_to_f32s(&blob))),
                );
                tracing::info!(
                    vectors = index.len(),
                    model = e.model(),
                    "vector index loaded"
                );
                Some(Arc::new(index))
            }
            _ => None,
        };
        if let Some(e) = &embedder {
            let recorded = store.meta(META_MODEL).await?;
            if recorded.as_deref() != Some(e.model()) {
                if let Some(old) = recorded {
                    tracing::warn!(
                        old,
                        new = e.model(),
                        "the embedding model changed: re-embedding every chunk in the background"
                    );
                }
                store.set_meta(META_MODEL, e.model()).await?;
            }
            // PostgreSQL: the HNSW index for the dimension in use, once it is known.
            let dim = match store.meta(META_DIM).await?.and_then(|d| d.parse().ok()) {
                Some(dim) => Some(dim),
                None => store.any_vector_dim(e.model()).await?,
            };
            if let Some(dim) = dim
                .and_then(|d: i64| usize::try_from(d).ok())
                .filter(|d| *d > 0)
            {
                // Usually there already; when it is not (vectors restored or loaded in bulk), the
                // build reads every vector: minutes at 100k chunks. Searches answer without it (by
                // a scan), so readiness never waits for it.
                let store = store.clone();
                tokio::spawn(async move {
                    if let Err(error) = store.ensure_vector_index(dim).await {
                        tracing::warn!(%error, dim, "no vector index: searches scan every vector");
                    }
                });
            }
        }
        let cache = Cache::new(
            settings.redis_url.as_deref(),
            settings.redis_ca_file.as_deref(),
            settings.cache_ttl,
            metrics.registry(),
        );
        // Tried once at start, so a Redis that cannot be reached or a certificate the CA refuses
        // is in the log at once (one warning, naming the setting) rather than at the first search.
        let _ = cache.check().await;
        Ok(Retriever {
            store,
            embedder,
            index,
            weights: std::sync::RwLock::new((settings.lexical_weight, settings.vector_weight)),
            metrics,
            cache,
            corpus: Mutex::default(),
        })
    }

    /// The chunk count and mean length, counted again once [`CORPUS_TTL`] has passed (or while
    /// there are no chunks, which costs nothing to count).
    async fn corpus(&self) -> Result<Corpus, sqlx::Error> {
        let cached = self
            .corpus
            .lock()
            .expect("corpus lock")
            .filter(|(c, at)| c.chunks > 0 && at.elapsed() < CORPUS_TTL)
            .map(|(c, _)| c);
        if let Some(corpus) = cached {
            return Ok(corpus);
        }
        let corpus = self.store.corpus().await?;
        *self.corpus.lock().expect("corpus lock") = Some((corpus, Instant::now()));
        Ok(corpus)
    }

    /// The (lexical, vector) fusion weights in use.
    pub fn weights(&self) -> (f64, f64) {
        *self.weights.read().expect("not poisoned")
    }

    pub fn set_weights(&self, lexical: f64, vector: f64) {
        *self.weights.write().expect("not poisoned") = (lexical, vector);
    }

    pub fn mode(&self) -> Mode {
        if self.embedder.is_some() {
            Mode::Hybrid
        } else {
            Mode::Lexical
        }
    }

    /// The embedding dimension, once known; recorded so a model change is noticed.
    pub async fn record_dimension(&self, dim: usize) -> Result<(), sqlx::Error> {
        if self.store.meta(META_DIM).await?.as_deref() != Some(&dim.to_string()) {
            if let Err(error) = self.store.ensure_vector_index(dim).await {
                tracing::warn!(%error, dim, "no vector index: searches scan every vector");
            }
            self.store.set_meta(META_DIM, &dim.to_string()).await?;
        }
        Ok(())
    }

    pub fn embedding_model(&self) -> Option<&str> {
        self.embedder.as_ref().map(Embedder::model)
    }

    /// Vectors just committed for a ready document (or re-embedded chunks).
    pub fn indexed(&self, items: Vec<(i64, String, Vec<f32>)>) {
        if let Some(index) = &self.index {
            index.insert(items);
        }
    }

    pub fn forget(&self, chunk_ids: &[i64]) {
        if let Some(index) = &self.index {
            index.remove(chunk_ids);
        }
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// A document of these collections became ready (and indexed) or was deleted: cached
    /// results covering them must not be served again.
    pub async fn changed(&self, collections: &[String]) {
        *self.corpus.lock().expect("corpus lock") = None;
        self.cache.invalidate(collections).await;
    }

    /// Ranked results for `query` among `collections` (which the caller may read): `k`
    /// passages, or the best passage of each of `k` documents.
    pub async fn search(
        &self,
        query: &str,
        collections: &[String],
        k: usize,
        group_by: GroupBy,
    ) -> Result<(Mode, Vec<Hit>), sqlx::Error> {
        match group_by {
            GroupBy::Chunk => self.passages(query, collections, k).await,
            GroupBy::Document => {
                let (mode, hits) = self
                    .passages(query, collections, passages_for_documents(k))
                    .await?;
                Ok((mode, best_per_document(hits, k)))
            }
        }
    }

    /// Sources for an answer: the best passage of each document first, so the answer draws on
    /// as many documents as match; then, when fewer than `k` documents do, their next-best
    /// passages, in rank order (one long handbook still gives `k` passages).
    pub async fn sources(
        &self,
        query: &str,
        collections: &[String],
        k: usize,
    ) -> Result<Vec<Hit>, sqlx::Error> {
        let (_, hits) = self
            .passages(query, collections, passages_for_documents(k))
            .await?;
        Ok(documents_first(hits, k))
    }

    /// Sources among chosen `documents` (which the caller may read): every passage of their
    /// collections is ranked (up to a bound), and only the chosen documents' are kept, so a
    /// chosen document is never crowded out by its neighbours' better passages.
    pub async fn sources_in_documents(
        &self,
        query: &str,
        documents: &[DocumentRow],
        k: usize,
    ) -> Result<Vec<Hit>, sqlx::Error> {
        let mut collections: Vec<String> =
            documents.iter().map(|d| d.collection_id.clone()).collect();
        collections.sort();
        collections.dedup();
        let mut passages_there = 0usize;
        for c in &collections {
            passages_there += self
                .store
                .documents_in(c)
                .await?
                .iter()
                .map(|d| usize::try_from(d.chunk_count).unwrap_or(0))
                .sum::<usize>();
        }
        let depth = passages_there.clamp(passages_for_documents(k), DOCUMENT_SCOPE_DEPTH);
        let (_, hits) = self.passages(query, &collections, depth).await?;
        let chosen: std::collections::HashSet<&str> =
            documents.iter().map(|d| d.id.as_str()).collect();
        let hits = hits
            .into_iter()
            .filter(|h| chosen.contains(h.chunk.document_id.as_str()))
            .collect();
        Ok(documents_first(hits, k))
    }

    /// Ranked passages for `query` among `collections` (which the caller may read).
    async fn passages(
        &self,
        query: &str,
        collections: &[String],
        k: usize,
    ) -> Result<(Mode, Vec<Hit>), sqlx::Error> {
        let _t = self.metrics.stage("retrieve");
        // Hybrid results and query embeddings may come from the cache; lexical results are
        // cheap and always fresh. Cached or not, rows are read from the database below.
        let cached = match &self.embedder {
            Some(embedder) => {
                self.cache
                    .lookup(&cache::Query {
                        model: embedder.model(),
                        text: query,
                        collections,
                        k,
                        mode: "hybrid",
                        weights: self.weights(),
                    })
                    .await
            }
            None => None,
        };
        if let Some(hits) = cached.as_ref().and_then(|c| c.results.clone()) {
            return Ok((Mode::Hybrid, self.hits(hits).await?));
        }
        let depth = (k * 4).max(20) as i64;
        // The lexical half (database) and the query embedding (model server) wait on different
        // machines: run them at once, so a search costs the slower of the two, not their sum.
        let lexical = async {
            // Every term, however common: BM25 weighs it, and dropping the common ones cost a
            // sixth of nDCG@10 on the quality harness.
            let terms = terms(query);
            let corpus = self.corpus().await?;
            // Each list is deeper than k so fusion has something to work with.
            self.store
                .lexical_search(&terms, collections, depth, corpus)
                .await
        };
        let embedding = async {
            match (
                &self.embedder,
                cached.as_ref().and_then(|c| c.embedding.clone()),
            ) {
                (None, _) => None,
                (Some(_), Some(q)) => Some((Ok(q), false)),
                (Some(embedder), None) => Some((embedder.embed_query(query).await, true)),
            }
        };
        let (lexical, embedding) = tokio::join!(lexical, embedding);
        let lexical = lexical?;
        let mut mode = Mode::Lexical;
        let mut vector: Vec<(i64, f64)> = Vec::new();
        let mut embedded = None;
        if let (Some(embedder), Some((q, fresh))) = (&self.embedder, embedding) {
            match q {
                Ok(q) => {
                    mode = Mode::Hybrid;
                    vector = match &self.index {
                        Some(index) => index
                            .search(&q, collections, depth as usize)
                            .into_iter()
                            .map(|(id, s)| (id, s as f64))
                            .collect(),
                        None => {
                            self.store
                                .pg_vector_search(&q, embedder.model(), collections, depth)
                                .await?
                        }
                    };
                    if fresh {
                        embedded = Some(q);
                    }
                }
                // The model server being down costs the vector half, not the answer.
                Err(e) => {
                    tracing::warn!(error = %e, "query embedding failed; lexical results only")
                }
            }
        }
        let fused = fuse(
            &[(&lexical, self.weights().0), (&vector, self.weights().1)],
            k,
        );
        if let (Mode::Hybrid, Some(lookup)) = (mode, &cached) {
            self.cache.store(lookup, &fused, embedded.as_deref()).await;
        }
        Ok((mode, self.hits(fused).await?))
    }

    /// The ranked chunks' rows, re-read from the database: only ready documents' chunks, so a
    /// deleted or unfinished document never shows, whatever the ranking came from.
    async fn hits(&self, fused: Vec<(i64, f64)>) -> Result<Vec<Hit>, sqlx::Error> {
        let ids: Vec<i64> = fused.iter().map(|(id, _)| *id).collect();
        let mut rows: HashMap<i64, ChunkRow> = self
            .store
            .chunks_by_ids(&ids)
            .await?
            .into_iter()
            .map(|c| (c.id, c))
            .collect();
        Ok(fused
            .into_iter()
            .filter_map(|(id, score)| rows.remove(&id).map(|chunk| Hit { chunk, score }))
            .collect())
    }
}

/// How many passages a question scoped to documents ranks at most: their collections' passages,
/// all of them up to this many.
const DOCUMENT_SCOPE_DEPTH: usize = 20_000;

/// The first (best) hit of each document, at most `k`.
fn best_per_document(hits: Vec<Hit>, k: usize) -> Vec<Hit> {
    let mut seen = std::collections::HashSet::new();
    hits.into_iter()
        .filter(|h| seen.insert(h.chunk.document_id.clone()))
        .take(k)
        .collect()
}

/// [`best_per_document`], then the remaining hits in rank order, `k` in all; ranked by score.
fn documents_first(hits: Vec<Hit>, k: usize) -> Vec<Hit> {
    let mut seen = std::collections::HashSet::new();
    let (mut first, rest): (Vec<Hit>, Vec<Hit>) = hits
        .into_iter()
        .partition(|h| seen.insert(h.chunk.document_id.clone()));
    first.truncate(k);
    let room = k - first.len();
    first.extend(rest.into_iter().take(room));
    first.sort_by(|a, b| b.score.total_cmp(&a.score));
    first
}

/// Reciprocal rank fusion of ranked lists with weights: score = Σ w / (60 + rank).
pub fn fuse(lists: &[(&Vec<(i64, f64)>, f64)], k: usize) -> Vec<(i64, f64)> {
    let mut scores: HashMap<i64, f64> = HashMap::new();
    for (list, weight) in lists {
        for (rank, (id, _)) in list.iter().enumerate() {
            *scores.entry(*id).or_default() += weight / (RRF_K + rank as f64 + 1.0);
        }
    }
    let mut out: Vec<(i64, f64)> = scores.into_iter().collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out.truncate(k);
    out
}

const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from", "how",
    "i", "in", "is", "it", "me", "my", "of", "on", "or", "our", "tell", "that", "the", "this",
    "to", "was", "we", "what", "when", "where", "which", "who", "why", "with", "you", "your",
];

/// The query's words, lower-cased, without stop words (all of them if nothing else is left).
pub fn terms(query: &str) -> Vec<String> {
    let words: Vec<String> = query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let content: Vec<String> = words
        .iter()
        .filter(|w| !STOP_WORDS.contains(&w.as_str()))
        .cloned()
        .collect();
    let mut out = if content.is_empty() { words } else { content };
    out.dedup();
    out.truncate(32);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fusion_rewards_agreement_and_respects_weights() {
        let lexical = vec![(1, 9.0), (2, 8.0), (3, 7.0)];
        let vector = vec![(3, 0.9), (4, 0.8), (1, 0.7)];
        let fused = fuse(&[(&lexical, 1.0), (&vector, 1.0)], 4);
        let ids: Vec<i64> = fused.iter().map(|f| f.0).collect();
        assert_eq!(&ids[..2], &[1, 3]);
        let lexical_only = fuse(&[(&lexical, 1.0), (&vector, 0.0)], 2);
        assert_eq!(lexical_only.iter().map(|f| f.0).collect::<Vec<_>>(), [1, 2]);
    }

    #[test]
    fn terms_drop_stop_words_and_punctuation() {
        assert_eq!(
            terms("What is the boiling-point of water?"),
            ["boiling", "point", "water"]
        );
        assert_eq!(terms("the"), ["the"]);
    }
}
