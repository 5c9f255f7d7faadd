//! Accounts: the domain types, parsed once at the edge so the rest of Berth can trust them.

pub mod password;
pub mod policy;

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A user name: 3–64 characters of `a-z 0-9 . _ -`, compared case-insensitively (kept lower-case).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Username, String> {
        let name = raw.trim().to_lowercase();
        if !(3..=64).contains(&name.chars().count()) {
            return Err("a user name has 3 to 64 characters".into());
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err("a user name uses only letters, digits, '.', '_' and '-'".into());
        }
        Ok(Username(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A valid name made from what an identity provider calls the person (`preferred_username`,
    /// or an e-mail address: its local part). Not unique: [`Username::numbered`] tells apart.
    pub fn derive(hint: &str) -> Username {
        let local = hint.split('@').next().unwrap_or_default().to_lowercase();
        let kept: String = local
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        // Room for a "-NN" suffix within the 64 characters.
        let mut name: String = kept.trim_matches(['-', '.']).chars().take(56).collect();
        if name.chars().count() < 3 {
            name = format!("user-{name}").trim_end_matches('-').to_string();
        }
        Username(name)
    }

    /// This name with a number: `alice-2`.
    pub fn numbered(&self, n: u32) -> Username {
        Username(format!("{}-{n}", self.0))
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    User,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AccountState {
    /// Registered, waiting for an admin; cannot sign in.
    Pending,
    Active,
    /// Refused by an admin.
    Denied,
    Disabled,
}

macro_rules! text_enum {
    ($t:ty { $($v:ident = $s:literal),* }) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some(Self::$v),)* _ => None }
            }
        }
    };
}
text_enum!(Role { Admin = "admin", User = "user" });
text_enum!(AccountState { Pending = "pending", Active = "active", Denied = "denied", Disabled = "disabled" });

/// A user as the API shows it (never the hash).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct User {
    pub id: String,
    pub username: String,
    pub role: Role,
    pub state: AccountState,
    /// RFC 3339, UTC.
    pub created_at: String,
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_normalised_and_checked() {
        assert_eq!(Username::parse(" Alice.B ").unwrap().as_str(), "alice.b");
        assert!(Username::parse("al").is_err());
        assert!(Username::parse("al ice").is_err());
        assert!(Username::parse("a'; drop").is_err());
    }

    #[test]
    fn derived_names_are_valid() {
        for (hint, name) in [
            ("Alice.Smith@example.com", "alice.smith"),
            ("José Núñez", "jos--n--ez"),
            ("b", "user-b"),
            ("", "user"),
            ("@@@", "user"),
        ] {
            let derived = Username::derive(hint);
            assert_eq!(derived.as_str(), name, "from {hint:?}");
            assert!(Username::parse(derived.as_str()).is_ok(), "{derived}");
        }
        let long = Username::derive(&"x".repeat(100)).numbered(99);
        assert!(Username::parse(long.as_str()).is_ok());
    }
}
