//! What a deploy puts on the target besides images: the compose file, .env and nginx.conf, and
//! the secrets, made there once and never shipped.

use super::*;

/// The compose file, .env and nginx.conf (pointing at the live slot: unchanged traffic).
pub(super) fn upload_files(t: &Target, l: &Layout, live_slot: Option<&str>) -> Result<()> {
    println!("deploy: uploading the compose file and settings");
    let compose = t
        .stack
        .generate()
        .into_iter()
        .find(|(path, _)| *path == t.stage.file)
        .map(|(_, content)| content)
        .context("the stage's compose file is not generated")?;
    t.remote.must(
        "creating the deployment directories",
        &format!(
            "mkdir -p {d}/docker/nginx {d}/backups && mkdir -p -m 0700 {d}/secrets",
            d = quote(&t.dir)
        ),
    )?;
    t.remote
        .write_file(&l.path("docker/compose.yaml"), compose.as_bytes(), "0644")?;
    let mut env =
        String::from("# Written by `cargo xtask deploy` from deploy/stack.toml; no secrets.\n");
    for (k, v) in &t.vars {
        if k != "BERTH_IMAGE" {
            env.push_str(&format!("{k}={}\n", quote(v)));
        }
    }
    t.remote
        .write_file(&l.path("docker/.env"), env.as_bytes(), "0644")?;
    if let Some(slot) = live_slot {
        t.remote.overwrite(
            &l.path("docker/nginx/nginx.conf"),
            nginx_conf(t, &l.container(slot))?.as_bytes(),
        )?;
    }
    Ok(())
}

/// The repository's nginx.conf with its upstream set to `container`.
pub(super) fn nginx_conf(t: &Target, container: &str) -> Result<String> {
    let path = t.root.join("docker/nginx/nginx.conf");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    if text.matches(UPSTREAM_LINE).count() != 1 {
        bail!(
            "{} must contain `{UPSTREAM_LINE}` exactly once: deploy points that upstream at the live release",
            path.display()
        );
    }
    Ok(text.replace(UPSTREAM_LINE, &format!("server {container}:8080;")))
}

/// Missing secrets are made on the target, by the stack file's rules (as `cargo xtask up` does):
/// generated ones from this machine's CSPRNG, sent over SSH's stdin, never printed; templates
/// filled from them. Every secret file then gets the owner and mode `cargo xtask up` gives it
/// (see `docker::secret_access`). The proxy's TLS pair is self-signed when missing (replace it
/// with yours).
pub(super) fn ensure_secrets(t: &Target, l: &Layout) -> Result<()> {
    let dir = l.path("secrets");
    let mut values = Vec::new();
    // Files made now: their mode is set below without a line of its own.
    let mut made = Vec::new();
    for (name, secret) in &t.stack.file.secrets {
        if secret.generate.is_none() {
            continue;
        }
        let path = format!("{dir}/{}", secret.file.get_ref());
        // Exit 10: missing. Any other failure (unreadable) must not lead to a new password.
        let out = t.remote.run(
            &format!("[ -e {p} ] || exit 10; cat {p}", p = quote(&path)),
            None,
        )?;
        let value = if out.ok() {
            out.stdout.trim().to_string()
        } else if out.status.code() == Some(10) {
            println!(
                "deploy: generating secret {} on the target",
                secret.file.get_ref()
            );
            let v = random_password(32)?;
            t.remote.write_file(&path, v.as_bytes(), "0600")?;
            made.push(path.clone());
            v
        } else {
            bail!(
                "cannot read secret {path} on target `{}` ({}): deploy as the user that made it \
                 (or root)",
                t.name,
                out.stderr.trim()
            );
        };
        values.push((name.get_ref().clone(), value));
    }
    for (name, secret) in &t.stack.file.secrets {
        let path = format!("{dir}/{}", secret.file.get_ref());
        let exists = t
            .remote
            .run(&format!("test -f {}", quote(&path)), None)?
            .ok();
        if exists {
            continue;
        }
        match &secret.template {
            Some(template) => {
                let mut content = template.get_ref().clone();
                for (k, v) in &values {
                    content = content.replace(&format!("{{{k}}}"), v);
                }
                println!(
                    "deploy: deriving secret {} on the target",
                    secret.file.get_ref()
                );
                t.remote
                    .write_file(&path, format!("{content}\n").as_bytes(), "0600")?;
                made.push(path.clone());
            }
            None if secret.generate.is_none() => bail!(
                "secret `{}` is missing on target `{}`: put {} in {dir} ({})",
                name.get_ref(),
                t.name,
                secret.file.get_ref(),
                secret.description
            ),
            None => {}
        }
    }
    secret_modes(t, &dir, &made)?;
    if t.profiles.iter().any(|p| p == PROXY_SERVICE) {
        let tls = t.expand("${BERTH_TLS_DIR}");
        let tls = if tls.starts_with('/') {
            tls
        } else {
            crate::util::docker::normalize(std::path::Path::new(&l.path(&format!("docker/{tls}"))))
                .display()
                .to_string()
        };
        let script = format!(
            "set -e; [ -f {d}/fullchain.pem ] && [ -f {d}/privkey.pem ] && exit 0; \
             command -v openssl >/dev/null || {{ echo 'no TLS certificate in {d} and no openssl to make one' >&2; exit 3; }}; \
             mkdir -p {d}; cd {d}; umask 077; \
             openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj /CN={h} -keyout privkey.pem.tmp -out fullchain.pem.tmp 2>/dev/null; \
             chmod 0644 privkey.pem.tmp fullchain.pem.tmp; mv privkey.pem.tmp privkey.pem; mv fullchain.pem.tmp fullchain.pem; echo made",
            d = quote(&tls),
            h = quote(&t.remote.host)
        );
        let out = t
            .remote
            .must("preparing the proxy's TLS certificate", &script)?;
        if out.trim() == "made" {
            warn(&format!(
                "made a self-signed TLS certificate in {tls} on the target: replace fullchain.pem \
                 and privkey.pem with your own"
            ));
        }
    }
    Ok(())
}

