//! What serde cannot check (the forms of values are `values`'): names that refer to things,
//! variables, files, and the rules the stack promises (health checks, non-root users, limits,
//! unpublished data services, no port clashes). Every problem is reported, each at its place in
//! the file.

mod services;
mod stages;
mod targets;

use self::{services::*, stages::*, targets::*};

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    ops::Range,
    path::Path,
};

use super::{
    diag::{one_of, Diagnostic},
    interp,
    model::{ImageRef, Name, StackFile},
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
    let mut images: Vec<&toml::Spanned<ImageRef>> = Vec::new();
    for image in file.images.values() {
        images.push(&image.name);
        names.extend(image.args.values());
    }
    for s in file.services.values() {
        images.extend(s.image.iter());
        names.extend(s.user.iter());
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
            images.extend(image.name.iter());
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
    out.extend(images.into_iter().map(|i| (i.get_ref().as_str(), i.span())));
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

#[cfg(test)]
mod tests;
