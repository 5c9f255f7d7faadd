//! The stack file's schema (deploy/stack.toml), as serde reads it. Unknown keys are errors
//! everywhere; every name that something else refers to keeps its place in the file
//! ([`Spanned`]) so that `validate` can point at it.
//!
//! The comments on each field are the schema's documentation.

use std::{collections::BTreeMap, fmt};

use serde::{de, Deserialize, Deserializer};
use toml::Spanned;

pub use super::values::{ByteSize, Cpus, Duration, ImageRef, LogDriver, RestartPolicy};

pub type Name = Spanned<String>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackFile {
    /// Schema version; 1.
    pub version: Spanned<u32>,
    pub project: Project,
    /// Named sets of optional services (`--profile`).
    pub profiles: BTreeMap<Name, Profile>,
    /// Every `${NAME}` used anywhere, with its default and what it means (→ .env.example).
    #[serde(default)]
    pub variables: BTreeMap<Name, Variable>,
    /// Files mounted into services at /run/secrets/NAME.
    #[serde(default)]
    pub secrets: BTreeMap<Name, Secret>,
    /// Images built from this repository.
    #[serde(default)]
    pub images: BTreeMap<Name, Image>,
    #[serde(default)]
    pub networks: BTreeMap<Name, Network>,
    /// Named volumes (data that outlives containers).
    #[serde(default)]
    pub volumes: BTreeMap<Name, Volume>,
    /// Settings every service gets unless it sets its own.
    #[serde(default)]
    pub defaults: Defaults,
    pub services: BTreeMap<Name, Service>,
    /// Deployment stages (`dev`, `prod`), each with its own compose file and overrides.
    pub stages: BTreeMap<Name, Stage>,
    /// What Kubernetes needs beyond the compose facts (schema: xtask/src/k8s/model.rs).
    #[serde(default)]
    pub kubernetes: Option<super::k8s::model::Kubernetes>,
    /// Servers `cargo xtask deploy` puts releases on, over SSH (docs/deploy.md).
    #[serde(default)]
    pub targets: BTreeMap<Name, Target>,
}

/// A deployment server. Only where and how to reach it: no secrets (they live in its own `dir`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    #[serde(default)]
    pub description: Option<String>,
    /// Host name or address SSH connects to.
    pub host: Name,
    #[serde(default = "default_ssh_port")]
    pub port: Spanned<u16>,
    /// The SSH login; it must be able to run `docker` (e.g. in group `docker`).
    pub user: Name,
    /// Path of the private key to log in with (never the key itself); default: ssh's own choice.
    #[serde(default)]
    pub identity: Option<Name>,
    /// The stage whose compose file runs there.
    pub stage: Name,
    /// Absolute directory on the server holding the deployment (compose file, secrets, backups, log).
    pub dir: Name,
    /// Profiles enabled there; `proxy` is required (it carries the traffic during the switch).
    #[serde(default)]
    pub profiles: Vec<Name>,
    /// Values of [variables] there (written to its docker/.env), e.g. BERTH_HTTPS_PORT.
    #[serde(default)]
    pub variables: BTreeMap<Name, Spanned<String>>,
}

