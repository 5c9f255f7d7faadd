//! What serde cannot check (the forms of values are `values`'): names that refer to things,
//! variables, files, and the rules the stack promises (health checks, non-root users, limits,
//! unpublished data services, no port clashes). Every problem is reported, each at its place in
//! the file.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    ops::Range,
    path::Path,
};

use super::{
    diag::{one_of, Diagnostic},
    interp,
    model::{Name, StackFile},
    resolve::{self, ResolvedStage},
    values::has_variable,
};

struct Checker<'a> {
    file: &'a StackFile,
    text: &'a str,
    root: &'a Path,
    out: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.out.push(Diagnostic::new(span, message));
    }

    fn expected(
        &mut self,
        span: Range<usize>,
        message: impl Into<String>,
        expected: impl Into<String>,
    ) {
        self.out
            .push(Diagnostic::new(span, message).expected(expected));
    }

    /// The span of `needle` inside the text at `span` (e.g. `${X}` inside a string), or `span`.
    fn inner(&self, span: &Range<usize>, needle: &str) -> Range<usize> {
        self.text
            .get(span.clone())
            .and_then(|raw| raw.find(needle))
            .map_or(span.clone(), |i| {
                span.start + i..span.start + i + needle.len()
            })
    }

    fn names<'b, V: 'b>(map: impl IntoIterator<Item = (&'b Name, &'b V)>) -> Vec<String> {
        map.into_iter().map(|(k, _)| k.get_ref().clone()).collect()
    }
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// A registry reference pinned to a version: `name:tag` (not `latest`) or `name@sha256:...`.
fn is_pinned(image: &str) -> bool {
    if image.contains("@sha256:") {
        return true;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) => !tag.is_empty() && tag != "latest",
        None => false,
    }
}

/// Stage names (`FROM ... AS name`) and `ARG` names of a Dockerfile.
fn dockerfile_facts(text: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut stages = BTreeSet::new();
    let mut args = BTreeSet::new();
    // Join continuation lines first.
    let joined = text.replace("\\\n", " ");
    for line in joined.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.first().map(|w| w.to_ascii_uppercase()) {
            Some(w) if w == "FROM" => {
                if let Some(i) = words.iter().position(|w| w.eq_ignore_ascii_case("AS")) {
                    if let Some(name) = words.get(i + 1) {
                        stages.insert(name.to_ascii_lowercase());
                    }
                }
            }
            Some(w) if w == "ARG" => {
                for word in &words[1..] {
                    let name = word.split('=').next().unwrap_or(word);
                    args.insert(name.to_string());
                }
            }
            _ => {}
        }
    }
    (stages, args)
}

/// Every problem in `file` (empty when it is valid). `root` is the repository root, against
/// which paths are checked.
pub fn check(file: &StackFile, text: &str, root: &Path) -> Vec<Diagnostic> {
    let mut c = Checker {
        file,
        text,
        root,
        out: Vec::new(),
    };
    check_version(&mut c);
    check_profiles(&mut c);
    check_variables(&mut c);
    check_secrets(&mut c);
    check_images(&mut c);
    check_names(&mut c);
    check_services(&mut c);
    check_stages(&mut c);
    check_targets(&mut c);
    c.out
}

