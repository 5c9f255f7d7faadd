//! deploy/scan-accept.toml: findings accepted on purpose, each with a reason and, optionally, a
//! date after which it counts again.
//!
//! ```toml
//! [[accept]]
//! rule = "non-root"
//! target = "docker/compose*.yaml:ollama"   # `*` matches any run of characters
//! reason = "the upstream image keeps models under /root/.ollama; every capability is dropped"
//! expires = "2027-06-30"                    # optional, YYYY-MM-DD
//! ```

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use super::Finding;

pub const ACCEPT_PATH: &str = "deploy/scan-accept.toml";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    accept: Vec<Accept>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Accept {
    pub rule: String,
    pub target: String,
    pub reason: String,
    pub expires: Option<String>,
}

/// The accepted findings; none when the file does not exist.
pub fn load(root: &Path) -> Result<Vec<Accept>> {
    let path = root.join(ACCEPT_PATH);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {ACCEPT_PATH}")),
    };
    parse(&text)
}

pub fn parse(text: &str) -> Result<Vec<Accept>> {
    let file: File = toml::from_str(text).with_context(|| {
        format!("{ACCEPT_PATH} is not valid: each [[accept]] needs rule, target, reason (and may have expires = \"YYYY-MM-DD\")")
    })?;
    for a in &file.accept {
        if a.reason.trim().len() < 10 {
            bail!(
                "{ACCEPT_PATH}: accepting {} on {} needs a real reason (say why it is safe)",
                a.rule,
                a.target
            );
        }
        if let Some(e) = &a.expires {
            if !valid_date(e) {
                bail!("{ACCEPT_PATH}: expires = \"{e}\" is not a date; write YYYY-MM-DD");
            }
        }
    }
    Ok(file.accept)
}

fn valid_date(d: &str) -> bool {
    let b = d.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && d.chars()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// Marks the findings each entry accepts; returns notes on entries that expired or matched
/// nothing (stale entries hide nothing, but should go).
pub fn apply(accepts: &[Accept], findings: &mut [Finding], today: &str) -> Vec<String> {
    let mut notes = Vec::new();
    for a in accepts {
        let expired = a.expires.as_deref().is_some_and(|e| e < today);
        let mut matched = 0;
        for f in findings.iter_mut() {
            if f.rule == a.rule && glob(&a.target, &f.target) {
                matched += 1;
                if !expired && f.accepted.is_none() {
                    f.accepted = Some(a.reason.clone());
                }
            }
        }
        if expired {
            notes.push(format!(
                "acceptance of {} on {} expired on {}: {matched} finding(s) count again",
                a.rule,
                a.target,
                a.expires.as_deref().unwrap_or("")
            ));
        } else if matched == 0 {
            notes.push(format!(
                "acceptance of {} on {} matches no finding: remove it from {ACCEPT_PATH}",
                a.rule, a.target
            ));
        }
    }
    notes
}

/// `*` matches any run of characters; everything else literally.
pub fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(tail) = text.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len())
                .filter(|&i| tail.is_char_boundary(i))
                .any(|i| glob(rest, &tail[i..]))
        }
    }
}

/// Today's date (UTC) as YYYY-MM-DD, from the system clock.
pub fn today() -> String {
    crate::util::time::date(crate::util::time::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::Severity;

    fn finding(rule: &str, target: &str) -> Finding {
        Finding {
            rule: rule.into(),
            severity: Severity::High,
            source: "berth".into(),
            target: target.into(),
            file: "f".into(),
            line: None,
            message: "m".into(),
            accepted: None,
        }
    }

    #[test]
    fn globs() {
        assert!(glob(
            "docker/compose*.yaml:ollama",
            "docker/compose.dev.yaml:ollama"
        ));
        assert!(glob(
            "docker/compose*.yaml:ollama",
            "docker/compose.yaml:ollama"
        ));
        assert!(!glob(
            "docker/compose*.yaml:ollama",
            "docker/compose.yaml:ollama-gpu"
        ));
        assert!(glob("*", "anything"));
    }

    #[test]
    fn dates() {
        let date = |days: u64| crate::util::time::date(days * 86_400);
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(20_424), "2025-12-02");
        assert_eq!(date(11_016), "2000-02-29");
    }

    #[test]
    fn accepts_expires_and_reports_stale_entries() {
        let accepts = parse(
            "[[accept]]\nrule = \"non-root\"\ntarget = \"c:ollama*\"\nreason = \"the image needs root, caps dropped\"\n\
             [[accept]]\nrule = \"healthcheck\"\ntarget = \"c:app\"\nreason = \"old acceptance, long gone\"\nexpires = \"2020-01-01\"\n\
             [[accept]]\nrule = \"limits\"\ntarget = \"c:nothing\"\nreason = \"matches nothing at all\"\n",
        )
        .unwrap();
        let mut findings = vec![
            finding("non-root", "c:ollama"),
            finding("non-root", "c:app"),
            finding("healthcheck", "c:app"),
        ];
        let notes = apply(&accepts, &mut findings, "2026-12-01");
        assert!(findings[0].accepted.is_some());
        assert!(findings[1].accepted.is_none());
        assert!(
            findings[2].accepted.is_none(),
            "expired acceptance still applied"
        );
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].contains("expired") && notes[1].contains("matches no finding"));
    }

    #[test]
    fn refuses_entries_without_a_reason_or_with_a_bad_date() {
        assert!(parse("[[accept]]\nrule = \"x\"\ntarget = \"y\"\nreason = \"\"\n").is_err());
        assert!(parse("[[accept]]\nrule = \"x\"\ntarget = \"y\"\nreason = \"a good reason here\"\nexpires = \"soon\"\n").is_err());
        assert!(parse("[[accept]]\nrule = \"x\"\ntarget = \"y\"\n").is_err());
    }
}
