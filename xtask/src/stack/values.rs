//! Values of the stack file that parse as it is read: a misspelt restart policy or a duration
//! without a unit is refused by serde at its place in the file, as an unknown key is, with the
//! form expected. What needs the rest of the file (names that refer to things, declared
//! variables, the hardening rules) stays in `validate`.

use std::fmt;

use serde::{de, Deserialize, Deserializer};

/// A string value of a checked form, kept as written (it goes into compose files verbatim).
macro_rules! checked_string {
    ($(#[$doc:meta])* $name:ident, $what:literal, $expected:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                let check: fn(&str) -> bool = $check;
                if check(&text) {
                    Ok($name(text))
                } else {
                    // `Stack::parse` splits serde's messages at ", expected ".
                    Err(de::Error::custom(format!(
                        concat!("invalid ", $what, " `{}`, expected ", $expected),
                        text
                    )))
                }
            }
        }
    };
}

checked_string!(
    /// A Go duration as compose takes it: `1h30m`, `10s`, `500ms`.
    Duration,
    "duration",
    "a duration such as `30s`, `1m30s` or `500ms`",
    is_duration
);

checked_string!(
    /// A size: `512m`, `2g`, `64k`, bytes, or a `${VARIABLE}`.
    ByteSize,
    "size",
    "a size such as `512m`, `2g` or `64k`",
    |t| has_variable(t) || is_byte_size(t)
);

checked_string!(
    /// A CPU count as a string (so that it may be a `${VARIABLE}`): `"0.5"`, `"2"`.
    Cpus,
    "CPU count",
    "a positive number as a string, e.g. \"0.5\" or \"2\"",
    |t| has_variable(t) || t.parse::<f64>().is_ok_and(|v| v > 0.0)
);

/// What compose does when a container stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    No,
    Always,
    OnFailure,
    UnlessStopped,
}

impl RestartPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::Always => "always",
            RestartPolicy::OnFailure => "on-failure",
            RestartPolicy::UnlessStopped => "unless-stopped",
        }
    }
}

/// Docker's log drivers the stack supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogDriver {
    JsonFile,
    Local,
    Journald,
    Syslog,
    None,
}

impl LogDriver {
    pub fn as_str(self) -> &'static str {
        match self {
            LogDriver::JsonFile => "json-file",
            LogDriver::Local => "local",
            LogDriver::Journald => "journald",
            LogDriver::Syslog => "syslog",
            LogDriver::None => "none",
        }
    }
}

/// An image reference: `[REGISTRY/]NAME[:TAG][@sha256:DIGEST]`, as Docker reads it, e.g.
/// `redis:8.0`, `ghcr.io/berth-project/berth:1.2.3`, `localhost:5000/x@sha256:…`; or text with a
/// `${VARIABLE}`, kept as written (its value is checked where it is used). Kept as written: it
/// goes into compose files verbatim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    text: String,
    /// `None` when the text holds a variable.
    parts: Option<ImageParts>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct ImageParts {
    registry: Option<String>,
    name: String,
    tag: Option<String>,
    digest: Option<String>,
}

const IMAGE_EXPECTED: &str = "an image reference `[REGISTRY/]NAME[:TAG][@sha256:DIGEST]`: \
     lowercase name parts (`a-z`, `0-9`, `.`, `_`, `-`) separated by `/`, a tag of letters, \
     digits, `_`, `.` and `-` (at most 128, not starting with `.` or `-`), a digest of 64 hex \
     digits; e.g. `redis:8.0` or `ghcr.io/org/app:1.2@sha256:…`";

impl ImageRef {
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Pinned to a version: a tag other than `latest`, or a digest. Unknowable (true) for a
    /// `${VARIABLE}`.
    pub fn is_pinned(&self) -> bool {
        self.parts
            .as_ref()
            .is_none_or(|p| p.digest.is_some() || p.tag.as_deref().is_some_and(|t| t != "latest"))
    }

