//! Berth's own check of the Pod Security Standards "restricted" profile, plus the hardening
//! Berth asks of every container (read-only root filesystem, CPU and memory limits), on
//! rendered manifests as JSON values. `cargo xtask k8s validate` (ci step `k8s`) and
//! `cargo xtask scan` both run it.
//!
//! The profile: <https://kubernetes.io/docs/concepts/security/pod-security-standards/>.

use serde_json::Value;

/// One broken rule in one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// `Kind/name` of the object.
    pub object: String,
    /// Short rule id, e.g. `run-as-non-root`.
    pub rule: &'static str,
    pub message: String,
}

/// Volume types the restricted profile allows.
const ALLOWED_VOLUMES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// Every violation in `docs` (Kubernetes objects; those without pods are ignored, except a
/// Namespace, which must enforce the restricted profile itself).
pub fn check(docs: &[Value]) -> Vec<Violation> {
    let mut out = Vec::new();
    for doc in docs {
        let kind = doc["kind"].as_str().unwrap_or("?");
        let name = doc["metadata"]["name"].as_str().unwrap_or("?");
        let object = format!("{kind}/{name}");
        let mut v = |rule: &'static str, message: String| {
            out.push(Violation {
                object: object.clone(),
                rule,
                message,
            })
        };
        if kind == "Namespace" {
            let enforce = &doc["metadata"]["labels"]["pod-security.kubernetes.io/enforce"];
            if enforce != "restricted" {
                v(
                    "namespace-enforces-restricted",
                    "label the namespace pod-security.kubernetes.io/enforce: restricted, so the \
                     API server refuses pods that break the profile"
                        .into(),
                );
            }
            continue;
        }
        if let Some(pod) = pod_spec(kind, doc) {
            check_pod(pod, &mut v);
        }
    }
    out
}

/// The pod spec of a workload object.
fn pod_spec<'a>(kind: &str, doc: &'a Value) -> Option<&'a Value> {
    match kind {
        "Pod" => Some(&doc["spec"]),
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "Job"
        | "ReplicationController" => Some(&doc["spec"]["template"]["spec"]),
        "CronJob" => Some(&doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]),
        _ => None,
    }
}

fn check_pod(pod: &Value, v: &mut impl FnMut(&'static str, String)) {
    let psc = &pod["securityContext"];
    for field in ["hostNetwork", "hostPID", "hostIPC"] {
        if pod[field] == true {
            v("host-namespaces", format!("{field} must not be true"));
        }
    }
    if let Some(volumes) = pod["volumes"].as_array() {
        for vol in volumes {
            let vname = vol["name"].as_str().unwrap_or("?");
            let Some(obj) = vol.as_object() else { continue };
            for key in obj.keys().filter(|k| *k != "name") {
                if !ALLOWED_VOLUMES.contains(&key.as_str()) {
                    v(
                        "volume-types",
                        format!(
                            "volume `{vname}` is a {key}; allowed: {}",
                            ALLOWED_VOLUMES.join(", ")
                        ),
                    );
                }
            }
        }
    }
    if psc["runAsUser"] == 0 {
        v(
            "run-as-non-root",
            "the pod's runAsUser must not be 0".into(),
        );
    }
    check_sysctls(psc, v);
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for c in pod[list].as_array().into_iter().flatten() {
            check_container(c, psc, list == "containers", v);
        }
    }
}

