//! Variables in stack strings: `${NAME}` refers to a declared variable, `$$` is a literal `$`.
//! Compose uses the same syntax, so the generated files keep the references and add each
//! variable's default (`${NAME:-default}`) or requirement (`${NAME:?...}`).

use std::collections::BTreeMap;

/// One `${NAME}` in a string: its byte range in the string and the name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub range: std::ops::Range<usize>,
    pub name: String,
}

/// A `$` that is neither `$$` nor a well-formed `${NAME}`: where, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Malformed {
    pub range: std::ops::Range<usize>,
    pub message: String,
}

pub fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_uppercase() || c == '_')
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// The variable references in `text`, or the first malformed `$`.
pub fn references(text: &str) -> Result<Vec<Reference>, Malformed> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'$') => i += 2,
            Some(b'{') => {
                let Some(close) = text[i + 2..].find('}') else {
                    return Err(Malformed {
                        range: i..text.len(),
                        message: "`${` without a closing `}`".into(),
                    });
                };
                let name = &text[i + 2..i + 2 + close];
                if !is_variable_name(name) {
                    return Err(Malformed {
                        range: i..i + 3 + close,
                        message: format!(
                            "`${{{name}}}` is not a variable reference: write `${{NAME}}` with \
                             NAME in capitals, digits and underscores (defaults belong in \
                             [variables])"
                        ),
                    });
                }
                found.push(Reference {
                    range: i..i + 3 + close,
                    name: name.to_string(),
                });
                i += 3 + close;
            }
            _ => {
                return Err(Malformed {
                    range: i..i + 1,
                    message: "a lone `$`: write `${NAME}` for a variable or `$$` for a literal `$`"
                        .into(),
                })
            }
        }
    }
    Ok(found)
}

/// How the generated files spell a variable reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Spelling {
    /// `${NAME:-default}`
    Default(String),
    /// `${NAME:?set NAME (see .env.example)}`
    Required,
}

/// `text` with each `${NAME}` spelled for compose. Panics on unvalidated input.
pub fn for_compose(text: &str, variables: &BTreeMap<String, Spelling>) -> String {
    let refs = references(text).expect("validated");
    let mut out = String::new();
    let mut last = 0;
    for r in refs {
        out.push_str(&text[last..r.range.start]);
        match &variables[&r.name] {
            Spelling::Default(default) => out.push_str(&format!("${{{}:-{default}}}", r.name)),
            Spelling::Required => out.push_str(&format!(
                "${{{}:?set {} (see .env.example)}}",
                r.name, r.name
            )),
        }
        last = r.range.end;
    }
    out.push_str(&text[last..]);
    out
}

/// `text` with each variable replaced by its value and `$$` by `$`, as compose would see it.
pub fn expand(text: &str, value: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' && bytes.get(i + 1) == Some(&b'$') {
            out.push('$');
            i += 2;
        } else if bytes[i] == b'$' && bytes.get(i + 1) == Some(&b'{') {
            if let Some(close) = text[i + 2..].find('}') {
                let name = &text[i + 2..i + 2 + close];
                out.push_str(&value(name).unwrap_or_default());
                i += 3 + close;
            } else {
                out.push_str(&text[i..]);
                break;
            }
        } else {
            let c = text[i..].chars().next().expect("in bounds");
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_references_and_skips_literal_dollars() {
        let refs = references("a ${PORT} $$HOME ${X_1}").unwrap();
        let names: Vec<_> = refs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["PORT", "X_1"]);
        assert_eq!(refs[0].range, 2..9);
    }

    #[test]
    fn rejects_malformed_references() {
        assert!(references("$PORT")
            .unwrap_err()
            .message
            .contains("lone `$`"));
        assert!(references("${PORT")
            .unwrap_err()
            .message
            .contains("closing"));
        assert!(references("${PORT:-80}")
            .unwrap_err()
            .message
            .contains("defaults belong in [variables]"));
        assert!(references("${port}").is_err());
    }

    #[test]
    fn spells_defaults_and_requirements() {
        let vars = BTreeMap::from([
            ("PORT".to_string(), Spelling::Default("8080".into())),
            ("KEY".to_string(), Spelling::Required),
        ]);
        assert_eq!(
            for_compose("127.0.0.1:${PORT} ${KEY} $$x", &vars),
            "127.0.0.1:${PORT:-8080} ${KEY:?set KEY (see .env.example)} $$x"
        );
    }

    #[test]
    fn expands_like_compose() {
        let value = |name: &str| (name == "A").then(|| "1".to_string());
        assert_eq!(expand("x${A}y${B}$$z", &value), "x1y$z");
    }
}
