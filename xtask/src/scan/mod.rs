//! `cargo xtask scan`: the security report. Berth's own policy checks ([`policy`]) on the
//! Dockerfiles, the generated compose files and the Kubernetes manifests, plus whichever external
//! scanners are installed ([`external`]); findings accepted in deploy/scan-accept.toml
//! ([`accept`]) are reported but do not fail. Writes Markdown, JSON and SARIF ([`report`]).

pub mod accept;
pub mod dockerfile;
pub mod external;
pub mod policy;
pub mod report;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::{
    stack::Stack,
    util::{project_root, section, warn},
};

#[derive(clap::Args, Debug)]
#[command(
    about = "Security report: policy checks on Dockerfiles, compose files and manifests, plus external scanners",
    long_about = "Check what Berth deploys against its container policy: non-root users, health \
                  checks, read-only root file systems, no-new-privileges, dropped capabilities, \
                  resource limits, pinned base images, no secrets in images or environment \
                  defaults, no published data-service ports in production, and (when \
                  deploy/k8s exists) the Kubernetes restricted profile. The compose files are \
                  read as `docker compose config` resolves them, with every profile on.\n\n\
                  External scanners run when installed (trivy, grype, hadolint, checkov); each is \
                  listed as run or skipped, with why.\n\n\
                  Writes report.md, report.json and report.sarif (for GitHub code scanning) to \
                  --out, prints the summary and a score (100 minus weighted open findings).\n\n\
                  To accept a finding, add it to deploy/scan-accept.toml with a reason (and \
                  optionally an expiry date); see docs/security.md.",
    after_help = "Exit status:\n  0  no open high-severity finding\n  1  an open high finding (or \
                  the scan could not run)\n  2  bad command line"
)]
pub struct Args {
    /// Directory for report.md, report.json, report.sarif
    #[arg(long, default_value = "target/scan", value_name = "DIR")]
    pub out: PathBuf,
    /// Also fail on open medium findings
    #[arg(long)]
    pub strict: bool,
    /// Print what would be scanned and written, write nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }

