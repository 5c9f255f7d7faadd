//! Ingestion: durable background jobs kept in the database (a document's status is its job).
//! extract → normalise → chunk → embed in batches → index, then one transaction makes the
//! document searchable. A crash leaves it queued or processing with a lease that runs out, so
//! another worker (or this one after a restart) takes it again; repeated crashes fail it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};

use crate::domain::accounts::now_ms;
use crate::domain::documents::{chunk, extract, Kind, Rejection};
use crate::domain::settings::RagSettings;
use crate::llm::LlmError;
use crate::metrics::Metrics;
use crate::service::retrieval::Retriever;
use crate::store::{DocumentRow, NewChunk, Store};

/// A worker holds a document this long without renewing before others may take it.
const LEASE_MS: i64 = 60_000;
/// Claims of a document (crashes included) before it is failed for good.
const MAX_ATTEMPTS: i64 = 3;
const EMBED_BATCH: usize = 32;

pub struct Ingestor {
    pub store: Store,
    pub retriever: Arc<Retriever>,
    pub settings: RagSettings,
    pub metrics: Arc<Metrics>,
    pub files_dir: PathBuf,
    pub wake: Arc<Notify>,
}

/// Why a job stopped before completing.
enum Stop {
    /// Permanent: the document is failed with this reason.
    Fail(String),
    /// Transient (the model server is down): back to the queue, due again after a pause.
    Wait(String),
    /// Someone else's now (deleted, or reclaimed after our lease ran out).
    Lost,
}

impl Ingestor {
    pub fn file_path(files_dir: &std::path::Path, document_id: &str) -> PathBuf {
        files_dir.join(document_id)
    }

    pub fn spawn(
        self: Arc<Self>,
        mut shutdown: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut backoff = Duration::from_secs(1);
            loop {
                if *shutdown.borrow() {
                    break;
                }
                let worked = match self.step(&shutdown).await {
                    Ok(worked) => {
                        backoff = Duration::from_secs(1);
                        worked
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "ingestion: database error; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                        false
                    }
                };
                if !worked {
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
        })
    }

    /// One unit of work; false when there was none.
    async fn step(&self, shutdown: &watch::Receiver<bool>) -> Result<bool, sqlx::Error> {
        self.metrics
            .queue_depth
            .set(self.store.queue_depth().await?);
        if let Some(doc) = self.store.claim_document(now_ms(), LEASE_MS).await? {
            self.ingest(doc, shutdown).await?;
            return Ok(true);
        }
        self.reembed_some().await
    }

