//! Sign-in and registration throttling, kept in the database so every Berth instance sees the same
//! counts. Failed sign-ins are counted per account name (known or not, so lockouts reveal nothing)
//! and per client address; registrations per client address.

use std::time::Duration;

use crate::domain::accounts::now_ms;
use crate::store::Store;

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
#[derive(Clone, Copy, Debug)]
pub enum Counted {
    FailedSignIns,
    Registrations,
}

/// A lock that is on: what it counted, and for how long still.
#[derive(Debug)]
pub struct Locked {
    pub counted: Counted,
    pub remaining_ms: i64,
}

impl Locked {
    pub fn retry_after_secs(&self) -> u64 {
        (self.remaining_ms.max(0) as u64).div_ceil(1000)
    }

    pub fn message(&self) -> String {
        let what = match self.counted {
            Counted::FailedSignIns => "too many failed sign-ins",
            Counted::Registrations => "too many registrations from your address",
        };
        format!(
            "{what}; try again in {}",
            humane_duration(self.retry_after_secs())
        )
    }
}

/// A wait as people say it: "15 minutes", "1 minute", "40 seconds", "2 hours". Rounded up, so
/// the wait is never shorter than said.
pub fn humane_duration(secs: u64) -> String {
    let plural = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    match secs {
        0..60 => plural(secs.max(1), "second"),
        60..3600 => plural(secs.div_ceil(60), "minute"),
        _ => plural(secs.div_ceil(3600), "hour"),
    }
}

/// The lock on any of `keys`, if one is on.
pub async fn check(
    store: &Store,
    keys: &[String],
    counted: Counted,
) -> Result<Option<Locked>, sqlx::Error> {
    let now = now_ms();
    for key in keys {
        if let Some(row) = store.throttle(key).await? {
            if let Some(until) = row.locked_until.filter(|u| *u > now) {
                return Ok(Some(Locked {
                    counted,
                    remaining_ms: until - now,
                }));
            }
        }
    }
    Ok(None)
}

/// Counts a failure against each key (with its own limit) over `window`; true if this failure
/// locked any.
pub async fn fail(
    store: &Store,
    window: Duration,
    keys: &[(String, i64)],
) -> Result<bool, sqlx::Error> {
    let now = now_ms();
    let window = window.as_millis() as i64;
    let mut locked_now = false;
    for (key, max) in keys {
        let row = store.record_failure(key, now, window, *max).await?;
        locked_now |= row.failures == *max && row.locked_until.is_some_and(|u| u > now);
    }
    Ok(locked_now)
}

#[cfg(test)]
mod tests {
    use super::humane_duration;

    #[test]
    fn waits_are_said_as_people_say_them() {
        assert_eq!(humane_duration(899), "15 minutes");
        assert_eq!(humane_duration(900), "15 minutes");
        assert_eq!(humane_duration(61), "2 minutes");
        assert_eq!(humane_duration(60), "1 minute");
        assert_eq!(humane_duration(1), "1 second");
        assert_eq!(humane_duration(0), "1 second");
        assert_eq!(humane_duration(40), "40 seconds");
        assert_eq!(humane_duration(7200), "2 hours");
    }
}
