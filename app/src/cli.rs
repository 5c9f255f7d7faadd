//! The command line. Every setting is a flag, a `BERTH_*` environment variable, or a key of the
//! same name in the TOML file given by `--config`, in that order of precedence; the flags come
//! from the declarations in `config::declared`, each command taking the ones it uses.

use clap::{Args, Parser, Subcommand};

use crate::config::{ForAdmin, ForServe, Given};

#[derive(Debug, Parser)]
#[command(
    name = "berth",
    version,
    about = "Berth: chat with your team's documents on a local LLM",
    long_about = "Berth: a self-hosted, private document assistant.\n\n\
        Run `berth serve` to start the server. With no configuration it keeps everything \
        (SQLite database, uploads) under ./data and needs no other service.\n\n\
        Settings come from flags, then BERTH_* environment variables, then the TOML file \
        named by --config / BERTH_CONFIG (keys named like the flags, with underscores)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (API, web UI, /health, /ready, /metrics).
    Serve(ServeArgs),
    /// Ingest uploads from the shared queue (PostgreSQL), apart from the API: extraction,
    /// chunking and embedding, so large ingests never slow searches. Serves only /health,
    /// /ready and /metrics. Pair with `berth serve --ingest false`, or add capacity beside it.
    Worker(ServeArgs),
    /// Account recovery and bootstrap, straight on the database (works inside a container).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Backups: take one, list them, verify or drill one (restore it somewhere throwaway and
    /// use it); seal the secrets apart, with a passphrase.
    #[command(subcommand)]
    Backup(crate::maintenance::BackupCommand),
    /// Replace the data (database and uploaded files) with a backup archive, after checking it
    /// and taking a safety backup. Stop Berth first.
    Restore(crate::maintenance::RestoreArgs),
    /// Schema migrations as their own step: status, up (refusing contract migrations while the
    /// previous release may still run), check. `berth serve` applies them at start unless
    /// --no-migrate.
    #[command(subcommand)]
    Migrate(crate::migrate_cli::MigrateCommand),
    /// Embedding models in the data dir: fetch one from the Hugging Face Hub, list them.
    #[command(subcommand)]
    Models(crate::models_cli::ModelsCommand),
    /// Exit 0 if the server's /health answers 200 within 3 s, else 1 (container health checks).
    Healthcheck(HealthcheckArgs),
}

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// URL to check. [default: /health on the address in BERTH_LISTEN, asked on loopback when
    /// that is 0.0.0.0 or [::]; without BERTH_LISTEN, http://127.0.0.1:8080/health]
    #[arg(long, env = "BERTH_HEALTHCHECK_URL", value_name = "URL")]
    pub url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an active admin account: the first one after installing, or another.
    Create(AdminArgs),
    /// Set a new password for an account; all its sessions and API tokens end.
    ResetPassword(AdminArgs),
    /// Make an existing account an active admin: the way in when password sign-in is off and
    /// the accounts come from an OpenID provider (sign in once, then promote that account).
    Promote(PromoteArgs),
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The account's user name.
    #[arg(long)]
    pub username: String,
    /// Where the database is: the same settings as `berth serve`.
    #[command(flatten)]
    pub settings: Given<ForAdmin>,
}

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The account's user name.
    #[arg(long)]
    pub username: String,
    /// Read the password from the first line of standard input instead of a hidden prompt.
    #[arg(long)]
    pub password_stdin: bool,
    /// Where the database is, and the password policy: the same settings as `berth serve`.
    #[command(flatten)]
    pub settings: Given<ForAdmin>,
}

/// `berth serve`: every setting (see `docs/settings.md`).
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Apply no migrations at start; refuse to start while one is pending (the same as
    /// `migrate = false`: for installations that run `berth migrate up` as their own step).
    #[arg(long)]
    pub no_migrate: bool,
    #[command(flatten)]
    pub settings: Given<ForServe>,
}

impl ServeArgs {
    /// The settings, with `--no-migrate` applied.
    pub fn load(&self) -> Result<crate::config::Settings, crate::error::BootError> {
        let mut settings = crate::config::Settings::load(&self.settings)?;
        settings.migrate &= !self.no_migrate;
        Ok(settings)
    }
}
