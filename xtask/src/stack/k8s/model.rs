//! The `[kubernetes]` table of deploy/stack.toml: only the facts Kubernetes needs that the
//! compose model does not have. Images, commands, environment, users, resources, health checks,
//! volumes and secrets all come from the services themselves.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kubernetes {
    /// Where the kustomize base and overlays are written, relative to the repository root.
    pub dir: String,
    pub namespace: String,
    /// The stage whose resolved services (environment, resources...) the manifests start from.
    pub stage: String,
    /// Host name the Ingress serves, and the Secret (type kubernetes.io/tls) with its certificate.
    pub host: String,
    pub tls_secret: String,
    /// IngressClass; also the controller's namespace label NetworkPolicies admit traffic from.
    pub ingress_class: String,
    pub ingress_namespace: String,
    /// The services deployed, by name in [services].
    pub services: BTreeMap<String, K8sService>,
    /// Size of each named volume's PersistentVolumeClaim.
    pub storage: BTreeMap<String, String>,
    /// Secrets the operator creates (never generated into git): stack secret → (Secret, key).
    pub secrets: BTreeMap<String, SecretRef>,
    /// The overlays, each a directory under `dir`/overlays.
    pub overlays: BTreeMap<String, Overlay>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub enum Workload {
    Deployment,
    StatefulSet,
    Job,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct K8sService {
    pub kind: Workload,
    /// The Ingress routes here (port of the service's first published port).
    #[serde(default)]
    pub ingress: bool,
    /// Services this one connects to: NetworkPolicies allow exactly these paths.
    #[serde(default)]
    pub connects_to: Vec<String>,
    /// Needs the internet (HTTPS), e.g. to pull models.
    #[serde(default)]
    pub internet: bool,
    /// Port the Service exposes, for services that publish none in compose (data services).
    #[serde(default)]
    pub port: Option<u16>,
    /// Health probes over HTTP (liveness, readiness) instead of the compose exec check.
    #[serde(default)]
    pub http_probes: Option<(String, String)>,
    /// Whom the container runs as when compose runs it as root (Kubernetes pods never do).
    #[serde(default)]
    pub user: Option<String>,
    /// Environment only Kubernetes needs (e.g. a model directory on the PVC).
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// A mount moved elsewhere for Kubernetes: compose target → Kubernetes target.
    #[serde(default)]
    pub remount: BTreeMap<String, String>,
    /// Part of the PostgreSQL option: left out of overlays with `database = "external"`.
    #[serde(default)]
    pub database: bool,
    /// Arguments of an init container that runs first in every pod, with the same image,
    /// environment and mounts (e.g. `["migrate", "up"]`: migrations as their own step, which a
    /// contract migration fails, holding the rollout while the old pods keep serving).
    #[serde(default)]
    pub init_args: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    pub secret: String,
    pub key: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overlay {
    pub description: String,
    /// A fixed number of app replicas, or...
    #[serde(default)]
    pub replicas: Option<u32>,
    /// ...a HorizontalPodAutoscaler of the app on CPU; with it, a PodDisruptionBudget and
    /// spreading over nodes and zones.
    #[serde(default)]
    pub autoscale: Option<Autoscale>,
    /// `statefulset` (PostgreSQL in the cluster) or `external`.
    pub database: String,
    /// With `database = "external"`: where it is (CIDR) and its port, for the NetworkPolicy.
    #[serde(default)]
    pub external_database: Option<ExternalDatabase>,
    /// Ollama with an NVIDIA GPU.
    #[serde(default)]
    pub gpu: Option<Gpu>,
    /// Environment of the app in this overlay.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Autoscale {
    pub min: u32,
    pub max: u32,
    pub cpu_percent: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalDatabase {
    pub cidr: String,
    pub port: u16,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gpu {
    pub count: u32,
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    /// Taint keys the GPU nodes carry (tolerated with `Exists`, effect NoSchedule).
    #[serde(default)]
    pub tolerate: Vec<String>,
}
