//! The command line. Every setting is a flag, a `BERTH_*` environment variable, or a key of the
//! same name in the TOML file given by `--config`, in that order of precedence.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
}

/// Server settings. Values are kept as text here and parsed in `config`, so that an invalid one is
/// reported with the setting's name and where it came from (flag, variable or file).
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML file with settings (keys as the flags below, e.g. `listen = "0.0.0.0:8080"`).
    #[arg(long, env = "BERTH_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address to listen on, HOST:PORT. [default: 127.0.0.1:8080]
    #[arg(long, env = "BERTH_LISTEN", value_name = "HOST:PORT")]
    pub listen: Option<String>,

    /// Directory for the embedded database and uploaded files; created on first run. [default: ./data]
    #[arg(long, env = "BERTH_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<String>,

    /// Database URL: `postgres://user:pass@host/db` for PostgreSQL, `sqlite://PATH` for a SQLite
    /// file. Unset: SQLite at DATA_DIR/berth.db.
    #[arg(
        long,
        env = "BERTH_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// Log filter: a level (error, warn, info, debug, trace) or tracing directives. [default: info]
    #[arg(long, env = "BERTH_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,

    /// Log format: json, text, or auto (text on a terminal, JSON otherwise). [default: auto]
    #[arg(long, env = "BERTH_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,

    /// Seconds to let in-flight requests finish after SIGTERM/SIGINT before exiting. [default: 30]
    #[arg(long, env = "BERTH_SHUTDOWN_TIMEOUT", value_name = "SECONDS")]
    pub shutdown_timeout: Option<String>,
}
