//! Where one task runs others: the composition root's half that is not the command line (that
//! is `main.rs`). Tasks import only `util`, the stack model and their own modules; when a task
//! needs another's work (`ci`'s steps, `setup` bringing the stack up, `release` scanning),
//! `main` hands it one of these functions.

use std::{path::Path, process::ExitCode};

use anyhow::{bail, Result};

use crate::util::{stage::StageArgs, Note};
use crate::{
    ci, e2e, faults, fixtures, frontend, fuzz, gen, k8s, lifecycle, release, scan, upgrade_test,
};

/// `ci`'s steps that are other tasks' checks.
pub fn run_check(check: ci::Check, note: &mut Note) -> Result<()> {
    match check {
        ci::Check::Gen => gen::run_check(),
        ci::Check::K8s => k8s::run_ci(),
        ci::Check::Scan => scan::run_ci(),
        ci::Check::Fixtures => {
            let args = fixtures::Args {
                dry_run: false,
                rebuild: false,
                only: Vec::new(),
            };
            fixtures::run(args).map(drop)
        }
        ci::Check::Frontend => frontend::run_full(),
        ci::Check::E2e => e2e::run_default(),
        ci::Check::Faults => faults::run_ci(note),
        ci::Check::Fuzz => fuzz::run_ci(note),
        ci::Check::Upgrade => upgrade_test::run_ci(),
    }
}

/// `setup`'s "bring the stack up": `cargo xtask up` for the stage and profiles, building the
/// images and waiting up to 10 minutes for health.
pub fn up_for_setup(stage: &StageArgs, profiles: &[String], dry_run: bool) -> Result<ExitCode> {
    lifecycle::up(lifecycle::UpArgs {
        stage: stage.clone(),
        profiles: profiles.to_vec(),
        no_build: false,
        timeout: 600,
        dry_run,
    })
}

/// `release`'s security scan: the whole scan (external scanners too), its reports in the
/// release's directory, its summary printed.
pub fn release_scan(root: &Path, dir: &Path) -> Result<release::ScanResult> {
    let report = scan::scan(root, true)?;
    let reports = scan::write_reports(&report, dir)?;
    print!("{}", scan::report::summary(&report));
    if reports.is_empty() {
        bail!("the scan wrote no report");
    }
    Ok(release::ScanResult {
        score: report.score,
        open_high: report.open_high,
        open_medium: report.open_medium,
        reports,
    })
}
