//! `cargo xtask gen [--check]`: the files generated from deploy/stack.toml.

use std::{fs, path::Path, process::Command, time::Duration};

use anyhow::{bail, Context, Result};

use crate::{
    stack::Stack,
    util::process::run_with_timeout,
    util::{project_root, section, warn},
};

#[derive(clap::Args, Debug)]
#[command(
    about = "Generate the compose files and .env.example from deploy/stack.toml",
    long_about = "Read deploy/stack.toml, check it (unknown keys, references to undefined \
                  services, networks, volumes, secrets, profiles or variables, port clashes, \
                  missing health checks, root users, unpublished-data-service rules), and write \
                  what is generated from it: one compose file per stage (docker/compose.yaml for \
                  prod, docker/compose.dev.yaml for dev) and .env.example. Output is \
                  deterministic; files that did not change are not touched.\n\n\
                  With --check, write nothing: fail if any generated file differs from what \
                  would be generated, showing the difference.\n\n\
                  When `docker compose` is installed, each compose file is also validated with \
                  `docker compose config --quiet` (every profile enabled).",
    after_help = "Exit status:\n  0  files are (now) up to date and valid\n  \
                  1  the stack file has errors, a file is stale (--check), or compose rejects one\n  \
                  2  bad command line"
)]
pub struct Args {
    /// Change nothing; fail if a generated file is missing or differs
    #[arg(long)]
    check: bool,
}

/// The ci step: `cargo xtask gen --check`.
pub fn run_check() -> Result<()> {
    run(Args { check: true })
}

pub fn run(args: Args) -> Result<()> {
    let root = project_root();
    let stack = Stack::load(&root)?;
    let mut files = stack.generate();
    files.extend(crate::stack::k8s::generate::files(&stack)?);
    let mut stale = Vec::new();
    for (path, content) in &files {
        let full = root.join(path);
        let current = fs::read_to_string(&full).ok();
        if current.as_deref() == Some(content.as_str()) {
            if !args.check {
                eprintln!("gen: {path} is up to date");
            }
            continue;
        }
        if args.check {
            match &current {
                None => eprintln!("gen: {path} is missing"),
                Some(old) => {
                    eprintln!(
                        "gen: {path} differs from what {} gives:",
                        crate::stack::STACK_PATH
                    );
                    eprint!("{}", diff(old, content, 40));
                }
            }
            stale.push(path.clone());
        } else {
            if let Some(dir) = full.parent() {
                fs::create_dir_all(dir)?;
            }
            fs::write(&full, content).with_context(|| format!("writing {path}"))?;
            eprintln!("gen: wrote {path}");
        }
    }
    if !stale.is_empty() {
        bail!(
            "generated files are stale: {}; run `cargo xtask gen` and commit the result",
            stale.join(", ")
        );
    }
    validate_with_compose(&root, &stack)?;
    Ok(())
}

/// `docker compose config --quiet` on each generated compose file, every profile enabled.
/// Skipped (with a notice) where `docker compose` is missing; required under CI.
pub fn validate_with_compose(root: &Path, stack: &Stack) -> Result<()> {
    let probe = {
        let mut c = Command::new("docker");
        c.args(["compose", "version"]);
        run_with_timeout(c, Duration::from_secs(10))
    };
    match probe {
        Ok(Some(out)) if out.status.success() => {}
        _ => {
            if crate::util::is_ci() {
                bail!("`docker compose` is not available, and CI must validate the compose files");
            }
            warn("gen: `docker compose` not found; the compose files were not validated by it");
            return Ok(());
        }
    }
    for name in stack.stage_names() {
        let stage = stack.stage(&name)?;
        section(&format!("docker compose config --quiet ({})", stage.file));
        let mut c = Command::new("docker");
        c.current_dir(root).args(["compose", "--file", &stage.file]);
        for p in stack.profile_names() {
            c.args(["--profile", &p]);
        }
        c.args(["config", "--quiet"]);
        // Only the stack's defaults: a developer's environment must not make this pass or fail.
        for (key, _) in std::env::vars_os() {
            if let Some(k) = key.to_str() {
                if stack.file.variables.contains_key(k) || k.starts_with("COMPOSE_") {
                    c.env_remove(k);
                }
            }
        }
        let out = run_with_timeout(c, Duration::from_secs(60))?
            .context("`docker compose config` did not finish within 60 s")?;
        if !out.status.success() {
            bail!(
                "docker compose rejects {}:\n{}",
                stage.file,
                String::from_utf8_lossy(&out.stderr).trim_end()
            );
        }
    }
    Ok(())
}

/// A line diff of `old` → `new` in unified style (`-`/`+`, two lines of context), at most
/// `limit` lines of it. (`similar` finds the changes; this only shapes them.)
pub fn diff(old: &str, new: &str, limit: usize) -> String {
    use similar::{ChangeTag, TextDiff};
    let diff = TextDiff::from_lines(old, new);
    let changed = diff
        .iter_all_changes()
        .filter(|c| c.tag() != ChangeTag::Equal)
        .count();
    let (mut out, mut lines, mut shown_changes) = (String::new(), 0, 0);
    for group in diff.grouped_ops(2) {
        for (k, change) in group
            .iter()
            .flat_map(|op| diff.iter_changes(op))
            .enumerate()
        {
            if k == 0 {
                let line = change.old_index().or(change.new_index()).unwrap_or(0) + 1;
                out.push_str(&format!("@@ line {line} @@\n"));
            }
            if lines == limit {
                out.push_str(&format!(
                    "... ({} more changed lines)\n",
                    changed - shown_changes
                ));
                return out;
            }
            let tag = match change.tag() {
                ChangeTag::Equal => ' ',
                ChangeTag::Delete => '-',
                ChangeTag::Insert => '+',
            };
            if tag != ' ' {
                shown_changes += 1;
            }
            out.push(tag);
            out.push_str(change.value().trim_end_matches('\n'));
            out.push('\n');
            lines += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_shows_changes_with_context() {
        let old = "a\nb\nc\nd\ne\nf\ng\n";
        let new = "a\nb\nc\nD\ne\nf\ng\nh\n";
        assert_eq!(
            diff(old, new, 40),
            "@@ line 2 @@\n b\n c\n-d\n+D\n e\n f\n g\n+h\n"
        );
    }

    #[test]
    fn diff_is_capped() {
        let old: String = (0..100).map(|i| format!("{i}\n")).collect();
        let out = diff(&old, "", 5);
        assert!(out.ends_with("... (95 more changed lines)\n"), "{out}");
    }

    /// The checked-in generated files match deploy/stack.toml (what `gen --check` does in ci,
    /// also run by `cargo test` so a stale file fails close to the change that staled it).
    #[test]
    fn generated_files_are_fresh() {
        let root = project_root();
        let stack = Stack::load(&root).unwrap_or_else(|e| panic!("{e}"));
        let k8s = crate::stack::k8s::generate::files(&stack).unwrap();
        for (path, content) in stack.generate().into_iter().chain(k8s) {
            let current = fs::read_to_string(root.join(&path)).unwrap_or_default();
            assert!(
                current == content,
                "{path} is stale; run `cargo xtask gen`:\n{}",
                diff(&current, &content, 40)
            );
        }
    }
}
