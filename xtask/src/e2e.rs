//! `cargo xtask e2e`: the browser tests in tests/e2e. Chromium, driven by playwright-core, uses
//! the web UI of the real server binary (embedded store) with an in-test LLM server.

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};
use walkdir::WalkDir;

use crate::{
    util::frontend::{self, Mode},
    util::{project_root, section},
};

/// The browsers tried, in order, when --chromium is not given.
const CHROMIUM: &[&str] = &["chromium", "chromium-browser", "google-chrome"];

#[derive(clap::Args, Debug)]
#[command(
    about = "Run the browser tests (tests/e2e) against the real server in Chromium",
    long_about = "Build the server (cargo build --locked -p berth) and the web UI bundle, \
                  install tests/e2e's npm packages when its lockfile changed, then run \
                  tests/e2e/*.test.mjs with node's test runner. Each test file starts \
                  `berth serve` on a free port with a fresh data directory and an in-test \
                  Ollama-compatible LLM server, and drives Chromium (headless) through \
                  playwright-core.\n\n\
                  A test fails if any page logs a console error or throws. Screenshots of every \
                  page go to test-artifacts/screenshots/, timings and the bundle size to \
                  test-artifacts/e2e-perf.json. Every page is checked at desktop and phone size, \
                  light and dark: no sideways overflow, no serious axe-core violation.",
    after_help = "Environment:\n  \
                  BERTH_E2E_CHROMIUM=PATH  the browser (default: chromium on PATH)\n  \
                  BERTH_E2E_HEADED=1       show the browser window (needs a display)\n  \
                  CARGO_TARGET_DIR         where cargo puts debug/berth\n\n\
                  Needs node, npm and Debian's chromium (`apt-get install chromium`).\n\n\
                  Exit status:\n  0  every test passed (or --dry-run)\n  1  a test failed, or a tool is missing\n  \
                  2  bad command line"
)]
pub struct Args {
    /// Test this server binary instead of building target/debug/berth
    #[arg(long, value_name = "PATH")]
    bin: Option<PathBuf>,
    /// Chromium binary [default: $BERTH_E2E_CHROMIUM, else chromium, chromium-browser or
    /// google-chrome on PATH]
    #[arg(long, value_name = "PATH")]
    chromium: Option<PathBuf>,
    /// Only test files whose name contains TEXT
    #[arg(long, value_name = "TEXT")]
    only: Option<String>,
    /// Refresh the README's screenshots in docs/screenshots/ (the main pages at desktop and
    /// phone size): runs the page sweep (pages.test.mjs) unless --only names other files
    #[arg(long)]
    screenshots: bool,
    /// Print what would be done, then exit without doing it
    #[arg(long)]
    dry_run: bool,
}

/// The ci step: everything with the defaults.
pub fn run_default() -> Result<()> {
    run(Args {
        bin: None,
        chromium: None,
        only: None,
        screenshots: false,
        dry_run: false,
    })
}

