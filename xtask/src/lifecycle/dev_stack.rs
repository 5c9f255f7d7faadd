//! `cargo xtask dev --stack`: the dev stage's outside services in containers, for a natively
//! run server.

use super::*;

/// For `cargo xtask dev --stack`: the dev stage's services that are neither built here nor
/// depend on what is (PostgreSQL, Redis, Ollama and its model pull) brought up healthy and
/// published on 127.0.0.1. Returns the settings that point a natively run Berth at them: the
/// app's environment and database URL from the stack, with `SERVICE:PORT` replaced by the
/// published address.
pub fn dev_stack(dry_run: bool) -> Result<Vec<(String, String)>> {
    let ctx = Ctx::load(&StageArgs {
        stage: "dev".into(),
        project_name: None,
    })?;
    let requested = match ctx.vars.get("COMPOSE_PROFILES") {
        Some(p) => p
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        None => ctx.stack.default_profiles(),
    };
    let enabled = ctx.stack.profiles(&requested)?;
    let built: BTreeSet<&str> = ctx
        .stage
        .services
        .iter()
        .filter(|s| s.build.is_some())
        .map(|s| s.name.as_str())
        .collect();
    let services: Vec<_> = active_services(&ctx.stage, &enabled)
        .filter(|s| {
            s.build.is_none()
                && !s
                    .depends_on
                    .iter()
                    .any(|d| built.contains(d.service.as_str()))
        })
        .collect();
    let names: Vec<String> = services.iter().map(|s| s.name.clone()).collect();
    let names_set: BTreeSet<String> = names.iter().cloned().collect();

    // SERVICE:PORT → 127.0.0.1:PUBLISHED for what those services publish.
    let mut published = BTreeMap::new();
    for s in &services {
        for p in &s.ports {
            let p = p.get_ref();
            published.insert(
                format!("{}:{}", s.name, p.container),
                format!("127.0.0.1:{}", ctx.vars.expand(&p.host.0)),
            );
        }
    }
    let rewrite = |value: &str| {
        let mut v = value.to_string();
        for (inside, outside) in &published {
            v = v.replace(&format!("//{inside}"), &format!("//{outside}"));
            v = v.replace(&format!("@{inside}"), &format!("@{outside}"));
        }
        v
    };

    if !dry_run {
        docker::preflight(true)?;
    }
    let compose = ctx.compose().with_profiles(enabled.iter().cloned());
    let running = if dry_run {
        Vec::new()
    } else {
        compose.containers()?
    };
    let mut only = ctx.stage.clone();
    only.services.retain(|s| names_set.contains(&s.name));
    if let Some(first) = docker::taken_ports(&only, &enabled, &ctx.vars, &running).first() {
        bail!("{first}");
    }
    let dir = docker::secrets_dir(&ctx.root, &ctx.stack, &ctx.stage, &ctx.vars);
    for line in docker::ensure_secrets(&dir, &ctx.stack, &ctx.stage, dry_run)? {
        if dry_run {
            println!("  secret: would {line}");
        } else {
            eprintln!("dev: {line}");
        }
    }
    section(&format!(
        "dev --stack: {} in containers (project {})",
        names.join(", "),
        ctx.project()
    ));
    let mut up = vec!["up".to_string(), "--detach".into(), "--no-build".into()];
    up.extend(names.iter().cloned());
    process::run_or_print(compose.command(&up), dry_run)?;
    if !dry_run {
        wait_healthy(&only, &compose, &enabled, Duration::from_secs(600))?;
        eprintln!("dev: they keep running after Ctrl-C; `cargo xtask down --stage dev` stops them");
    }

    // The app's settings, pointed at the published ports.
    let mut env = Vec::new();
    if let Some(app) = ctx.stage.services.iter().find(|s| s.build.is_some()) {
        for (k, v) in &app.environment {
            let value = ctx.vars.expand(v);
            let rewritten = rewrite(&value);
            let model = k.ends_with("_MODEL");
            if rewritten != value || model {
                env.push((k.clone(), rewritten));
            }
        }
        // A settings file made from a template (the database URL with its password).
        for name in &app.secrets {
            let Some(secret) = ctx.stack.file.secrets.get(name.as_str()) else {
                continue;
            };
            if secret.template.is_none() {
                continue;
            }
            let path = dir.join(secret.file.get_ref());
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            if let Ok(table) = text.parse::<toml::Table>() {
                for (key, value) in table {
                    if let Some(v) = value.as_str() {
                        env.push((format!("BERTH_{}", key.to_uppercase()), rewrite(v)));
                    }
                }
            }
        }
    }
    Ok(env)
}
