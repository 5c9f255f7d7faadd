//! Parsers for setting values: each turns the text a person wrote into a value, or says what is
//! wrong with it. The caller adds the setting's name, where the value came from and the form it
//! expects. Values that may hold a password are never echoed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::{Api, CookieSecure, DatabaseLocation, EmbedApi, LogFormat};
use crate::domain::accounts::policy::PolicyKind;

/// How one setting's text becomes its value.
pub type Parse<T> = fn(&str) -> Result<T, String>;

pub fn address(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|_| format!("{s:?} is not an address"))
}

pub fn path(s: &str) -> Result<PathBuf, String> {
    if s.is_empty() {
        Err("the path is empty".into())
    } else {
        Ok(PathBuf::from(s))
    }
}

/// Unset (empty) means the SQLite file in the data directory, which the loader knows.
pub fn database(s: &str) -> Result<Option<DatabaseLocation>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    if let Some(path) = s.strip_prefix("sqlite://") {
        if path.is_empty() {
            return Err("the sqlite:// URL has no path".into());
        }
        return Ok(Some(DatabaseLocation::Sqlite(PathBuf::from(path))));
    }
    if s.starts_with("postgres://") || s.starts_with("postgresql://") {
        return Ok(Some(DatabaseLocation::Postgres(s.to_string())));
    }
    // Never echo the value: a malformed URL may still contain a password.
    Err("the URL scheme is not postgres:// or sqlite://".into())
}

/// Whole seconds from MIN to MAX.
pub fn seconds<const MIN: u64, const MAX: u64>(s: &str) -> Result<Duration, String> {
    match s.parse::<u64>() {
        Ok(n) if (MIN..=MAX).contains(&n) => Ok(Duration::from_secs(n)),
        _ => Err(format!(
            "{s:?} is not a number of seconds from {MIN} to {MAX}"
        )),
    }
}

/// A whole number from MIN to MAX, as the type the setting is used as.
pub fn whole<T: TryFrom<u64>, const MIN: u64, const MAX: u64>(s: &str) -> Result<T, String> {
    match s.parse::<u64>() {
        Ok(n) if (MIN..=MAX).contains(&n) => {
            T::try_from(n).map_err(|_| format!("{s:?} is too large for this machine"))
        }
        _ => Err(format!("{s:?} is not a whole number from {MIN} to {MAX}")),
    }
}

/// Like [`whole`], or unset (empty) for a default the loader works out from other settings.
pub fn optional_whole<const MIN: u64, const MAX: u64>(s: &str) -> Result<Option<usize>, String> {
    if s.is_empty() {
        Ok(None)
    } else {
        whole::<usize, MIN, MAX>(s).map(Some)
    }
}

/// MiB, as bytes.
pub fn mebibytes<const MAX: u64>(s: &str) -> Result<u64, String> {
    whole::<u64, 1, MAX>(s).map(|n| n << 20)
}

pub fn weight(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(w) if (0.0..=100.0).contains(&w) => Ok(w),
        _ => Err(format!("{s:?} is not a weight from 0 to 100")),
    }
}

pub fn temperature(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(t) if (0.0..=2.0).contains(&t) => Ok(t),
        _ => Err(format!("{s:?} is not a temperature from 0 to 2")),
    }
}

pub fn boolean(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!("{s:?} is not true or false")),
    }
}

/// Free text (a model name, a key); unset is None.
pub fn optional_text(s: &str) -> Result<Option<String>, String> {
    Ok((!s.is_empty()).then(|| s.to_string()))
}

pub fn log_filter(s: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(s)
        .map(|_| s.to_string())
        .map_err(|e| format!("{s:?} is not a log filter ({e})"))
}

pub fn log_format(s: &str) -> Result<LogFormat, String> {
    match s.to_ascii_lowercase().as_str() {
        "json" => Ok(LogFormat::Json),
        "text" => Ok(LogFormat::Text),
        "auto" => Ok(LogFormat::Auto),
        _ => Err(format!("{s:?} is not a log format")),
    }
}

pub fn password_policy(s: &str) -> Result<PolicyKind, String> {
    match s {
        "composition" => Ok(PolicyKind::Composition),
        "length" | "asvs" => Ok(PolicyKind::Length),
        _ => Err(format!("{s:?} is not a password policy")),
    }
}

