//! Berth: a self-hosted, private document assistant.
//!
//! The library holds everything the `berth` binary runs, so black-box tests and benchmarks can
//! reuse the pieces (configuration, store) while the server stays one process. Its modules are
//! layers, each importing only those below it (`docs/architecture.md`; the `tidy` test checks):
//!
//! 1. [`domain`]: plain types that parse (accounts, passwords, documents, settings values).
//! 2. [`store`], [`llm`], [`cache`]: the outside systems (database, model servers, Redis).
//! 3. [`service`]: the use cases (sign-in, throttling, audit, ingest, retrieval, answers).
//! 4. [`http`]: the server (state, extractors, routes as thin adapters, errors as responses).
//! 5. The composition root: [`cli`], [`config`], [`startup`], [`telemetry`], and the operator
//!    commands [`admin_cli`] and [`maintenance`] (backups), which call the same services.
//!
//! [`error`] (start-up and command errors), [`metrics`] (the Prometheus registry) and [`tls`]
//! (CA files, handshake failures explained) import nothing of the crate and serve every layer.

pub mod domain;
pub mod error;
pub mod metrics;
pub mod tls;

pub mod cache;
pub mod embed;
pub mod hub;
pub mod llm;
pub mod store;

pub mod service;

pub mod http;

pub mod admin_cli;
pub mod cli;
pub mod config;
pub mod maintenance;
pub mod migrate_cli;
pub mod models_cli;
pub mod startup;
pub mod telemetry;
