//! `cargo xtask k8s render|validate|diff|apply`: Kubernetes manifests generated from
//! deploy/stack.toml (a kustomize base, a PostgreSQL component and overlays under deploy/k8s/),
//! checked offline, and applied with kubectl to a cluster the operator names.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
    time::Duration,
};

use anyhow::{bail, Context, Result};

use crate::{
    stack::k8s::{check, generate},
    stack::Stack,
    util::k8s::{kustomize, overlay_names, overlay_path, parse_documents, render_overlay},
    util::process::run_with_timeout,
    util::{project_root, section, show},
};

/// The schemas' Kubernetes version (the oldest minor Berth supports) and the validator's
/// release, pinned so that a new release cannot change the verdict.
const KUBERNETES_VERSION: &str = "1.32.0";
const VALIDATOR: &str = "kubernetes-validate==1.37.0";

#[derive(clap::Args, Debug)]
#[command(
    about = "Render, validate, diff and apply the Kubernetes manifests (deploy/k8s)",
    long_about = "The Kubernetes manifests are generated from deploy/stack.toml (its services and \
                  its [kubernetes] table) into a kustomize tree: deploy/k8s/base, \
                  deploy/k8s/components/postgres and deploy/k8s/overlays/<overlay> \
                  (docs/kubernetes.md). They are checked in; `cargo xtask gen --check` fails \
                  when they drift from the stack file.",
    after_help = "Exit status:\n  0  success\n  1  failure (stale or invalid manifests, kubectl failed, \
                  a difference found by `diff`)\n  2  bad command line"
)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(clap::Subcommand, Debug)]
enum Sub {
    /// Write the kustomize tree from deploy/stack.toml (like `cargo xtask gen`), or print one
    /// overlay's rendered manifests with --overlay
    Render {
        /// Print `kubectl kustomize deploy/k8s/overlays/OVERLAY` instead of writing files
        #[arg(long)]
        overlay: Option<String>,
        /// Show which files would change; write nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Check every overlay offline: it builds with `kubectl kustomize`, passes Berth's
    /// restricted-profile checks, and validates against the Kubernetes schemas
    /// (kubernetes-validate --strict, installed into target/k8s-venv when missing)
    Validate {
        /// Only this overlay (repeatable); all by default
        #[arg(long)]
        overlay: Vec<String>,
    },
    /// `kubectl diff` of an overlay against the cluster of a kubectl context (exit 1 when
    /// they differ)
    Diff {
        #[arg(long, default_value = "prod")]
        overlay: String,
        /// kubectl context of the cluster (required: never the current one by accident)
        #[arg(long)]
        context: String,
    },
    /// `kubectl apply --server-side` of an overlay to a cluster, then wait for the rollout
    Apply {
        #[arg(long, default_value = "prod")]
        overlay: String,
        /// kubectl context of the cluster (required: never the current one by accident)
        #[arg(long)]
        context: String,
        /// Show the kubectl commands (and a server-side dry run's verdict); change nothing
        #[arg(long)]
        dry_run: bool,
    },
}

pub fn run(args: Args) -> Result<ExitCode> {
    let root = project_root();
    match args.command {
        Sub::Render {
            overlay: Some(overlay),
            dry_run: _,
        } => {
            let out = kustomize(&root, &overlay)?;
            print!("{out}");
            Ok(ExitCode::SUCCESS)
        }
        Sub::Render {
            overlay: None,
            dry_run,
        } => {
            render(&root, dry_run)?;
            Ok(ExitCode::SUCCESS)
        }
        Sub::Validate { overlay } => {
            validate(&root, &overlay)?;
            Ok(ExitCode::SUCCESS)
        }
        Sub::Diff { overlay, context } => diff(&root, &overlay, &context),
        Sub::Apply {
            overlay,
            context,
            dry_run,
        } => {
            apply(&root, &overlay, &context, dry_run)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The ci step: every overlay validated.
pub fn run_ci() -> Result<()> {
    validate(&project_root(), &[])
}

/// Every generated file of the Kubernetes tree (for `cargo xtask gen` and its drift check).
pub fn generated_files(root: &Path) -> Result<Vec<(String, String)>> {
    let stack = Stack::load(root)?;
    generate::files(&stack)
}

fn render(root: &Path, dry_run: bool) -> Result<()> {
    for (path, content) in generated_files(root)? {
        let full = root.join(&path);
        if fs::read_to_string(&full).ok().as_deref() == Some(content.as_str()) {
            eprintln!("k8s: {path} is up to date");
        } else if dry_run {
            eprintln!("k8s: would write {path}");
        } else {
            write_atomically(&full, &content)?;
            eprintln!("k8s: wrote {path}");
        }
    }
    Ok(())
}

/// Temp name, fsync, rename: a reader never sees half a file.
pub fn write_atomically(path: &Path, content: &str) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().context("a file has a directory")?;
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    let mut f = fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(content.as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The namespace every object of every overlay belongs in (the stack file's [kubernetes]).
fn namespace(root: &Path) -> Result<String> {
    Stack::load(root)?
        .file
        .kubernetes
        .as_ref()
        .map(|k| k.namespace.clone())
        .context("deploy/stack.toml has no [kubernetes] table")
}

fn validate(root: &Path, only: &[String]) -> Result<()> {
    let overlays = if only.is_empty() {
        overlay_names(root)?
    } else {
        only.to_vec()
    };
    let namespace = namespace(root)?;
    let validator = validator(root)?;
    let out_dir = root.join("target/k8s");
    fs::create_dir_all(&out_dir)?;
    let mut failed = Vec::new();
    for overlay in &overlays {
        section(&format!("k8s: overlay {overlay}"));
        let text = kustomize(root, overlay)?;
        let docs = parse_documents(&text)?;
        eprintln!("k8s: kubectl kustomize: {} objects", docs.len());
        let violations = check(&docs, &namespace);
        for v in &violations {
            eprintln!("k8s: {overlay}: {} [{}]: {}", v.object, v.rule, v.message);
        }
        let file = out_dir.join(format!("{overlay}.yaml"));
        fs::write(&file, &text)?;
        let mut c = Command::new(&validator);
        c.args([
            "--strict",
            "--quiet",
            "--kubernetes-version",
            KUBERNETES_VERSION,
        ])
        .arg(&file);
        let out = run_with_timeout(c, Duration::from_secs(120))?
            .context("kubernetes-validate did not finish within 120 s")?;
        let schema_ok = out.status.success();
        if !schema_ok {
            eprintln!(
                "k8s: {overlay}: kubernetes-validate (Kubernetes {KUBERNETES_VERSION}) rejects it:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if violations.is_empty() && schema_ok {
            eprintln!(
                "k8s: {overlay}: builds, restricted profile ok, every object in namespace {namespace} \
                 and every reference resolved, valid for Kubernetes {KUBERNETES_VERSION}"
            );
        } else {
            failed.push(overlay.clone());
        }
    }
    if !failed.is_empty() {
        bail!("overlays failing their checks: {}", failed.join(", "));
    }
    Ok(())
}

/// The kubernetes-validate executable: on PATH, or in target/k8s-venv (created with pip when
/// missing; it ships its schemas, so validation itself needs no network).
fn validator(root: &Path) -> Result<PathBuf> {
    if let Ok(path) = which::which("kubernetes-validate") {
        return Ok(path);
    }
    let venv = root.join("target/k8s-venv");
    let bin = venv.join("bin/kubernetes-validate");
    if bin.exists() {
        if interpreter_exists(&bin) {
            return Ok(bin);
        }
        // A virtual environment moved with its folder keeps scripts whose `#!` names the old
        // place, and running one fails with a bare "No such file or directory".
        println!(
            "k8s: {} was made in another place (moved?); making it again",
            venv.display()
        );
        std::fs::remove_dir_all(&venv).with_context(|| format!("removing {}", venv.display()))?;
    }
    section(&format!(
        "k8s: installing {VALIDATOR} into {}",
        venv.display()
    ));
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .context("running python3 (install python3 and python3-venv)")?;
    if !status.success() {
        bail!(
            "`python3 -m venv {}` failed; install python3-venv",
            venv.display()
        );
    }
    let status = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", VALIDATOR])
        .status()
        .context("running pip")?;
    if !status.success() || !bin.exists() {
        bail!("`pip install {VALIDATOR}` failed (PyPI unreachable?); or put kubernetes-validate on PATH");
    }
    Ok(bin)
}

/// Whether the interpreter a script's `#!` line names is there (true when it names none).
fn interpreter_exists(script: &Path) -> bool {
    let head = std::fs::read(script).unwrap_or_default();
    let first = String::from_utf8_lossy(&head);
    match first.lines().next().and_then(|l| l.strip_prefix("#!")) {
        Some(line) => line
            .split_whitespace()
            .next()
            .is_none_or(|interpreter| Path::new(interpreter).exists()),
        None => true,
    }
}

fn kubectl(context: &str) -> Command {
    let mut c = Command::new("kubectl");
    c.args(["--context", context]);
    c
}

fn diff(root: &Path, overlay: &str, context: &str) -> Result<ExitCode> {
    let dir = overlay_path(root, overlay)?;
    let mut c = kubectl(context);
    c.arg("diff").arg("--server-side").arg("-k").arg(&dir);
    section(&show(&c));
    let status = c.status().context("running kubectl")?;
    // kubectl diff: 0 no difference, 1 differences, >1 error.
    match status.code() {
        Some(0) => {
            eprintln!("k8s: the cluster matches overlay {overlay}");
            Ok(ExitCode::SUCCESS)
        }
        Some(1) => {
            eprintln!("k8s: the cluster differs from overlay {overlay} (above)");
            Ok(ExitCode::FAILURE)
        }
        _ => bail!("kubectl diff failed ({status})"),
    }
}

fn apply(root: &Path, overlay: &str, context: &str, dry_run: bool) -> Result<()> {
    let dir = overlay_path(root, overlay)?;
    // Refuse what CI would refuse, before touching a cluster.
    let namespace = namespace(root)?;
    let violations = check(&render_overlay(root, overlay)?, &namespace);
    if let Some(v) = violations.first() {
        bail!(
            "overlay {overlay} fails its checks ({} [{}]: {}); run `cargo xtask k8s validate`",
            v.object,
            v.rule,
            v.message
        );
    }
    let mut c = kubectl(context);
    c.args(["apply", "--server-side", "--field-manager=berth-xtask"]);
    if dry_run {
        c.arg("--dry-run=server");
    }
    c.arg("-k").arg(&dir);
    section(&show(&c));
    let status = c.status().context("running kubectl")?;
    if !status.success() {
        bail!("kubectl apply failed ({status})");
    }
    if dry_run {
        eprintln!("k8s: dry run: the cluster accepted overlay {overlay}; nothing was changed");
        return Ok(());
    }
    // Migrations run in the new pods at start, under PostgreSQL's advisory lock: the rollout
    // finishing is the migrations finishing.
    let mut c = kubectl(context);
    c.args([
        "--namespace",
        &namespace,
        "rollout",
        "status",
        "deployment/app",
        "--timeout=10m",
    ]);
    section(&show(&c));
    if !c.status().context("running kubectl")?.success() {
        bail!("the rollout did not finish; `kubectl --context {context} -n {namespace} describe deployment app` says why");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_whose_interpreter_is_gone_is_not_runnable() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("tool");
        std::fs::write(&script, "#!/nowhere/k8s-venv/bin/python\nimport sys\n").unwrap();
        assert!(!interpreter_exists(&script));
        std::fs::write(&script, "#!/bin/sh\nexec true\n").unwrap();
        assert!(interpreter_exists(&script));
        std::fs::write(&script, "no interpreter line").unwrap();
        assert!(interpreter_exists(&script));
    }

    /// Whether kubectl is here; under CI a missing kubectl fails the test, never passes it
    /// without rendering anything.
    fn has_kubectl() -> bool {
        if which::which("kubectl").is_ok() {
            return true;
        }
        assert!(!crate::util::is_ci(), "kubectl is missing");
        eprintln!("kubectl missing: skipped (the ci step k8s requires it)");
        false
    }

    #[test]
    fn parses_a_yaml_stream() {
        let docs = parse_documents("a: 1\n---\n---\nkind: X\nlist: [1, two]\n").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1]["list"][1], "two");
        assert!(parse_documents("a: [1\n").is_err());
    }

    /// The check catches what the generator used to write: overlays without their own
    /// `namespace:`, whose HPA, PDB and in-cluster database escaped the namespace.
    #[test]
    fn an_overlay_without_its_namespace_fails_the_check() {
        if !has_kubectl() {
            return;
        }
        let root = project_root();
        let copy = root.join(format!("target/k8s-namespace-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&copy);
        let tree = root.join("deploy/k8s");
        for entry in walkdir::WalkDir::new(&tree) {
            let entry = entry.unwrap();
            let to = copy.join(entry.path().strip_prefix(&tree).unwrap());
            if entry.file_type().is_dir() {
                fs::create_dir_all(&to).unwrap();
            } else {
                fs::copy(entry.path(), &to).unwrap();
            }
        }
        let kustomization = copy.join("overlays/prod/kustomization.yaml");
        let text = fs::read_to_string(&kustomization).unwrap();
        assert_eq!(text.matches("\nnamespace: berth\n").count(), 1, "{text}");
        fs::write(&kustomization, text.replace("\nnamespace: berth\n", "\n")).unwrap();
        let out = Command::new("kubectl")
            .arg("kustomize")
            .arg(copy.join("overlays/prod"))
            .output()
            .unwrap();
        fs::remove_dir_all(&copy).unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let docs = parse_documents(&String::from_utf8(out.stdout).unwrap()).unwrap();
        let escaped: Vec<String> = check(&docs, "berth")
            .into_iter()
            .filter(|v| v.rule == "namespace")
            .map(|v| v.object)
            .collect();
        assert_eq!(
            escaped,
            [
                "Service/db",
                "StatefulSet/db",
                "PodDisruptionBudget/app",
                "HorizontalPodAutoscaler/app",
                "NetworkPolicy/app-to-db",
                "NetworkPolicy/db",
                "NetworkPolicy/worker-to-db"
            ]
        );
    }

    /// The checked-in tree renders, and every overlay passes the restricted checks (the ci
    /// step adds the schema validation).
    #[test]
    fn every_overlay_renders_and_is_restricted() {
        if !has_kubectl() {
            return;
        }
        let root = project_root();
        let names = overlay_names(&root).unwrap();
        assert!(names.len() >= 3, "{names:?}");
        for overlay in names {
            let docs = render_overlay(&root, &overlay).unwrap();
            let kinds: Vec<String> = docs
                .iter()
                .map(|d| {
                    format!(
                        "{}/{}",
                        d["kind"].as_str().unwrap(),
                        d["metadata"]["name"].as_str().unwrap()
                    )
                })
                .collect();
            assert!(
                kinds.contains(&"Deployment/app".to_string()),
                "{overlay}: {kinds:?}"
            );
            assert!(kinds.contains(&"NetworkPolicy/default-deny".to_string()));
            assert_eq!(check(&docs, "berth"), [], "{overlay}");
            let has_db = kinds.contains(&"StatefulSet/db".to_string());
            assert_eq!(has_db, overlay != "prod-external-db", "{overlay}");
            if overlay.starts_with("prod") || overlay == "gpu" {
                assert!(kinds.contains(&"HorizontalPodAutoscaler/app".to_string()));
                assert!(kinds.contains(&"PodDisruptionBudget/app".to_string()));
                let app = docs
                    .iter()
                    .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "app")
                    .unwrap();
                let hpa = docs
                    .iter()
                    .find(|d| d["kind"] == "HorizontalPodAutoscaler")
                    .unwrap();
                assert!(hpa["spec"]["minReplicas"].as_i64().unwrap() >= 2);
                // The HPA owns the count: no `replicas` for apply to reset it to.
                assert!(app["spec"]["replicas"].is_null(), "{overlay}");
                assert_eq!(
                    app["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
                    0
                );
                assert!(app["spec"]["template"]["spec"]["topologySpreadConstraints"].is_array());
            } else {
                let app = docs
                    .iter()
                    .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "app")
                    .unwrap();
                assert_eq!(app["spec"]["replicas"], 1, "{overlay}");
            }
            let ollama = docs
                .iter()
                .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "ollama")
                .unwrap();
            let gpu = &ollama["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
                ["nvidia.com/gpu"];
            assert_eq!(!gpu.is_null(), overlay == "gpu", "{overlay}");
        }
    }
}
