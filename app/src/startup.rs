//! Start and stop: open the store, bind, serve, and on SIGTERM/SIGINT stop accepting, let
//! in-flight requests finish within the configured time, then close the database.

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{DatabaseLocation, Settings};
use crate::embed::Embedder;
use crate::error::BootError;
use crate::http::routes::{self, AppState};
use crate::llm;
use crate::metrics::Metrics;
use crate::service::audit::Audit;
use crate::service::ingest::Ingestor;
use crate::service::oidc::Oidc;
use crate::service::retrieval::Retriever;
use crate::service::runtime::Runtime;
use crate::store::Store;
use crate::telemetry;

/// What a process is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `berth serve`: the API and the web UI (ingesting too unless `ingest = false`).
    Server,
    /// `berth worker`: ingestion from the shared queue; over HTTP only /health, /ready and
    /// /metrics.
    Worker,
}

pub fn run(settings: Settings) -> Result<(), BootError> {
    start(settings, Role::Server)
}

pub fn run_worker(settings: Settings) -> Result<(), BootError> {
    start(settings, Role::Worker)
}

fn start(settings: Settings, role: Role) -> Result<(), BootError> {
    let ingests = role == Role::Worker || settings.ingest;
    if !ingests || role == Role::Worker {
        if let DatabaseLocation::Sqlite(_) = settings.database {
            return Err(BootError::Config(
                "separate ingestion workers (berth worker, ingest = false) need PostgreSQL \
                 (set database_url): the embedded store belongs to one process, which \
                 ingests itself"
                    .into(),
            ));
        }
    }
    telemetry::init(&settings.log);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(serve(settings, role));
    // Blocking work still running (an extraction between checkpoints) is abandoned, not waited
    // for: a stopped server exits within its shutdown timeout whatever ingestion was doing.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

async fn serve(settings: Settings, role: Role) -> Result<(), BootError> {
    let store = if settings.migrate {
        Store::open_waiting(&settings.database, settings.database_connect_timeout).await?
    } else {
        Store::open_migrated_elsewhere(&settings.database, settings.database_connect_timeout)
            .await?
    };
    let listener = TcpListener::bind(settings.listen).await.map_err(|e| {
        BootError::Config(format!(
            "cannot listen on {} ({e}); choose another address with --listen / BERTH_LISTEN",
            settings.listen
        ))
    })?;
    let address = listener.local_addr().context("reading the bound address")?;

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        let signal = shutdown_signal().await;
        tracing::info!(signal, "shutting down: finishing in-flight requests");
        let _ = stop_tx.send(true);
    });

    let metrics = Metrics::new();
    if let Store::Sqlite(_) = store {
        // The embedded store has one instance: claims left by a crash are void.
        let released = store.release_claims().await.context("releasing claims")?;
        if released > 0 {
            tracing::warn!(released, "resuming ingestion interrupted by a crash");
        }
    }
    // One outbound client (rustls, ca_bundle read once) for the model servers, and its twin
    // without redirects for the OpenID providers.
    let (http, http_no_redirects) =
        llm::http_clients(settings.rag.ca_bundle.as_deref()).map_err(BootError::Config)?;
    let embedder = match settings.rag.embed.clone() {
        None => None,
        Some(e) => {
            let (timeout, http) = (settings.rag.llm_timeout, http.clone());
            // Loading reads and hashes the weights: off the async threads.
            let opened = tokio::task::spawn_blocking(move || Embedder::open(&e, timeout, &http))
                .await
                .context("loading the embedding model")?;
            Some(opened.map_err(|e| BootError::Config(e.to_string()))?)
        }
    };
    let retriever = Arc::new(
        Retriever::open(store.clone(), embedder, &settings.rag, metrics.clone())
            .await
            .context("loading the retrieval index")?,
    );
    match &settings.rag.embed {
        None => tracing::info!(
            "no embedding model: retrieval is lexical only; `berth models pull {}` fetches \
             the built-in one (semantic search, nothing else to run)",
            crate::domain::settings::DEFAULT_BUILTIN_MODEL
        ),
        Some(_) => tracing::info!(
            model = retriever.embedding_model().unwrap_or_default(),
            provider = retriever.embedder.as_ref().map_or("", |e| e.provider()),
            "embeddings ready"
        ),
    }
    let files_dir = settings.data_dir.join("files");
    std::fs::create_dir_all(&files_dir).map_err(|e| {
        BootError::Config(format!(
            "cannot create {} ({e}); set --data-dir to a writable directory",
            files_dir.display()
        ))
    })?;
    let wake = Arc::new(tokio::sync::Notify::new());
    let ingestor = Arc::new(Ingestor {
        store: store.clone(),
        retriever: retriever.clone(),
        settings: settings.rag.clone(),
        metrics: metrics.clone(),
        files_dir: files_dir.clone(),
        wake: wake.clone(),
    });
    let worker = if role == Role::Worker || settings.ingest {
        Some(ingestor.spawn(stop_rx.clone()))
    } else {
        tracing::info!("ingestion is off here (ingest = false): berth worker processes do it");
        None
    };
    let llm = settings.rag.llm.clone().map(|e| {
        llm::Client::new(e, settings.rag.llm_timeout, http).with_sampling(settings.rag.sampling)
    });
    let runtime = Runtime::load(store.clone(), tunables(&settings))
        .await
        .context("reading the run-time settings")?;
    {
        let (retriever, llm) = (retriever.clone(), llm.clone());
        runtime.on_change(move |t| {
            retriever.set_weights(t.lexical_weight, t.vector_weight);
            if let (Some(llm), Some(model)) = (&llm, &t.llm_model) {
                llm.set_model(model);
            }
        });
    }
    let refresh = AbortOnDrop(runtime.spawn_refresh());
    let state = AppState {
        runtime,
        store: store.clone(),
        audit: Audit::new(store.clone(), metrics.registry()),
        metrics,
        auth: Arc::new(settings.auth.clone()),
        rag: Arc::new(settings.rag.clone()),
        retriever,
        oidc: Arc::new(Oidc::new(
            settings.auth.oidc_providers.clone(),
            settings.auth.public_url.clone(),
            http_no_redirects,
        )),
        llm,
        data_dir: settings.data_dir.clone(),
        files_dir,
        wake,
        shutting_down: stop_rx.clone(),
    };
    if role == Role::Server && store.count_active_admins().await.unwrap_or(0) == 0 {
        tracing::warn!(
            "no admin account exists yet: create one with `berth admin create --username NAME` \
             (in a checkout: `cargo xtask admin create --username NAME`)"
        );
    }
    let app = match role {
        Role::Server => routes::router(state, &settings.limits),
        Role::Worker => routes::worker_router(state),
    };
    match role {
        Role::Server => tracing::info!(
            %address,
            backend = store.backend(),
            version = env!("CARGO_PKG_VERSION"),
            "Berth is listening on http://{address}/"
        ),
        Role::Worker => tracing::info!(
            %address,
            backend = store.backend(),
            version = env!("CARGO_PKG_VERSION"),
            "Berth worker is ingesting; health and metrics on http://{address}/"
        ),
    }

    let deadline = {
        let mut rx = stop_rx.clone();
        let timeout = settings.shutdown_timeout;
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
            tokio::time::sleep(timeout).await;
        }
    };
    let server =
        crate::http::server::serve(listener, app, settings.limits.clone(), stop_rx.clone());
    tokio::select! {
        () = server => {}
        () = deadline => tracing::warn!(
            timeout_secs = settings.shutdown_timeout.as_secs(),
            "in-flight requests did not finish in time; stopping anyway"
        ),
    }
    // The worker stops at its next checkpoint; an unfinished document is resumed at the next
    // start. Within the shutdown timeout, whatever it was doing.
    if let Some(worker) = worker {
        let _ = tokio::time::timeout(settings.shutdown_timeout, worker).await;
    }
    drop(refresh);
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "SIGINT",
    }
}

/// The run-time settings' defaults: the server's own settings.
fn tunables(settings: &Settings) -> crate::domain::settings::Tunables {
    crate::domain::settings::Tunables {
        llm_model: settings.rag.llm.as_ref().map(|e| e.model.clone()),
        retrieval_k: settings.rag.retrieval_k,
        lexical_weight: settings.rag.lexical_weight,
        vector_weight: settings.rag.vector_weight,
        registration_open: settings.auth.registration_open,
    }
}

/// Stops a background task when its owner goes.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
