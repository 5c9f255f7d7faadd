//! `[services.X]`: what each service refers to, and the rules every service keeps (health
//! checks, non-root users, limits, unpublished data services), then dependency cycles.

use super::*;

pub(super) fn check_services(c: &mut Checker) {
    let file = c.file;
    let services = Checker::names(&file.services);
    let networks = Checker::names(&file.networks);
    let volumes = Checker::names(&file.volumes);
    let secrets = Checker::names(&file.secrets);
    let profiles = Checker::names(&file.profiles);
    let images = Checker::names(&file.images);
    let mut used_networks = BTreeSet::new();
    let mut used_volumes = BTreeSet::new();
    for (name, s) in &file.services {
        let svc = name.get_ref();
        match (&s.image, &s.build) {
            (Some(_), Some(b)) => c.error(
                b.span(),
                format!("service `{svc}` has both `image` and `build`; choose one"),
            ),
            (None, None) => c.expected(
                name.span(),
                format!("service `{svc}` has no image"),
                "`image = \"name:tag\"` or `build = \"IMAGE\"`",
            ),
            (Some(i), None) => {
                if !i.get_ref().is_pinned() {
                    c.expected(
                        i.span(),
                        format!("image `{}` is not pinned", i.get_ref()),
                        "a tag other than `latest` (`name:1.2`) or a digest (`name@sha256:...`)",
                    );
                }
            }
            (None, Some(b)) => {
                if !file.images.contains_key(b.get_ref().as_str()) {
                    c.expected(
                        b.span(),
                        format!("no image named `{}`", b.get_ref()),
                        one_of(&images),
                    );
                }
            }
        }
        for p in &s.profiles {
            if !file.profiles.contains_key(p.get_ref().as_str()) {
                c.expected(
                    p.span(),
                    format!("no profile named `{}`", p.get_ref()),
                    one_of(&profiles),
                );
            }
        }
        for x in &s.secrets {
            if !file.secrets.contains_key(x.get_ref().as_str()) {
                c.expected(
                    x.span(),
                    format!(
                        "service `{svc}` uses an undeclared secret `{}`",
                        x.get_ref()
                    ),
                    one_of(&secrets),
                );
            }
        }
        if s.networks.is_empty() {
            c.expected(
                name.span(),
                format!("service `{svc}` is on no network"),
                "`networks = [...]`",
            );
        }
        let override_networks = file
            .stages
            .values()
            .filter_map(|st| st.services.get(svc.as_str()))
            .flat_map(|o| o.networks.iter().flatten());
        for n in s.networks.iter().chain(override_networks) {
            used_networks.insert(n.get_ref().clone());
            if !file.networks.contains_key(n.get_ref().as_str()) {
                c.expected(
                    n.span(),
                    format!("no network named `{}`", n.get_ref()),
                    one_of(&networks),
                );
            }
        }
        let override_mounts = file
            .stages
            .values()
            .filter_map(|st| st.services.get(svc.as_str()))
            .flat_map(|o| o.volumes.iter().flatten());
        for m in s.volumes.iter().chain(override_mounts) {
            let mount = m.get_ref();
            match (&mount.volume, &mount.bind) {
                (Some(v), None) => {
                    used_volumes.insert(v.clone());
                    if !file.volumes.contains_key(v.as_str()) {
                        let at = c.inner(&m.span(), &format!("\"{v}\""));
                        c.expected(at, format!("no volume named `{v}`"), one_of(&volumes));
                    }
                }
                (None, Some(b)) => {
                    if !has_variable(b) && !c.root.join(b).exists() {
                        let at = c.inner(&m.span(), &format!("\"{b}\""));
                        c.error(at, format!("bind-mounted path {b} does not exist (paths are relative to the repository root)"));
                    }
                }
                _ => c.expected(
                    m.span(),
                    "a mount needs exactly one source",
                    "`volume = \"NAME\"` or `bind = \"PATH\"`",
                ),
            }
            if !mount.target.starts_with('/') {
                let at = c.inner(&m.span(), &format!("\"{}\"", mount.target));
                c.expected(
                    at,
                    "a mount target must be an absolute path",
                    "a path such as /var/lib/data",
                );
            }
        }
        let mut targets = BTreeSet::new();
        for m in &s.volumes {
            if !targets.insert(m.get_ref().target.clone()) {
                c.error(m.span(), format!("two mounts at {}", m.get_ref().target));
            }
        }
        for d in &s.depends_on {
            let dep = d.get_ref();
            let Some(target) = file.services.get(dep.service.as_str()) else {
                c.expected(
                    d.span(),
                    format!(
                        "service `{svc}` depends on an undefined service `{}`",
                        dep.service
                    ),
                    one_of(&services),
                );
                continue;
            };
            if dep.service == *svc {
                c.error(d.span(), format!("service `{svc}` depends on itself"));
                continue;
            }
            // A required dependency must run whenever the dependant does.
            if !dep.optional && !target.profiles.is_empty() {
                let mine: BTreeSet<String> = s
                    .profiles
                    .iter()
                    .flat_map(|p| resolve::enabling_profiles(file, p.get_ref()))
                    .collect();
                let theirs: BTreeSet<String> = target
                    .profiles
                    .iter()
                    .flat_map(|p| resolve::enabling_profiles(file, p.get_ref()))
                    .collect();
                if s.profiles.is_empty() || !mine.is_subset(&theirs) {
                    c.expected(
                        d.span(),
                        format!("service `{svc}` can run without `{}` (profiles {}), so it cannot depend on it", dep.service, one_of(target.profiles.iter().map(|p| p.get_ref()))),
                        format!("`{{ service = \"{}\", optional = true }}`, or the same profiles on both", dep.service),
                    );
                }
            }
        }
        if s.oneshot && s.healthcheck.is_some() {
            c.error(name.span(), format!("one-shot service `{svc}` has a health check; dependants wait for it to finish instead"));
        }
        if s.oneshot && !s.ports.is_empty() {
            c.error(
                s.ports[0].span(),
                format!("one-shot service `{svc}` publishes a port"),
            );
        }
        if let Some(g) = &s.gpus {
            if g.get_ref() != "all" && g.get_ref().parse::<u32>().is_err() {
                c.expected(g.span(), "invalid `gpus`", "`all` or a number");
            }
        }
        if let Some(h) = &s.healthcheck {
            if h.test.as_ref().is_some_and(|t| t.is_empty()) {
                c.expected(
                    name.span(),
                    "an empty health check command",
                    "a command in exec form, e.g. [\"pg_isready\"]",
                );
            }
        }
    }
    check_dependency_cycles(c);
    for name in file.networks.keys() {
        if !used_networks.contains(name.get_ref()) {
            c.error(
                name.span(),
                format!("network `{}` is declared but never used", name.get_ref()),
            );
        }
    }
    for name in file.volumes.keys() {
        if !used_volumes.contains(name.get_ref()) {
            c.error(
                name.span(),
                format!("volume `{}` is declared but never used", name.get_ref()),
            );
        }
    }
}

pub(super) fn check_dependency_cycles(c: &mut Checker) {
    let file = c.file;
    let edges: BTreeMap<&str, Vec<&str>> = file
        .services
        .iter()
        .map(|(n, s)| {
            (
                n.get_ref().as_str(),
                s.depends_on
                    .iter()
                    .map(|d| d.get_ref().service.as_str())
                    .collect(),
            )
        })
        .collect();
    for name in file.services.keys() {
        // Depth-first from each service; a path back to it is a cycle.
        let start = name.get_ref().as_str();
        let mut stack = vec![(start, vec![start])];
        let mut seen = BTreeSet::new();
        while let Some((node, path)) = stack.pop() {
            for &next in edges.get(node).into_iter().flatten() {
                if next == start {
                    let cycle = path
                        .iter()
                        .chain([&start])
                        .copied()
                        .collect::<Vec<_>>()
                        .join(" → ");
                    c.error(name.span(), format!("dependency cycle: {cycle}"));
                    return;
                }
                if seen.insert(next) {
                    let mut p = path.clone();
                    p.push(next);
                    stack.push((next, p));
                }
            }
        }
    }
}
