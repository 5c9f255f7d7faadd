//! The built-in embedder on bounded threads. Bulk work (ingestion, re-embedding) runs on its
//! own threads, started once at a lower CPU priority (Linux nice +10); queries run on the
//! runtime's blocking threads at normal priority with their own permits. So a query never
//! waits behind a large ingest, and where the two share a core the query gets it first: on
//! 2 cores, search p95 during a 10 MiB ingest was 2.01× idle with both at one priority.

use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use berth_embed::{Kind, Model, ModelError};
use tokio::sync::{oneshot, Semaphore};

pub struct Builtin {
    model: Arc<Model>,
    threads: usize,
    /// Work for the bulk threads, which end when this is dropped.
    bulk: mpsc::Sender<Job>,
    queries: Arc<Semaphore>,
}

/// Passages to embed, and where the vectors go.
type Job = (Vec<String>, oneshot::Sender<Result<Vec<Vec<f32>>, String>>);

const FAILED: &str = "the built-in embedder failed";
/// How much lower bulk threads run than the rest of the server (nice 0 → 10).
const BULK_NICENESS: i32 = 10;

impl Builtin {
    /// Loads the model in `dir` (blocking: reads and hashes ~100 MB) and starts `threads` bulk
    /// threads.
    pub fn load(dir: &Path, name: &str, threads: usize) -> Result<Builtin, ModelError> {
        let threads = threads.max(1);
        let model = Arc::new(Model::load(dir, name)?);
        let (bulk, jobs) = mpsc::channel::<Job>();
        let jobs = Arc::new(Mutex::new(jobs));
        for i in 0..threads {
            let (model, jobs) = (model.clone(), jobs.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("embed-bulk-{i}"))
                .spawn(move || bulk_thread(&model, &jobs));
            if let Err(error) = spawned {
                tracing::warn!(%error, "could not start an embedding thread");
            }
        }
        Ok(Builtin {
            model,
            threads,
            bulk,
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
        let mut replies = Vec::new();
        for chunk in texts.chunks(part) {
            let (reply, vectors) = oneshot::channel();
            self.bulk
                .send((chunk.to_vec(), reply))
                .map_err(|_| FAILED.to_string())?;
            replies.push(vectors);
        }
        let mut out = Vec::with_capacity(texts.len());
        for vectors in replies {
            out.extend(vectors.await.map_err(|_| FAILED.to_string())??);
        }
        Ok(out)
    }
}

/// One bulk thread: lowers its own priority, then embeds jobs until the embedder is dropped.
fn bulk_thread(model: &Model, jobs: &Mutex<mpsc::Receiver<Job>>) {
    lower_priority();
    loop {
        let job = jobs
            .lock()
            .map_err(|_| ())
            .and_then(|rx| rx.recv().map_err(|_| ()));
        let Ok((texts, reply)) = job else { return };
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            model.embed(&texts, Kind::Passage)
        }))
        .unwrap_or_else(|_| Err(FAILED.to_string()));
        let _ = reply.send(result);
    }
}

/// On Linux a thread has its own nice value (`setpriority` on the calling thread's id, 0);
/// elsewhere the call would lower the whole process, so it is left alone.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(error) = rustix::process::setpriority_process(None, BULK_NICENESS) {
        tracing::warn!(%error, "bulk embedding runs at the server's own priority");
    }
}
