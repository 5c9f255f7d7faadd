//! `BootError`: what stops the process or a command, with exit codes scripts can rely on. (HTTP
//! errors are `http::error::ApiError`.)

/// Why the process could not start or finish a command.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// A setting or argument is wrong: fix the configuration. Exit code 2.
    #[error("{0}")]
    Config(String),
    /// The database belongs to a newer Berth or is otherwise unusable as it is. Exit code 3.
    #[error("{0}")]
    Database(String),
    /// The command would be unsafe now and did nothing (a contract migration while the previous
    /// release may still run). Exit code 4.
    #[error("{0}")]
    Refused(String),
    /// Anything else. Exit code 1.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl BootError {
    pub fn exit_code(&self) -> u8 {
        match self {
            BootError::Config(_) => 2,
            BootError::Database(_) => 3,
            BootError::Refused(_) => 4,
            BootError::Other(_) => 1,
        }
    }
}
