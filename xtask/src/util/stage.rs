//! What a task acts on: a stage of deploy/stack.toml on this machine ([`StageArgs`], loaded
//! as a [`Ctx`]), or a deployment target over SSH ([`TargetArgs`]).

use std::path::PathBuf;

use anyhow::{bail, Result};

use super::docker::{Compose, Vars};
use super::project_root;
use crate::stack::{resolve::ResolvedStage, Stack};

#[derive(clap::Args, Debug, Clone)]
pub struct StageArgs {
    /// Stage of deploy/stack.toml to act on (dev or prod)
    #[arg(long, default_value = "prod", value_name = "STAGE")]
    pub stage: String,
    /// Compose project name [default: the stage's, e.g. berth or berth-dev]
    #[arg(long, short = 'p', value_name = "NAME")]
    pub project_name: Option<String>,
}

/// What every task starts from.
pub struct Ctx {
    pub root: PathBuf,
    pub stack: Stack,
    pub stage: ResolvedStage,
    pub vars: Vars,
    project: Option<String>,
}

impl Ctx {
    pub fn load(args: &StageArgs) -> Result<Ctx> {
        let root = project_root();
        let stack = Stack::load(&root)?;
        let stage = stack.stage(&args.stage)?;
        let fresh = stack
            .generate()
            .into_iter()
            .find(|(path, _)| *path == stage.file)
            .map(|(_, content)| content);
        let current = std::fs::read_to_string(root.join(&stage.file)).ok();
        if fresh != current {
            bail!(
                "{} is missing or stale (deploy/stack.toml changed): run `cargo xtask gen` first",
                stage.file
            );
        }
        let vars = Vars::load(&root, &stack)?;
        Ok(Ctx {
            root,
            stack,
            stage,
            vars,
            project: args.project_name.clone(),
        })
    }

    pub fn compose(&self) -> Compose {
        Compose::new(&self.root, &self.stage, self.project.as_deref(), &self.vars)
    }

    /// Compose with every profile enabled: for tasks that must see every container.
    pub fn compose_all(&self) -> Compose {
        self.compose().with_profiles(self.stack.profile_names())
    }

    pub fn project(&self) -> String {
        self.project
            .clone()
            .unwrap_or_else(|| self.stage.project.clone())
    }
}

#[derive(clap::Args, Debug, Clone)]
pub struct TargetArgs {
    /// Target of deploy/stack.toml [targets] (deploy, rollback and status default to the only
    /// one declared; logs without it shows the local stack's)
    #[arg(long, short = 't', value_name = "TARGET")]
    pub target: Option<String>,
    /// Read the targets from this stack file instead of deploy/stack.toml (its services and
    /// stages are used too), e.g. for a throwaway test server
    #[arg(long, value_name = "FILE", hide = true)]
    pub stack: Option<PathBuf>,
}