fn default_ssh_port() -> Spanned<u16> {
    Spanned::new(0..0, 22)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Project {
    /// Compose project name of the default stage, and the prefix of everything it creates.
    pub name: Name,
    #[serde(default)]
    pub description: Option<String>,
    /// Profiles `cargo xtask up` enables when none are given.
    #[serde(default)]
    pub default_profiles: Vec<Name>,
    /// Directory of the secret files, as the compose files see it (relative to their folder).
    pub secrets_dir: Name,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub description: String,
    /// Enabling this profile enables these too.
    #[serde(default)]
    pub includes: Vec<Name>,
    /// Profiles that must not be enabled together with this one.
    #[serde(default)]
    pub conflicts: Vec<Name>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    /// The value when the environment (or .env) does not set one.
    #[serde(default)]
    pub default: Option<Spanned<String>>,
    /// Without a default: compose refuses to start unless it is set.
    #[serde(default)]
    pub required: bool,
    pub description: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Secret {
    pub description: String,
    /// File name under the project's `secrets_dir`.
    pub file: Name,
    /// `cargo xtask up` creates the file with random content when it is missing.
    #[serde(default)]
    pub generate: Option<Spanned<Generate>>,
    /// The file's content, made from other secrets (`{name}` is that secret's content).
    #[serde(default)]
    pub template: Option<Spanned<String>>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Generate {
    /// 32 random letters and digits.
    Password,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Image {
    #[serde(default)]
    pub description: Option<String>,
    /// Relative to the repository root.
    pub dockerfile: Name,
    /// Build context, relative to the repository root.
    pub context: Name,
    /// Dockerfile stage to build.
    #[serde(default)]
    pub target: Option<Name>,
    /// The image's name and tag (may use variables).
    pub name: Spanned<ImageRef>,
    /// Build arguments; each must be an `ARG` of the Dockerfile.
    #[serde(default)]
    pub args: BTreeMap<Name, Spanned<String>>,
}

/// A stage's changes to an image.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageOverride {
    #[serde(default)]
    pub target: Option<Name>,
    #[serde(default)]
    pub name: Option<Spanned<ImageRef>>,
    #[serde(default)]
    pub args: BTreeMap<Name, Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    #[serde(default)]
    pub description: Option<String>,
    /// No route out of the network (and no published ports through it).
    #[serde(default)]
    pub internal: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    #[serde(default)]
    pub read_only: Option<bool>,
    #[serde(default)]
    pub no_new_privileges: Option<bool>,
    #[serde(default)]
    pub cap_drop: Option<Vec<Name>>,
    #[serde(default)]
    pub tmpfs: Option<Vec<Name>>,
    #[serde(default)]
    pub stop_grace_period: Option<Spanned<Duration>>,
    #[serde(default)]
    pub healthcheck: Option<Healthcheck>,
    #[serde(default)]
    pub resources: Option<Resources>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    #[serde(default)]
    pub description: Option<String>,
    /// An image from a registry, pinned (`name:tag` or `name@sha256:...`)...
    #[serde(default)]
    pub image: Option<Spanned<ImageRef>>,
    /// ...or one of [images], built here.
    #[serde(default)]
    pub build: Option<Name>,
    /// Runs only when one of these profiles is enabled; always when empty.
    #[serde(default)]
    pub profiles: Vec<Name>,
    /// A data service: only on internal networks, never published in stage prod.
    #[serde(default)]
    pub data: bool,
    /// A job that runs to completion; no health check, dependants wait for its success.
    #[serde(default)]
    pub oneshot: bool,
    /// Why this service runs as root (required when it sets no non-root `user`).
    #[serde(default)]
    pub root: Option<Spanned<String>>,
    #[serde(default)]
    pub user: Option<Name>,
    #[serde(default)]
    pub entrypoint: Option<Vec<Name>>,
    #[serde(default)]
    pub command: Option<Vec<Name>>,
    #[serde(default)]
    pub environment: BTreeMap<Name, Name>,
    #[serde(default)]
    pub secrets: Vec<Name>,
    #[serde(default)]
    pub ports: Vec<Spanned<Port>>,
    #[serde(default)]
    pub volumes: Vec<Spanned<Mount>>,
    #[serde(default)]
    pub tmpfs: Option<Vec<Name>>,
    #[serde(default)]
    pub networks: Vec<Name>,
    /// Extra DNS names of the service on each of its networks.
    #[serde(default)]
    pub aliases: Vec<Name>,
    #[serde(default)]
    pub depends_on: Vec<Spanned<Dependency>>,
    #[serde(default)]
    pub healthcheck: Option<Healthcheck>,
    #[serde(default)]
    pub resources: Option<Resources>,
    #[serde(default)]
    pub read_only: Option<bool>,
    #[serde(default)]
    pub no_new_privileges: Option<bool>,
    #[serde(default)]
    pub cap_drop: Option<Vec<Name>>,
    #[serde(default)]
    pub cap_add: Vec<Name>,
    #[serde(default)]
    pub stop_grace_period: Option<Spanned<Duration>>,
    #[serde(default)]
    pub stop_signal: Option<Name>,
    #[serde(default)]
    pub shm_size: Option<Spanned<ByteSize>>,
    /// GPUs to reserve: `all` or a count (NVIDIA driver).
    #[serde(default)]
    pub gpus: Option<Name>,
}

/// A stage's changes to a service. Tables merge key by key, lists replace.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceOverride {
    #[serde(default)]
    pub user: Option<Name>,
    #[serde(default)]
    pub command: Option<Vec<Name>>,
    #[serde(default)]
    pub environment: BTreeMap<Name, Name>,
    #[serde(default)]
    pub ports: Option<Vec<Spanned<Port>>>,
    #[serde(default)]
    pub volumes: Option<Vec<Spanned<Mount>>>,
    #[serde(default)]
    pub tmpfs: Option<Vec<Name>>,
    #[serde(default)]
    pub networks: Option<Vec<Name>>,
    #[serde(default)]
    pub healthcheck: Option<Healthcheck>,
    #[serde(default)]
    pub resources: Option<Resources>,
    #[serde(default)]
    pub read_only: Option<bool>,
    #[serde(default)]
    pub cap_add: Option<Vec<Name>>,
    #[serde(default)]
    pub stop_grace_period: Option<Spanned<Duration>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Healthcheck {
    /// The command, exec form (no shell): `["pg_isready", "--host=127.0.0.1"]`.
    #[serde(default)]
    pub test: Option<Vec<Name>>,
    #[serde(default)]
    pub interval: Option<Spanned<Duration>>,
    #[serde(default)]
    pub timeout: Option<Spanned<Duration>>,
    #[serde(default)]
    pub retries: Option<Spanned<u32>>,
    #[serde(default)]
    pub start_period: Option<Spanned<Duration>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// CPU limit, e.g. "0.5" or "2" (a string, so that it may be a variable).
    #[serde(default)]
    pub cpus: Option<Spanned<Cpus>>,
    /// Memory limit, e.g. "512m", "2g".
    #[serde(default)]
    pub memory: Option<Spanned<ByteSize>>,
    /// Process (thread) limit.
    #[serde(default)]
    pub pids: Option<Spanned<u32>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Port {
    /// Port inside the container.
    pub container: u16,
    /// Host port (a number, or a variable).
    pub host: StringOrNumber,
    /// Host address to bind; 127.0.0.1 unless set.
    #[serde(default)]
    pub bind: Option<Name>,
    #[serde(default = "tcp")]
    pub protocol: String,
    /// What it serves, for `cargo xtask up`'s list of URLs.
    #[serde(default)]
    pub name: Option<String>,
    /// A URL path to show for it (`/`); without one, no URL is printed.
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default = "http")]
    pub scheme: String,
}

fn tcp() -> String {
    "tcp".into()
}

fn http() -> String {
    "http".into()
}

/// `8080` or `"${PORT}"`, kept as text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StringOrNumber(pub String);

impl<'de> Deserialize<'de> for StringOrNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = StringOrNumber;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a port number or a string such as \"${PORT}\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(StringOrNumber(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(StringOrNumber(v.to_string()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(StringOrNumber(v.to_string()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mount {
    /// A named volume of [volumes]...
    #[serde(default)]
    pub volume: Option<String>,
    /// ...or a path on the host (relative to the repository root, or a variable).
    #[serde(default)]
    pub bind: Option<String>,
    /// Absolute path in the container.
    pub target: String,
    #[serde(default)]
    pub read_only: bool,
}

/// `"db"`, or `{ service = "ollama", optional = true }` for one that may not be running.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dependency {
    pub service: String,
    /// The dependant starts even when this service is not part of the enabled profiles.
    pub optional: bool,
}

