//! Small helpers shared by the tasks.

use std::{
    env,
    path::PathBuf,
    time::{Duration, Instant},
};

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