pub fn run(args: Args) -> Result<()> {
    let root = project_root();
    let e2e_dir = root.join("tests/e2e");
    let (bin, build) = match &args.bin {
        Some(bin) => (std::path::absolute(bin)?, false),
        None => (target_dir(&root).join("debug/berth"), true),
    };
    let only = match (&args.only, args.screenshots) {
        (None, true) => Some(SCREENSHOT_TESTS.to_string()),
        (only, _) => only.clone(),
    };
    let files = test_files(&e2e_dir, only.as_deref());
    if files.is_empty() {
        bail!(
            "no test files (*.test.mjs) in {}{}",
            e2e_dir.display(),
            only.as_deref()
                .map_or(String::new(), |o| format!(" matching {o:?}"))
        );
    }
    let chosen = args
        .chromium
        .clone()
        .or_else(|| env::var_os("BERTH_E2E_CHROMIUM").map(PathBuf::from));
    let chromium = match (chosen, args.dry_run) {
        (Some(path), _) => path,
        (None, dry) => find_chromium().or_else(|err| {
            if dry {
                Ok(PathBuf::from("chromium"))
            } else {
                Err(err)
            }
        })?,
    };
    let mut test = Command::new("node");
    test.arg("--test")
        .args(&files)
        .current_dir(&root)
        .env("BERTH_BIN", &bin)
        .env("BERTH_E2E_CHROMIUM", &chromium)
        .env("BERTH_E2E_ARTIFACTS", root.join("test-artifacts"));
    let docs_screenshots = root.join("docs/screenshots");
    if args.screenshots {
        test.env("BERTH_E2E_DOCS_SCREENSHOTS", &docs_screenshots);
    }

    if args.dry_run {
        println!("e2e --dry-run: would");
        if build {
            println!("  build:   cargo build --locked -p berth");
        } else {
            println!("  build:   nothing (--bin {})", bin.display());
        }
        println!("  bundle:  cargo xtask frontend --bundle-only");
        println!("  install: npm ci in tests/e2e when its lockfile changed");
        if args.screenshots {
            println!(
                "  replace: the PNGs in {} with this run's",
                docs_screenshots.display()
            );
        }
        println!(
            "  run:     BERTH_BIN={} BERTH_E2E_CHROMIUM={} {}",
            bin.display(),
            chromium.display(),
            show(&test)
        );
        return Ok(());
    }

    which::which("node").context("node is not on PATH: install Node.js 20.19 or newer")?;
    let npm = frontend::npm()?;
    if build {
        section("e2e: cargo build --locked -p berth");
        let status = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["build", "--locked", "-p", "berth"])
            .current_dir(&root)
            .status()
            .context("running cargo build")?;
        if !status.success() {
            bail!("cargo build failed ({status})");
        }
    }
    if !bin.is_file() {
        bail!("no server binary at {}", bin.display());
    }
    // The server (a debug build reads frontend/dist at run time) must serve the current UI.
    frontend::build(&frontend::frontend_dir(), Mode::BundleOnly, false)?;
    frontend::ensure_installed(&npm, &e2e_dir, false)?;
    // The OpenID provider the single sign-on test signs in at (tests/oidc/provider.mjs).
    frontend::ensure_installed(&npm, &root.join("tests/oidc"), false)?;
    // This run's screenshots only; each test file adds its own.
    let _ = std::fs::remove_dir_all(root.join("test-artifacts/screenshots"));
    if args.screenshots {
        remove_pngs(&docs_screenshots)?;
    }
    section(&format!("e2e: {}", show(&test)));
    let status = test.status().context("running node --test")?;
    if !status.success() {
        bail!("browser tests failed ({status}); screenshots are in test-artifacts/screenshots/");
    }
    Ok(())
}

/// The test file that takes the README's screenshots.
const SCREENSHOT_TESTS: &str = "pages";

/// The old screenshots go, so a page no longer shown leaves none behind.
fn remove_pngs(dir: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "png") {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(())
}

/// A command as a human would type it.
fn show(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn target_dir(root: &Path) -> PathBuf {
    // The build runs in the root, so a relative CARGO_TARGET_DIR is relative to it.
    env::var_os("CARGO_TARGET_DIR").map_or(root.join("target"), |dir| root.join(dir))
}

fn find_chromium() -> Result<PathBuf> {
    CHROMIUM
        .iter()
        .find_map(|name| which::which(name).ok())
        .with_context(|| {
            format!(
                "no browser: none of {} is on PATH (Debian: `apt-get install chromium`), \
                 or set BERTH_E2E_CHROMIUM",
                CHROMIUM.join(", ")
            )
        })
}

/// `*.test.mjs` under `dir`, outside node_modules, sorted.
fn test_files(dir: &Path, only: Option<&str>) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = WalkDir::new(dir)
        .into_iter()
        .filter_entry(|e| e.file_name() != "node_modules")
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            name.is_some_and(|n| n.ends_with(".test.mjs") && only.is_none_or(|o| n.contains(o)))
        })
        .collect();
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_browser_tests() {
        let dir = project_root().join("tests/e2e");
        let files = test_files(&dir, None);
        assert!(!files.is_empty(), "no *.test.mjs in {}", dir.display());
        assert!(files
            .iter()
            .all(|f| !f.to_string_lossy().contains("node_modules")));
        assert!(test_files(&dir, Some("no-such-test-name")).is_empty());
    }

    #[test]
    fn relative_target_dirs_are_relative_to_the_root() {
        let root = Path::new("/repo");
        // Only the default is checked: the variable is process-wide.
        if env::var_os("CARGO_TARGET_DIR").is_none() {
            assert_eq!(target_dir(root), Path::new("/repo/target"));
        }
    }
}
