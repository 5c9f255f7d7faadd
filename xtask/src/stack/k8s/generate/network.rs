//! Who may talk to whom: the NetworkPolicies and the Ingress.

use super::*;

impl Generator<'_> {
    /// Who may reach `name` (services that connect to it; the ingress controller) and whom it
    /// may reach (what it connects to; the internet on 443 if it must).
    pub(super) fn policy(&self, name: &str) -> Value {
        let k = &self.k8s.services[name];
        let mut ingress = Vec::new();
        if let Some(port) = self.port_of(name) {
            let from: Vec<Value> = self
                .k8s
                .services
                .iter()
                .filter(|(_, s)| s.connects_to.iter().any(|t| t == name))
                .map(|(n, _)| json!({ "podSelector": { "matchLabels": selector(n) } }))
                .collect();
            if !from.is_empty() {
                ingress
                    .push(json!({ "from": from, "ports": [{ "protocol": "TCP", "port": port }] }));
            }
            if k.ingress {
                ingress.push(json!({
                    "from": [{ "namespaceSelector": { "matchLabels": {
                        "kubernetes.io/metadata.name": self.k8s.ingress_namespace,
                    }}}],
                    "ports": [{ "protocol": "TCP", "port": port }],
                }));
            }
        }
        let mut egress = Vec::new();
        // Egress to the in-cluster database comes with the database (its component), so an
        // overlay without it allows no traffic to pods that do not exist.
        let in_component = |t: &String| self.k8s.services.get(t).is_some_and(|s| s.database);
        for target in k.connects_to.iter().filter(|t| !in_component(t)) {
            let mut rule =
                json!({ "to": [{ "podSelector": { "matchLabels": selector(target) } }] });
            if let Some(p) = self.port_of(target) {
                rule["ports"] = json!([{ "protocol": "TCP", "port": p }]);
            }
            egress.push(rule);
        }
        if k.internet {
            egress.push(json!({
                "to": [{ "ipBlock": {
                    "cidr": "0.0.0.0/0",
                    "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"],
                }}],
                "ports": [{ "protocol": "TCP", "port": 443 }],
            }));
        }
        json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": { "name": name, "labels": labels(name) },
            "spec": {
                "podSelector": { "matchLabels": selector(name) },
                "policyTypes": ["Ingress", "Egress"],
                "ingress": ingress,
                "egress": egress,
            },
        })
    }

    /// For a database service (in the PostgreSQL component): one policy per service that
    /// connects to it, letting that service's pods reach it.
    pub(super) fn egress_to_database(&self, db: &str) -> Vec<Value> {
        let port = self.port_of(db);
        self.k8s
            .services
            .iter()
            .filter(|(_, s)| s.connects_to.iter().any(|t| t == db))
            .map(|(source, _)| {
                let mut rule =
                    json!({ "to": [{ "podSelector": { "matchLabels": selector(db) } }] });
                if let Some(p) = port {
                    rule["ports"] = json!([{ "protocol": "TCP", "port": p }]);
                }
                json!({
                    "apiVersion": "networking.k8s.io/v1",
                    "kind": "NetworkPolicy",
                    "metadata": { "name": format!("{source}-to-{db}"), "labels": labels(source) },
                    "spec": {
                        "podSelector": { "matchLabels": selector(source) },
                        "policyTypes": ["Egress"],
                        "egress": [rule],
                    },
                })
            })
            .collect()
    }

    /// Deny everything not allowed by a service's own policy; let every pod resolve names.
    pub(super) fn baseline_policies(&self) -> Vec<Value> {
        vec![
            json!({
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": { "name": "default-deny" },
                "spec": { "podSelector": {}, "policyTypes": ["Ingress", "Egress"] },
            }),
            json!({
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": { "name": "allow-dns" },
                "spec": {
                    "podSelector": {},
                    "policyTypes": ["Egress"],
                    "egress": [{
                        "to": [{ "namespaceSelector": { "matchLabels": {
                            "kubernetes.io/metadata.name": "kube-system",
                        }}}],
                        "ports": [{ "protocol": "UDP", "port": 53 }, { "protocol": "TCP", "port": 53 }],
                    }],
                },
            }),
        ]
    }

    pub(super) fn ingress(&self) -> Result<Value> {
        let Some((name, _)) = self.k8s.services.iter().find(|(_, s)| s.ingress) else {
            bail!("no [kubernetes.services.X] has `ingress = true`");
        };
        let port = self
            .port_of(name)
            .with_context(|| format!("service `{name}` has no port for the Ingress"))?;
        Ok(json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {
                "name": name,
                "labels": labels(name),
                "annotations": {
                    // Uploads: as large as Berth accepts; answers stream for a while.
                    "nginx.ingress.kubernetes.io/proxy-body-size": "64m",
                    "nginx.ingress.kubernetes.io/proxy-read-timeout": "300",
                },
            },
            "spec": {
                "ingressClassName": self.k8s.ingress_class,
                "tls": [{ "hosts": [self.k8s.host], "secretName": self.k8s.tls_secret }],
                "rules": [{
                    "host": self.k8s.host,
                    "http": { "paths": [{
                        "path": "/",
                        "pathType": "Prefix",
                        "backend": { "service": { "name": name, "port": { "number": port } } },
                    }]},
                }],
            },
        }))
    }
}
