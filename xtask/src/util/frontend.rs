//! Building the web UI in `frontend/` (`npm ci` when its lockfile changed, then the npm scripts),
//! as `frontend`, `dev` and `e2e` all do.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::SystemTime,
};

use anyhow::{bail, Context, Result};

use super::{project_root, secs, section, Timer};

/// What to run after the install.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Type check, lint, unit tests, bundle.
    Full,
    /// The bundle only.
    BundleOnly,
}

/// The npm scripts (see frontend/package.json) in the order they run.
const STAGES: &[(&str, &str)] = &[
    ("type check", "typecheck"),
    ("lint", "lint"),
    ("unit tests", "test"),
    ("bundle", "build"),
];

/// Written into node_modules after `npm ci`: a hash of the lockfile it installed.
const STAMP: &str = ".berth-lock-hash";

pub fn frontend_dir() -> PathBuf {
    project_root().join("frontend")
}

pub fn stages(mode: Mode) -> impl Iterator<Item = &'static (&'static str, &'static str)> {
    STAGES
        .iter()
        .filter(move |(_, script)| mode == Mode::Full || *script == "build")
}

/// Installs if needed, then runs the stages `mode` selects.
pub fn build(dir: &Path, mode: Mode, reinstall: bool) -> Result<()> {
    let npm = npm()?;
    if !dir.join("package.json").is_file() {
        bail!("{} has no package.json", dir.display());
    }
    let timer = Timer::start();
    ensure_installed(&npm, dir, reinstall)?;
    for (label, script) in stages(mode) {
        section(&format!("frontend {label}: npm run {script}"));
        let status = Command::new(&npm)
            .args(["run", script])
            .current_dir(dir)
            .status()
            .with_context(|| format!("running npm run {script}"))?;
        if !status.success() {
            bail!("frontend {label} failed (`npm run {script}` in frontend/: {status})");
        }
    }
    section(&format!(
        "frontend built into frontend/dist in {}",
        secs(timer.elapsed())
    ));
    for (name, size) in bundle_files(&dir.join("dist/assets")) {
        eprintln!("    {name}  {}", kib(size));
    }
    Ok(())
}

/// npm, or a clear error naming what to install.
pub fn npm() -> Result<PathBuf> {
    which::which("npm").map_err(|_| {
        anyhow::anyhow!(
            "npm is not on PATH: install Node.js 20.19 or newer with npm (`cargo xtask doctor` \
             lists what each task needs)"
        )
    })
}

/// Runs `npm ci` in `dir` when its node_modules does not match its package-lock.json.
pub fn ensure_installed(npm: &Path, dir: &Path, force: bool) -> Result<()> {
    let shown = dir.strip_prefix(project_root()).unwrap_or(dir).display();
    let Some(why) = install_reason(dir, force) else {
        section(&format!("{shown}: npm packages are up to date"));
        // Remember what is installed, so a later lockfile with an older timestamp is noticed.
        if let Some(hash) = lock_hash(dir) {
            let _ = fs::write(dir.join("node_modules").join(STAMP), hash);
        }
        return Ok(());
    };
    section(&format!("{shown}: npm ci ({why})"));
    let status = Command::new(npm)
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .status()
        .context("running npm ci")?;
    if !status.success() {
        bail!("`npm ci` failed in {shown} ({status})");
    }
    if let Some(hash) = lock_hash(dir) {
        fs::write(dir.join("node_modules").join(STAMP), hash)
            .context("writing the install stamp")?;
    }
    Ok(())
}

/// Why `npm ci` must run in `dir`, or `None` if node_modules is current.
pub fn install_reason(dir: &Path, force: bool) -> Option<String> {
    if force {
        return Some("--reinstall".into());
    }
    let lock = dir.join("package-lock.json");
    let installed = dir.join("node_modules/.package-lock.json");
    let modified = |path: &Path| fs::metadata(path).and_then(|m| m.modified()).ok();
    let Some(installed_at) = modified(&installed) else {
        return Some("node_modules is missing or incomplete".into());
    };
    let lock_at = modified(&lock).unwrap_or(SystemTime::UNIX_EPOCH);
    if lock_at > installed_at {
        return Some("package-lock.json is newer than node_modules".into());
    }
    let stamp = fs::read_to_string(dir.join("node_modules").join(STAMP)).ok();
    match (stamp, lock_hash(dir)) {
        (Some(stamp), Some(hash)) if stamp.trim() != hash => {
            Some("package-lock.json differs from the one installed".into())
        }
        _ => None,
    }
}

/// FNV-1a of the lockfile: enough to tell two lockfiles apart, and stable across Rust versions.
fn lock_hash(dir: &Path) -> Option<String> {
    let bytes = fs::read(dir.join("package-lock.json")).ok()?;
    Some(format!("{:016x}", fnv1a(&bytes)))
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn bundle_files(assets: &Path) -> Vec<(String, u64)> {
    let mut files: Vec<_> = fs::read_dir(assets)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let size = e.metadata().ok().filter(|m| m.is_file())?.len();
            Some((format!("assets/{}", e.file_name().to_string_lossy()), size))
        })
        .collect();
    files.sort();
    files
}

fn kib(bytes: u64) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn temp_dir(name: &str) -> tempfile::TempDir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("xtask-frontend-{name}-"))
            .tempdir()
            .unwrap();
        fs::create_dir_all(dir.path().join("node_modules")).unwrap();
        dir
    }

    fn touch(path: &Path, text: &str, age: Duration) {
        fs::write(path, text).unwrap();
        let when = SystemTime::now() - age;
        fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(when)
            .unwrap();
    }

    #[test]
    fn installs_when_node_modules_is_missing_or_stale() {
        let tmp = temp_dir("stale");
        let dir = tmp.path().to_path_buf();
        let lock = dir.join("package-lock.json");
        let installed = dir.join("node_modules/.package-lock.json");
        touch(&lock, "{\"v\":1}", Duration::from_secs(100));
        assert!(install_reason(&dir, false).unwrap().contains("missing"));

        touch(&installed, "{}", Duration::from_secs(200));
        assert!(install_reason(&dir, false).unwrap().contains("newer"));

        touch(&installed, "{}", Duration::from_secs(10));
        assert_eq!(install_reason(&dir, false), None);
        assert_eq!(install_reason(&dir, true).as_deref(), Some("--reinstall"));

        // Installed from another lockfile, even if that one is older on disk.
        fs::write(
            dir.join("node_modules").join(STAMP),
            lock_hash(&dir).unwrap(),
        )
        .unwrap();
        assert_eq!(install_reason(&dir, false), None);
        touch(&lock, "{\"v\":2}", Duration::from_secs(100));
        assert!(install_reason(&dir, false).unwrap().contains("differs"));
    }

    #[test]
    fn fnv1a_matches_the_reference_values() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn bundle_only_runs_just_the_build() {
        let all: Vec<_> = stages(Mode::Full).map(|(_, s)| *s).collect();
        assert_eq!(all, ["typecheck", "lint", "test", "build"]);
        let bundle: Vec<_> = stages(Mode::BundleOnly).map(|(_, s)| *s).collect();
        assert_eq!(bundle, ["build"]);
    }

    #[test]
    fn the_scripts_exist_in_package_json() {
        let manifest = fs::read_to_string(frontend_dir().join("package.json")).unwrap();
        for (_, script) in STAGES {
            assert!(manifest.contains(&format!("\"{script}\":")), "{script}");
        }
    }
}
