//! What the tasks share: paths, output (sections, warnings, timers), the process layer's
//! extras ([`process`]) and the tool table ([`tools`]).

pub mod cargo;
pub mod docker;
pub mod frontend;
pub mod k8s;
pub mod process;
pub mod stage;
pub mod test_models;
pub mod time;
pub mod tools;

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

/// What a `ci` step counted (scenarios, inputs, failures), for the summary beside its result;
/// the step fills it in, passed or failed.
#[derive(Debug, Default)]
pub struct Note(Option<String>);

impl Note {
    pub fn set(&mut self, text: impl Into<String>) {
        self.0 = Some(text.into());
    }

    pub fn take(&mut self) -> Option<String> {
        self.0.take()
    }
}

/// The repository root: xtask lives one level below it.
pub fn project_root() -> PathBuf {
    // `cargo run` sets CARGO_MANIFEST_DIR at run time; fall back to the path baked in at
    // build time when the binary is started directly.
    let dir = env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into());
    PathBuf::from(dir)
        .parent()
        .expect("xtask/ has a parent")
        .to_path_buf()
}

/// Where the dev server (`cargo xtask dev`, `cargo xtask admin --stage dev`) keeps its data
/// unless `--data-dir` says otherwise.
pub fn dev_data_dir() -> PathBuf {
    project_root().join(".berth-dev/data")
}

/// Where `cargo xtask fixtures` keeps the real models the tests run: `$BERTH_TEST_MODELS`, else
/// `~/.cache/berth/test-models` (the rule `berth_embed::test_models_dir` follows; xtask does not
/// link the embedder to ask it).
pub fn test_models_dir() -> PathBuf {
    match std::env::var_os("BERTH_TEST_MODELS") {
        Some(dir) => dir.into(),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache/berth/test-models"),
    }
}

/// The built-in embedder's default model, as `berth models pull` names it.
pub const DEFAULT_EMBED_MODEL: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// The server binary the dev tasks run.
pub struct ServerBin {
    pub path: PathBuf,
    /// False when BERTH_DEV_BIN names a ready binary: nothing to build.
    pub build: bool,
}

impl ServerBin {
    /// A command running this binary.
    pub fn command(&self) -> Command {
        Command::new(&self.path)
    }
}

/// `BERTH_DEV_BIN` if set, else `target/debug/berth` as `cargo build -p berth` in the repository
/// root leaves it (honouring CARGO_TARGET_DIR).
pub fn dev_server_bin() -> anyhow::Result<ServerBin> {
    if let Some(bin) = env::var_os("BERTH_DEV_BIN") {
        return Ok(ServerBin {
            path: std::path::absolute(bin)?,
            build: false,
        });
    }
    // The build runs in the root, so a relative CARGO_TARGET_DIR is relative to it.
    let root = project_root();
    let target = env::var_os("CARGO_TARGET_DIR").map_or(root.join("target"), |dir| root.join(dir));
    Ok(ServerBin {
        path: target.join("debug/berth"),
        build: true,
    })
}

/// A command as a human would type it (for progress lines and `--dry-run`).
pub fn show(command: &Command) -> String {
    let mut shown = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        shown.push(' ');
        shown.push_str(&arg.to_string_lossy());
    }
    shown
}

/// Prints a progress heading. Progress goes to stderr, results to stdout.
pub fn section(title: &str) {
    eprintln!("==> {title}");
}

/// Prints something the user must not miss (a skipped check, a failed build).
pub fn warn(message: &str) {
    eprintln!("!! {message}");
}

/// True under CI (`CI=true`, as GitHub Actions and .ci/run set it).
pub fn is_ci() -> bool {
    env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// Measures how long a step takes.
pub struct Timer(Instant);

impl Timer {
    pub fn start() -> Timer {
        Timer(Instant::now())
    }

    pub fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
}

/// `12.3s`: the precision a human wants for a build step.
pub fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// Temp name, fsync, rename: a report is whole or absent.
pub fn write_atomic(path: &Path, content: &[u8]) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use std::io::Write;
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    let mut f =
        std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(content)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot rename to {}", path.display()))?;
    Ok(())
}

/// Secrets must never reach git: refuse to write them where git would pick them up.
pub fn refuse_tracked_secrets(root: &Path, dir: &Path) -> anyhow::Result<()> {
    if !root.join(".git").exists() || !dir.starts_with(root) {
        return Ok(());
    }
    let probe = dir.join("probe");
    let ignored = std::process::Command::new("git")
        .current_dir(root)
        .args(["check-ignore", "--quiet", "--no-index"])
        .arg(&probe)
        .status()
        .map(|s| s.success())
        .unwrap_or(true);
    if !ignored {
        anyhow::bail!(
            "{} is not ignored by git: add it to .gitignore before secrets are written there",
            dir.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_root_holds_the_workspace_manifest() {
        let root = project_root();
        assert!(root.join("Cargo.toml").is_file());
        assert!(root.join("xtask/Cargo.toml").is_file());
    }

    #[test]
    fn secs_has_one_decimal() {
        assert_eq!(secs(Duration::from_millis(12_345)), "12.3s");
        assert_eq!(secs(Duration::ZERO), "0.0s");
    }
}
