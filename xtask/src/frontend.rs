//! `cargo xtask frontend`: build the web UI in `frontend/` into `frontend/dist`, which the server
//! serves (debug builds read it from disk; release builds embed it).
//!
//! Node packages are installed with `npm ci` only when `package-lock.json` changed since the last
//! install, so a repeated run costs only the checks and the bundle.

use std::path::Path;

use anyhow::Result;

use crate::util::frontend::{build, frontend_dir, install_reason, stages, Mode};

#[derive(clap::Args, Debug)]
#[command(
    about = "Build the web UI: npm ci when the lockfile changed, type check, lint, unit tests, bundle",
    long_about = "Build the web UI in frontend/ into frontend/dist, which `berth serve` serves.\n\n\
                  In order: `npm ci` (only when frontend/node_modules is missing or older than, or \
                  installed from a different, frontend/package-lock.json), then the type check \
                  (`npm run typecheck`: tsc -b), the lint (`npm run lint`: eslint), the unit tests \
                  (`npm run test`: vitest run) and the bundle (`npm run build`: vite build). \
                  The first failure stops the build.\n\n\
                  A debug server reads frontend/dist at run time: reload the page to see a new \
                  build. A release build embeds it: build the UI first. For hot reload while \
                  editing, run `npm run dev` in frontend/ beside `cargo xtask dev`: Vite serves \
                  the UI and forwards /api to the server on port 8080 (BERTH_URL to change it).",
    after_help = "Needs node (20.19 or newer) and npm; `cargo xtask doctor` shows them.\n\n\
                  Exit status:\n  0  built (or --dry-run)\n  1  npm missing, or a step failed\n  \
                  2  bad command line"
)]
pub struct Args {
    /// Only install and bundle; skip the type check, lint and unit tests (what `dev` does)
    #[arg(long)]
    bundle_only: bool,
    /// Run `npm ci` even when node_modules matches package-lock.json
    #[arg(long)]
    reinstall: bool,
    /// Print what would be done, then exit without doing it
    #[arg(long)]
    dry_run: bool,
}

pub fn run(args: Args) -> Result<()> {
    let mode = if args.bundle_only {
        Mode::BundleOnly
    } else {
        Mode::Full
    };
    let dir = frontend_dir();
    if args.dry_run {
        print!("{}", plan(&dir, mode, args.reinstall));
        return Ok(());
    }
    build(&dir, mode, args.reinstall)
}

/// The ci step: the whole build with its checks.
pub fn run_full() -> Result<()> {
    build(&frontend_dir(), Mode::Full, false)
}

fn plan(dir: &Path, mode: Mode, reinstall: bool) -> String {
    let mut out = format!("frontend --dry-run: in {}, would\n", dir.display());
    match install_reason(dir, reinstall) {
        Some(why) => out.push_str(&format!("  install:    npm ci   ({why})\n")),
        None => out.push_str("  install:    nothing (node_modules matches package-lock.json)\n"),
    }
    for (label, script) in stages(mode) {
        out.push_str(&format!("  {:<11} npm run {script}\n", format!("{label}:")));
    }
    out.push_str("  output:     frontend/dist\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dry_run_lists_every_step() {
        let text = plan(&frontend_dir(), Mode::Full, true);
        assert!(text.contains("npm ci   (--reinstall)"));
        for script in ["typecheck", "lint", "test", "build"] {
            assert!(text.contains(&format!("npm run {script}")), "{text}");
        }
    }
}
