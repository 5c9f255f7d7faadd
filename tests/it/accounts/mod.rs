//! Black-box tests of accounts: approval, password policy, throttling, sessions, CSRF, tokens,
//! the last-admin guard and the audit log, through the HTTP API of the real binary.

use crate::support;

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{admin_cli, create_admin, json, Berth, Browser};

mod admin;
mod audit;
mod openapi;
mod registration;
mod sessions;
mod settings;
mod sign_in;

const ADMIN_PW: &str = "Adm1n!chosen-well";

const USER_PW: &str = "Us3r!another-one";

/// A running Berth with a signed-in admin and an approved, signed-in user `carol`.
async fn admin_and_user(berth: &Berth) -> (Browser, Browser, String) {
    create_admin(&berth.data_dir, "root", ADMIN_PW);
    let mut admin = Browser::new(berth);
    assert_eq!(admin.sign_in("root", ADMIN_PW).await, StatusCode::OK);
    let mut user = Browser::new(berth);
    let reg = json(user.register("carol", USER_PW).await).await;
    let id = reg["user"]["id"].as_str().unwrap().to_string();
    let resp = admin
        .post(&format!("/admin/users/{id}/approve"), json!({}))
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(user.sign_in("carol", USER_PW).await, StatusCode::OK);
    (admin, user, id)
}

async fn audit(admin: &Browser, query: &str) -> Vec<Value> {
    let resp = admin.get(&format!("/admin/audit?limit=500&{query}")).await;
    assert_eq!(resp.status(), 200);
    json(resp).await["entries"].as_array().unwrap().clone()
}
