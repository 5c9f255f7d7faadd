//! The Kubernetes side of the stack: the `[kubernetes]` schema ([`model`]), the kustomize tree
//! generated from it ([`generate`], as [`super::compose`] generates the compose files), and
//! Berth's checks of rendered manifests ([`restricted`], [`references`]), which `k8s` and
//! `scan` both run.

pub mod generate;
pub mod model;
pub mod references;
pub mod restricted;

/// Berth's own checks of one rendered overlay: the restricted profile, then what the objects
/// mean together (one namespace, references that resolve).
pub fn check(docs: &[serde_json::Value], namespace: &str) -> Vec<restricted::Violation> {
    let mut out = restricted::check(docs);
    out.extend(references::check(docs, namespace));
    out
}
