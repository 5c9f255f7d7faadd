//! `[stages.X]`: each stage resolved, then checked as compose would run it (durations, sizes,
//! addresses, ports that clash).

use super::*;

/// Durations, sizes, CPU counts, addresses: what compose would reject (or misread) later.
pub(super) fn check_stages(c: &mut Checker) {
    let file = c.file;
    let mut files = BTreeMap::new();
    let mut projects = BTreeMap::new();
    for (name, stage) in &file.stages {
        if !is_identifier(name.get_ref()) {
            c.expected(
                name.span(),
                "invalid stage name",
                "lower-case letters, digits, `-`, `_`",
            );
        }
        let f = stage.file.get_ref();
        if !(f.ends_with(".yaml") || f.ends_with(".yml")) || f.starts_with('/') || f.contains("..")
        {
            c.expected(
                stage.file.span(),
                format!("invalid compose file path `{f}`"),
                "a relative path ending in .yaml, e.g. docker/compose.yaml",
            );
        }
        if let Some(other) = files.insert(f.clone(), name.get_ref().clone()) {
            c.error(stage.file.span(), format!("stage `{other}` writes {f} too"));
        }
        if !is_identifier(stage.project.get_ref()) {
            c.expected(
                stage.project.span(),
                "invalid compose project name",
                "lower-case letters, digits, `-`, `_`",
            );
        }
        if let Some(other) =
            projects.insert(stage.project.get_ref().clone(), name.get_ref().clone())
        {
            c.error(stage.project.span(), format!("stage `{other}` uses project name `{}` too; stages must not share containers and volumes", stage.project.get_ref()));
        }
        for key in stage.services.keys() {
            if !file.services.contains_key(key.get_ref().as_str()) {
                c.expected(
                    key.span(),
                    format!(
                        "stage `{}` overrides an undefined service `{}`",
                        name.get_ref(),
                        key.get_ref()
                    ),
                    one_of(Checker::names(&file.services)),
                );
            }
        }
        let resolved = resolve::resolve_stage(file, name, stage);
        check_resolved(c, &resolved);
    }
}

/// Whether two services can be running at once (neither profile-gated apart by conflicts).
pub(super) fn can_coexist(file: &StackFile, a: &[String], b: &[String]) -> bool {
    if a.is_empty() || b.is_empty() {
        return true;
    }
    a.iter().any(|pa| {
        b.iter().any(|pb| {
            let together = resolve::profile_closure(file, &[pa.clone(), pb.clone()]);
            !together.iter().any(|p| {
                file.profiles.get(p.as_str()).is_some_and(|prof| {
                    prof.conflicts
                        .iter()
                        .any(|x| together.contains(x.get_ref()))
                })
            })
        })
    })
}

