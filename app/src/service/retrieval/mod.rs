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
use crate::store::{blob_to_f32s, ChunkRow, Store};
use vector_index::VectorIndex;

/// The fusion constant of reciprocal rank fusion (Cormack et al.): 60 is the usual choice.
const RRF_K: f64 = 60.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Hybrid,
    Lexical,
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
    settings: RagSettings,
    metrics: Arc<Metrics>,
    /// Query embeddings and hybrid results on Redis, when configured.
    cache: Cache,
    /// Document frequencies of recent query terms, for the common-term cutoff.
    term_stats: Mutex<TermStats>,
}

/// A term held by more than this share of all chunks is left out of the full-text query when the
/// query has rarer terms: Elasticsearch's old `cutoff_frequency` idea (its examples use 0.1 %).
/// Its BM25 weight, ln((N - df + 0.5) / (df + 0.5)), is below ln 19 ≈ 2.9, and with tf saturation
/// (k1 = 1.2) it adds at most ~6.5 to a chunk, less than one occurrence of a term in 0.1 % of
/// chunks (~6.9): chunks holding only common terms rank below those holding a rare one anyway.
/// Yet every chunk holding it would have to be read and scored, which is where a full-text
/// query's time goes (at 100k chunks, one such term is 5,000+ rows to score).
const COMMON_TERM_SHARE: f64 = 0.05;
/// Below this many chunks every term is searched: the whole index is cheap to score.
const CUTOFF_MIN_CHUNKS: i64 = 2_000;
/// How long counted document frequencies (and the chunk count) are reused: they drift slowly,
/// and the cutoff only needs them roughly.
const TERM_STATS_TTL: Duration = Duration::from_secs(300);
/// At most this many terms are remembered; past it the memory starts afresh.
const TERM_STATS_MAX: usize = 50_000;

#[derive(Default)]
struct TermStats {
    /// (chunk count, when counted).
    chunks: Option<(i64, Instant)>,
    /// Term → chunks holding it, counted up to the cutoff (so "at least" when at the cutoff).
    df: HashMap<String, i64>,
}

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
            settings.cache_ttl,
            metrics.registry(),
        );
        Ok(Retriever {
            store,
            embedder,
            index,
            settings: settings.clone(),
            metrics,
            cache,
            term_stats: Mutex::default(),
        })
    }

    /// The query's terms without the ones too common to search by (see [`COMMON_TERM_SHARE`]),
    /// unless that would leave none. Document frequencies are counted once and remembered.
    async fn without_common_terms(&self, terms: Vec<String>) -> Result<Vec<String>, sqlx::Error> {
        if terms.len() < 2 {
            return Ok(terms);
        }
        let fresh = |at: &Instant| at.elapsed() < TERM_STATS_TTL;
        let chunks = self
            .term_stats
            .lock()
            .expect("term stats lock")
            .chunks
            .filter(|(_, at)| fresh(at))
            .map(|(n, _)| n);
        let chunks = match chunks {
            Some(n) => n,
            None => {
                let n = self.store.chunk_count().await?;
                let mut stats = self.term_stats.lock().expect("term stats lock");
                stats.chunks = Some((n, Instant::now()));
                stats.df.clear();
                n
            }
        };
        if chunks < CUTOFF_MIN_CHUNKS {
            return Ok(terms);
        }
        let cap = (chunks as f64 * COMMON_TERM_SHARE).ceil() as i64 + 1;
        let unknown: Vec<String> = {
            let stats = self.term_stats.lock().expect("term stats lock");
            terms
                .iter()
                .filter(|t| !stats.df.contains_key(*t))
                .cloned()
                .collect()
        };
        let counted = self.store.term_chunk_counts(&unknown, cap).await?;
        let mut stats = self.term_stats.lock().expect("term stats lock");
        if stats.df.len() + unknown.len() > TERM_STATS_MAX {
            stats.df.clear();
        }
        stats.df.extend(unknown.into_iter().zip(counted));
        let rarer: Vec<String> = terms
            .iter()
            .filter(|t| stats.df.get(*t).is_none_or(|df| *df < cap))
            .cloned()
            .collect();
        Ok(if rarer.is_empty() { terms } else { rarer })
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
        self.cache.invalidate(collections).await;
    }

    /// Ranked passages for `query` among `collections` (which the caller may read).
    pub async fn search(
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
                        weights: (self.settings.lexical_weight, self.settings.vector_weight),
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
            let terms = self.without_common_terms(terms(query)).await?;
            // Each list is deeper than k so fusion has something to work with.
            self.store.lexical_search(&terms, collections, depth).await
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
            &[
                (&lexical, self.settings.lexical_weight),
                (&vector, self.settings.vector_weight),
            ],
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
