//! `berth admin create`, `berth admin reset-password` and `berth admin promote`: bootstrap and recovery that work
//! wherever the binary runs (a container included), straight on the database.

use std::io::BufRead;

use anyhow::Context as _;

use crate::cli::{AdminArgs, AdminCommand};
use crate::config::Settings;
use crate::domain::accounts::Username;
use crate::error::BootError;
use crate::service::audit::{self, Audit};
use crate::service::auth::{check_password, Auth, AuthError};
use crate::store::Store;
use crate::store::UserRow;

pub fn run(command: &AdminCommand, settings: &Settings) -> Result<(), BootError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let store =
            Store::open_waiting(&settings.database, settings.database_connect_timeout).await?;
        let result = match command {
            AdminCommand::Create(args) => create(&store, settings, args).await,
            AdminCommand::ResetPassword(args) => reset(&store, settings, args).await,
            AdminCommand::Promote(args) => promote(&store, &args.username).await,
        };
        store.close().await;
        result
    })
}

/// The audit log's actor for an operator's command: `berth admin`, `berth backup drill`.
pub fn operator(actor: &str) -> audit::Context {
    audit::Context {
        actor_name: Some(actor.into()),
        ..Default::default()
    }
}

const ADMIN_CLI: &str = "berth admin (command line)";

fn username(args: &AdminArgs) -> Result<Username, BootError> {
    Username::parse(&args.username)
        .map_err(|why| BootError::Config(format!("invalid --username: {why}")))
}

/// Reads and checks the new password: stdin's first line, or a hidden prompt asked twice.
fn new_password(args: &AdminArgs, settings: &Settings) -> Result<String, BootError> {
    let password = if args.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        // Only the line ending goes: spaces are part of a passphrase, and nothing is truncated.
        line.strip_suffix('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .unwrap_or(&line)
            .to_string()
    } else {
        let first = rpassword::prompt_password("New password: ")
            .context("reading the password (no terminal? use --password-stdin)")?;
        let again = rpassword::prompt_password("Repeat it: ").context("reading the password")?;
        if first != again {
            return Err(BootError::Config(
                "the two passwords differ; nothing changed".into(),
            ));
        }
        first
    };
    check_password(&settings.auth.password_policy, &password)
        .map_err(|e| BootError::Config(format!("{e}; nothing changed")))?;
    Ok(password)
}

pub fn audit_log(store: &Store) -> Audit {
    // The command's events are counted in a registry of its own: this process serves no metrics.
    Audit::new(store.clone(), &prometheus::Registry::new())
}

async fn create(store: &Store, settings: &Settings, args: &AdminArgs) -> Result<(), BootError> {
    let name = username(args)?;
    if store
        .user_by_name(name.as_str())
        .await
        .context("reading users")?
        .is_some()
    {
        return Err(BootError::Config(format!(
            "an account named {name} exists already; use `berth admin reset-password` to set \
             its password"
        )));
    }
    let password = new_password(args, settings)?;
    create_admin(store, settings, &name, password, ADMIN_CLI).await?;
    println!("Created admin account {name}. Sign in with it in the browser.");
    Ok(())
}

/// Creates an active admin account with `password` (already checked by the caller) and audits
/// it as done by `actor`: `berth admin create`, and the throwaway account of `berth backup drill`.
pub async fn create_admin(
    store: &Store,
    settings: &Settings,
    name: &Username,
    password: String,
    actor: &str,
) -> Result<UserRow, BootError> {
    let audit = audit_log(store);
    let auth = Auth {
        store,
        audit: &audit,
        settings: &settings.auth,
        registration_open: settings.auth.registration_open,
    };
    auth.create_admin(&operator(actor), name, password)
        .await
        .map_err(boot_error)
}

/// A refusal is the operator's to fix (exit 2); a database failure is not.
fn boot_error(err: AuthError) -> BootError {
    match err {
        AuthError::Store(e) => {
            BootError::Other(anyhow::Error::new(e).context("updating the accounts"))
        }
        refused => BootError::Config(refused.to_string()),
    }
}

async fn reset(store: &Store, settings: &Settings, args: &AdminArgs) -> Result<(), BootError> {
    let name = username(args)?;
    let user = store
        .user_by_name(name.as_str())
        .await
        .context("reading users")?
        .ok_or_else(|| BootError::Config(format!("there is no account named {name}")))?;
    let password = new_password(args, settings)?;
    let audit = audit_log(store);
    let auth = Auth {
        store,
        audit: &audit,
        settings: &settings.auth,
        registration_open: settings.auth.registration_open,
    };
    auth.reset_password(&operator(ADMIN_CLI), &user, password)
        .await
        .map_err(boot_error)?;
    println!("Password of {name} reset; its sessions and API tokens have ended.");
    Ok(())
}

async fn promote(store: &Store, username: &str) -> Result<(), BootError> {
    let name = Username::parse(username)
        .map_err(|why| BootError::Config(format!("invalid --username: {why}")))?;
    let user = store
        .user_by_name(name.as_str())
        .await
        .context("reading users")?
        .ok_or_else(|| BootError::Config(format!("there is no account named {name}")))?;
    let now = crate::domain::accounts::now_ms();
    store
        .update_user_access(
            &user.id,
            crate::domain::accounts::AccountState::Active,
            crate::domain::accounts::Role::Admin,
            now,
        )
        .await
        .context("updating the account")?;
    audit_log(store)
        .record(
            &operator(ADMIN_CLI),
            crate::service::audit::event::ROLE_CHANGED,
            crate::service::audit::outcome::SUCCESS,
            Some((user.id.as_str(), user.username.as_str())),
            Some("promoted to an active admin".into()),
        )
        .await;
    println!("{name} is now an active admin.");
    Ok(())
}