impl<'de> Deserialize<'de> for Dependency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Table {
            service: String,
            #[serde(default)]
            optional: bool,
        }
        struct Visitor;
        impl<'de> de::Visitor<'de> for Visitor {
            type Value = Dependency;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a service name, or a table `{ service = \"NAME\", optional = true }`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Dependency {
                    service: v.to_string(),
                    optional: false,
                })
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let table = Table::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Dependency {
                    service: table.service,
                    optional: table.optional,
                })
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    #[serde(default)]
    pub description: Option<String>,
    /// Compose project name (`name:`), so that stages keep separate containers and volumes.
    pub project: Name,
    /// The compose file generated for this stage, relative to the repository root.
    pub file: Name,
    /// Restart policy of every long-running service: no, always, on-failure, unless-stopped.
    pub restart: Spanned<RestartPolicy>,
    /// Whether data services may publish ports and join non-internal networks (dev: to reach
    /// the database with psql). Off by default: data services stay unreachable from outside.
    #[serde(default)]
    pub publish_data_services: bool,
    #[serde(default)]
    pub logging: Option<Logging>,
    #[serde(default)]
    pub images: BTreeMap<Name, ImageOverride>,
    #[serde(default)]
    pub services: BTreeMap<Name, ServiceOverride>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Logging {
    pub driver: Spanned<LogDriver>,
    /// Rotate the log at this size (json-file, local).
    #[serde(default)]
    pub max_size: Option<Spanned<ByteSize>>,
    /// Keep this many rotated files.
    #[serde(default)]
    pub max_file: Option<u32>,
}