fn check_sysctls(psc: &Value, v: &mut impl FnMut(&'static str, String)) {
    const SAFE: &[&str] = &[
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    ];
    for s in psc["sysctls"].as_array().into_iter().flatten() {
        let name = s["name"].as_str().unwrap_or("?");
        if !SAFE.contains(&name) {
            v("sysctls", format!("sysctl `{name}` is not in the safe set"));
        }
    }
}

fn check_container(
    c: &Value,
    psc: &Value,
    regular: bool,
    v: &mut impl FnMut(&'static str, String),
) {
    let name = c["name"].as_str().unwrap_or("?");
    let sc = &c["securityContext"];
    // A container setting wins over the pod's.
    let effective = |field: &str| -> &Value {
        if sc[field].is_null() {
            &psc[field]
        } else {
            &sc[field]
        }
    };
    if sc["privileged"] == true {
        v("privileged", format!("container `{name}` is privileged"));
    }
    if sc["allowPrivilegeEscalation"] != false {
        v(
            "allow-privilege-escalation",
            format!("container `{name}`: set securityContext.allowPrivilegeEscalation: false"),
        );
    }
    if effective("runAsNonRoot") != true {
        v(
            "run-as-non-root",
            format!("container `{name}`: set runAsNonRoot: true (pod or container)"),
        );
    }
    if sc["runAsUser"] == 0 {
        v(
            "run-as-non-root",
            format!("container `{name}`: runAsUser must not be 0"),
        );
    }
    let seccomp = effective("seccompProfile")["type"].as_str();
    if !matches!(seccomp, Some("RuntimeDefault" | "Localhost")) {
        v(
            "seccomp",
            format!(
                "container `{name}`: set seccompProfile.type: RuntimeDefault (pod or container)"
            ),
        );
    }
    let caps = &sc["capabilities"];
    let drops_all = caps["drop"]
        .as_array()
        .is_some_and(|d| d.iter().any(|c| c == "ALL"));
    if !drops_all {
        v(
            "capabilities",
            format!("container `{name}`: set capabilities.drop: [ALL]"),
        );
    }
    for add in caps["add"].as_array().into_iter().flatten() {
        if add != "NET_BIND_SERVICE" {
            v(
                "capabilities",
                format!(
                    "container `{name}` adds capability {add}; only NET_BIND_SERVICE may be added"
                ),
            );
        }
    }
    for p in c["ports"].as_array().into_iter().flatten() {
        if p["hostPort"].as_i64().is_some_and(|h| h != 0) {
            v("host-ports", format!("container `{name}` uses a hostPort"));
        }
    }
    if let Some(t) = sc["seLinuxOptions"]["type"].as_str() {
        if !["container_t", "container_init_t", "container_kvm_t"].contains(&t) {
            v(
                "selinux",
                format!("container `{name}`: SELinux type `{t}` is not allowed"),
            );
        }
    }
    if sc["procMount"].as_str().is_some_and(|m| m != "Default") {
        v(
            "proc-mount",
            format!("container `{name}`: procMount must be Default"),
        );
    }
    // Berth's own rules beyond the profile.
    if sc["readOnlyRootFilesystem"] != true {
        v(
            "read-only-root-filesystem",
            format!("container `{name}`: set readOnlyRootFilesystem: true (write to emptyDir or PVC mounts)"),
        );
    }
    if regular {
        for res in ["cpu", "memory"] {
            if c["resources"]["limits"][res].is_null() {
                v(
                    "resource-limits",
                    format!("container `{name}` has no {res} limit"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn hardened() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": { "name": "app" },
            "spec": { "template": { "spec": {
                "securityContext": {
                    "runAsNonRoot": true,
                    "runAsUser": 10001,
                    "seccompProfile": { "type": "RuntimeDefault" },
                },
                "volumes": [{ "name": "tmp", "emptyDir": {} }],
                "containers": [{
                    "name": "app",
                    "resources": { "limits": { "cpu": "1", "memory": "1Gi" } },
                    "securityContext": {
                        "allowPrivilegeEscalation": false,
                        "readOnlyRootFilesystem": true,
                        "capabilities": { "drop": ["ALL"] },
                    },
                }],
            }}},
        })
    }

    fn rules(doc: Value) -> Vec<&'static str> {
        check(&[doc]).into_iter().map(|v| v.rule).collect()
    }

    #[test]
    fn a_hardened_deployment_passes() {
        assert_eq!(check(&[hardened()]), []);
    }

    #[test]
    fn each_broken_rule_is_reported_with_the_object() {
        let mut d = hardened();
        d["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] = json!(false);
        let v = check(&[d]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].object, "Deployment/app");
        assert_eq!(v[0].rule, "run-as-non-root");

        let pod = |f: &dyn Fn(&mut Value)| {
            let mut d = hardened();
            f(&mut d["spec"]["template"]["spec"]);
            rules(d)
        };
        let container = |f: &dyn Fn(&mut Value)| pod(&|p| f(&mut p["containers"][0]));
        assert_eq!(
            pod(&|p| p["hostNetwork"] = json!(true)),
            ["host-namespaces"]
        );
        assert_eq!(
            pod(&|p| p["volumes"][0] = json!({ "name": "h", "hostPath": { "path": "/" } })),
            ["volume-types"]
        );
        assert_eq!(
            pod(&|p| p["securityContext"]
                .as_object_mut()
                .unwrap()
                .remove("seccompProfile")
                .map(drop)
                .unwrap_or(())),
            ["seccomp"]
        );
        assert_eq!(
            container(&|c| c["securityContext"]["allowPrivilegeEscalation"] = json!(true)),
            ["allow-privilege-escalation"]
        );
        assert_eq!(
            container(&|c| c["securityContext"]["capabilities"] = json!({ "drop": ["NET_RAW"] })),
            ["capabilities"]
        );
        assert_eq!(
            container(&|c| c["securityContext"]["capabilities"]["add"] = json!(["SYS_ADMIN"])),
            ["capabilities"]
        );
        assert_eq!(
            container(&|c| c["securityContext"]["privileged"] = json!(true)),
            ["privileged"]
        );
        assert_eq!(
            container(&|c| c["securityContext"]["runAsUser"] = json!(0)),
            ["run-as-non-root"]
        );
        assert_eq!(
            container(&|c| c["securityContext"]["readOnlyRootFilesystem"] = json!(false)),
            ["read-only-root-filesystem"]
        );
        assert_eq!(
            container(&|c| c["ports"] = json!([{ "containerPort": 80, "hostPort": 80 }])),
            ["host-ports"]
        );
        assert_eq!(
            container(&|c| c["resources"] = json!({})),
            ["resource-limits", "resource-limits"]
        );
    }

    #[test]
    fn container_settings_override_the_pods() {
        let mut d = hardened();
        d["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsNonRoot"] =
            json!(false);
        assert_eq!(rules(d), ["run-as-non-root"]);
    }

    #[test]
    fn cronjob_pods_and_namespaces_are_checked() {
        let mut cron = json!({ "kind": "CronJob", "metadata": { "name": "c" } });
        cron["spec"]["jobTemplate"]["spec"]["template"] = hardened()["spec"]["template"].clone();
        assert_eq!(rules(cron.clone()), Vec::<&str>::new());
        cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["hostPID"] = json!(true);
        assert_eq!(rules(cron), ["host-namespaces"]);
        let ns = json!({ "kind": "Namespace", "metadata": { "name": "berth" } });
        assert_eq!(rules(ns), ["namespace-enforces-restricted"]);
        assert_eq!(
            rules(json!({ "kind": "Service", "metadata": { "name": "s" } })),
            Vec::<&str>::new()
        );
    }
}
