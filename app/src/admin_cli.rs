//! `berth admin create` and `berth admin reset-password`: bootstrap and recovery that work
//! wherever the binary runs (a container included), straight on the database.

use std::io::BufRead;

use anyhow::Context as _;

use crate::cli::{AdminArgs, AdminCommand};
use crate::config::Settings;
use crate::domain::accounts::{now_ms, password, AccountState, Role, UserRow, Username};
use crate::error::BootError;
use crate::service::audit::{self, event, outcome, Audit};
use crate::service::auth::throttle;
use crate::store::Store;

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
        };
        store.close().await;
        result
    })
}

fn cli_context() -> audit::Context {
    audit::Context {
        actor_name: Some("berth admin (command line)".into()),
        ..Default::default()
    }
}

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
    let broken = settings.auth.password_policy.violations(&password);
    if !broken.is_empty() {
        let list: Vec<_> = broken.iter().map(|v| v.message.as_str()).collect();
        return Err(BootError::Config(format!(
            "the password is not accepted: {}; nothing changed",
            list.join("; ")
        )));
    }
    Ok(password)
}

fn audit_log(store: &Store) -> Audit {
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
    create_admin(store, &name, password, "berth admin (command line)").await?;
    println!("Created admin account {name}. Sign in with it in the browser.");
    Ok(())
}

/// Creates an active admin account with `password` (already checked by the caller) and audits
/// it as done by `actor`: `berth admin create`, and the throwaway account of `berth backup drill`.
pub async fn create_admin(
    store: &Store,
    name: &Username,
    password: String,
    actor: &str,
) -> Result<UserRow, BootError> {
    let now = now_ms();
    let row = UserRow {
        id: uuid::Uuid::new_v4().to_string(),
        username: name.to_string(),
        password_hash: password::hash(password).await,
        role: Role::Admin.as_str().into(),
        state: AccountState::Active.as_str().into(),
        created_at: now,
        updated_at: now,
    };
    if !store
        .insert_user(&row)
        .await
        .context("creating the account")?
    {
        return Err(BootError::Config(format!(
            "an account named {name} exists already"
        )));
    }
    let context = audit::Context {
        actor_name: Some(actor.into()),
        ..Default::default()
    };
    audit_log(store)
        .record(
            &context,
            event::ADMIN_BOOTSTRAP,
            outcome::SUCCESS,
            Some((&row.id, &row.username)),
            None,
        )
        .await;
    Ok(row)
}

async fn reset(store: &Store, settings: &Settings, args: &AdminArgs) -> Result<(), BootError> {
    let name = username(args)?;
    let user = store
        .user_by_name(name.as_str())
        .await
        .context("reading users")?
        .ok_or_else(|| BootError::Config(format!("there is no account named {name}")))?;
    let password = new_password(args, settings)?;
    let now = now_ms();
    let hash = password::hash(password).await;
    store
        .set_password_hash(&user.id, &hash, now)
        .await
        .context("saving the password")?;
    store
        .end_user_sessions_and_tokens(&user.id, now)
        .await
        .context("ending sessions")?;
    store
        .clear_throttle(&throttle::account_key(name.as_str()))
        .await
        .context("clearing the sign-in lock")?;
    audit_log(store)
        .record(
            &cli_context(),
            event::PASSWORD_RESET,
            outcome::SUCCESS,
            Some((&user.id, &user.username)),
            None,
        )
        .await;
    println!("Password of {name} reset; its sessions and API tokens have ended.");
    Ok(())
}