    /// The registry host (and port), if the reference names one.
    #[cfg(test)]
    fn registry(&self) -> Option<&str> {
        self.parts.as_ref()?.registry.as_deref()
    }

    /// Parses `text`; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<ImageRef, String> {
        if has_variable(text) {
            return Ok(ImageRef {
                text: text.to_string(),
                parts: None,
            });
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => {
                let hex = digest
                    .strip_prefix("sha256:")
                    .ok_or("its digest does not start with `sha256:`")?;
                if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                    return Err("its digest is not 64 lowercase hex digits after `sha256:`".into());
                }
                (rest, Some(digest.to_string()))
            }
            None => (text, None),
        };
        // The tag follows the last `:` after the last `/` (a registry's port comes before).
        let slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[slash..].rfind(':') {
            Some(i) => (&rest[..slash + i], Some(&rest[slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            let ok = !tag.is_empty()
                && tag.len() <= 128
                && !tag.starts_with(['.', '-'])
                && tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if !ok {
                return Err(format!("its tag `{tag}` is not a valid tag"));
            }
        }
        let mut parts: Vec<&str> = name.split('/').collect();
        let registry = match parts.first() {
            Some(first)
                if parts.len() > 1 && (first.contains(['.', ':']) || *first == "localhost") =>
            {
                let host = parts.remove(0);
                let (h, port) = host.split_once(':').unwrap_or((host, "1"));
                let host_ok = !h.is_empty()
                    && h.chars()
                        .all(|c| c.is_ascii_alphanumeric() || ".-".contains(c));
                if !host_ok || port.parse::<u16>().map_or(true, |p| p == 0) {
                    return Err(format!("its registry `{host}` is not a host[:port]"));
                }
                Some(host.to_string())
            }
            _ => None,
        };
        let path = parts.join("/");
        for part in &parts {
            if !is_name_component(part) {
                return Err(if part.is_empty() {
                    "it has no name".to_string()
                } else {
                    format!("its name part `{part}` is not lowercase letters and digits joined by `.`, `_` or `-`")
                });
            }
        }
        Ok(ImageRef {
            text: text.to_string(),
            parts: Some(ImageParts {
                registry,
                name: path,
                tag: tag.map(str::to_string),
                digest,
            }),
        })
    }
}

/// `[a-z0-9]+` joined by `.`, `_`, `__` or runs of `-`.
fn is_name_component(part: &str) -> bool {
    let b = part.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &part[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-')) {
            return false;
        }
    }
    true
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for ImageRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        // `Stack::parse` splits serde's messages at ", expected ".
        ImageRef::parse(&text).map_err(|why| {
            de::Error::custom(format!(
                "invalid image reference `{text}` ({why}), expected {IMAGE_EXPECTED}"
            ))
        })
    }
}

fn is_duration(text: &str) -> bool {
    let mut rest = text;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        let unit = ["ms", "us", "ns", "h", "m", "s"]
            .into_iter()
            .find(|u| rest.starts_with(u));
        match unit {
            Some(u) => rest = &rest[u.len()..],
            None => return false,
        }
    }
    true
}

fn is_byte_size(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let t = t.strip_suffix(['k', 'm', 'g']).unwrap_or(t);
    !t.is_empty() && t.parse::<f64>().is_ok_and(|v| v > 0.0)
}

