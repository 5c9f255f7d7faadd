//! `oidc_providers_file`: the OpenID providers, one `[[provider]]` table each. A list of tables
//! has no flag or variable form, so the providers live in a file of their own that the settings
//! name (a file also mounts as it is in a container or a Kubernetes ConfigMap); each client
//! secret is in a file of its own again, so the list itself holds no secret.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::domain::settings::OidcProvider;
use crate::error::BootError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    provider: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    id: String,
    display_name: String,
    issuer: String,
    client_id: String,
    client_secret_file: PathBuf,
    #[serde(default = "default_scopes")]
    scopes: Vec<String>,
    #[serde(default = "default_groups_claim")]
    groups_claim: String,
    #[serde(default)]
    auto_approve_groups: Vec<String>,
    #[serde(default)]
    admin_groups: Vec<String>,
}

fn default_scopes() -> Vec<String> {
    ["openid", "profile", "email"].map(String::from).to_vec()
}

fn default_groups_claim() -> String {
    "groups".into()
}

/// Reads and checks the providers file; a relative `client_secret_file` is relative to it.
pub fn read(path: &Path) -> Result<Vec<OidcProvider>, BootError> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| {
        BootError::Config(format!(
            "cannot read oidc_providers_file {shown} ({e}); see docs/sso.md for its form"
        ))
    })?;
    let file: File = toml::from_str(&text)
        .map_err(|e| BootError::Config(format!("oidc_providers_file {shown}: {e}")))?;
    if file.provider.is_empty() {
        return Err(BootError::Config(format!(
            "oidc_providers_file {shown} has no [[provider]] table; add one (docs/sso.md), or \
             unset oidc_providers_file"
        )));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut providers: Vec<OidcProvider> = Vec::new();
    for entry in file.provider {
        let refuse = |why: String| {
            BootError::Config(format!(
                "oidc_providers_file {shown}, provider {:?}: {why}",
                entry.id
            ))
        };
        check_id(&entry.id).map_err(refuse)?;
        if providers.iter().any(|p| p.id == entry.id) {
            return Err(refuse(
                "two providers have this id; give each its own".into(),
            ));
        }
        check_issuer(&entry.issuer).map_err(refuse)?;
        for (name, value) in [
            ("display_name", &entry.display_name),
            ("client_id", &entry.client_id),
        ] {
            if value.trim().is_empty() {
                return Err(refuse(format!("{name} is empty")));
            }
        }
        let secret_path = dir.join(&entry.client_secret_file);
        let secret = std::fs::read_to_string(&secret_path).map_err(|e| {
            refuse(format!(
                "cannot read client_secret_file {} ({e})",
                secret_path.display()
            ))
        })?;
        // A file written by `echo` ends in a newline that is no part of the secret.
        let secret = secret.trim_end_matches(['\r', '\n']).to_string();
        if secret.is_empty() {
            return Err(refuse(format!(
                "client_secret_file {} is empty",
                secret_path.display()
            )));
        }
        let mut scopes = entry.scopes;
        if !scopes.iter().any(|s| s == "openid") {
            scopes.insert(0, "openid".into());
        }
        providers.push(OidcProvider {
            id: entry.id,
            display_name: entry.display_name.trim().to_string(),
            // As written: discovery compares it with the provider's own, trailing slash and all
            // (Authentik's ends in one, Keycloak's does not).
            issuer: entry.issuer,
            client_id: entry.client_id,
            client_secret: secret,
            scopes,
            groups_claim: entry.groups_claim,
            auto_approve_groups: entry.auto_approve_groups,
            admin_groups: entry.admin_groups,
        });
    }
    Ok(providers)
}

fn check_id(id: &str) -> Result<(), String> {
    let ok = (1..=32).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err("id must be 1 to 32 of a-z, 0-9 and '-' (it is part of the redirect URI)".into())
    }
}

/// An issuer is https; plain http only on this machine (a provider in a test, a dev setup).
fn check_issuer(issuer: &str) -> Result<(), String> {
    let url =
        reqwest::Url::parse(issuer).map_err(|e| format!("issuer {issuer:?} is not a URL ({e})"))?;
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(format!(
            "issuer {issuer:?} must be an https:// URL (plain http only on localhost)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, providers: &str) -> PathBuf {
        std::fs::write(dir.join("secret"), "s3cret\n").unwrap();
        let path = dir.join("providers.toml");
        std::fs::write(&path, providers).unwrap();
        path
    }

    const ONE: &str = "[[provider]]\nid = \"corp\"\ndisplay_name = \"Corp\"\n\
                       issuer = \"https://id.example.com/\"\nclient_id = \"berth\"\n\
                       client_secret_file = \"secret\"\n";

    #[test]
    fn a_provider_reads_with_defaults_and_its_secret_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = read(&write(dir.path(), ONE)).unwrap();
        assert_eq!(p[0].client_secret, "s3cret");
        assert_eq!(p[0].issuer, "https://id.example.com/", "kept as written");
        assert_eq!(p[0].scopes, ["openid", "profile", "email"]);
        assert_eq!(p[0].groups_claim, "groups");
        assert!(!format!("{:?}", p[0]).contains("s3cret"), "never in Debug");
    }

    #[test]
    fn mistakes_are_refused_with_what_to_change() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (ONE.replace("corp", "Corp!"), "id must be"),
            (
                ONE.replace("https://id", "http://id"),
                "must be an https://",
            ),
            (ONE.replace("client_id", "clientid"), "unknown field"),
            (format!("{ONE}{ONE}"), "two providers"),
            (
                ONE.replace("\"secret\"", "\"missing\""),
                "cannot read client_secret_file",
            ),
            (String::new(), "no [[provider]]"),
        ];
        for (text, expected) in cases {
            let err = read(&write(dir.path(), &text)).unwrap_err().to_string();
            assert!(err.contains(expected), "{expected:?} not in {err}");
        }
    }

    #[test]
    fn http_is_allowed_on_loopback_only() {
        assert!(check_issuer("http://127.0.0.1:9000").is_ok());
        assert!(check_issuer("http://localhost:9000/realms/x").is_ok());
        assert!(check_issuer("http://10.0.0.1").is_err());
    }
}