/// `[targets.X]`: where `cargo xtask deploy` goes. Names things that exist; holds no secrets.
fn check_targets(c: &mut Checker) {
    let file = c.file;
    for (name, target) in &file.targets {
        let n = name.get_ref();
        if !is_identifier(n) {
            c.expected(
                name.span(),
                "invalid target name",
                "lower-case letters, digits, `-`, `_`",
            );
        }
        let host = target.host.get_ref();
        if host.is_empty() || host.starts_with('-') || host.contains(char::is_whitespace) {
            c.expected(
                target.host.span(),
                format!("invalid host `{host}` of target `{n}`"),
                "a host name or address, e.g. berth.example.org",
            );
        }
        if *target.port.get_ref() == 0 {
            c.expected(
                target.port.span(),
                "invalid SSH port 0",
                "1-65535 (default 22)",
            );
        }
        let user = target.user.get_ref();
        if user.is_empty()
            || user.starts_with('-')
            || !user
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
        {
            c.expected(
                target.user.span(),
                format!("invalid SSH user `{user}`"),
                "a login name, e.g. deploy",
            );
        }
        if let Some(identity) = &target.identity {
            if identity.get_ref().contains("PRIVATE KEY") || identity.get_ref().contains('\n') {
                c.expected(
                    identity.span(),
                    "`identity` holds a key, not a path: never put secrets in the stack file",
                    "the path of the private key file, e.g. ~/.ssh/berth_deploy",
                );
            }
        }
        if !file.stages.contains_key(target.stage.get_ref().as_str()) {
            c.expected(
                target.stage.span(),
                format!(
                    "target `{n}` names an undefined stage `{}`",
                    target.stage.get_ref()
                ),
                one_of(Checker::names(&file.stages)),
            );
        }
        let dir = target.dir.get_ref();
        if !dir.starts_with('/')
            || dir.contains("..")
            || dir == "/"
            || dir.contains(|ch: char| ch.is_whitespace() || "'\"$`\\".contains(ch))
        {
            c.expected(
                target.dir.span(),
                format!("invalid deployment directory `{dir}`"),
                "an absolute path without spaces, quotes or `..`, e.g. /srv/berth",
            );
        }
        for p in &target.profiles {
            if !file.profiles.contains_key(p.get_ref().as_str()) {
                c.expected(
                    p.span(),
                    format!(
                        "target `{n}` enables an undefined profile `{}`",
                        p.get_ref()
                    ),
                    one_of(Checker::names(&file.profiles)),
                );
            }
        }
        if !target.profiles.iter().any(|p| p.get_ref() == "proxy") {
            c.expected(
                name.span(),
                format!("target `{n}` does not enable profile `proxy`"),
                "profiles = [\"proxy\"]: the proxy keeps serving while deploys switch versions",
            );
        }
        for var in target.variables.keys() {
            if !file.variables.contains_key(var.get_ref().as_str()) {
                c.expected(
                    var.span(),
                    format!(
                        "target `{n}` sets an undeclared variable `{}`",
                        var.get_ref()
                    ),
                    "a variable declared under [variables]",
                );
            }
        }
    }
}

fn check_version(c: &mut Checker) {
    if *c.file.version.get_ref() != 1 {
        c.expected(
            c.file.version.span(),
            format!(
                "unsupported stack file version {}",
                c.file.version.get_ref()
            ),
            "version = 1",
        );
    }
    if !is_identifier(c.file.project.name.get_ref()) {
        c.expected(
            c.file.project.name.span(),
            "invalid project name",
            "lower-case letters, digits, `-` and `_`, starting with a letter or digit",
        );
    }
}

fn check_profiles(c: &mut Checker) {
    let file = c.file;
    let known = Checker::names(&file.profiles);
    let refer = |c: &mut Checker, name: &Name, what: &str| {
        if !file.profiles.contains_key(name.get_ref().as_str()) {
            c.expected(
                name.span(),
                format!("{what}: no profile named `{}`", name.get_ref()),
                one_of(&known),
            );
        }
    };
    for p in &file.project.default_profiles {
        refer(c, p, "project.default_profiles");
    }
    for (name, profile) in &file.profiles {
        if !is_identifier(name.get_ref()) {
            c.expected(
                name.span(),
                "invalid profile name",
                "lower-case letters, digits, `-`, `_`",
            );
        }
        for i in &profile.includes {
            refer(c, i, &format!("profiles.{}.includes", name.get_ref()));
            if i.get_ref() == name.get_ref() {
                c.error(
                    i.span(),
                    format!("profile `{}` includes itself", name.get_ref()),
                );
            }
        }
        for x in &profile.conflicts {
            refer(c, x, &format!("profiles.{}.conflicts", name.get_ref()));
        }
    }
    // A profile whose inclusions conflict with each other could never be enabled.
    for name in file.profiles.keys() {
        let closure = resolve::profile_closure(file, std::slice::from_ref(name.get_ref()));
        for member in &closure {
            if let Some(p) = file.profiles.get(member.as_str()) {
                if let Some(x) = p.conflicts.iter().find(|x| closure.contains(x.get_ref())) {
                    c.error(
                        name.span(),
                        format!(
                            "profile `{}` enables both `{member}` and `{}`, which conflict",
                            name.get_ref(),
                            x.get_ref()
                        ),
                    );
                }
            }
        }
    }
}

