//! The password policy. The default is what the operators asked for (8+ characters with upper,
//! lower, digit and symbol); `password_policy = "length"` switches to the OWASP ASVS style: length
//! only, no composition rules. Both refuse the commonest passwords, and neither truncates.

use std::collections::HashSet;
use std::sync::OnceLock;

use serde::Serialize;
use utoipa::ToSchema;

/// Hashing cost grows with length; this bound only stops abuse, far above any real passphrase.
pub const MAX_LENGTH: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// Upper, lower, digit and symbol required.
    Composition,
    /// Length only (OWASP ASVS).
    Length,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    pub kind: PolicyKind,
    pub min_length: usize,
}

/// One rule a password breaks, with a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RuleViolation {
    /// `min_length`, `max_length`, `uppercase`, `lowercase`, `digit`, `symbol` or `common`.
    pub rule: &'static str,
    pub message: String,
}

impl PasswordPolicy {
    /// Every rule `password` breaks, all at once (empty: acceptable).
    pub fn violations(&self, password: &str) -> Vec<RuleViolation> {
        let mut out = Vec::new();
        let mut broke = |rule, message: String| out.push(RuleViolation { rule, message });
        let length = password.chars().count();
        if length < self.min_length {
            broke(
                "min_length",
                format!("use at least {} characters", self.min_length),
            );
        }
        if length > MAX_LENGTH {
            broke("max_length", format!("use at most {MAX_LENGTH} characters"));
        }
        if self.kind == PolicyKind::Composition {
            if !password.chars().any(char::is_uppercase) {
                broke("uppercase", "include an uppercase letter".into());
            }
            if !password.chars().any(char::is_lowercase) {
                broke("lowercase", "include a lowercase letter".into());
            }
            if !password.chars().any(|c| c.is_ascii_digit()) {
                broke("digit", "include a digit".into());
            }
            if !password
                .chars()
                .any(|c| !c.is_alphanumeric() && !c.is_whitespace())
            {
                broke("symbol", "include a symbol such as ! or #".into());
            }
        }
        if is_common(password) {
            broke(
                "common",
                "this is one of the most common passwords; choose another".into(),
            );
        }
        out
    }

    pub fn describe(&self) -> Vec<String> {
        let mut rules = vec![format!("at least {} characters", self.min_length)];
        if self.kind == PolicyKind::Composition {
            rules.extend(
                [
                    "an uppercase letter",
                    "a lowercase letter",
                    "a digit",
                    "a symbol",
                ]
                .map(String::from),
            );
        }
        rules.push("not one of the 10,000 commonest passwords".into());
        rules
    }
}

fn is_common(password: &str) -> bool {
    static COMMON: OnceLock<HashSet<&'static str>> = OnceLock::new();
    let set = COMMON.get_or_init(|| {
        include_str!("common-passwords.txt")
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect()
    });
    set.contains(password.to_lowercase().as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(policy: &PasswordPolicy, pw: &str) -> Vec<&'static str> {
        policy.violations(pw).into_iter().map(|v| v.rule).collect()
    }

    /// The default policy (the defaults themselves live in `config::declared`).
    const COMPOSITION: PasswordPolicy = PasswordPolicy {
        kind: PolicyKind::Composition,
        min_length: 8,
    };

    #[test]
    fn every_broken_rule_is_reported_at_once() {
        let p = COMPOSITION;
        assert_eq!(
            rules(&p, "abc"),
            ["min_length", "uppercase", "digit", "symbol"]
        );
        assert!(rules(&p, "Tr0ub4dor&3x").is_empty());
    }

    #[test]
    fn long_passwords_are_accepted_whole() {
        let p = COMPOSITION;
        let long = format!("Aa1!{}", "x".repeat(60));
        assert_eq!(long.len(), 64);
        assert!(rules(&p, &long).is_empty());
    }

    #[test]
    fn common_passwords_are_refused_in_both_modes() {
        let p = COMPOSITION;
        assert!(
            rules(&p, "P@ssw0rd").contains(&"common"),
            "leet variants listed"
        );
        let asvs = PasswordPolicy {
            kind: PolicyKind::Length,
            min_length: 8,
        };
        assert_eq!(rules(&asvs, "baseball"), ["common"]);
        assert!(rules(&asvs, "a quiet lighthouse keeper").is_empty());
    }
}
