//! `cargo xtask release`: versioned, labelled, scanned images with SBOMs, built from a clean
//! export of the commit; optionally pushed and verified by digest. CI's release workflow runs
//! exactly this.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Command, ExitCode, Stdio},
};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use xshell::{cmd, Shell};

use crate::{
    stack::{interp, Stack},
    util::{process, project_root, secs, section, show, warn, Timer},
};

#[derive(clap::Args, Debug)]
#[command(
    about = "Release: gate, build the images from a clean export, tag, SBOM, scan, manifest; --push",
    long_about = "Release the images of deploy/stack.toml's prod stage.\n\n\
                  Refuses a dirty work tree, and a version that differs from Cargo.toml's \
                  [workspace.package] version or from a v* tag on HEAD. Runs the `cargo xtask ci` \
                  gate first (--skip-ci skips it, loudly, and the manifest records it). Builds \
                  each image from a `git archive` export of HEAD (nothing uncommitted or ignored \
                  can enter), with OCI labels (source, revision, version, created = the commit \
                  time) and SOURCE_DATE_EPOCH = the commit time, so a rebuild of the same commit \
                  gives the same layers. Tags: X.Y.Z, and for stable versions X.Y and X; \
                  sha-<12 hex of the commit>; `latest` only when this is the newest stable \
                  version among the v* tags.\n\n\
                  Writes into --out/VERSION/: release.json (images, tags, ids, digests, sizes, \
                  layers, SBOM and report paths), CycloneDX SBOMs of the Rust and npm \
                  dependencies (cargo-cyclonedx, installed with `cargo install --locked` when \
                  missing; @cyclonedx/cyclonedx-npm through npx), and the scan report \
                  (report.md/json/sarif).\n\n\
                  --push pushes every tag to --registry, logging in first when \
                  BERTH_REGISTRY_USERNAME and BERTH_REGISTRY_PASSWORD are set (for ghcr.io, \
                  GITHUB_ACTOR and GITHUB_TOKEN too), then asks the registry for each tag's \
                  digest and fails unless every one is what was pushed.",
    after_help = "Examples:\n  cargo xtask release --dry-run\n  \
                  cargo xtask release --version 1.2.3 --registry ghcr.io/berth-project --push\n\n\
                  Exit status:\n  0  released\n  1  refused (dirty tree, version mismatch, open \
                  high scan finding) or a step failed\n  2  bad command line"
)]
pub struct Args {
    /// The version to release; must equal Cargo.toml's (and the v* tag on HEAD, if any)
    #[arg(long, value_name = "X.Y.Z")]
    pub version: Option<String>,
    /// Push every tag to --registry and verify the pushed digests
    #[arg(long, requires = "registry")]
    pub push: bool,
    /// Registry and namespace the images are named under, e.g. ghcr.io/berth-project
    #[arg(long, value_name = "R")]
    pub registry: Option<String>,
    /// Print the plan, change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Do not run the `cargo xtask ci` gate first (stated in the output and the manifest)
    #[arg(long)]
    pub skip_ci: bool,
    /// Do not generate the SBOMs (stated in the output and the manifest)
    #[arg(long)]
    pub skip_sbom: bool,
    /// Where release directories go (VERSION/ under it)
    #[arg(long, default_value = "release", value_name = "DIR")]
    pub out: PathBuf,
    /// BuildKit cache source, passed to `docker buildx build --cache-from` (repeatable), e.g. type=gha
    #[arg(long, value_name = "SPEC")]
    pub cache_from: Vec<String>,
    /// BuildKit cache export, passed to `docker buildx build --cache-to` (repeatable), e.g. type=gha,mode=max
    #[arg(long, value_name = "SPEC")]
    pub cache_to: Vec<String>,
    /// Build progress output: auto, plain or tty
    #[arg(long, default_value = "auto", value_parser = ["auto", "plain", "tty"])]
    pub progress: String,
}

/// Facts about the commit being released.
#[derive(Debug, Clone)]
pub struct Plan {
    pub version: String,
    pub revision: String,
    pub created: String,
    pub epoch: String,
    pub source: String,
    pub tags: Vec<String>,
    pub latest: bool,
}

