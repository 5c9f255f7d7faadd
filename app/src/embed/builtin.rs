//! The built-in embedder on a bounded set of blocking threads. Bulk work (ingestion,
//! re-embedding) and queries hold separate permits, so a query never waits behind a large
//! ingest: it starts at once and shares the CPU with it.

use std::path::Path;
use std::sync::Arc;

use berth_embed::{Kind, Model, ModelError};
use tokio::sync::Semaphore;

pub struct Builtin {
    model: Arc<Model>,
    threads: usize,
    bulk: Arc<Semaphore>,
    queries: Arc<Semaphore>,
}

const FAILED: &str = "the built-in embedder failed";

impl Builtin {
    /// Loads the model in `dir` (blocking: reads and hashes ~100 MB).
    pub fn load(dir: &Path, name: &str, threads: usize) -> Result<Builtin, ModelError> {
        let threads = threads.max(1);
        Ok(Builtin {
            model: Arc::new(Model::load(dir, name)?),
            threads,
            bulk: Arc::new(Semaphore::new(threads)),
            queries: Arc::new(Semaphore::new(threads)),
        })
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    pub async fn embed_query(&self, text: &str) -> Result<Vec<f32>, String> {
        let _permit = self
            .queries
            .acquire()
            .await
            .map_err(|_| FAILED.to_string())?;
        let model = self.model.clone();
        let texts = vec![text.to_string()];
        let mut v = tokio::task::spawn_blocking(move || model.embed(&texts, Kind::Query))
            .await
            .map_err(|_| FAILED.to_string())??;
        Ok(v.pop().unwrap_or_default())
    }

    /// Passages in order, the work split across the bulk threads.
    pub async fn embed_passages(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, String> {
        let part = texts.len().div_ceil(self.threads).max(1);
        let mut jobs = Vec::new();
        for chunk in texts.chunks(part) {
            let permit = self
                .bulk
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| FAILED.to_string())?;
            let model = self.model.clone();
            let chunk = chunk.to_vec();
            jobs.push(tokio::task::spawn_blocking(move || {
                let _permit = permit;
                model.embed(&chunk, Kind::Passage)
            }));
        }
        let mut out = Vec::with_capacity(texts.len());
        for job in jobs {
            out.extend(job.await.map_err(|_| FAILED.to_string())??);
        }
        Ok(out)
    }
}
