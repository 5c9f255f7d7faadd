//! rust-analyzer's `tidy` idea: tests that read the source tree and fail on what review would
//! otherwise have to catch. The rules:
//!
//! 1. `app/src` is layered; a module imports only its own layer and those below it
//!    (`docs/architecture.md`). HTTP, tower and hyper stay in `http` and the composition root;
//!    `domain` holds no database code either.
//! 2. No Rust file is over 800 lines. Files already over it are listed with their size as a
//!    ceiling: they may shrink, never grow, and the list only gets shorter.
//! 3. No xtask task imports another task's module, and the shared layers below them (`util`,
//!    the `stack` model) import no task. Where one task runs another's work (`ci`'s steps,
//!    `setup` bringing the stack up, `release` scanning), the composition root does it: `main.rs`
//!    and `pipeline.rs`, which are not tasks, hand the task a function.
//! 4. Processes in xtask start through `util` (xshell) or the listed modules: the count of
//!    `Command::new` outside `util` may fall, never rise.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::util::project_root;

/// The top-level modules `text` names as `crate::X`, with the line of each; grouped imports
/// (`use crate::{a::b, c};`) name each of theirs.
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (at, _) in text.match_indices("crate::") {
        let line = text[..at].matches('\n').count() + 1;
        let rest = &text[at + "crate::".len()..];
        let ident = |s: &str| -> String {
            s.trim_start()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        };
        if let Some(group) = rest.strip_prefix('{') {
            // The group's items at depth 0: `a::b`, `c::{d, e}`, `f`.
            let (mut depth, mut item_start) = (0usize, 0usize);
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        found.push((line, ident(&group[item_start..i])));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.push((line, ident(&group[item_start..i])));
                        item_start = i + 1;
                    }
                    _ => {}
                }
            }
        } else {
            found.push((line, ident(rest)));
        }
    }
    found.retain(|(_, m)| !m.is_empty());
    found
}

/// Rust files under `dir` (relative to the repository root), with their text.
fn rust_files(dir: &str) -> Vec<(PathBuf, String)> {
    let root = project_root();
    walkdir::WalkDir::new(root.join(dir))
        .into_iter()
        .map(|e| e.expect("readable tree"))
        .filter(|e| e.path().extension().is_some_and(|x| x == "rs"))
        .map(|e| {
            let rel = e.path().strip_prefix(&root).unwrap().to_owned();
            (rel, fs::read_to_string(e.path()).expect("UTF-8 source"))
        })
        .collect()
}

/// `app/src` modules, lowest layer first. A module may use `crate::X` only for X of its own
/// rank or lower.
fn app_rank(module: &str) -> Option<usize> {
    Some(match module {
        // Leaves: they import nothing of the crate.
        "domain" | "error" | "metrics" | "tls" => 0,
        // The outside systems: database, model servers, the built-in embedder, Redis.
        "store" | "llm" | "embed" | "hub" | "cache" => 1,
        "service" => 2,
        "http" => 3,
        // The composition root and the operator commands.
        "admin_cli" | "cli" | "config" | "maintenance" | "migrate_cli" | "models_cli"
        | "startup" | "telemetry" | "main" | "healthcheck" | "lib" => 4,
        _ => return None,
    })
}

