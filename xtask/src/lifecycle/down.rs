//! `cargo xtask down`: the stage's containers stopped, and with --volumes its data removed.

use super::*;

#[derive(clap::Args, Debug)]
#[command(
    about = "Stop and remove the stack's containers and networks (--volumes: its data too)",
    long_about = "Stop and remove every container (of every profile) and network of the stage's \
                  compose project. With --volumes, also delete its named volumes, which hold all \
                  of its data (database, uploads, models): asks first, unless --yes; refuses \
                  without a terminal to ask on. Afterwards, checks that nothing of the project is \
                  left and says so.",
    after_help = "Exit status:\n  0  removed\n  1  Docker unavailable, not confirmed, or something was left\n  2  bad command line"
)]
pub struct DownArgs {
    #[command(flatten)]
    pub stage: StageArgs,
    /// Also delete the named volumes: all of the stack's data
    #[arg(long)]
    pub volumes: bool,
    /// Do not ask before deleting volumes
    #[arg(long)]
    pub yes: bool,
    /// Print what would be removed, remove nothing
    #[arg(long)]
    pub dry_run: bool,
}

pub(super) fn project_objects(kind: &str, project: &str) -> Result<Vec<String>> {
    let filter = format!("label=com.docker.compose.project={project}");
    let mut c = Command::new("docker");
    match kind {
        "container" => c.args(["ps", "--all", "--filter", &filter, "--format", "{{.Names}}"]),
        "network" => c.args([
            "network",
            "ls",
            "--filter",
            &filter,
            "--format",
            "{{.Name}}",
        ]),
        _ => c.args(["volume", "ls", "--filter", &filter, "--format", "{{.Name}}"]),
    };
    let out = c
        .output()
        .with_context(|| format!("cannot run {}", show(&c)))?;
    if !out.status.success() {
        bail!(
            "`{}` failed: {}",
            show(&c),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect())
}

pub fn down(args: DownArgs) -> Result<ExitCode> {
    let ctx = Ctx::load(&args.stage)?;
    docker::preflight(true)?;
    let project = ctx.project();
    let volumes = if args.volumes {
        project_objects("volume", &project)?
    } else {
        Vec::new()
    };
    if args.volumes && !volumes.is_empty() && !args.yes && !args.dry_run {
        if !std::io::stdin().is_terminal() {
            bail!(
                "refusing to delete the volumes of project {project} ({}) without confirmation: \
                 rerun with --yes",
                volumes.join(", ")
            );
        }
        eprint!(
            "This deletes all data of project {project}: volumes {}.\nType the project name to confirm: ",
            volumes.join(", ")
        );
        std::io::stderr().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if answer.trim() != project {
            bail!("not confirmed; nothing was removed");
        }
    }
    let mut down = vec!["down", "--remove-orphans"];
    if args.volumes {
        down.push("--volumes");
    }
    process::run_or_print(ctx.compose_all().command(&down), args.dry_run)?;
    if args.dry_run {
        if !volumes.is_empty() {
            println!("would delete volumes: {}", volumes.join(", "));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut left = Vec::new();
    for kind in ["container", "network"]
        .into_iter()
        .chain(args.volumes.then_some("volume"))
    {
        for name in project_objects(kind, &project)? {
            left.push(format!("{kind} {name}"));
        }
    }
    if !left.is_empty() {
        bail!("left behind in project {project}: {}", left.join(", "));
    }
    let kept = if args.volumes {
        String::new()
    } else {
        let v = project_objects("volume", &project)?;
        if v.is_empty() {
            String::new()
        } else {
            format!(
                " (volumes kept: {}; `--volumes` deletes them)",
                v.join(", ")
            )
        }
    };
    eprintln!("down: nothing of project {project} is running{kept}");
    Ok(ExitCode::SUCCESS)
}
