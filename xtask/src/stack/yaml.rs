//! A small YAML writer for the generated files: block style, keys in sorted order, comments
//! above entries, and strings quoted whenever a plain scalar could be misread (`yes`, `1.0`,
//! `:`-laden text...). Deterministic by construction.

use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    Str(String),
    Int(i64),
    Bool(bool),
    List(Vec<Node>),
    Map(Map),
}

/// A mapping with sorted keys and optional comments above entries.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Map {
    entries: BTreeMap<String, (Option<String>, Node)>,
}

impl Map {
    pub fn new() -> Map {
        Map::default()
    }

    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Node>) -> &mut Map {
        self.entries.insert(key.into(), (None, value.into()));
        self
    }

    /// Inserts with a comment line (or lines) written above the key.
    pub fn insert_commented(
        &mut self,
        key: impl Into<String>,
        comment: impl Into<String>,
        value: impl Into<Node>,
    ) -> &mut Map {
        self.entries
            .insert(key.into(), (Some(comment.into()), value.into()));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl From<Map> for Node {
    fn from(map: Map) -> Node {
        Node::Map(map)
    }
}

impl From<&str> for Node {
    fn from(s: &str) -> Node {
        Node::Str(s.to_string())
    }
}

impl From<String> for Node {
    fn from(s: String) -> Node {
        Node::Str(s)
    }
}

impl From<&String> for Node {
    fn from(s: &String) -> Node {
        Node::Str(s.clone())
    }
}

impl From<bool> for Node {
    fn from(b: bool) -> Node {
        Node::Bool(b)
    }
}

impl From<i64> for Node {
    fn from(i: i64) -> Node {
        Node::Int(i)
    }
}

impl From<u16> for Node {
    fn from(i: u16) -> Node {
        Node::Int(i64::from(i))
    }
}

impl From<u32> for Node {
    fn from(i: u32) -> Node {
        Node::Int(i64::from(i))
    }
}

impl<T: Into<Node>> From<Vec<T>> for Node {
    fn from(items: Vec<T>) -> Node {
        Node::List(items.into_iter().map(Into::into).collect())
    }
}

/// Whether `s` can be written as a plain scalar and read back as the same string.
fn plain_ok(s: &str) -> bool {
    if s.is_empty() || s.len() > 200 {
        return false;
    }
    let reserved = [
        "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~",
    ];
    if reserved.contains(&s.to_ascii_lowercase().as_str()) {
        return false;
    }
    // Anything number-like (ints, floats, octal, hex, 1e3, .5, 1_000, times like 12:30).
    let first = s.chars().next().expect("not empty");
    if first.is_ascii_digit() || first == '.' || first == '+' || first == '-' {
        return false;
    }
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "_./@-".contains(c))
}

fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn scalar(node: &Node) -> Option<String> {
    match node {
        Node::Str(s) if plain_ok(s) => Some(s.clone()),
        Node::Str(s) => Some(quote(s)),
        Node::Int(i) => Some(i.to_string()),
        Node::Bool(b) => Some(b.to_string()),
        Node::List(l) if l.is_empty() => Some("[]".into()),
        Node::Map(m) if m.is_empty() => Some("{}".into()),
        _ => None,
    }
}

fn key(k: &str) -> String {
    if plain_ok(k) {
        k.to_string()
    } else {
        quote(k)
    }
}

fn write_map(out: &mut String, map: &Map, indent: usize) {
    let pad = " ".repeat(indent);
    for (k, (comment, value)) in &map.entries {
        if let Some(comment) = comment {
            for line in comment.lines() {
                out.push_str(format!("{pad}# {line}").trim_end());
                out.push('\n');
            }
        }
        match scalar(value) {
            Some(s) => out.push_str(&format!("{pad}{}: {s}\n", key(k))),
            None => {
                out.push_str(&format!("{pad}{}:\n", key(k)));
                write_node(out, value, indent + 2);
            }
        }
    }
}

fn write_node(out: &mut String, node: &Node, indent: usize) {
    let pad = " ".repeat(indent);
    match node {
        Node::Map(m) => write_map(out, m, indent),
        Node::List(items) => {
            for item in items {
                match scalar(item) {
                    Some(s) => out.push_str(&format!("{pad}- {s}\n")),
                    None => {
                        // "- " then the first line of the nested block on the same line.
                        let mut inner = String::new();
                        write_node(&mut inner, item, indent + 2);
                        let inner = inner.trim_start_matches(' ');
                        out.push_str(&format!("{pad}- {inner}"));
                    }
                }
            }
        }
        other => out.push_str(&format!(
            "{pad}{}\n",
            scalar(other).expect("scalars have a form")
        )),
    }
}

/// The document: `header` lines as comments, then `root`.
pub fn document(header: &str, root: &Map) -> String {
    let mut out = String::new();
    for line in header.lines() {
        out.push_str(format!("# {line}").trim_end());
        out.push('\n');
    }
    write_map(&mut out, root, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_what_could_be_misread() {
        for s in [
            "yes", "No", "1.0", "8080", "0.5", "-x", "", "a: b", "${X:-1}", "a b", "#x",
        ] {
            assert!(!plain_ok(s), "{s:?} must be quoted");
        }
        for s in [
            "berth",
            "pgvector/pgvector",
            "no-new-privileges",
            "/var/lib/x",
            "a.b_c",
        ] {
            assert!(plain_ok(s), "{s:?} can be plain");
        }
        assert_eq!(quote("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
    }

    #[test]
    fn writes_sorted_block_yaml_with_comments() {
        let mut inner = Map::new();
        inner.insert("b", 1i64).insert("a", vec!["x", "y z"]);
        let mut root = Map::new();
        root.insert_commented("svc", "a service", inner)
            .insert("empty", Map::new())
            .insert(
                "list",
                Node::List(vec![{
                    let mut m = Map::new();
                    m.insert("k", "v").insert("j", true);
                    m.into()
                }]),
            );
        let text = document("generated", &root);
        assert_eq!(
            text,
            "# generated\nempty: {}\nlist:\n  - j: true\n    k: v\n# a service\nsvc:\n  a:\n    - x\n    - \"y z\"\n  b: 1\n"
        );
    }
}
