//! The generated Kubernetes overlays (deploy/k8s/overlays) rendered with `kubectl kustomize`,
//! for the tasks that check or apply them (`k8s`, `scan`).

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{bail, Context, Result};

use super::process::run_with_timeout;
use crate::stack::Stack;

pub fn overlays_dir(root: &Path) -> Result<PathBuf> {
    let stack = Stack::load(root)?;
    let k8s = stack
        .file
        .kubernetes
        .as_ref()
        .context("deploy/stack.toml has no [kubernetes] table")?;
    Ok(root.join(&k8s.dir).join("overlays"))
}

/// Overlay names: the directories under deploy/k8s/overlays.
pub fn overlay_names(root: &Path) -> Result<Vec<String>> {
    let dir = overlays_dir(root)?;
    let mut names: Vec<String> = fs::read_dir(&dir)
        .with_context(|| format!("reading {}; run `cargo xtask gen`", dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
}

pub fn overlay_path(root: &Path, overlay: &str) -> Result<PathBuf> {
    let names = overlay_names(root)?;
    if !names.iter().any(|n| n == overlay) {
        bail!("no overlay `{overlay}`; overlays are: {}", names.join(", "));
    }
    Ok(overlays_dir(root)?.join(overlay))
}

/// `kubectl kustomize` of an overlay: the YAML stream.
pub fn kustomize(root: &Path, overlay: &str) -> Result<String> {
    let dir = overlay_path(root, overlay)?;
    let mut c = Command::new("kubectl");
    c.arg("kustomize").arg(&dir);
    let out = run_with_timeout(c, Duration::from_secs(60))
        .context("running kubectl (is it installed? https://kubernetes.io/docs/tasks/tools/)")?
        .context("`kubectl kustomize` did not finish within 60 s")?;
    if !out.status.success() {
        bail!(
            "`kubectl kustomize {}` failed:\n{}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    String::from_utf8(out.stdout).context("kubectl kustomize printed non-UTF-8")
}

/// `kubectl kustomize deploy/k8s/overlays/OVERLAY`, parsed into one JSON value per document.
pub fn render_overlay(root: &Path, overlay: &str) -> Result<Vec<serde_json::Value>> {
    parse_documents(&kustomize(root, overlay)?)
}

/// A YAML stream → its documents (empty ones skipped).
pub fn parse_documents(text: &str) -> Result<Vec<serde_json::Value>> {
    use serde::Deserialize;
    let mut docs = Vec::new();
    for (i, doc) in yaml_serde::Deserializer::from_str(text).enumerate() {
        let value = serde_json::Value::deserialize(doc)
            .with_context(|| format!("YAML document {} is not valid", i + 1))?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}
