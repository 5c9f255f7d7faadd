//! Berth: a self-hosted, private document assistant.
//!
//! The library holds everything the `berth` binary runs, so black-box tests and benchmarks can
//! reuse the pieces (configuration, store) while the server stays one process.

pub mod accounts;
pub mod admin_cli;
pub mod audit;
pub mod auth;
pub mod cache;
pub mod chat;
pub mod cli;
pub mod config;
pub mod documents;
pub mod error;
pub mod ingest;
pub mod llm;
pub mod maintenance;
pub mod metrics;
pub mod retrieval;
pub mod routes;
pub mod server;
pub mod startup;
pub mod store;
pub mod telemetry;
