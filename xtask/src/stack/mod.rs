//! The deployment stack, declared once in deploy/stack.toml: its schema ([`model`]), the checks
//! ([`validate`]), one stage's view of it ([`resolve`]), and what is generated from it
//! ([`compose`]: compose files and .env.example; [`k8s`]: the Kubernetes tree and the checks of
//! rendered manifests). `gen`, `build`, `up`, `k8s`, `scan` and friends read it through
//! [`Stack::load`].

pub mod compose;
pub mod diag;
pub mod interp;
pub mod k8s;
pub mod model;
pub mod resolve;
pub mod validate;
pub mod values;
pub mod yaml;

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use anyhow::{bail, Result};

use self::{
    diag::{Diagnostic, Diagnostics, Source},
    model::StackFile,
    resolve::ResolvedStage,
};

/// Path of the stack file, relative to the repository root.
pub const STACK_PATH: &str = "deploy/stack.toml";

/// A stack file that parsed and passed every check.
pub struct Stack {
    pub file: StackFile,
    /// The text, for tools that report on it by line (the security scan, issue 9).
    #[allow(dead_code)]
    pub source: Source,
}

impl Stack {
    /// Reads and checks the repository's stack file.
    pub fn load(root: &Path) -> Result<Stack> {
        let path = root.join(STACK_PATH);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        Ok(Stack::parse(STACK_PATH.into(), text, root)?)
    }

    /// Parses and checks `text`; `name` is how messages call the file, `root` is where
    /// relative paths in it start.
    pub fn parse(name: PathBuf, text: String, root: &Path) -> Result<Stack, Diagnostics> {
        let source = Source { name, text };
        let file: StackFile = match toml::from_str(&source.text) {
            Ok(file) => file,
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                let message = e.message().trim_end().to_string();
                // serde says "unknown field `x`, expected one of `a`, `b`": split the two.
                let item = match message.split_once(", expected ") {
                    Some((what, expected)) => Diagnostic::new(span, what).expected(expected),
                    None => Diagnostic::new(span, message),
                };
                return Err(Diagnostics {
                    source,
                    items: vec![item],
                });
            }
        };
        let problems = validate::check(&file, &source.text, root);
        if !problems.is_empty() {
            return Err(Diagnostics {
                source,
                items: problems,
            });
        }
        Ok(Stack { file, source })
    }

    pub fn stage_names(&self) -> Vec<String> {
        self.file
            .stages
            .keys()
            .map(|k| k.get_ref().clone())
            .collect()
    }

    pub fn profile_names(&self) -> Vec<String> {
        self.file
            .profiles
            .keys()
            .map(|k| k.get_ref().clone())
            .collect()
    }

    pub fn stage(&self, name: &str) -> Result<ResolvedStage> {
        let Some((key, stage)) = self.file.stages.iter().find(|(k, _)| k.get_ref() == name) else {
            bail!(
                "no stage `{name}` in {STACK_PATH}; stages are: {}",
                self.stage_names().join(", ")
            );
        };
        Ok(resolve::resolve_stage(&self.file, key, stage))
    }

    /// The profiles to enable for `requested` (their inclusions added), or why they cannot be.
    pub fn profiles(&self, requested: &[String]) -> Result<BTreeSet<String>> {
        for p in requested {
            if !self.file.profiles.contains_key(p.as_str()) {
                bail!(
                    "no profile `{p}` in {STACK_PATH}; profiles are: {}",
                    self.profile_names().join(", ")
                );
            }
        }
        let enabled = resolve::profile_closure(&self.file, requested);
        for p in &enabled {
            let profile = &self.file.profiles[p.as_str()];
            if let Some(x) = profile
                .conflicts
                .iter()
                .find(|x| enabled.contains(x.get_ref()))
            {
                bail!(
                    "profiles `{p}` and `{}` cannot run together (both enabled by: {})",
                    x.get_ref(),
                    requested.join(", ")
                );
            }
        }
        Ok(enabled)
    }

    pub fn default_profiles(&self) -> Vec<String> {
        self.file
            .project
            .default_profiles
            .iter()
            .map(|p| p.get_ref().clone())
            .collect()
    }

    /// Every generated file: (path relative to the repository root, content).
    pub fn generate(&self) -> Vec<(String, String)> {
        let generator = compose::Generator::new(&self.file);
        let mut files = Vec::new();
        for name in self.stage_names() {
            let stage = self.stage(&name).expect("declared stage");
            files.push((stage.file.clone(), generator.compose(&stage)));
        }
        files.push((".env.example".to_string(), generator.env_example()));
        files
    }
}

#[cfg(test)]
mod tests;
