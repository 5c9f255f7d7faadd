//! `berth`: the server binary and the operator commands that must work inside a container.

mod healthcheck;

use std::process::ExitCode;

use berth::cli::{AdminCommand, Cli, Command};
use clap::{CommandFactory, FromArgMatches};

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let result = match cli.command {
        Command::Healthcheck(args) => return healthcheck::run(&args),
        Command::Serve(args) => {
            let sub = matches
                .subcommand_matches("serve")
                .expect("clap matched serve");
            berth::config::Settings::load(&args, sub).and_then(berth::startup::run)
        }
        Command::Admin(command) => {
            let admin = matches
                .subcommand_matches("admin")
                .expect("clap matched admin");
            let (name, args) = match &command {
                AdminCommand::Create(a) => ("create", a),
                AdminCommand::ResetPassword(a) => ("reset-password", a),
            };
            let sub = admin
                .subcommand_matches(name)
                .expect("clap matched the action");
            berth::config::Settings::load(&args.settings, sub)
                .and_then(|settings| berth::admin_cli::run(&command, &settings))
        }
        Command::Backup(command) => {
            let backup = matches
                .subcommand_matches("backup")
                .expect("clap matched backup");
            let (_, sub) = backup.subcommand().expect("clap matched the action");
            berth::maintenance::run_backup(&command, sub)
        }
        Command::Restore(args) => {
            let sub = matches
                .subcommand_matches("restore")
                .expect("clap matched restore");
            berth::maintenance::run_restore(&args, sub)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("berth: {err:#}");
            ExitCode::from(err.exit_code())
        }
    }
}
