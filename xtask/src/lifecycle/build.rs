//! `cargo xtask build`: the stage's images, with BuildKit and the OCI labels.

use super::*;

#[derive(clap::Args, Debug)]
#[command(
    about = "Build the stack's images (deploy/stack.toml [images]) with BuildKit, showing progress",
    long_about = "Build every image the stage needs (deploy/stack.toml [images], with the \
                  stage's overrides: prod builds the `runtime` target as BERTH_IMAGE, dev the \
                  `dev` target as berth:dev), with `docker build` and BuildKit, showing its \
                  progress, then print each image's size and build time.\n\n\
                  BERTH_VERSION, BERTH_REVISION and BERTH_CREATED (the OCI labels) default to \
                  the workspace version, the git commit and its commit time, unless set in the \
                  environment or .env.",
    after_help = "Exit status:\n  0  built\n  1  Docker unavailable, or a build failed\n  2  bad command line"
)]
pub struct BuildArgs {
    #[command(flatten)]
    pub stage: StageArgs,
    /// Build only this image (a key of [images]; repeatable)
    #[arg(long = "image", value_name = "IMAGE")]
    pub images: Vec<String>,
    /// Build without BuildKit's cache
    #[arg(long)]
    pub no_cache: bool,
    /// Progress output: auto, plain or tty
    #[arg(long, default_value = "auto", value_parser = ["auto", "plain", "tty"])]
    pub progress: String,
    /// Print the build commands, build nothing
    #[arg(long)]
    pub dry_run: bool,
}

pub fn build(args: BuildArgs) -> Result<ExitCode> {
    let ctx = Ctx::load(&args.stage)?;
    if !args.dry_run {
        docker::preflight(true)?;
    }
    for wanted in &args.images {
        if !ctx.stage.images.iter().any(|i| &i.key == wanted) {
            let names: Vec<_> = ctx.stage.images.iter().map(|i| i.key.as_str()).collect();
            bail!(
                "no image `{wanted}` in deploy/stack.toml; images are: {}",
                names.join(", ")
            );
        }
    }
    build_images(
        &ctx,
        &args.images,
        args.no_cache,
        &args.progress,
        args.dry_run,
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Values for the OCI-label variables when neither the environment nor .env sets them.
pub(super) fn label_defaults(root: &Path) -> BTreeMap<&'static str, String> {
    let mut out = BTreeMap::new();
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .current_dir(root)
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    if let Ok(text) = std::fs::read_to_string(root.join("Cargo.toml")) {
        if let Ok(value) = text.parse::<toml::Table>() {
            if let Some(v) = value
                .get("workspace")
                .and_then(|w| w.get("package"))
                .and_then(|p| p.get("version"))
                .and_then(|v| v.as_str())
            {
                out.insert("BERTH_VERSION", v.to_string());
            }
        }
    }
    if let Some(rev) = git(&["rev-parse", "HEAD"]) {
        out.insert("BERTH_REVISION", rev);
    }
    // The commit time, not now: the same commit gives the same labels (reproducible images).
    if let Some(time) = git(&[
        "log",
        "-1",
        "--format=%cd",
        "--date=format-local:%Y-%m-%dT%H:%M:%SZ",
    ]) {
        out.insert("BERTH_CREATED", time);
    }
    out
}

/// Sets the label variables this process (and the compose it runs) will see.
pub(super) fn apply_label_defaults(ctx: &Ctx) {
    for (name, value) in label_defaults(&ctx.root) {
        let set = std::env::var(name).is_ok_and(|v| !v.is_empty());
        let in_env_file = ctx
            .vars
            .env_path
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .is_some_and(|t| {
                docker::parse_env_file(&t)
                    .get(name)
                    .is_some_and(|v| !v.is_empty())
            });
        if !set && !in_env_file && ctx.stack.file.variables.contains_key(name) {
            // Single-threaded here: nothing else reads the environment concurrently.
            std::env::set_var(name, value);
        }
    }
}

pub(super) fn build_images(
    ctx: &Ctx,
    only: &[String],
    no_cache: bool,
    progress: &str,
    dry_run: bool,
) -> Result<()> {
    apply_label_defaults(ctx);
    for image in &ctx.stage.images {
        if !only.is_empty() && !only.contains(&image.key) {
            continue;
        }
        let name = ctx.vars.expand(&image.name);
        let mut c = Command::new("docker");
        c.current_dir(&ctx.root).env("DOCKER_BUILDKIT", "1").args([
            "build",
            "--file",
            &image.dockerfile,
            "--tag",
            &name,
        ]);
        if let Some(t) = &image.target {
            c.args(["--target", t]);
        }
        for (k, v) in &image.args {
            c.arg("--build-arg")
                .arg(format!("{k}={}", ctx.vars.expand(v)));
        }
        if no_cache {
            c.arg("--no-cache");
        }
        c.args(["--progress", progress]).arg(&image.context);
        if dry_run {
            println!("would run: {}", show(&c));
            continue;
        }
        section(&format!(
            "build {} ({}{}) as {name}",
            image.key,
            image.dockerfile,
            image
                .target
                .as_ref()
                .map_or(String::new(), |t| format!(", target {t}"))
        ));
        let timer = Timer::start();
        process::run(c)?;
        let size = image_size(&name).map_or("?".into(), |b| format!("{:.1} MB", b as f64 / 1e6));
        eprintln!("build: {name}: {size}, built in {}", secs(timer.elapsed()));
    }
    Ok(())
}

/// An image's size in bytes, as `docker image inspect` reports it.
pub fn image_size(name: &str) -> Option<u64> {
    let out = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Size}}", name])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}
