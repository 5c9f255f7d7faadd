//! The HTTP server: its accept loop ([`server`]) and its routes, thin adapters over the
//! services ([`routes`]).

pub mod auth;
pub mod error;
pub mod metrics;
pub mod routes;
pub mod server;