    async fn ingest(
        &self,
        doc: DocumentRow,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<(), sqlx::Error> {
        tracing::info!(document = %doc.id, file = %doc.filename, attempt = doc.attempts, "ingesting");
        if doc.attempts > MAX_ATTEMPTS {
            let why = format!("ingestion was interrupted {MAX_ATTEMPTS} times; retry it");
            self.metrics.ingest_failures.inc();
            return self.store.fail_document(&doc.id, &why, now_ms()).await;
        }
        // Deleting the document (on any instance) or stopping the server stops the job at its
        // next checkpoint, rather than after minutes of work nobody wants.
        let cancel = Arc::new(AtomicBool::new(false));
        let _watch = AbortOnDrop(self.watch_for_cancel(&doc.id, shutdown, cancel.clone()));
        match self.run(&doc, &cancel).await {
            Ok(()) => Ok(()),
            Err(Stop::Lost) => Ok(()),
            Err(Stop::Fail(why)) => {
                tracing::warn!(document = %doc.id, reason = %why, "ingestion failed");
                self.metrics.ingest_failures.inc();
                self.store.fail_document(&doc.id, &why, now_ms()).await
            }
            Err(Stop::Wait(why)) => {
                tracing::warn!(document = %doc.id, reason = %why, "ingestion waits for the model server");
                let pause = 5_000 * 2_i64.pow(doc.attempts.clamp(0, 6) as u32);
                self.store
                    .requeue_document(&doc.id, now_ms() + pause.min(300_000), &why)
                    .await
            }
        }
    }

    /// Sets `cancel` when the server begins to stop or the document is gone.
    fn watch_for_cancel(
        &self,
        id: &str,
        shutdown: &watch::Receiver<bool>,
        cancel: Arc<AtomicBool>,
    ) -> tokio::task::JoinHandle<()> {
        let (store, id, mut shutdown) = (self.store.clone(), id.to_string(), shutdown.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                    _ = shutdown.wait_for(|stop| *stop) => break,
                }
                if matches!(store.document(&id).await, Ok(None)) {
                    break;
                }
            }
            cancel.store(true, Ordering::Relaxed);
        })
    }

    async fn run(&self, doc: &DocumentRow, cancel: &Arc<AtomicBool>) -> Result<(), Stop> {
        let kind = Kind::from_media_type(&doc.media_type)
            .ok_or_else(|| Stop::Fail(format!("unknown media type {}", doc.media_type)))?;
        let bytes = match self.store.document_file(&doc.id).await {
            Ok(Some(bytes)) => bytes,
            // Uploaded before the files moved into the database: on this instance's disk.
            Ok(None) => tokio::fs::read(Self::file_path(&self.files_dir, &doc.id))
                .await
                .map_err(|e| Stop::Fail(format!("the uploaded file is gone ({e})")))?,
            Err(e) => return Err(database_busy(&doc.id, e)),
        };

        let text = {
            let _t = self.metrics.stage("extract");
            let budget = self.settings.extract.clone();
            let checkpoint = budget.start(cancel.clone());
            let work = tokio::task::spawn_blocking(move || {
                extract::extract(kind, &bytes, &budget, &checkpoint)
            });
            // Parsing a PDF's structure has no checkpoint inside: on cancel, stop waiting for it
            // (the thread ends at its first checkpoint; a stopping runtime abandons it).
            let done = tokio::select! {
                done = work => done,
                () = cancelled(cancel) => return Err(Stop::Lost),
            };
            done.map_err(|_| Stop::Fail("text extraction crashed".into()))?
                .map_err(|r| match r {
                    Rejection::Cancelled => Stop::Lost,
                    other => Stop::Fail(other.to_string()),
                })?
        };
        let (size, overlap) = (self.settings.chunk_size, self.settings.chunk_overlap);
        let filename = doc.filename.clone();
        let tokens = self
            .retriever
            .embedder
            .as_ref()
            .and_then(|e| e.passage_tokens());
        let (text, chunks) = {
            let _t = self.metrics.stage("chunk");
            tokio::task::spawn_blocking(move || {
                // Cut to what the model reads, leaving room for the context embedded first.
                let count = |s: &str| tokens.as_ref().map_or(0, |t| t.count(s));
                let limit = tokens.as_ref().map(|t| chunk::TokenLimit {
                    count: &count,
                    max: t.max.saturating_sub(chunk::CONTEXT_TOKENS),
                });
                let sizing = chunk::Sizing {
                    chars: size,
                    overlap,
                    tokens: limit,
                };
                let mut chunks = chunk::chunk(&text, kind, sizing);
                let title = chunk::title(&filename, &text, kind);
                chunk::add_context(&text, kind, &title, &mut chunks);
                (text, chunks)
            })
            .await
            .map_err(|_| Stop::Fail("chunking crashed".into()))?
        };

        let mut vectors: Option<Vec<Vec<f32>>> = None;
        if let Some(embedder) = &self.retriever.embedder {
            let mut all = Vec::with_capacity(chunks.len());
            for batch in chunks.chunks(EMBED_BATCH) {
                if cancel.load(Ordering::Relaxed) {
                    return Err(Stop::Lost);
                }
                let texts: Vec<String> = batch
                    .iter()
                    .map(|c| chunk::indexed_text(&c.context, &c.text))
                    .collect();
                let embedded = {
                    let _t = self.metrics.stage("embed");
                    embedder.embed(&texts).await
                };
                match embedded {
                    Ok(v) => all.extend(v),
                    Err(e) if e.is_transient() => return Err(Stop::Wait(e.to_string())),
                    Err(LlmError::Cancelled) => return Err(Stop::Lost),
                    Err(e) => return Err(Stop::Fail(format!("embedding failed: {e}"))),
                }
                let progress = all.len() as f64 / chunks.len().max(1) as f64 * 0.95;
                self.store
                    .set_progress(&doc.id, progress, now_ms() + LEASE_MS)
                    .await
                    .map_err(|e| database_busy(&doc.id, e))?;
            }
            if let Some(dim) = all.first().map(Vec::len) {
                if all.iter().any(|v| v.len() != dim) {
                    return Err(Stop::Fail(
                        "the embedding model returned mixed dimensions".into(),
                    ));
                }
                let _ = self.retriever.record_dimension(dim).await;
            }
            vectors = Some(all);
        }

        let new_chunks: Vec<NewChunk<'_>> = chunks
            .iter()
            .map(|c| NewChunk {
                text: &c.text,
                context: &c.context,
                start: c.start as i64,
                end: c.end as i64,
            })
            .collect();
        let model = self.retriever.embedding_model().map(str::to_string);
        let ids = {
            let _t = self.metrics.stage("index");
            self.store
                .complete_document(
                    &doc.id,
                    &text,
                    &new_chunks,
                    model.as_deref().zip(vectors.as_deref()),
                    now_ms(),
                )
                .await
                .map_err(|e| database_busy(&doc.id, e))?
                .ok_or(Stop::Lost)?
        };
        if let Some(vectors) = vectors {
            self.retriever.indexed(
                ids.iter()
                    .zip(vectors)
                    .map(|(id, v)| (*id, doc.collection_id.clone(), v))
                    .collect(),
            );
        }
        self.retriever
            .changed(std::slice::from_ref(&doc.collection_id))
            .await;
        tracing::info!(document = %doc.id, chunks = ids.len(), "document ready");
        Ok(())
    }

    /// Embeds a batch of chunks that lack a vector from the current model (after a change).
    async fn reembed_some(&self) -> Result<bool, sqlx::Error> {
        let Some(embedder) = &self.retriever.embedder else {
            return Ok(false);
        };
        let missing = self
            .store
            .chunks_missing_vectors(embedder.model(), EMBED_BATCH as i64)
            .await?;
        if missing.is_empty() {
            return Ok(false);
        }
        let texts: Vec<String> = missing.iter().map(|m| m.2.clone()).collect();
        let vectors = match embedder.embed(&texts).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "re-embedding waits for the model server");
                tokio::time::sleep(Duration::from_secs(5)).await;
                return Ok(false);
            }
        };
        let items: Vec<(i64, Vec<f32>)> = missing
            .iter()
            .map(|m| m.0)
            .zip(vectors.iter().cloned())
            .collect();
        self.store.put_vectors(embedder.model(), &items).await?;
        let mut collections: Vec<String> = missing.iter().map(|m| m.1.clone()).collect();
        collections.sort_unstable();
        collections.dedup();
        self.retriever.indexed(
            missing
                .into_iter()
                .zip(vectors)
                .map(|((id, collection, _), v)| (id, collection, v))
                .collect(),
        );
        self.retriever.changed(&collections).await;
        Ok(true)
    }
}

/// Resolves once `cancel` is set.
async fn cancelled(cancel: &AtomicBool) {
    while !cancel.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A task that ends with its owner.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A database error while ingesting: the document waits and is tried again. Its reason is shown
/// to people beside the document, so it says what happens, not the driver's words (those go to
/// the log).
fn database_busy(document: &str, error: sqlx::Error) -> Stop {
    tracing::warn!(document, %error, "ingestion: database error; will try again");
    Stop::Wait("the database was busy; Berth will try again shortly".into())
}
