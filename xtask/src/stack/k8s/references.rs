//! What a rendered overlay means, checked offline: every namespaced object sits in the one
//! namespace, and every reference between objects (a Service or PDB selector, an HPA's target,
//! an Ingress backend, a volume's claim, a URL in an environment variable, a NetworkPolicy's
//! pods) points at something the same rendering defines. Schema validation passes manifests
//! whose parts cannot find each other; this is the check that does not.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::restricted::Violation;

/// Kinds that live outside any namespace (the ones Berth could plausibly render).
const CLUSTER_SCOPED: &[&str] = &[
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "IngressClass",
    "PersistentVolume",
    "PriorityClass",
    "StorageClass",
];

/// Every misplaced object and dangling reference in `docs`, the rendering of one overlay.
pub fn check(docs: &[Value], namespace: &str) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut names: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for doc in docs {
        names.entry(kind(doc)).or_default().insert(name(doc));
    }
    let defines = |kind: &str, name: &str| names.get(kind).is_some_and(|n| n.contains(name));
    // The labels of every pod some workload of this rendering creates.
    let pods: Vec<&serde_json::Map<String, Value>> =
        docs.iter().filter_map(|d| pod_labels(d)).collect();
    let selects_a_pod = |selector: &Value| {
        let Some(wanted) = selector.as_object() else {
            return false;
        };
        pods.iter()
            .any(|labels| wanted.iter().all(|(k, v)| labels.get(k) == Some(v)))
    };

    for doc in docs {
        let object = format!("{}/{}", kind(doc), name(doc));
        let mut v = |rule: &'static str, message: String| {
            out.push(Violation {
                object: object.clone(),
                rule,
                message,
            })
        };
        let kind = kind(doc);
        if !CLUSTER_SCOPED.contains(&kind) {
            match doc["metadata"]["namespace"].as_str() {
                Some(ns) if ns == namespace => {}
                Some(ns) => v(
                    "namespace",
                    format!("is in namespace {ns:?}, not {namespace:?}"),
                ),
                None => v(
                    "namespace",
                    format!(
                        "has no namespace, so it lands in kubectl's current one instead of \
                         {namespace:?}; set `namespace:` in the overlay's kustomization"
                    ),
                ),
            }
        }
        let spec = &doc["spec"];
        match kind {
            "Service" => {
                let selector = &spec["selector"];
                if selector.is_object() && !selects_a_pod(selector) {
                    v(
                        "selector",
                        format!("selects no pod of this overlay: {selector}"),
                    );
                }
            }
            "PodDisruptionBudget" => {
                let selector = &spec["selector"]["matchLabels"];
                if !selects_a_pod(selector) {
                    v(
                        "selector",
                        format!("guards no pod of this overlay: {selector}"),
                    );
                }
            }
            "HorizontalPodAutoscaler" => {
                let target = &spec["scaleTargetRef"];
                let (k, n) = (str_of(&target["kind"]), str_of(&target["name"]));
                if !defines(k, n) {
                    v(
                        "scale-target",
                        format!("scales {k}/{n}, which this overlay does not define"),
                    );
                }
            }
            "Ingress" => {
                for service in ingress_services(spec) {
                    if !defines("Service", service) {
                        v(
                            "backend",
                            format!(
                                "routes to Service/{service}, which this overlay does not define"
                            ),
                        );
                    }
                }
            }
            "NetworkPolicy" => {
                let own = &spec["podSelector"]["matchLabels"];
                // An empty selector means every pod of the namespace (default-deny, allow-dns).
                if own.as_object().is_some_and(|m| !m.is_empty()) && !selects_a_pod(own) {
                    v(
                        "selector",
                        format!("applies to no pod of this overlay: {own}"),
                    );
                }
                for peer in policy_peers(spec) {
                    // Peers in other namespaces (the ingress controller) are not this overlay's.
                    if !peer["namespaceSelector"].is_null() {
                        continue;
                    }
                    let labels = &peer["podSelector"]["matchLabels"];
                    if labels.as_object().is_some_and(|m| !m.is_empty()) && !selects_a_pod(labels) {
                        v(
                            "peer",
                            format!("allows traffic with pods that do not exist: {labels}"),
                        );
                    }
                }
            }
            _ => {}
        }
        if let Some(pod) = pod_spec(doc) {
            for volume in pod["volumes"].as_array().into_iter().flatten() {
                let claim = str_of(&volume["persistentVolumeClaim"]["claimName"]);
                if !claim.is_empty() && !defines("PersistentVolumeClaim", claim) {
                    v("claim", format!("mounts PersistentVolumeClaim/{claim}, which this overlay does not define"));
                }
            }
            let containers = pod["containers"].as_array().into_iter().flatten();
            let init = pod["initContainers"].as_array().into_iter().flatten();
            for container in containers.chain(init) {
                for env in container["env"].as_array().into_iter().flatten() {
                    let Some(host) = url_host(str_of(&env["value"])) else {
                        continue;
                    };
                    if let Some(service) = in_cluster_service(host, namespace) {
                        if !defines("Service", service) {
                            v(
                                "url",
                                format!(
                                    "{} points at {host}, but this overlay defines no Service/{service}",
                                    str_of(&env["name"])
                                ),
                            );
                        }
                    }
                }
            }
        }
    }
    out
}

