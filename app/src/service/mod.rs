//! The use cases, below HTTP: the routes, the CLI and the backup drill call them alike.

pub mod access;
pub mod ask;
pub mod audit;
pub mod auth;
pub mod chat;
pub mod ingest;
pub mod oidc;
pub mod retrieval;
pub mod runtime;
pub mod throttle;
