//! Sign-in and registration throttling, kept in the database so every Berth instance sees the same
//! counts. Failed sign-ins are counted per account name (known or not, so lockouts reveal nothing)
//! and per client address; registrations per client address.

use crate::domain::accounts::now_ms;
use crate::http::error::ApiError;
use crate::http::routes::AppState;

pub fn account_key(username: &str) -> String {
    format!("user:{username}")
}

pub fn address_key(addr: &str) -> String {
    format!("addr:{addr}")
}

/// Registrations from one address: each one is a pending account in an admin's queue and an
/// Argon2 hash on the server, so one address may not make them without limit.
pub fn registration_key(addr: &str) -> String {
    format!("register:{addr}")
}

/// What a lock on these keys is about, for the refusal's message.
#[derive(Clone, Copy)]
pub enum Counted {
    FailedSignIns,
    Registrations,
}

/// Refuses with 429 and `Retry-After` while any of `keys` is locked.
pub async fn check(state: &AppState, keys: &[String], counted: Counted) -> Result<(), ApiError> {
    let now = now_ms();
    for key in keys {
        if let Some(row) = state.store.throttle(key).await? {
            if let Some(until) = row.locked_until.filter(|u| *u > now) {
                return Err(locked(until - now, counted));
            }
        }
    }
    Ok(())
}

/// Counts a failure against each key (with its own limit); true if this failure locked any.
pub async fn fail(state: &AppState, keys: &[(String, i64)]) -> Result<bool, ApiError> {
    let now = now_ms();
    let window = state.auth.login_lockout.as_millis() as i64;
    let mut locked_now = false;
    for (key, max) in keys {
        let row = state.store.record_failure(key, now, window, *max).await?;
        locked_now |= row.failures == *max && row.locked_until.is_some_and(|u| u > now);
    }
    Ok(locked_now)
}

pub fn locked(remaining_ms: i64, counted: Counted) -> ApiError {
    let secs = (remaining_ms as u64).div_ceil(1000);
    let what = match counted {
        Counted::FailedSignIns => "too many failed sign-ins",
        Counted::Registrations => "too many registrations from your address",
    };
    ApiError::TooManyRequests {
        message: format!("{what}; try again in {secs} seconds"),
        retry_after_secs: secs,
    }
}
