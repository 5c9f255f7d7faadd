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
}
