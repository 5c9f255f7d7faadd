//! One overlay directory of deploy/k8s/overlays: its kustomization and patches.

use super::*;

impl Generator<'_> {
    /// An overlay's files: kustomization.yaml, patches and extra objects.
    pub(super) fn overlay(&self, o: &Overlay) -> Result<Vec<(String, String)>> {
        let app = self
            .k8s
            .services
            .iter()
            .find(|(_, s)| s.ingress)
            .map(|(n, _)| n.clone())
            .context("no service with `ingress = true`")?;
        let mut files = Vec::new();
        let mut resources = vec!["../../base".to_string()];
        let mut patches = vec![json!({ "path": "app-patch.yaml" })];

        let mut spec = json!({});
        if let Some(n) = o.replicas {
            spec["replicas"] = json!(n);
        }
        let mut pod = json!({});
        if !o.environment.is_empty() {
            let env: Vec<Value> = o
                .environment
                .iter()
                .map(|(k, v)| json!({ "name": k, "value": v }))
                .collect();
            pod["containers"] = json!([{ "name": app, "env": env }]);
        }
        if let Some(a) = &o.autoscale {
            // The HPA owns the count (at least its minimum): the Deployment says none, or every
            // apply would reset it.
            pod["topologySpreadConstraints"] = json!([
                {
                    "maxSkew": 1,
                    "topologyKey": "kubernetes.io/hostname",
                    "whenUnsatisfiable": "DoNotSchedule",
                    "labelSelector": { "matchLabels": selector(&app) },
                },
                {
                    "maxSkew": 1,
                    "topologyKey": "topology.kubernetes.io/zone",
                    "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": { "matchLabels": selector(&app) },
                },
            ]);
            files.push((
                "autoscaling.yaml".to_string(),
                docs(&[
                    json!({
                        "apiVersion": "autoscaling/v2",
                        "kind": "HorizontalPodAutoscaler",
                        "metadata": { "name": app, "labels": labels(&app) },
                        "spec": {
                            "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": app },
                            "minReplicas": a.min,
                            "maxReplicas": a.max,
                            "metrics": [{ "type": "Resource", "resource": {
                                "name": "cpu",
                                "target": { "type": "Utilization", "averageUtilization": a.cpu_percent },
                            }}],
                        },
                    }),
                    json!({
                        "apiVersion": "policy/v1",
                        "kind": "PodDisruptionBudget",
                        "metadata": { "name": app, "labels": labels(&app) },
                        "spec": {
                            "minAvailable": 1,
                            "selector": { "matchLabels": selector(&app) },
                        },
                    }),
                ]),
            ));
            resources.push("autoscaling.yaml".into());
        }
        if pod != json!({}) {
            spec["template"] = json!({ "spec": pod });
        }
        files.push((
            "app-patch.yaml".to_string(),
            docs(&[json!({
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": { "name": app },
                "spec": spec,
            })]),
        ));

        let mut components = Vec::new();
        match &o.external_database {
            None => components.push("../../components/postgres".to_string()),
            Some(db) => {
                files.push((
                    "external-database.yaml".to_string(),
                    docs(&[json!({
                        "apiVersion": "networking.k8s.io/v1",
                        "kind": "NetworkPolicy",
                        "metadata": { "name": "app-external-database", "labels": labels(&app) },
                        "spec": {
                            "podSelector": { "matchLabels": selector(&app) },
                            "policyTypes": ["Egress"],
                            "egress": [{
                                "to": [{ "ipBlock": { "cidr": db.cidr } }],
                                "ports": [{ "protocol": "TCP", "port": db.port }],
                            }],
                        },
                    })]),
                ));
                resources.push("external-database.yaml".into());
            }
        }
        if let Some(gpu) = &o.gpu {
            let ollama = "ollama";
            if !self.k8s.services.contains_key(ollama) {
                bail!("a gpu overlay needs [kubernetes.services.ollama]");
            }
            let tolerations: Vec<Value> = gpu
                .tolerate
                .iter()
                .map(|key| json!({ "key": key, "operator": "Exists", "effect": "NoSchedule" }))
                .collect();
            files.push((
                "gpu-patch.yaml".to_string(),
                docs(&[json!({
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": { "name": ollama },
                    "spec": { "template": { "spec": {
                        "nodeSelector": gpu.node_selector,
                        "tolerations": tolerations,
                        "containers": [{
                            "name": ollama,
                            "resources": {
                                "limits": { "nvidia.com/gpu": gpu.count },
                                "requests": { "nvidia.com/gpu": gpu.count },
                            },
                        }],
                    }}},
                })]),
            ));
            patches.push(json!({ "path": "gpu-patch.yaml" }));
        }
        // The overlay sets the namespace again: kustomize applies the base's `namespace` only to
        // the base's own resources, so what the overlay and its components add (the HPA, the PDB,
        // the in-cluster database) would otherwise land in whatever namespace kubectl points at.
        let mut kustomization = json!({
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "namespace": self.k8s.namespace,
            "resources": resources,
            "patches": patches,
        });
        if !components.is_empty() {
            kustomization["components"] = json!(components);
        }
        let Node::Map(map) = node(&kustomization) else {
            unreachable!("objects are maps")
        };
        let header = format!("{HEADER}\n\n{}", o.description);
        files.push((
            "kustomization.yaml".to_string(),
            yaml::document(&header, &map),
        ));
        files.sort();
        Ok(files)
    }
}
