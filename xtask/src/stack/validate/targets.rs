//! `[targets.X]`: where `cargo xtask deploy` goes.

use super::*;

/// `[targets.X]`: where `cargo xtask deploy` goes. Names things that exist; holds no secrets.
pub(super) fn check_targets(c: &mut Checker) {
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
