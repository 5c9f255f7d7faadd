//! A Dockerfile, read line by line: enough to know each stage's base image, user, health check
//! and ENV/ARG defaults. Continuation lines (`\`) are joined; comments and parser directives are
//! skipped.

use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instruction {
    /// 1-based line where the instruction starts.
    pub line: usize,
    /// Upper-cased keyword: FROM, USER, HEALTHCHECK, ...
    pub keyword: String,
    pub args: String,
}

#[derive(Clone, Debug, Default)]
pub struct Stage {
    /// `AS name`, if any.
    pub name: Option<String>,
    /// The image as written (`${RUST_IMAGE}`, `build`, `debian:trixie-slim`).
    pub from: String,
    pub from_line: usize,
    pub instructions: Vec<Instruction>,
}

#[derive(Clone, Debug, Default)]
pub struct Dockerfile {
    /// ARGs before the first FROM, with their defaults (what `${NAME}` in FROM expands to).
    pub global_args: BTreeMap<String, String>,
    pub stages: Vec<Stage>,
}

pub fn instructions(text: &str) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        if trimmed.starts_with('#') || (current.is_none() && trimmed.is_empty()) {
            continue;
        }
        let (start, mut joined) = current.take().unwrap_or((i + 1, String::new()));
        let (body, continues) = match trimmed.strip_suffix('\\') {
            Some(body) => (body, true),
            None => (trimmed, false),
        };
        if !joined.is_empty() {
            joined.push(' ');
        }
        joined.push_str(body.trim());
        if continues {
            current = Some((start, joined));
            continue;
        }
        let (keyword, args) = joined
            .split_once(char::is_whitespace)
            .unwrap_or((&joined, ""));
        out.push(Instruction {
            line: start,
            keyword: keyword.to_ascii_uppercase(),
            args: args.trim().to_string(),
        });
    }
    if let Some((start, joined)) = current {
        let (keyword, args) = joined
            .split_once(char::is_whitespace)
            .unwrap_or((&joined, ""));
        out.push(Instruction {
            line: start,
            keyword: keyword.to_ascii_uppercase(),
            args: args.trim().to_string(),
        });
    }
    out
}

/// `${NAME}`, `$NAME` and `${NAME:-default}` from `vars`.
pub fn expand(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, default, used) = if let Some(inner) = after.strip_prefix('{') {
            match inner.find('}') {
                Some(end) => {
                    let body = &inner[..end];
                    let (n, d) = match body.split_once(":-") {
                        Some((n, d)) => (n, Some(d)),
                        None => (body, None),
                    };
                    (n.to_string(), d.map(str::to_string), end + 2)
                }
                None => (String::new(), None, 0),
            }
        } else {
            let n: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let len = n.len();
            (n, None, len)
        };
        if name.is_empty() {
            out.push('$');
            rest = after;
            continue;
        }
        match vars.get(&name).filter(|v| !v.is_empty()) {
            Some(v) => out.push_str(v),
            None => out.push_str(&default.unwrap_or_default()),
        }
        rest = &after[used..];
    }
    out.push_str(rest);
    out
}

/// `NAME=value` pairs of an ARG or ENV instruction (also the legacy `ENV NAME value`).
pub fn assignments(args: &str) -> Vec<(String, String)> {
    let words = split_words(args);
    if words.len() >= 2 && !words[0].contains('=') {
        return vec![(words[0].clone(), words[1..].join(" "))];
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (w, String::new()),
        })
        .collect()
}

/// Whitespace-separated words; double or single quotes group (and are removed).
fn split_words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut any = false;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                    any = false;
                }
            }
            (None, c) => word.push(c),
        }
    }
    if any || !word.is_empty() {
        out.push(word);
    }
    out
}

pub fn parse(text: &str) -> Dockerfile {
    let mut file = Dockerfile::default();
    for ins in instructions(text) {
        if ins.keyword == "FROM" {
            let words: Vec<&str> = ins.args.split_whitespace().collect();
            let words: Vec<&str> = words.into_iter().filter(|w| !w.starts_with("--")).collect();
            let from = words.first().copied().unwrap_or("").to_string();
            let name = match words.as_slice() {
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some(name.to_string()),
                _ => None,
            };
            file.stages.push(Stage {
                name,
                from,
                from_line: ins.line,
                instructions: Vec::new(),
            });
            continue;
        }
        match file.stages.last_mut() {
            Some(stage) => stage.instructions.push(ins),
            None if ins.keyword == "ARG" => {
                for (k, v) in assignments(&ins.args) {
                    file.global_args.insert(k, v);
                }
            }
            None => {}
        }
    }
    file
}

impl Dockerfile {
    /// The stage `target` names, or the last one.
    pub fn stage(&self, target: Option<&str>) -> Option<&Stage> {
        match target {
            Some(t) => self.stages.iter().find(|s| s.name.as_deref() == Some(t)),
            None => self.stages.last(),
        }
    }

    /// True when `base` is an earlier stage of this file (not an image).
    pub fn is_stage(&self, base: &str) -> bool {
        self.stages.iter().any(|s| s.name.as_deref() == Some(base))
    }
}

impl Stage {
    pub fn last(&self, keyword: &str) -> Option<&Instruction> {
        self.instructions
            .iter()
            .rev()
            .find(|i| i.keyword == keyword)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# syntax comment\nARG BASE=debian:trixie-slim\nARG RUST=rust:1.95\n\
FROM ${RUST} AS build\nRUN a \\\n    && b\n\nFROM ${BASE}\nENV A=1 \\\n    B=\"two words\"\n\
USER 10001:10001\nHEALTHCHECK --interval=5s CMD [\"x\"]\n";

    #[test]
    fn joins_continuations_and_tracks_lines() {
        let ins = instructions(FILE);
        let run = ins.iter().find(|i| i.keyword == "RUN").unwrap();
        assert_eq!((run.line, run.args.as_str()), (5, "a && b"));
        let env = ins.iter().find(|i| i.keyword == "ENV").unwrap();
        assert_eq!(env.line, 9);
    }

    #[test]
    fn stages_expand_global_args() {
        let file = parse(FILE);
        assert_eq!(file.stages.len(), 2);
        assert_eq!(file.stages[0].name.as_deref(), Some("build"));
        let base = |i: usize| expand(&file.stages[i].from, &file.global_args);
        assert_eq!(base(0), "rust:1.95");
        assert_eq!(base(1), "debian:trixie-slim");
        let last = file.stage(None).unwrap();
        assert_eq!(last.last("USER").unwrap().args, "10001:10001");
        assert!(file.is_stage("build"));
        let env = assignments(&last.last("ENV").unwrap().args);
        assert_eq!(
            env,
            [("A".into(), "1".into()), ("B".into(), "two words".into())]
        );
    }

    #[test]
    fn expansion_forms() {
        let vars = BTreeMap::from([("A".to_string(), "x".to_string())]);
        assert_eq!(expand("${A}-$A-${B:-d}-${B}-$$", &vars), "x-x-d--$$");
    }
}