/// Every string that may hold `${NAME}`, with its place.
fn interpolated(file: &StackFile) -> Vec<(&str, Range<usize>)> {
    let mut names: Vec<&Name> = vec![&file.project.secrets_dir];
    for image in file.images.values() {
        names.push(&image.name);
        names.extend(image.args.values());
    }
    for s in file.services.values() {
        names.extend(s.image.iter().chain(&s.user));
        names.extend(s.entrypoint.iter().flatten());
        names.extend(s.command.iter().flatten());
        names.extend(s.environment.values());
        names.extend(s.tmpfs.iter().flatten());
        if let Some(h) = &s.healthcheck {
            names.extend(h.test.iter().flatten());
        }
    }
    for stage in file.stages.values() {
        for image in stage.images.values() {
            names.extend(image.name.iter());
            names.extend(image.args.values());
        }
        for s in stage.services.values() {
            names.extend(s.user.iter());
            names.extend(s.command.iter().flatten());
            names.extend(s.environment.values());
            names.extend(s.tmpfs.iter().flatten());
        }
    }
    let mut out: Vec<(&str, Range<usize>)> = names
        .into_iter()
        .map(|n| (n.get_ref().as_str(), n.span()))
        .collect();
    // Limits may be variables too.
    let resources = file
        .services
        .values()
        .filter_map(|s| s.resources.as_ref())
        .chain(
            file.stages
                .values()
                .flat_map(|st| st.services.values())
                .filter_map(|s| s.resources.as_ref()),
        );
    for r in resources {
        out.extend(r.cpus.iter().map(|c| (c.get_ref().as_str(), c.span())));
        out.extend(r.memory.iter().map(|m| (m.get_ref().as_str(), m.span())));
    }
    // Ports and mounts: the whole entry is the place.
    let services = file
        .services
        .values()
        .map(|s| (&s.ports, &s.volumes))
        .map(|(p, v)| (Some(p), Some(v)));
    let overrides = file
        .stages
        .values()
        .flat_map(|st| st.services.values())
        .map(|s| (s.ports.as_ref(), s.volumes.as_ref()));
    for (ports, volumes) in services.chain(overrides) {
        for port in ports.into_iter().flatten() {
            out.push((port.get_ref().host.0.as_str(), port.span()));
            if let Some(bind) = &port.get_ref().bind {
                out.push((bind.get_ref().as_str(), bind.span()));
            }
        }
        for mount in volumes.into_iter().flatten() {
            if let Some(bind) = &mount.get_ref().bind {
                out.push((bind.as_str(), mount.span()));
            }
        }
    }
    out
}

fn check_variables(c: &mut Checker) {
    let file = c.file;
    let known = Checker::names(&file.variables);
    let mut used = BTreeSet::new();
    for (text, span) in interpolated(file) {
        match interp::references(text) {
            Err(bad) => {
                let needle = &text[bad.range.clone()];
                let at = c.inner(&span, needle);
                c.error(at, bad.message);
            }
            Ok(refs) => {
                for r in refs {
                    if !file.variables.contains_key(r.name.as_str()) {
                        let at = c.inner(&span, &text[r.range.clone()]);
                        c.expected(
                            at,
                            format!("undeclared variable `{}`", r.name),
                            format!("a variable declared under [variables]: {}", one_of(&known)),
                        );
                    }
                    used.insert(r.name);
                }
            }
        }
    }
    for (name, var) in &file.variables {
        if !interp::is_variable_name(name.get_ref()) {
            c.expected(
                name.span(),
                format!("invalid variable name `{}`", name.get_ref()),
                "capitals, digits and underscores, e.g. BERTH_HTTP_PORT",
            );
        }
        match (&var.default, var.required) {
            (Some(d), true) => c.error(
                d.span(),
                format!(
                    "variable `{}` is required and has a default; choose one",
                    name.get_ref()
                ),
            ),
            (None, false) => c.expected(
                name.span(),
                format!("variable `{}` has no default", name.get_ref()),
                "`default = \"...\"`, or `required = true`",
            ),
            (Some(d), false) if d.get_ref().contains(['$', '}']) => c.error(
                d.span(),
                "a default cannot contain `$` or `}` (compose could not spell it)",
            ),
            _ => {}
        }
        if !used.contains(name.get_ref()) {
            c.error(
                name.span(),
                format!("variable `{}` is declared but never used", name.get_ref()),
            );
        }
    }
}

fn check_secrets(c: &mut Checker) {
    let file = c.file;
    let known = Checker::names(&file.secrets);
    let mut used: BTreeSet<String> = file
        .services
        .values()
        .flat_map(|s| s.secrets.iter().map(|n| n.get_ref().clone()))
        .collect();
    for (name, secret) in &file.secrets {
        if !is_identifier(name.get_ref()) {
            c.expected(
                name.span(),
                "invalid secret name",
                "lower-case letters, digits, `-`, `_`",
            );
        }
        let f = secret.file.get_ref();
        if f.is_empty() || f.contains('/') || f.starts_with('.') {
            c.expected(
                secret.file.span(),
                "invalid secret file name",
                "a plain file name such as `db_password`",
            );
        }
        if let (Some(g), Some(_)) = (&secret.generate, &secret.template) {
            c.error(
                g.span(),
                "a secret is either generated or made from a template, not both",
            );
        }
        if let Some(template) = &secret.template {
            let text = template.get_ref();
            let mut rest = text.as_str();
            while let Some(open) = rest.find('{') {
                let Some(close) = rest[open..].find('}') else {
                    break;
                };
                let other = &rest[open + 1..open + close];
                rest = &rest[open + close + 1..];
                let at = c.inner(&template.span(), &format!("{{{other}}}"));
                match file.secrets.get(other) {
                    None => c.expected(
                        at,
                        format!("the template refers to an undeclared secret `{other}`"),
                        one_of(&known),
                    ),
                    Some(s) if s.generate.is_none() => c.error(
                        at,
                        format!(
                            "the template refers to `{other}`, which is not a generated secret"
                        ),
                    ),
                    Some(_) => {
                        used.insert(other.to_string());
                    }
                }
            }
        }
    }
    for name in file.secrets.keys() {
        if !used.contains(name.get_ref()) {
            c.error(
                name.span(),
                format!("secret `{}` is declared but never used", name.get_ref()),
            );
        }
    }
}

