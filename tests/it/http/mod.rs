//! Black-box tests of the server process: health, readiness, metrics, logs, shutdown, start-up
//! refusals. Each test starts the real binary with its own data directory.

use crate::support;

use std::time::Duration;

use sqlx::Connection;
use support::{client, metrics, run_to_exit, Berth};

mod outages;
mod responses;
mod startup;

/// Registers `name` through the API: the response's status.
async fn register(http: &reqwest::Client, berth: &Berth, name: &str) -> reqwest::Response {
    http.post(berth.url("/api/v1/auth/register"))
        .json(&serde_json::json!({ "username": name, "password": "Wa1t!for-the-db" }))
        .send()
        .await
        .unwrap()
}
