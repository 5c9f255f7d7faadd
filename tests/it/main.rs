//! The black-box tests of the server: one test binary (it links once), a module per area, all
//! sharing [`support`]. Each test starts the real `berth` binary (or, for the store's contract,
//! the library on a real database) and names one behaviour.
//!
//! Run one area with a filter: `cargo test --test it -- rag::`. The suites that need Docker and
//! minutes (`containers::`, `faults::`) are `#[ignore]`d and run by their `cargo xtask ci` steps;
//! `BERTH_TEST_BACKEND=postgres` runs everything on PostgreSQL.

mod support;

mod accounts;
mod backup;
mod cache;
mod cluster;
mod containers;
mod faults;
mod hostile;
mod http;
mod migrate;
mod models;
mod rag;
mod scale_out;
mod sso;
mod store_contract;
mod tls;
mod upgrade;
mod workers;