fn git(root: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .current_dir(root)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("cannot run git (a release is built from a git commit)")?;
    if !out.status.success() {
        bail!(
            "`git {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    // Only the end: `git status --porcelain` lines start with a meaningful space.
    Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
}

/// X.Y.Z with an optional -pre-release; the numbers, and whether it is stable.
pub fn parse_version(v: &str) -> Option<([u64; 3], bool)> {
    let (core, pre) = match v.split_once('-') {
        Some((c, p)) => (c, !p.is_empty()),
        None => (v, false),
    };
    let core = core.split_once('+').map_or(core, |(c, _)| c);
    let parts: Vec<u64> = core
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [a, b, c] = parts.as_slice() else {
        return None;
    };
    Some(([*a, *b, *c], !pre))
}

/// The tags for `version`: X.Y.Z (+ X.Y, X when stable), sha-<12>, latest when `newest`.
pub fn tags(version: &str, revision: &str, newest: bool) -> Vec<String> {
    let mut out = vec![version.to_string()];
    if let Some(([a, b, _], true)) = parse_version(version) {
        out.push(format!("{a}.{b}"));
        out.push(format!("{a}"));
    }
    out.push(format!("sha-{}", &revision[..revision.len().min(12)]));
    if newest {
        out.push("latest".into());
    }
    out
}

/// True when `version` is stable and no stable v* tag is newer.
pub fn is_newest_stable(version: &str, git_tags: &[String]) -> bool {
    let Some((mine, true)) = parse_version(version) else {
        return false;
    };
    git_tags
        .iter()
        .filter_map(|t| parse_version(t.strip_prefix('v')?))
        .filter(|(_, stable)| *stable)
        .all(|(v, _)| v <= mine)
}

fn workspace_version(root: &Path) -> Result<String> {
    let text = std::fs::read_to_string(root.join("Cargo.toml"))?;
    let value: toml::Table = text.parse()?;
    value
        .get("workspace")
        .and_then(|w| w.get("package"))
        .and_then(|p| p.get("version"))
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .context("Cargo.toml has no [workspace.package] version")
}

/// The checks that refuse a release, and the facts it is made of.
pub fn plan(root: &Path, wanted: Option<&str>) -> Result<Plan> {
    let version = workspace_version(root)?;
    if let Some(w) = wanted {
        let w = w.strip_prefix('v').unwrap_or(w);
        if w != version {
            bail!("--version {w} does not match Cargo.toml's version {version}: bump [workspace.package] version (and commit) first");
        }
    }
    if parse_version(&version).is_none() {
        bail!("Cargo.toml's version {version} is not X.Y.Z[-pre]");
    }
    let mut head_tags: Vec<String> = git(root, &["tag", "--points-at", "HEAD", "--list", "v*"])?
        .lines()
        .map(str::to_string)
        .collect();
    // In GitHub Actions the pushed tag is the truth even in a shallow checkout without tags.
    if std::env::var("GITHUB_REF_TYPE").as_deref() == Ok("tag") {
        if let Ok(name) = std::env::var("GITHUB_REF_NAME") {
            head_tags.push(name);
        }
    }
    if let Some(t) = head_tags
        .iter()
        .find(|t| t.strip_prefix('v') != Some(version.as_str()))
    {
        bail!(
            "HEAD is tagged {t} but Cargo.toml says {version}: tag v{version}, or fix the version"
        );
    }
    let dirty = git(root, &["status", "--porcelain"])?;
    if !dirty.is_empty() {
        let shown: Vec<&str> = dirty.lines().take(8).collect();
        bail!(
            "the work tree is dirty ({} paths, e.g.\n  {}\n): a release is built from a commit; commit or remove them",
            dirty.lines().count(),
            shown.join("\n  ")
        );
    }
    let revision = git(root, &["rev-parse", "HEAD"])?;
    let epoch = git(root, &["log", "-1", "--format=%ct"])?;
    let created = git(
        root,
        &[
            "log",
            "-1",
            "--format=%cd",
            "--date=format-local:%Y-%m-%dT%H:%M:%SZ",
        ],
    )?;
    let all_tags: Vec<String> = git(root, &["tag", "--list", "v*"])?
        .lines()
        .map(str::to_string)
        .collect();
    let latest = is_newest_stable(&version, &all_tags);
    let source = match (
        std::env::var("GITHUB_SERVER_URL"),
        std::env::var("GITHUB_REPOSITORY"),
    ) {
        (Ok(server), Ok(repo)) => format!("{server}/{repo}"),
        _ => "https://github.com/berth-project/berth".to_string(),
    };
    Ok(Plan {
        tags: tags(&version, &revision, latest),
        version,
        revision,
        created,
        epoch,
        source,
        latest,
    })
}

/// An image to build: its key, Dockerfile, context, target and resolved build arguments.
struct ImageJob {
    key: String,
    repository: String,
    dockerfile: String,
    context: String,
    target: Option<String>,
    args: BTreeMap<String, String>,
}

fn jobs(stack: &Stack, plan: &Plan, registry: Option<&str>) -> Result<Vec<ImageJob>> {
    let stage = stack.stage("prod")?;
    let mut vars: BTreeMap<String, String> = stack
        .file
        .variables
        .iter()
        .map(|(k, v)| {
            (
                k.get_ref().clone(),
                v.default
                    .as_ref()
                    .map(|d| d.get_ref().clone())
                    .unwrap_or_default(),
            )
        })
        .collect();
    vars.insert("BERTH_VERSION".into(), plan.version.clone());
    vars.insert("BERTH_REVISION".into(), plan.revision.clone());
    vars.insert("BERTH_CREATED".into(), plan.created.clone());
    Ok(stage
        .images
        .iter()
        .map(|i| {
            let mut args: BTreeMap<String, String> = i
                .args
                .iter()
                .map(|(k, v)| (k.clone(), interp::expand(v, &|n| vars.get(n).cloned())))
                .collect();
            args.insert("SOURCE".into(), plan.source.clone());
            args.insert("SOURCE_DATE_EPOCH".into(), plan.epoch.clone());
            let repository = match registry {
                Some(r) => format!("{}/{}", r.trim_end_matches('/'), i.key),
                None => i.key.clone(),
            };
            ImageJob {
                key: i.key.clone(),
                repository,
                dockerfile: i.dockerfile.clone(),
                context: i.context.clone(),
                target: i.target.clone(),
                args,
            }
        })
        .collect())
}

fn build_command(job: &ImageJob, plan: &Plan, context_root: &Path, args: &Args) -> Command {
    let mut c = Command::new("docker");
    let buildx = !args.cache_from.is_empty() || !args.cache_to.is_empty();
    c.current_dir(context_root)
        .env("DOCKER_BUILDKIT", "1")
        .env("SOURCE_DATE_EPOCH", &plan.epoch);
    if buildx {
        // A cache export needs a buildx builder; --load brings the image back into the engine.
        c.args(["buildx", "build", "--load"]);
        for s in &args.cache_from {
            c.args(["--cache-from", s]);
        }
        for s in &args.cache_to {
            c.args(["--cache-to", s]);
        }
    } else {
        c.arg("build");
    }
    c.args(["--file", &job.dockerfile]);
    if let Some(t) = &job.target {
        c.args(["--target", t]);
    }
    for (k, v) in &job.args {
        c.arg("--build-arg").arg(format!("{k}={v}"));
    }
    for (k, v) in [
        ("source", plan.source.as_str()),
        ("revision", plan.revision.as_str()),
        ("version", plan.version.as_str()),
        ("created", plan.created.as_str()),
    ] {
        c.arg("--label")
            .arg(format!("org.opencontainers.image.{k}={v}"));
    }
    for t in &plan.tags {
        c.args(["--tag", &format!("{}:{t}", job.repository)]);
    }
    c.args(["--progress", &args.progress]).arg(&job.context);
    c
}

/// Exports HEAD (tracked files only, as committed) into a fresh directory.
fn export_head(root: &Path) -> Result<tempfile::TempDir> {
    let guard = tempfile::Builder::new()
        .prefix("berth-release-")
        .tempdir()
        .context("creating a temporary directory")?;
    let dir = guard.path().join("head");
    std::fs::create_dir(&dir)?;
    let tar = guard.path().join("head.tar");
    process::run({
        let mut c = Command::new("git");
        c.current_dir(root)
            .args(["archive", "--format=tar", "--output"])
            .arg(&tar)
            .arg("HEAD");
        c
    })?;
    process::run({
        let mut c = Command::new("tar");
        c.current_dir(&dir).arg("-xf").arg(&tar);
        c
    })?;
    std::fs::remove_file(&tar)?;
    Ok(guard)
}

fn sbom_commands(context: &Path, out_dir: &Path) -> Vec<(&'static str, Command, PathBuf)> {
    let mut cargo = Command::new("cargo");
    cargo.current_dir(context).args([
        "cyclonedx",
        "--format",
        "json",
        "--spec-version",
        "1.5",
        "--override-filename",
        "sbom-rust",
    ]);
    let mut npm = Command::new("npx");
    npm.current_dir(context.join("frontend")).args([
        "--yes",
        "@cyclonedx/cyclonedx-npm@4",
        "--package-lock-only",
        "--omit",
        "dev",
        "--output-format",
        "JSON",
        "--output-file",
    ]);
    npm.arg(out_dir.join("sbom-npm.cdx.json"));
    vec![
        ("rust", cargo, out_dir.join("sbom-rust.cdx.json")),
        ("npm", npm, out_dir.join("sbom-npm.cdx.json")),
    ]
}

fn ensure_cargo_cyclonedx(dry_run: bool) -> Result<()> {
    let have = Command::new("cargo")
        .args(["cyclonedx", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if have {
        return Ok(());
    }
    let mut c = Command::new("cargo");
    c.args(["install", "cargo-cyclonedx", "--locked"]);
    if dry_run {
        println!("would run: {} (cargo-cyclonedx is missing)", show(&c));
        return Ok(());
    }
    section("release: installing cargo-cyclonedx (the Rust SBOM tool)");
    process::run(c)
}

/// Writes the SBOMs of the export `context` into `out_dir`; returns their paths.
fn sboms(context: &Path, out_dir: &Path, epoch: &str) -> Result<Vec<PathBuf>> {
    ensure_cargo_cyclonedx(false)?;
    let mut paths = Vec::new();
    for (what, mut c, path) in sbom_commands(context, out_dir) {
        section(&format!("release: {what} SBOM: {}", show(&c)));
        c.env("SOURCE_DATE_EPOCH", epoch);
        process::run(c)?;
        if what == "rust" {
            // cargo-cyclonedx writes one file per package, beside its manifest: merge nothing,
            // keep the server's (app/), which holds every dependency the image ships.
            let produced = context.join("app/sbom-rust.json");
            std::fs::copy(&produced, &path)
                .with_context(|| format!("cargo cyclonedx wrote no {}", produced.display()))?;
        }
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        if doc["bomFormat"] != "CycloneDX" {
            bail!("{} is not a CycloneDX document", path.display());
        }
        let n = doc["components"].as_array().map_or(0, Vec::len);
        eprintln!("release: {what} SBOM: {n} components → {}", path.display());
        paths.push(path);
    }
    Ok(paths)
}

fn inspect(reference: &str) -> Result<Value> {
    let sh = Shell::new()?;
    let text = process::read_cmd(cmd!(sh, "docker image inspect {reference}"))?;
    let v: Value = serde_json::from_str(&text)?;
    Ok(v[0].clone())
}

/// Logs in to the registry's host when credentials are in the environment (the password goes
/// through stdin, never the command line).
fn login(registry: &str) -> Result<()> {
    let host = registry.split('/').next().unwrap_or(registry);
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let creds = match (
        env("BERTH_REGISTRY_USERNAME"),
        env("BERTH_REGISTRY_PASSWORD"),
    ) {
        (Some(u), Some(p)) => Some((u, p)),
        _ if host == "ghcr.io" => env("GITHUB_ACTOR").zip(env("GITHUB_TOKEN")),
        _ => None,
    };
    let Some((user, password)) = creds else {
        eprintln!("release: no registry credentials in the environment; using docker's stored login for {host}, if any");
        return Ok(());
    };
    section(&format!("release: docker login {host} as {user}"));
    let sh = Shell::new()?;
    let login = cmd!(sh, "docker login {host} --username {user} --password-stdin")
        .stdin(password.as_bytes())
        .quiet()
        .run();
    if login.is_err() {
        bail!("docker login {host} failed: check BERTH_REGISTRY_USERNAME/BERTH_REGISTRY_PASSWORD");
    }
    Ok(())
}

/// Pushes `reference`; returns the manifest digest the registry acknowledged.
fn push(reference: &str) -> Result<String> {
    let sh = Shell::new()?;
    let out = process::read_cmd(cmd!(sh, "docker push {reference}"))?;
    out.split_whitespace()
        .skip_while(|w| *w != "digest:")
        .nth(1)
        .map(str::to_string)
        .with_context(|| format!("docker push {reference} printed no digest"))
}

/// The digest the registry serves for `reference` now.
fn registry_digest(reference: &str) -> Result<String> {
    let sh = Shell::new()?;
    let format = "{{json .Manifest}}";
    let text = process::read_cmd(cmd!(
        sh,
        "docker buildx imagetools inspect --format {format} {reference}"
    ))?;
    let v: Value = serde_json::from_str(&text)?;
    v["digest"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("the registry gave no digest for {reference}"))
}

/// What a release records of its security scan.
pub struct ScanResult {
    pub score: u32,
    pub open_high: usize,
    pub open_medium: usize,
    /// The reports written into the release's directory.
    pub reports: Vec<PathBuf>,
}

/// Scans the tree at the root (first argument), writes the reports into the release's
/// directory (second) and prints the summary: `pipeline::release_scan`, handed in by `main`,
/// so that release does not import the scan task.
pub type Scan = fn(&Path, &Path) -> Result<ScanResult>;

pub fn release(args: Args, scan: Scan) -> Result<ExitCode> {
    let root = project_root();
    let timer = Timer::start();
    let plan = plan(&root, args.version.as_deref())?;
    let stack = Stack::load(&root)?;
    let jobs = jobs(&stack, &plan, args.registry.as_deref())?;
    let dir = root.join(&args.out).join(&plan.version);

    println!("release {} of {}", plan.version, plan.revision);
    println!(
        "  tags: {}{}",
        plan.tags.join(", "),
        if plan.latest {
            ""
        } else {
            " (not latest: a newer stable v* tag exists, or this is a pre-release)"
        }
    );
    println!(
        "  created: {} (SOURCE_DATE_EPOCH={})",
        plan.created, plan.epoch
    );
    println!("  into: {}", dir.display());
    if args.skip_ci {
        warn("RELEASING WITHOUT THE CI GATE (--skip-ci): the manifest records it");
    }
    if args.skip_sbom {
        warn("RELEASING WITHOUT SBOMs (--skip-sbom): the manifest records it");
    }
    if args.dry_run {
        let mut gate = Command::new("cargo");
        gate.args(["xtask", "ci"]);
        if !args.skip_ci {
            println!("would run: {}", show(&gate));
        }
        println!("would run: cargo xtask scan --out {}", dir.display());
        println!("would export HEAD with `git archive` into a temporary directory");
        for job in &jobs {
            println!(
                "would run: {}",
                show(&build_command(job, &plan, Path::new("EXPORT"), &args))
            );
        }
        if !args.skip_sbom {
            ensure_cargo_cyclonedx(true)?;
            for (_, c, _) in sbom_commands(Path::new("EXPORT"), &dir) {
                println!("would run: {}", show(&c));
            }
        }
        if args.push {
            for job in &jobs {
                for t in &plan.tags {
                    println!("would run: docker push {}:{t}", job.repository);
                }
            }
            println!("would verify each tag's digest in the registry");
        }
        println!("would write {}", dir.join("release.json").display());
        return Ok(ExitCode::SUCCESS);
    }

    crate::util::docker::preflight(true)?;
    if !args.skip_ci {
        section("release: the ci gate (cargo xtask ci)");
        let exe = std::env::current_exe()?;
        let mut c = Command::new(exe);
        c.current_dir(&root).arg("ci");
        process::run(c)
            .context("the ci gate failed: a release needs it green (see the summary above)")?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;

    section("release: security scan");
    let report = scan(&root, &dir)?;
    let report_paths = &report.reports;
    if report.open_high > 0 {
        bail!(
            "the scan has {} open high findings ({}): fix or accept them (docs/security.md)",
            report.open_high,
            report_paths[0].display()
        );
    }

    section("release: exporting HEAD (git archive) as the build context");
    let export = export_head(&root)?;
    let mut images = Vec::new();
    for job in &jobs {
        section(&format!(
            "release: build {} as {}:{}",
            job.key,
            job.repository,
            plan.tags.join(",")
        ));
        let t = Timer::start();
        process::run(build_command(
            job,
            &plan,
            &export.path().join("head"),
            &args,
        ))?;
        let first = format!("{}:{}", job.repository, plan.tags[0]);
        let info = inspect(&first)?;
        let labels = &info["Config"]["Labels"];
        if labels["org.opencontainers.image.revision"] != plan.revision.as_str() {
            bail!("{first} lacks the revision label");
        }
        eprintln!("release: built {first} in {}", secs(t.elapsed()));
        images.push(json!({
            "key": job.key,
            "repository": job.repository,
            "tags": plan.tags.iter().map(|t| format!("{}:{t}", job.repository)).collect::<Vec<_>>(),
            "id": info["Id"],
            "size": info["Size"],
            "layers": info["RootFS"]["Layers"],
            "labels": labels,
            "digest": Value::Null,
        }));
    }

    let sbom_paths = if args.skip_sbom {
        Vec::new()
    } else {
        sboms(&export.path().join("head"), &dir, &plan.epoch)?
    };

    if args.push {
        let registry = args
            .registry
            .as_deref()
            .expect("clap: --push requires --registry");
        login(registry)?;
        for image in &mut images {
            let tags: Vec<String> = serde_json::from_value(image["tags"].clone())?;
            let mut digest: Option<String> = None;
            for reference in &tags {
                section(&format!("release: push {reference}"));
                let d = push(reference)?;
                if digest.as_ref().is_some_and(|first| *first != d) {
                    bail!(
                        "{reference} was pushed as {d}, other tags of the same image as {}",
                        digest.unwrap_or_default()
                    );
                }
                digest = Some(d);
            }
            let digest = digest.expect("at least one tag");
            for reference in &tags {
                let served = registry_digest(reference)?;
                if served != digest {
                    bail!("the registry serves {reference} as {served}, but {digest} was pushed");
                }
            }
            eprintln!(
                "release: every tag of {} is {digest} in the registry",
                image["repository"]
            );
            image["digest"] = json!(digest);
            image["pull"] = json!(format!(
                "{}@{digest}",
                image["repository"].as_str().unwrap_or("")
            ));
        }
    }

    let rel = |p: &PathBuf| p.strip_prefix(&dir).unwrap_or(p).display().to_string();
    let manifest = json!({
        "version": plan.version,
        "revision": plan.revision,
        "created": plan.created,
        "source_date_epoch": plan.epoch,
        "source": plan.source,
        "tags": plan.tags,
        "latest": plan.latest,
        "ci": if args.skip_ci { "skipped (--skip-ci)" } else { "passed" },
        "registry": args.registry,
        "pushed": args.push,
        "images": images,
        "sbom": if args.skip_sbom { json!("skipped (--skip-sbom)") } else { json!(sbom_paths.iter().map(rel).collect::<Vec<_>>()) },
        "scan": {
            "score": report.score,
            "open_high": report.open_high,
            "open_medium": report.open_medium,
            "reports": report_paths.iter().map(rel).collect::<Vec<_>>(),
        },
    });
    let path = dir.join("release.json");
    crate::util::write_atomic(
        &path,
        (serde_json::to_string_pretty(&manifest)? + "\n").as_bytes(),
    )?;
    println!(
        "release: {} done in {}; manifest {}",
        plan.version,
        secs(timer.elapsed()),
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(parse_version("1.2.3"), Some(([1, 2, 3], true)));
        assert_eq!(parse_version("1.2.3-rc.1"), Some(([1, 2, 3], false)));
        assert_eq!(parse_version("1.2"), None);
        assert_eq!(parse_version("v1.2.3"), None);
    }

    #[test]
    fn tag_scheme() {
        let rev = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            tags("1.2.3", rev, true),
            ["1.2.3", "1.2", "1", "sha-0123456789ab", "latest"]
        );
        assert_eq!(
            tags("1.2.3-rc.1", rev, false),
            ["1.2.3-rc.1", "sha-0123456789ab"]
        );
    }

    #[test]
    fn latest_only_for_the_newest_stable() {
        let t = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(is_newest_stable(
            "1.2.3",
            &t(&["v1.2.2", "v1.2.3", "v2.0.0-rc.1"])
        ));
        assert!(!is_newest_stable("1.2.3", &t(&["v1.10.0"])));
        assert!(!is_newest_stable("2.0.0-rc.1", &t(&[])));
        assert!(is_newest_stable("0.1.0", &t(&["not-a-version"])));
    }
}