fn kind(doc: &Value) -> &str {
    doc["kind"].as_str().unwrap_or("?")
}

fn name(doc: &Value) -> &str {
    doc["metadata"]["name"].as_str().unwrap_or("?")
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// The pod template of a workload, or a bare pod's spec.
fn pod_spec(doc: &Value) -> Option<&Value> {
    match kind(doc) {
        "Pod" => Some(&doc["spec"]),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
            Some(&doc["spec"]["template"]["spec"])
        }
        "CronJob" => Some(&doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]),
        _ => None,
    }
    .filter(|s| s.is_object())
}

fn pod_labels(doc: &Value) -> Option<&serde_json::Map<String, Value>> {
    match kind(doc) {
        "Pod" => doc["metadata"]["labels"].as_object(),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
            doc["spec"]["template"]["metadata"]["labels"].as_object()
        }
        "CronJob" => {
            doc["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"].as_object()
        }
        _ => None,
    }
}

fn ingress_services(spec: &Value) -> Vec<&str> {
    let mut out = Vec::new();
    let default = str_of(&spec["defaultBackend"]["service"]["name"]);
    if !default.is_empty() {
        out.push(default);
    }
    for rule in spec["rules"].as_array().into_iter().flatten() {
        for path in rule["http"]["paths"].as_array().into_iter().flatten() {
            let service = str_of(&path["backend"]["service"]["name"]);
            if !service.is_empty() {
                out.push(service);
            }
        }
    }
    out
}

fn policy_peers(spec: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for (direction, side) in [("ingress", "from"), ("egress", "to")] {
        for rule in spec[direction].as_array().into_iter().flatten() {
            out.extend(rule[side].as_array().into_iter().flatten());
        }
    }
    out
}

/// `scheme://[user@]host[:port][/…]` → host; None for anything that is not such a URL.
fn url_host(value: &str) -> Option<&str> {
    let (_, rest) = value.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit('@').next()?;
    let host = if host.starts_with('[') {
        // An IPv6 literal (never a Service name), without its port.
        &host[..=host.find(']')?]
    } else {
        host.split(':').next()?
    };
    (!host.is_empty()).then_some(host)
}