/// The top-level module a file of the crate rooted at `src` belongs to.
fn top_module(rel: &Path, src: &str) -> String {
    let inner = rel.strip_prefix(src).unwrap();
    let first = inner
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

#[test]
fn grouped_imports_name_each_module() {
    let text =
        "use crate::{\n    doctor::{Status, Tool},\n    util::x,\n};\nlet a = crate::k8s::run();";
    let found: Vec<_> = crate_paths(text).into_iter().map(|(_, m)| m).collect();
    assert_eq!(found, ["doctor", "util", "k8s"]);
}

#[test]
fn app_layers_import_only_downward() {
    let mut broken = Vec::new();
    for (rel, text) in rust_files("app/src") {
        let module = top_module(&rel, "app/src");
        let Some(rank) = app_rank(&module) else {
            broken.push(format!(
                "{}: module `{module}` has no layer; add it to tidy::app_rank",
                rel.display()
            ));
            continue;
        };
        for (line, target) in crate_paths(&text) {
            if target == module || target == "self" {
                continue;
            }
            match app_rank(&target) {
                Some(r) if r <= rank => {}
                _ => broken.push(format!(
                    "{}:{line}: `{module}` imports `crate::{target}`, a higher layer",
                    rel.display(),
                )),
            }
        }
        for (n, line) in text.lines().enumerate() {
            let below_http = rank <= 2;
            for framework in [
                "axum::",
                "tower::",
                "tower_http::",
                "hyper::",
                "hyper_util::",
            ] {
                if below_http && line.contains(framework) {
                    broken.push(format!(
                        "{}:{}: `{module}` uses {framework} (HTTP belongs in `http`)",
                        rel.display(),
                        n + 1
                    ));
                }
            }
            if module == "domain" && line.contains("sqlx") {
                broken.push(format!(
                    "{}:{}: `domain` uses sqlx (rows belong in `store`)",
                    rel.display(),
                    n + 1
                ));
            }
        }
    }
    assert!(broken.is_empty(), "layering broken:\n{}", broken.join("\n"));
}

/// Files over the limit today, with their size: they may not grow. Split one, then lower or
/// remove its line here.
const LONG_FILES: &[(&str, usize)] = &[];

const MAX_LINES: usize = 800;

#[test]
fn no_file_grows_past_800_lines() {
    let mut broken = Vec::new();
    for dir in ["app", "xtask", "tests", "bench"] {
        for (rel, text) in rust_files(dir) {
            let lines = text.lines().count();
            let name = rel.to_string_lossy().into_owned();
            let ceiling = LONG_FILES
                .iter()
                .find(|(f, _)| *f == name)
                .map_or(MAX_LINES, |(_, n)| *n);
            if lines > ceiling {
                broken.push(format!(
                    "{name}: {lines} lines (at most {ceiling}); split it by what it does"
                ));
            }
        }
    }
    for (name, _) in LONG_FILES {
        assert!(
            project_root().join(name).is_file(),
            "{name} is gone: remove it from tidy::LONG_FILES"
        );
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

/// xtask's task modules (everything but the shared `util`, the `stack` model and the
/// composition root, `main` and `pipeline`).
const TASKS: &[&str] = &[
    "admin",
    "backup",
    "bench",
    "ci",
    "deploy",
    "dev",
    "doctor",
    "e2e",
    "faults",
    "fixtures",
    "frontend",
    "fuzz",
    "gen",
    "k8s",
    "lifecycle",
    "release",
    "scan",
    "setup",
];

#[test]
fn no_xtask_task_imports_another() {
    let mut found = BTreeSet::new();
    for (rel, text) in rust_files("xtask/src") {
        let module = top_module(&rel, "xtask/src");
        let shared = module == "util" || module == "stack";
        if !shared && !TASKS.contains(&module.as_str()) {
            continue;
        }
        // Tests may reach across (they check what a task hands another).
        let code = text.split("#[cfg(test)]").next().unwrap();
        for (line, target) in crate_paths(code) {
            if target != module && TASKS.contains(&target.as_str()) {
                found.insert(format!(
                    "{}:{line}: `{module}` imports `{target}`",
                    rel.display()
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "tasks import only util, the stack model and their own modules (move the shared code \
         into util or the stack model, or compose the tasks in main.rs/pipeline.rs):\n{}",
        found.into_iter().collect::<Vec<_>>().join("\n")
    );
}

/// `Command::new` outside `util` today; processes belong to the one process layer.
const COMMANDS_OUTSIDE_UTIL: usize = 48;

#[test]
fn processes_start_through_the_process_layer() {
    let count: usize = rust_files("xtask/src")
        .iter()
        .filter(|(rel, _)| !rel.starts_with("xtask/src/util") && !rel.ends_with("tidy.rs"))
        .map(|(_, text)| text.matches("Command::new(").count())
        .sum();
    assert!(
        count <= COMMANDS_OUTSIDE_UTIL,
        "{count} `Command::new` outside xtask/src/util/ (at most {COMMANDS_OUTSIDE_UTIL}): \
         run processes through util (xshell)"
    );
    assert!(
        count == COMMANDS_OUTSIDE_UTIL,
        "down to {count}: lower tidy::COMMANDS_OUTSIDE_UTIL to match"
    );
}
