//! One service's workload: its Deployment or StatefulSet, Service, claims and Job.

use super::*;

impl Generator<'_> {
    /// The workload of a service, its Service, and its PersistentVolumeClaims (Deployments) and
    /// its NetworkPolicy.
    pub(super) fn service(&self, name: &str) -> Result<Vec<Value>> {
        let k = &self.k8s.services[name];
        let r = self.resolved(name)?;
        let mut out = Vec::new();
        let port = self.port_of(name);

        let user = k
            .user
            .clone()
            .or_else(|| r.user.as_ref().map(|u| u.get_ref().clone()));
        let Some(user) = user else {
            bail!("service `{name}` runs as root in compose; give [kubernetes.services.{name}] a non-root `user`");
        };
        let (uid, gid) = ids(&user)?;
        if uid == 0 {
            bail!("service `{name}`: Kubernetes pods must not run as uid 0");
        }

        // environment: the stage's, Kubernetes' additions, variables filled in
        let mut env: BTreeMap<String, String> = r
            .environment
            .iter()
            .map(|(k, v)| (k.clone(), self.expand(v)))
            .collect();
        for (key, v) in &k.environment {
            env.insert(key.clone(), v.clone());
        }
        let env: Vec<Value> = env
            .iter()
            .map(|(k, v)| json!({ "name": k, "value": v }))
            .collect();

        // volumes
        let mut volumes = Vec::new();
        let mut mounts = Vec::new();
        let mut claims = Vec::new();
        for m in &r.volumes {
            let m = m.get_ref();
            let Some(vol) = &m.volume else {
                bail!("service `{name}` bind-mounts `{}`: Kubernetes has no host paths; use a ConfigMap or drop it from [kubernetes.services]", m.target);
            };
            let target = k
                .remount
                .get(&m.target)
                .cloned()
                .unwrap_or(m.target.clone());
            mounts.push(json!({ "name": vol, "mountPath": target, "readOnly": m.read_only }));
            match (self.k8s.storage.get(vol), k.kind) {
                (None, _) => volumes.push(json!({ "name": vol, "emptyDir": {} })),
                (Some(size), Workload::StatefulSet) => claims.push(json!({
                    "metadata": { "name": vol },
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": { "requests": { "storage": size } },
                    },
                })),
                (Some(size), _) => {
                    volumes.push(
                        json!({ "name": vol, "persistentVolumeClaim": { "claimName": vol } }),
                    );
                    out.push(json!({
                        "apiVersion": "v1",
                        "kind": "PersistentVolumeClaim",
                        "metadata": { "name": vol, "labels": labels(name) },
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "resources": { "requests": { "storage": size } },
                        },
                    }));
                }
            }
        }
        for (i, t) in r.tmpfs.iter().enumerate() {
            let (path, opts) = t.split_once(':').unwrap_or((t.as_str(), ""));
            let size = opts
                .split(',')
                .find_map(|o| o.strip_prefix("size="))
                .map(quantity)
                .transpose()?;
            let vol = format!("tmpfs-{i}");
            let mut empty = json!({ "medium": "Memory" });
            if let Some(size) = size {
                empty["sizeLimit"] = json!(size);
            }
            volumes.push(json!({ "name": vol, "emptyDir": empty }));
            mounts.push(json!({ "name": vol, "mountPath": path }));
        }
        if let Some(shm) = &r.shm_size {
            volumes.push(json!({ "name": "shm", "emptyDir": { "medium": "Memory", "sizeLimit": quantity(shm)? } }));
            mounts.push(json!({ "name": "shm", "mountPath": "/dev/shm" }));
        }
        if !r.secrets.is_empty() {
            let mut sources = Vec::new();
            for s in &r.secrets {
                let Some(sref) = self.k8s.secrets.get(s) else {
                    bail!("service `{name}` uses secret `{s}`; map it to a Kubernetes Secret in [kubernetes.secrets]");
                };
                sources.push(json!({ "secret": {
                    "name": sref.secret,
                    "items": [{ "key": sref.key, "path": s, "mode": 0o440 }],
                }}));
            }
            volumes.push(json!({ "name": "secrets", "projected": { "sources": sources } }));
            mounts
                .push(json!({ "name": "secrets", "mountPath": "/run/secrets", "readOnly": true }));
        }

        // resources: limits as in compose; requests a quarter of the CPU, all of the memory
        let mut limits = serde_json::Map::new();
        let mut requests = serde_json::Map::new();
        if let Some(cpus) = &r.resources.cpus {
            let m = millicores(&self.expand(cpus))?;
            limits.insert("cpu".into(), json!(format!("{m}m")));
            requests.insert("cpu".into(), json!(format!("{}m", (m / 4).max(10))));
        }
        if let Some(mem) = &r.resources.memory {
            let q = quantity(&self.expand(mem))?;
            limits.insert("memory".into(), json!(q));
            requests.insert("memory".into(), json!(q));
        }

        let mut container = json!({
            "name": name,
            "image": self.expand(&r.image),
            "env": env,
            "volumeMounts": mounts,
            "resources": { "limits": limits, "requests": requests },
            "securityContext": {
                "allowPrivilegeEscalation": false,
                "readOnlyRootFilesystem": r.read_only,
                "runAsNonRoot": true,
                "capabilities": { "drop": ["ALL"] },
            },
        });
        if let Some(image) = &r.build {
            let _ = image;
            container["imagePullPolicy"] = json!("IfNotPresent");
        }
        if k.ingress {
            // Leave the Service's endpoints before SIGTERM, so no new request reaches a pod
            // that is draining (kubelet's own sleep: the image has no shell).
            container["lifecycle"] = json!({ "preStop": { "sleep": { "seconds": 5 } } });
        }
        if let Some(ep) = &r.entrypoint {
            container["command"] = json!(ep.iter().map(|s| self.expand(s)).collect::<Vec<_>>());
        }
        if let Some(cmd) = &r.command {
            container["args"] = json!(cmd.iter().map(|s| self.expand(s)).collect::<Vec<_>>());
        }
        if let Some(p) = port {
            container["ports"] = json!([{ "name": "main", "containerPort": p }]);
        }
        if let Some(hc) = &r.healthcheck {
            let period = seconds(hc.interval.as_deref().unwrap_or("10s"))?;
            let timeout = seconds(hc.timeout.as_deref().unwrap_or("5s"))?;
            let retries = i64::from(hc.retries.unwrap_or(3));
            let start = seconds(hc.start_period.as_deref().unwrap_or("0s"))?;
            let (live, ready) = match &k.http_probes {
                Some((live, ready)) => (
                    json!({ "httpGet": { "path": live, "port": "main" } }),
                    json!({ "httpGet": { "path": ready, "port": "main" } }),
                ),
                None => {
                    let exec = json!({ "exec": { "command": hc.test } });
                    (exec.clone(), exec)
                }
            };
            let probe = |mut p: Value, failures: i64| {
                p["periodSeconds"] = json!(period);
                p["timeoutSeconds"] = json!(timeout);
                p["failureThreshold"] = json!(failures);
                p
            };
            container["livenessProbe"] = probe(live.clone(), retries);
            container["readinessProbe"] = probe(ready, 1.max(retries / 2));
            // The compose start period: liveness waits until the first success.
            container["startupProbe"] = probe(live, (start / period.max(1)).max(1));
        }

        // The init step: the container as configured, minus what only a server has.
        let init = k.init_args.as_ref().map(|args| {
            let mut init = container.clone();
            let fields = init.as_object_mut().expect("a map");
            for server_only in [
                "lifecycle",
                "ports",
                "livenessProbe",
                "readinessProbe",
                "startupProbe",
            ] {
                fields.remove(server_only);
            }
            fields.insert("name".into(), json!(format!("{name}-init")));
            fields.insert("args".into(), json!(args));
            init
        });

        let mut pod = json!({
            "automountServiceAccountToken": false,
            "enableServiceLinks": false,
            "securityContext": {
                "runAsNonRoot": true,
                "runAsUser": uid,
                "runAsGroup": gid,
                "fsGroup": gid,
                "seccompProfile": { "type": "RuntimeDefault" },
            },
            "containers": [container],
            "volumes": volumes,
        });
        if let Some(init) = init {
            pod["initContainers"] = json!([init]);
        }
        if let Some(grace) = &r.stop_grace_period {
            pod["terminationGracePeriodSeconds"] = json!(seconds(grace)?);
        }
        let template = |pod: Value| json!({ "metadata": { "labels": labels(name) }, "spec": pod });
        let meta = json!({ "name": name, "labels": labels(name) });
        match k.kind {
            Workload::Deployment => {
                // A volume only one node can mount: the old pod goes before the new one starts.
                let strategy = if self.has_claim(name) {
                    json!({ "type": "Recreate" })
                } else {
                    json!({ "type": "RollingUpdate", "rollingUpdate": { "maxSurge": 1, "maxUnavailable": 0 } })
                };
                let mut deployment = json!({
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": meta,
                    "spec": {
                        "replicas": 1,
                        "selector": { "matchLabels": selector(name) },
                        "strategy": strategy,
                        "template": template(pod),
                    },
                });
                if k.ingress {
                    // The overlay's replicas, or its HorizontalPodAutoscaler's.
                    deployment["spec"]
                        .as_object_mut()
                        .expect("a map")
                        .remove("replicas");
                }
                out.insert(0, deployment);
            }
            Workload::StatefulSet => out.insert(
                0,
                json!({
                    "apiVersion": "apps/v1",
                    "kind": "StatefulSet",
                    "metadata": meta,
                    "spec": {
                        "replicas": 1,
                        "serviceName": name,
                        "selector": { "matchLabels": selector(name) },
                        "template": template(pod),
                        "volumeClaimTemplates": claims,
                    },
                }),
            ),
            Workload::Job => {
                pod["restartPolicy"] = json!("OnFailure");
                out.insert(
                    0,
                    json!({
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "metadata": meta,
                        "spec": {
                            // Retries until its dependency answers, like compose's depends_on.
                            "backoffLimit": 20,
                            // Gone after an hour, so the next `kubectl apply` runs it again.
                            "ttlSecondsAfterFinished": 3600,
                            "template": template(pod),
                        },
                    }),
                );
            }
        }
        if let (Some(p), false) = (port, k.kind == Workload::Job) {
            out.push(json!({
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": { "name": name, "labels": labels(name) },
                "spec": {
                    "selector": selector(name),
                    "ports": [{ "name": "main", "port": p, "targetPort": "main" }],
                },
            }));
        }
        out.push(self.policy(name));
        Ok(out)
    }

    pub(super) fn has_claim(&self, name: &str) -> bool {
        self.resolved(name).is_ok_and(|r| {
            r.volumes.iter().any(|m| {
                m.get_ref()
                    .volume
                    .as_ref()
                    .is_some_and(|v| self.k8s.storage.contains_key(v))
            })
        })
    }
}