pub fn cookie_secure(s: &str) -> Result<CookieSecure, String> {
    match s {
        "auto" => Ok(CookieSecure::Auto),
        "always" => Ok(CookieSecure::Always),
        "never" => Ok(CookieSecure::Never),
        _ => Err(format!("{s:?} is not a cookie mode")),
    }
}

pub fn api(s: &str) -> Result<Api, String> {
    match s {
        "ollama" => Ok(Api::Ollama),
        "openai" => Ok(Api::OpenAi),
        _ => Err(format!("{s:?} is not a known API")),
    }
}

pub fn embed_api(s: &str) -> Result<EmbedApi, String> {
    match s {
        "auto" => Ok(EmbedApi::Auto),
        "builtin" => Ok(EmbedApi::Builtin),
        "ollama" => Ok(EmbedApi::Server(Api::Ollama)),
        "openai" => Ok(EmbedApi::Server(Api::OpenAi)),
        _ => Err(format!("{s:?} is not a known embedding source")),
    }
}

/// A path; unset is None.
pub fn optional_path(s: &str) -> Result<Option<PathBuf>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    path(s).map(Some)
}

/// `auto` (None) or a whole number in range.
pub fn auto_or_whole<const MIN: u64, const MAX: u64>(s: &str) -> Result<Option<usize>, String> {
    if s == "auto" {
        return Ok(None);
    }
    whole::<usize, MIN, MAX>(s).map(Some)
}

/// An http(s) base URL without its trailing slash; unset is None. Whether its host may be
/// outside this network depends on `allow_remote_llm`, which the loader checks.
pub fn http_url(s: &str) -> Result<Option<String>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    let parsed = reqwest::Url::parse(s).map_err(|e| format!("{s:?} is not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("{s:?} is not http or https"));
    }
    Ok(Some(s.trim_end_matches('/').to_string()))
}

/// A `redis://` or `rediss://` (TLS) URL, checked without echoing it (it may hold a password);
/// unset is None.
pub fn redis_url(s: &str) -> Result<Option<String>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    let Ok(parsed) = reqwest::Url::parse(s) else {
        return Err("the value is not a URL".into());
    };
    if !matches!(parsed.scheme(), "redis" | "rediss") {
        return Err("the URL scheme is not redis:// or rediss://".into());
    }
    if parsed.host_str().unwrap_or_default().is_empty() {
        return Err("the URL has no host".into());
    }
    // The redis crate reads `#insecure` as "skip certificate checks"; this build has no such
    // mode: trust a private CA with redis_ca_file instead.
    if parsed.fragment().is_some() {
        return Err(
            "the URL has a #fragment (#insecure is not supported: set redis_ca_file to the CA \
             that signed the server's certificate)"
                .into(),
        );
    }
    if redis::Client::open(s).is_err() {
        return Err("the URL is not a valid Redis URL (check the port and database number)".into());
    }
    Ok(Some(s.to_string()))
}

/// The host of a URL the parsers above accepted.
pub fn host_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default()
}

/// True for hosts on this machine or a private network: loopback, RFC 1918 / unique-local
/// addresses, `localhost`, and single-label names (compose or Kubernetes services).
/// Link-local addresses are not "local": 169.254.169.254 is the cloud metadata service, which
/// hands out credentials. Unspecified addresses (0.0.0.0, ::) name no host at all.
pub fn is_local_host(host: &str) -> bool {
    use std::net::IpAddr;
    fn local_ip(ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(ip) => ip.is_loopback() || ip.is_private(),
            IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
                Some(v4) => local_ip(IpAddr::V4(v4)),
                None => ip.is_loopback() || (ip.segments()[0] & 0xfe00) == 0xfc00,
            },
        }
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(ip) => local_ip(ip),
        Err(_) => host == "localhost" || host.ends_with(".localhost") || !host.contains('.'),
    }
}

#[cfg(test)]
mod tests {
    use super::is_local_host;

    #[test]
    fn local_means_this_machine_or_its_private_network() {
        for host in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.1.20",
            "[::1]",
            "[fd00::5]",
            "ollama",
            "localhost",
        ] {
            assert!(is_local_host(host), "{host}");
        }
        for host in [
            "169.254.169.254",
            "[fe80::1]",
            "0.0.0.0",
            "[::]",
            "[::ffff:169.254.169.254]",
            "8.8.8.8",
            "api.example.com",
        ] {
            assert!(!is_local_host(host), "{host}");
        }
        assert!(is_local_host("[::ffff:10.0.0.1]"));
    }
}