    /// What one open finding costs the score.
    fn weight(self) -> u32 {
        match self {
            Severity::Low => 1,
            Severity::Medium => 5,
            Severity::High => 20,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// The rule's id (policy::RULES, or the external tool's own id).
    pub rule: String,
    pub severity: Severity,
    /// `berth`, or the external scanner that reported it.
    pub source: String,
    /// `FILE:SUBJECT`, what deploy/scan-accept.toml matches (e.g. `docker/compose.yaml:ollama`).
    pub target: String,
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
    /// The reason, when deploy/scan-accept.toml accepts it.
    pub accepted: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ScannerRun {
    pub name: String,
    /// `run`, `skipped` or `failed`.
    pub status: String,
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct Scan {
    pub findings: Vec<Finding>,
    pub scanners: Vec<ScannerRun>,
    /// What was checked, relative to the root.
    pub scanned: Vec<String>,
    /// Lines of deploy/scan-accept.toml that matched nothing or have expired.
    pub notes: Vec<String>,
    pub score: u32,
    pub open_high: usize,
    pub open_medium: usize,
}

impl Scan {
    pub fn open(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.accepted.is_none())
    }
}

pub fn run(args: Args) -> Result<ExitCode> {
    let root = project_root();
    let out = root.join(&args.out);
    if args.dry_run {
        println!("would scan: Dockerfiles of deploy/stack.toml [images], each stage's compose file, .env.example, deploy/k8s (if present)");
        for s in external::SCANNERS {
            println!(
                "would run {s} if installed ({})",
                if which::which(s).is_ok() {
                    "installed"
                } else {
                    "not installed"
                }
            );
        }
        println!("would write: {}/report.{{md,json,sarif}}", out.display());
        return Ok(ExitCode::SUCCESS);
    }
    section("scan: policy checks and external scanners");
    let scan = scan(&root, true)?;
    let paths = write_reports(&scan, &out)?;
    print!("{}", report::summary(&scan));
    for p in &paths {
        println!("scan: wrote {}", p.display());
    }
    let fail = scan.open_high > 0 || (args.strict && scan.open_medium > 0);
    if fail {
        warn(&format!(
            "scan: {} open high and {} open medium findings: fix them, or accept one with a reason in deploy/scan-accept.toml (docs/security.md)",
            scan.open_high, scan.open_medium
        ));
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// The ci step: the scan with its default report directory; an open high finding fails it.
pub fn run_ci() -> Result<()> {
    let code = run(Args {
        out: PathBuf::from("target/scan"),
        strict: false,
        dry_run: false,
    })?;
    if code != ExitCode::SUCCESS {
        anyhow::bail!("open high findings (target/scan/report.md)");
    }
    Ok(())
}

/// Writes report.md, report.json and report.sarif into `dir` (atomically each).
pub fn write_reports(scan: &Scan, dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let files = [
        ("report.md", report::markdown(scan)),
        ("report.json", serde_json::to_string_pretty(scan)? + "\n"),
        (
            "report.sarif",
            serde_json::to_string_pretty(&report::sarif(scan))? + "\n",
        ),
    ];
    let mut paths = Vec::new();
    for (name, content) in files {
        let path = dir.join(name);
        crate::util::write_atomic(&path, content.as_bytes())?;
        paths.push(path);
    }
    Ok(paths)
}

/// Scans the tree at `root`: everything but writing the reports. `externals` runs the installed
/// external scanners too.
pub fn scan(root: &Path, externals: bool) -> Result<Scan> {
    let stack = Stack::load(root)?;
    let mut findings = Vec::new();
    let mut scanned = Vec::new();
    let data: BTreeSet<String> = stack
        .file
        .services
        .iter()
        .filter(|(_, s)| s.data)
        .map(|(k, _)| k.get_ref().clone())
        .collect();

    // Compose files, as compose resolves them; and what they build.
    let mut builds: BTreeMap<(String, String), Vec<policy::BuildUse>> = BTreeMap::new();
    for name in stack.stage_names() {
        let stage = stack.stage(&name)?;
        let text = std::fs::read_to_string(root.join(&stage.file))
            .with_context(|| format!("cannot read {}: run `cargo xtask gen`", stage.file))?;
        let config = policy::resolve_compose(root, &stage.file)?;
        let scope = policy::ComposeScope {
            file: &stage.file,
            text: &text,
            publish_data_services: stage.publish_data_services,
            data_services: &data,
        };
        findings.extend(policy::check_compose(&scope, &config));
        scanned.push(stage.file.clone());
        for image in &stage.images {
            let args = image
                .args
                .iter()
                .map(|(k, v)| (k.clone(), default_expand(&stack, v)))
                .collect();
            builds
                .entry((image.dockerfile.clone(), image.context.clone()))
                .or_default()
                .push(policy::BuildUse {
                    target: image.target.clone(),
                    args,
                });
        }
    }
    for ((file, context), uses) in &builds {
        let text = std::fs::read_to_string(root.join(file))
            .with_context(|| format!("cannot read {file}"))?;
        findings.extend(policy::check_dockerfile(file, &text, uses));
        findings.extend(policy::check_context(root, context, &text, file));
        scanned.push(file.clone());
    }
    if let Ok(text) = std::fs::read_to_string(root.join(".env.example")) {
        findings.extend(policy::check_env_example(&text));
        scanned.push(".env.example".into());
    }

    let mut scanners = Vec::new();
    kubernetes(root, &mut findings, &mut scanned, &mut scanners);
    if externals {
        let dockerfiles: Vec<String> = builds.keys().map(|(f, _)| f.clone()).collect();
        let (runs, found) = external::run_all(root, &dockerfiles);
        scanners.extend(runs);
        findings.extend(found);
    }

    let accepts = accept::load(root)?;
    let notes = accept::apply(&accepts, &mut findings, &accept::today());
    findings
        .sort_by(|a, b| (b.severity, &a.target, &a.rule).cmp(&(a.severity, &b.target, &b.rule)));
    let open: Vec<&Finding> = findings.iter().filter(|f| f.accepted.is_none()).collect();
    let penalty: u32 = open.iter().map(|f| f.severity.weight()).sum();
    let open_high = open.iter().filter(|f| f.severity == Severity::High).count();
    let open_medium = open
        .iter()
        .filter(|f| f.severity == Severity::Medium)
        .count();
    Ok(Scan {
        findings,
        scanners,
        scanned,
        notes,
        score: 100u32.saturating_sub(penalty),
        open_high,
        open_medium,
    })
}

/// A stack string with its variables at their declared defaults.
fn default_expand(stack: &Stack, text: &str) -> String {
    crate::stack::interp::expand(text, &|name| {
        stack
            .file
            .variables
            .get(name)
            .and_then(|v| v.default.as_ref().map(|d| d.get_ref().clone()))
    })
}

/// The Kubernetes part: every overlay under deploy/k8s/overlays, rendered and checked against
/// the restricted profile by the k8s module (`crate::stack::k8s::restricted`).
fn kubernetes(
    root: &Path,
    findings: &mut Vec<Finding>,
    scanned: &mut Vec<String>,
    scanners: &mut Vec<ScannerRun>,
) {
    let overlays = root.join("deploy/k8s/overlays");
    let Ok(entries) = std::fs::read_dir(&overlays) else {
        scanners.push(ScannerRun {
            name: "kubernetes (restricted profile)".into(),
            status: "skipped".into(),
            detail: "no deploy/k8s/overlays in this tree".into(),
        });
        return;
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for overlay in names {
        let file = format!("deploy/k8s/overlays/{overlay}");
        match k8s_violations(root, &overlay) {
            Ok(violations) => {
                for v in violations {
                    findings.push(Finding {
                        rule: "k8s-restricted".into(),
                        severity: policy::severity("k8s-restricted"),
                        source: "berth".into(),
                        target: format!("{file}:{}", v.0),
                        file: file.clone(),
                        line: None,
                        message: format!("{} ({})", v.2, v.1),
                        accepted: None,
                    });
                }
                scanned.push(file);
            }
            Err(e) => scanners.push(ScannerRun {
                name: format!("kubernetes overlay {overlay}"),
                status: "failed".into(),
                detail: format!("{e:#}"),
            }),
        }
    }
}

/// (object, rule, message) for each restricted-profile violation of `overlay`.
///
/// THE Kubernetes hook: the one call site into the Kubernetes checks.
fn k8s_violations(root: &Path, overlay: &str) -> Result<Vec<(String, String, String)>> {
    let docs = crate::util::k8s::render_overlay(root, overlay)?;
    Ok(crate::stack::k8s::restricted::check(&docs)
        .into_iter()
        .map(|v| (v.object, v.rule.to_string(), v.message))
        .collect())
}

#[cfg(test)]
mod tests;