/// Owner and mode of every secret file on the target, by the same rule as on this machine:
/// 0600 owned by the user of the services that read it when the SSH user is root; otherwise
/// 0644 (only the 0700 directory protects them), said once when files were made or changed.
pub(super) fn secret_modes(t: &Target, dir: &str, made: &[String]) -> Result<()> {
    let script = secret_modes_script(&t.stack, &t.stage, dir);
    let out = t
        .remote
        .must("setting the secret files' owners and modes", &script)?;
    let mut changed = !made.is_empty();
    let mut loose = false;
    for line in out.lines() {
        if line == "loose" {
            loose = true;
        } else if !line.trim().is_empty()
            && !made.iter().any(|m| line.starts_with(&format!("{m}: ")))
        {
            println!("deploy: secret {line}");
            changed = true;
        }
    }
    if loose && changed {
        println!(
            "deploy: the secret files on the target are 0644, protected only by {dir} (0700): \
             deploy as root (`user = \"root\"` in the target) for 0600 files owned by each \
             service's user"
        );
    }
    Ok(())
}

/// The shell script behind [`secret_modes`]: for each secret file that exists, the owner and
/// mode for the user running it; prints `PATH: MODE UID:GID (was …)` per change, and `loose`
/// when files stay 0644 because that user is not root.
pub(super) fn secret_modes_script(
    stack: &crate::stack::Stack,
    stage: &crate::stack::resolve::ResolvedStage,
    dir: &str,
) -> String {
    use crate::util::docker::{secret_access, SecretAccess};
    let mut script = String::from("set -e; me=$(id -u); loose=; ");
    for (name, secret) in &stack.file.secrets {
        let path = quote(&format!("{dir}/{}", secret.file.get_ref()));
        // as root / as the reader's own uid / as anyone else: "mode owner" (owner may be empty).
        let (root, own_uid, other) = match secret_access(stage, name.get_ref()) {
            SecretAccess::Unmounted => ("600 ".to_string(), None, "600"),
            SecretAccess::Owner { uid, gid } => (
                format!(
                    "600 {uid}{}",
                    gid.map_or(String::new(), |g| format!(":{g}"))
                ),
                Some(uid),
                "644",
            ),
            SecretAccess::Group { gid } => (format!("640 0:{gid}"), None, "644"),
            SecretAccess::World(_) => ("644 ".to_string(), None, "644"),
        };
        let own = own_uid.map_or(String::new(), |u| {
            format!("elif [ \"$me\" = {u} ]; then want='600 '; ")
        });
        script.push_str(&format!(
            "f={path}; if [ -f \"$f\" ]; then \
             if [ \"$me\" = 0 ]; then want='{root}'; {own}else want='{other} '; fi; \
             m=${{want%% *}}; o=${{want#* }}; before=$(stat -c '%a %u:%g' \"$f\"); \
             [ -z \"$o\" ] || chown \"$o\" \"$f\"; chmod \"$m\" \"$f\"; \
             after=$(stat -c '%a %u:%g' \"$f\"); \
             [ \"$before\" = \"$after\" ] || echo \"$f: $after (was $before)\"; \
             [ \"$me\" = 0 ] || [ \"$m\" = 600 ] || loose=1; fi; "
        ));
    }
    script.push_str("[ -z \"$loose\" ] || echo loose");
    script
}
