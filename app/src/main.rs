//! `berth`: the server binary and the operator commands that must work inside a container.

mod healthcheck;

use std::process::ExitCode;

use berth::cli::{AdminCommand, Cli, Command};
use berth::config::Settings;
use clap::Parser;

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Healthcheck(args) => return healthcheck::run(&args),
        Command::Serve(args) => args.load().and_then(berth::startup::run),
        Command::Worker(args) => args.load().and_then(berth::startup::run_worker),
        Command::Migrate(command) => berth::migrate_cli::run(&command),
        Command::Admin(command) => {
            let settings = match &command {
                AdminCommand::Create(a) | AdminCommand::ResetPassword(a) => &a.settings,
                AdminCommand::Promote(a) => &a.settings,
            };
            Settings::load(settings).and_then(|settings| berth::admin_cli::run(&command, &settings))
        }
        Command::Backup(command) => berth::maintenance::run_backup(&command),
        Command::Restore(args) => berth::maintenance::run_restore(&args),
        Command::Models(command) => berth::models_cli::run(&command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("berth: {err:#}");
            ExitCode::from(err.exit_code())
        }
    }
}
