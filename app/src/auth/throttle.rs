//! Sign-in throttling, kept in the database so every Berth instance sees the same counts. Failures
//! are counted per account name (known or not, so lockouts reveal nothing) and per client address.

use crate::accounts::now_ms;
use crate::error::ApiError;
use crate::routes::AppState;

pub fn account_key(username: &str) -> String {
    format!("user:{username}")
}

pub fn address_key(addr: &str) -> String {
    format!("addr:{addr}")
}

/// Refuses with 429 and `Retry-After` while any of `keys` is locked.
pub async fn check(state: &AppState, keys: &[String]) -> Result<(), ApiError> {
    let now = now_ms();
    for key in keys {
        if let Some(row) = state.store.throttle(key).await? {
            if let Some(until) = row.locked_until.filter(|u| *u > now) {
                return Err(locked(until - now));
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

pub fn locked(remaining_ms: i64) -> ApiError {
    let secs = (remaining_ms as u64).div_ceil(1000);
    ApiError::TooManyRequests {
        message: format!("too many failed sign-ins; try again in {secs} seconds"),
        retry_after_secs: secs,
    }
}