fn check_images(c: &mut Checker) {
    let file = c.file;
    for (key, image) in &file.images {
        let dockerfile = c.root.join(image.dockerfile.get_ref());
        let context = c.root.join(image.context.get_ref());
        if !context.is_dir() {
            c.error(
                image.context.span(),
                format!("no directory {}", image.context.get_ref()),
            );
        }
        let Ok(text) = std::fs::read_to_string(&dockerfile) else {
            c.error(
                image.dockerfile.span(),
                format!("cannot read {}", image.dockerfile.get_ref()),
            );
            continue;
        };
        let (stages, args) = dockerfile_facts(&text);
        let mut targets: Vec<&Name> = image.target.iter().collect();
        let mut arg_names: Vec<&Name> = image.args.keys().collect();
        for stage in file.stages.values() {
            if let Some(o) = stage.images.get(key.get_ref().as_str()) {
                targets.extend(&o.target);
                arg_names.extend(o.args.keys());
            }
        }
        for t in targets {
            if !stages.contains(&t.get_ref().to_ascii_lowercase()) {
                c.expected(
                    t.span(),
                    format!(
                        "{} has no stage `{}`",
                        image.dockerfile.get_ref(),
                        t.get_ref()
                    ),
                    one_of(&stages),
                );
            }
        }
        for a in arg_names {
            if !args.contains(a.get_ref()) {
                c.expected(
                    a.span(),
                    format!(
                        "{} declares no `ARG {}`",
                        image.dockerfile.get_ref(),
                        a.get_ref()
                    ),
                    one_of(&args),
                );
            }
        }
    }
    for stage in file.stages.values() {
        for key in stage.images.keys() {
            if !file.images.contains_key(key.get_ref().as_str()) {
                c.expected(
                    key.span(),
                    format!("no image named `{}`", key.get_ref()),
                    one_of(Checker::names(&file.images)),
                );
            }
        }
    }
}

fn check_names(c: &mut Checker) {
    let file = c.file;
    let all: Vec<&Name> = file
        .networks
        .keys()
        .chain(file.volumes.keys())
        .chain(file.services.keys())
        .chain(file.images.keys())
        .collect();
    for name in all {
        if !is_identifier(name.get_ref()) {
            c.expected(
                name.span(),
                format!("invalid name `{}`", name.get_ref()),
                "lower-case letters, digits, `-` and `_`, starting with a letter or digit",
            );
        }
    }
}

fn check_services(c: &mut Checker) {
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
                if !has_variable(i.get_ref()) && !is_pinned(i.get_ref()) {
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

fn check_dependency_cycles(c: &mut Checker) {
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

/// Durations, sizes, CPU counts, addresses: what compose would reject (or misread) later.
fn check_stages(c: &mut Checker) {
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
fn can_coexist(file: &StackFile, a: &[String], b: &[String]) -> bool {
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

fn check_resolved(c: &mut Checker, stage: &ResolvedStage) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins() {
        assert!(
            is_pinned("redis:8.0") && is_pinned("ghcr.io/a/b:1.2") && is_pinned("x@sha256:abc")
        );
        assert!(
            !is_pinned("redis") && !is_pinned("redis:latest") && !is_pinned("localhost:5000/x")
        );
    }

    #[test]
    fn dockerfile_stages_and_args() {
        let (stages, args) = dockerfile_facts(
            "ARG BASE=debian\nFROM ${BASE} AS build\nARG VERSION=1 \\\n  REVISION\nfrom scratch as Runtime\n",
        );
        assert_eq!(
            stages,
            BTreeSet::from(["build".to_string(), "runtime".to_string()])
        );
        assert_eq!(
            args,
            BTreeSet::from([
                "BASE".to_string(),
                "VERSION".to_string(),
                "REVISION".to_string()
            ])
        );
    }
}