/// Whether the text holds a `${VARIABLE}` (checked against the declared ones by `validate`).
pub fn has_variable(text: &str) -> bool {
    text.contains("${")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Doc {
        d: Option<Duration>,
        s: Option<ByteSize>,
        r: Option<RestartPolicy>,
    }

    fn parse(text: &str) -> Result<Doc, String> {
        toml::from_str(text).map_err(|e| e.message().to_string())
    }

    #[test]
    fn durations_and_sizes() {
        assert!(is_duration("10s") && is_duration("1m30s") && is_duration("500ms"));
        assert!(!is_duration("10") && !is_duration("s") && !is_duration("1d"));
        assert!(
            is_byte_size("512m")
                && is_byte_size("2g")
                && is_byte_size("1024")
                && is_byte_size("64kb")
        );
        assert!(!is_byte_size("lots") && !is_byte_size("0"));
    }

    #[test]
    fn good_values_parse_and_keep_their_text() {
        let doc = parse("d = \"1m30s\"\ns = \"${SHM}\"\nr = \"unless-stopped\"").unwrap();
        assert_eq!(doc.d.unwrap().as_str(), "1m30s");
        assert_eq!(doc.s.unwrap().as_str(), "${SHM}");
        assert_eq!(doc.r, Some(RestartPolicy::UnlessStopped));
    }

    #[test]
    fn bad_values_say_what_was_expected() {
        let err = parse("d = \"30\"").unwrap_err();
        assert_eq!(
            err,
            "invalid duration `30`, expected a duration such as `30s`, `1m30s` or `500ms`"
        );
        let err = parse("s = \"lots\"").unwrap_err();
        assert!(err.starts_with("invalid size `lots`, expected "), "{err}");
        let err = parse("r = \"sometimes\"").unwrap_err();
        assert!(
            err.contains("`sometimes`") && err.contains("`on-failure`"),
            "{err}"
        );
    }

    #[test]
    fn image_references_parse_into_their_parts() {
        for good in [
            "redis:8.0",
            "redis",
            "pgvector/pgvector:pg17",
            "ghcr.io/berth-project/berth:1.2.3",
            "localhost:5000/x",
            "localhost/x:1",
            "registry.example.com:443/a/b_c__d/e--f:v1.2-rc_3",
            "berth-backup:latest",
            "${BERTH_IMAGE}",
        ] {
            assert!(ImageRef::parse(good).is_ok(), "{good}");
        }
        let digest = format!("redis@sha256:{}", "a".repeat(64));
        let r = ImageRef::parse(&digest).unwrap();
        assert!(r.is_pinned());
        assert_eq!(r.as_str(), digest);
        let r = ImageRef::parse("localhost:5000/team/app:2").unwrap();
        assert_eq!(r.registry(), Some("localhost:5000"));
        assert_eq!(r.parts.as_ref().unwrap().name, "team/app");
        assert_eq!(r.parts.as_ref().unwrap().tag.as_deref(), Some("2"));
        assert_eq!(ImageRef::parse("team/app").unwrap().registry(), None);
    }

    #[test]
    fn pinned_means_a_real_tag_or_a_digest() {
        let pinned = |t: &str| ImageRef::parse(t).unwrap().is_pinned();
        assert!(pinned("redis:8.0") && pinned("ghcr.io/a/b:1.2") && pinned("${IMAGE}"));
        assert!(!pinned("redis") && !pinned("redis:latest") && !pinned("localhost:5000/x"));
    }

    #[test]
    fn bad_image_references_say_what_is_wrong_and_what_is_expected() {
        for (bad, why) in [
            ("Redis:8", "name part `Redis`"),
            ("redis:", "tag ``"),
            ("redis:-1", "tag `-1`"),
            ("redis@sha256:abc", "64 lowercase hex"),
            ("redis@md5:00", "does not start with `sha256:`"),
            ("a//b", "it has no name"),
            ("", "it has no name"),
            ("my_host:0/x", "registry `my_host:0`"),
            ("example.com:0/x", "registry `example.com:0`"),
            ("a..b", "name part `a..b`"),
        ] {
            let err = ImageRef::parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Doc {
            image: ImageRef,
        }
        let err = toml::from_str::<Doc>("image = \"Redis\"")
            .unwrap_err()
            .message()
            .to_string();
        assert!(
            err.starts_with("invalid image reference `Redis` (its name part `Redis` is not ")
                && err.contains(
                    ", expected an image reference `[REGISTRY/]NAME[:TAG][@sha256:DIGEST]`"
                ),
            "{err}"
        );
    }
}
