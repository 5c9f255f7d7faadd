//! Berth's project tasks: `cargo xtask <task>` (see `cargo xtask --help`).
//!
//! One module per task; shared bits live in `util`, the deployment stack's model in `stack`. A
//! task imports no other task: where one runs another's work, `main` hands it a function of
//! `pipeline`. Keep this crate quick to compile: it is
//! built before any task can run.

mod admin;
mod backup;
mod bench;
mod ci;
mod deploy;
mod dev;
mod doctor;
mod e2e;
mod faults;
mod fixtures;
mod frontend;
mod fuzz;
mod gen;
mod k8s;
mod lifecycle;
mod migrate;
mod pipeline;
mod release;
mod scan;
mod setup;
mod stack;
mod upgrade_test;
mod util;

#[cfg(test)]
mod tidy;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Berth's project tasks",
    after_help = "Exit status: 0 success, 1 failure, 2 bad command line. \
                  `cargo xtask <task> --help` explains each task."
)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand, Debug)]
// Each task's help text lives with its `Args`, in its own module.
enum Task {
    Dev(dev::Args),
    Ci(ci::Args),
    Doctor(doctor::Args),
    Fixtures(fixtures::Args),
    Frontend(frontend::Args),
    E2e(e2e::Args),
    Admin(admin::Args),
    Migrate(migrate::Args),
    UpgradeTest(upgrade_test::Args),
    Bench(bench::Args),
    Fuzz(fuzz::Args),
    Gen(gen::Args),
    K8s(k8s::Args),
    Build(lifecycle::BuildArgs),
    Up(lifecycle::UpArgs),
    Down(lifecycle::DownArgs),
    Ps(lifecycle::PsArgs),
    Logs(lifecycle::LogsArgs),
    Health(lifecycle::HealthArgs),
    Exec(lifecycle::ExecArgs),
    Scan(scan::Args),
    Release(release::Args),
    Deploy(deploy::DeployArgs),
    Rollback(deploy::RollbackArgs),
    Status(deploy::StatusArgs),
    Setup(setup::Args),
    Backup(backup::Args),
    Restore(backup::RestoreArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Dev(args) => dev::run(args, lifecycle::dev_stack).map(|()| ExitCode::SUCCESS),
        Task::Ci(args) => ci::run(args, pipeline::run_check),
        Task::Doctor(args) => doctor::run(args, ci::steps_needing),
        Task::Fixtures(args) => fixtures::run(args),
        Task::Frontend(args) => frontend::run(args).map(|()| ExitCode::SUCCESS),
        Task::E2e(args) => e2e::run(args).map(|()| ExitCode::SUCCESS),
        Task::Admin(args) => admin::run(args),
        Task::Migrate(args) => migrate::run(args),
        Task::UpgradeTest(args) => upgrade_test::run(args),
        Task::Bench(args) => bench::run(args),
        Task::Fuzz(args) => fuzz::run(args),
        Task::Gen(args) => gen::run(args).map(|()| ExitCode::SUCCESS),
        Task::K8s(args) => k8s::run(args),
        Task::Build(args) => lifecycle::build(args),
        Task::Up(args) => lifecycle::up(args),
        Task::Down(args) => lifecycle::down(args),
        Task::Ps(args) => lifecycle::ps(args),
        Task::Logs(args) => lifecycle::logs(args, deploy::remote_logs),
        Task::Health(args) => lifecycle::health(args),
        Task::Exec(args) => lifecycle::exec(args),
        Task::Scan(args) => scan::run(args),
        Task::Release(args) => release::release(args, pipeline::release_scan),
        Task::Deploy(args) => deploy::deploy(args),
        Task::Rollback(args) => deploy::rollback(args),
        Task::Status(args) => deploy::status(args),
        Task::Setup(args) => setup::run(args, &pipeline::up_for_setup),
        Task::Backup(args) => backup::backup(args),
        Task::Restore(args) => backup::restore(args),
    };
    result.unwrap_or_else(|err| {
        eprintln!("error: {err:#}");
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_each_task() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("xtask").chain(args.iter().copied()))
        };
        assert!(matches!(parse(&["dev"]).unwrap().task, Task::Dev(_)));
        assert!(matches!(
            parse(&["dev", "--no-watch", "--port", "18080", "--dry-run"])
                .unwrap()
                .task,
            Task::Dev(_)
        ));
        assert!(matches!(
            parse(&["ci", "--skip", "fmt", "--only", "test"])
                .unwrap()
                .task,
            Task::Ci(_)
        ));
        assert!(matches!(parse(&["doctor"]).unwrap().task, Task::Doctor(_)));
        assert!(matches!(
            parse(&["fixtures", "--dry-run"]).unwrap().task,
            Task::Fixtures(_)
        ));
    }

    #[test]
    fn rejects_bad_arguments() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("xtask").chain(args.iter().copied()))
        };
        for bad in [
            &["dev", "--port", "0"][..],
            &["dev", "--port", "99999"],
            &["ci", "--skip", "nope"],
            &["ci", "--list", "--only", "fmt"],
            &[],
        ] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?} should be a usage error");
        }
    }
}