/// The Service a host name means inside `namespace`: `name`, `name.namespace`,
/// `name.namespace.svc[.cluster.local]`. None for names outside the cluster (dots elsewhere,
/// IP addresses) and for other namespaces' Services.
fn in_cluster_service<'a>(host: &'a str, namespace: &str) -> Option<&'a str> {
    let labels: Vec<&str> = host.split('.').collect();
    let first = labels[0];
    if first.is_empty() || first.starts_with('[') || host.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    match labels[1..] {
        [] => Some(first),
        [ns] | [ns, "svc"] | [ns, "svc", "cluster", "local"] if ns == namespace => Some(first),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn app(labels: Value) -> Value {
        json!({
            "kind": "Deployment",
            "metadata": { "name": "app", "namespace": "berth" },
            "spec": { "template": {
                "metadata": { "labels": labels },
                "spec": { "containers": [{ "name": "app", "env": [
                    { "name": "BERTH_LLM_URL", "value": "http://ollama:11434" },
                    { "name": "BERTH_REDIS_URL", "value": "redis://redis.berth.svc.cluster.local:6379" },
                    { "name": "REMOTE", "value": "https://api.example.com/v1" },
                ]}]},
            }},
        })
    }

    fn rules(violations: &[Violation]) -> Vec<String> {
        violations
            .iter()
            .map(|v| format!("{} {}", v.object, v.rule))
            .collect()
    }

    #[test]
    fn finds_objects_outside_the_namespace_and_dangling_references() {
        let docs = [
            app(json!({ "app.kubernetes.io/name": "app" })),
            json!({ "kind": "Service", "metadata": { "name": "ollama", "namespace": "berth" },
                    "spec": { "selector": { "app.kubernetes.io/name": "ollama" } } }),
            json!({ "kind": "HorizontalPodAutoscaler", "metadata": { "name": "app" },
                    "spec": { "scaleTargetRef": { "kind": "Deployment", "name": "api" } } }),
            json!({ "kind": "PodDisruptionBudget", "metadata": { "name": "app", "namespace": "other" },
                    "spec": { "selector": { "matchLabels": { "app.kubernetes.io/name": "app" } } } }),
            json!({ "kind": "Namespace", "metadata": { "name": "berth" } }),
        ];
        assert_eq!(
            rules(&check(&docs, "berth")),
            [
                "Deployment/app url",      // redis: no such Service
                "Service/ollama selector", // no ollama pods
                "HorizontalPodAutoscaler/app namespace",
                "HorizontalPodAutoscaler/app scale-target",
                "PodDisruptionBudget/app namespace",
            ]
        );
    }

    #[test]
    fn a_consistent_rendering_passes() {
        let docs = [
            app(json!({ "app.kubernetes.io/name": "app", "extra": "x" })),
            json!({ "kind": "Service", "metadata": { "name": "app", "namespace": "berth" },
                    "spec": { "selector": { "app.kubernetes.io/name": "app" } } }),
            json!({ "kind": "Service", "metadata": { "name": "ollama", "namespace": "berth" } }),
            json!({ "kind": "Service", "metadata": { "name": "redis", "namespace": "berth" } }),
            json!({ "kind": "NetworkPolicy", "metadata": { "name": "app", "namespace": "berth" },
                    "spec": { "podSelector": { "matchLabels": { "app.kubernetes.io/name": "app" } },
                              "ingress": [{ "from": [{ "namespaceSelector": {}, "podSelector": {
                                  "matchLabels": { "elsewhere": "yes" } } }] }] } }),
        ];
        assert_eq!(rules(&check(&docs, "berth")), Vec::<String>::new());
    }

    #[test]
    fn reads_hosts_the_way_cluster_dns_does() {
        assert_eq!(url_host("http://user@db:5432/x"), Some("db"));
        assert_eq!(url_host("postgres://[::1]:5432"), Some("[::1]"));
        assert_eq!(url_host("0.0.0.0:8080"), None);
        assert_eq!(in_cluster_service("db", "berth"), Some("db"));
        assert_eq!(in_cluster_service("db.berth.svc", "berth"), Some("db"));
        assert_eq!(in_cluster_service("db.other.svc", "berth"), None);
        assert_eq!(in_cluster_service("10.0.0.1", "berth"), None);
        assert_eq!(in_cluster_service("api.example.com", "berth"), None);
    }
}