pub(super) fn check_resolved(c: &mut Checker, stage: &ResolvedStage) {
    let file = c.file;
    let variables: BTreeMap<String, String> = file
        .variables
        .iter()
        .map(|(k, v)| {
            (
                k.get_ref().clone(),
                v.default
                    .as_ref()
                    .map(|d| d.get_ref().clone())
                    .unwrap_or_default(),
            )
        })
        .collect();
    let value = |text: &str| interp::expand(text, &|name| variables.get(name).cloned());
    let st = format!("stage `{}`", stage.name);
    // (bind address, host port, protocol) → (service, profiles)
    let mut published: Vec<(String, String, String, String, Vec<String>)> = Vec::new();
    for s in &stage.services {
        let svc = &s.name;
        if !s.oneshot && s.healthcheck.is_none() {
            c.expected(s.span.clone(), format!("service `{svc}` has no health check ({st})"), "`healthcheck = { test = [...] }`, or `oneshot = true` for a job that runs to completion");
        }
        let r = &s.resources;
        if r.cpus.is_none() || r.memory.is_none() || r.pids.is_none() {
            c.expected(s.span.clone(), format!("service `{svc}` has no complete resource limits ({st})"), "`resources = { cpus = \"1\", memory = \"512m\", pids = 256 }` (here or in [defaults])");
        }
        let user = s.user.as_ref().map(|u| value(u.get_ref()));
        let is_root = user.as_deref().is_none_or(|u| {
            let id = u.split(':').next().unwrap_or("");
            id == "0" || id == "root"
        });
        if is_root && s.root.is_none() {
            let at = s.user.as_ref().map_or(s.span.clone(), |u| u.span());
            c.expected(
                at,
                format!("service `{svc}` runs as root ({st})"),
                "`user = \"UID:GID\"` (non-root), or `root = \"why it must\"`",
            );
        }
        if s.cap_drop.iter().all(|cap| cap != "ALL") {
            c.expected(
                s.span.clone(),
                format!("service `{svc}` keeps the default capabilities ({st})"),
                "`cap_drop = [\"ALL\"]` (here or in [defaults]) and only the `cap_add` it needs",
            );
        }
        if !s.no_new_privileges {
            c.expected(
                s.span.clone(),
                format!("service `{svc}` allows privilege escalation ({st})"),
                "`no_new_privileges = true`",
            );
        }
        let internal_only = s.networks.iter().all(|n| {
            file.networks
                .get(n.get_ref().as_str())
                .is_some_and(|net| net.internal)
        });
        if s.data && !stage.publish_data_services {
            if let Some(n) = s.networks.iter().find(|n| {
                file.networks
                    .get(n.get_ref().as_str())
                    .is_some_and(|net| !net.internal)
            }) {
                c.expected(n.span(), format!("data service `{svc}` joins the non-internal network `{}` in {st}", n.get_ref()), "only internal networks (`internal = true`), or `publish_data_services = true` for the stage");
            }
            if let Some(p) = s.ports.first() {
                c.expected(
                    p.span(),
                    format!("data service `{svc}` publishes a port in {st}"),
                    "no ports (publish them in a stage with `publish_data_services = true`)",
                );
            }
        }
        if !s.ports.is_empty() && internal_only {
            c.expected(s.ports[0].span(), format!("service `{svc}` publishes a port but is only on internal networks, which Docker does not publish from ({st})"), "a non-internal network in `networks`");
        }
        for p in &s.ports {
            let port = p.get_ref();
            let host = value(&port.host.0);
            match host.parse::<u16>() {
                Ok(n) if n > 0 => {}
                _ => {
                    c.expected(
                        p.span(),
                        format!(
                            "host port `{}` is `{host}` by default, not a port number ({st})",
                            port.host.0
                        ),
                        "a number from 1 to 65535",
                    );
                    continue;
                }
            }
            let bind = port
                .bind
                .as_ref()
                .map_or("127.0.0.1".to_string(), |b| value(b.get_ref()));
            if bind.parse::<IpAddr>().is_err() {
                c.expected(
                    p.span(),
                    format!("bind address `{bind}` is not an IP address ({st})"),
                    "an address such as 127.0.0.1 or 0.0.0.0",
                );
            }
            if port.protocol != "tcp" && port.protocol != "udp" {
                c.expected(
                    p.span(),
                    format!("unknown protocol `{}`", port.protocol),
                    "`tcp` or `udp`",
                );
            }
            if port.scheme != "http" && port.scheme != "https" {
                c.expected(
                    p.span(),
                    format!("unknown URL scheme `{}`", port.scheme),
                    "`http` or `https`",
                );
            }
            for (other_bind, other_host, proto, other, other_profiles) in &published {
                let overlaps = other_bind == &bind || other_bind == "0.0.0.0" || bind == "0.0.0.0";
                if overlaps
                    && other_host == &host
                    && proto == &port.protocol
                    && can_coexist(file, &s.active_in, other_profiles)
                {
                    c.expected(
                        p.span(),
                        format!("port clash in {st}: service `{svc}` publishes {bind}:{host}/{proto}, as service `{other}` does"),
                        "a different host port (or profiles that never run together)",
                    );
                }
            }
            published.push((
                bind,
                host,
                port.protocol.clone(),
                svc.clone(),
                s.active_in.clone(),
            ));
        }
    }
}
