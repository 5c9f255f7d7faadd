//! The audit log: security events and admin actions, appended to the database (never changed or
//! deleted: the schema forbids it), counted in `/metrics`, never holding a password or token.

use prometheus::{IntCounterVec, Opts};

use crate::domain::accounts::now_ms;
use crate::store::UserRow;
use crate::store::{NewAuditEntry, Store};

/// Event names, as stored and as filtered on.
pub mod event {
    pub const REGISTERED: &str = "user.registered";
    pub const APPROVED: &str = "user.approved";
    pub const DENIED: &str = "user.denied";
    pub const DISABLED: &str = "user.disabled";
    pub const ENABLED: &str = "user.enabled";
    pub const ROLE_CHANGED: &str = "user.role_changed";
    pub const SIGN_IN: &str = "auth.sign_in";
    pub const SIGN_OUT: &str = "auth.sign_out";
    /// A sign-in through an OpenID provider: its outcome, and why when it failed.
    pub const OIDC_SIGN_IN: &str = "auth.oidc_sign_in";
    /// A provider's identity linked to a new account at its first sign-in.
    pub const OIDC_LINKED: &str = "auth.oidc_linked";
    pub const LOCKOUT: &str = "auth.lockout";
    pub const PASSWORD_CHANGED: &str = "password.changed";
    pub const PASSWORD_RESET: &str = "password.reset";
    pub const TOKEN_CREATED: &str = "token.created";
    pub const TOKEN_REVOKED: &str = "token.revoked";
    pub const ADMIN_BOOTSTRAP: &str = "admin.bootstrap";
    pub const ACCESS_DENIED: &str = "authz.denied";
    /// An admin lifted an account's sign-in lock.
    pub const UNLOCKED: &str = "user.unlocked";
    /// A private collection became shared.
    pub const COLLECTION_SHARED: &str = "collection.shared";
    pub const MEMBER_ADDED: &str = "collection.member_added";
    pub const MEMBER_REMOVED: &str = "collection.member_removed";
    pub const DOCUMENT_UPLOADED: &str = "document.uploaded";
    pub const DOCUMENT_DELETED: &str = "document.deleted";
    /// An admin changed a run-time setting (`/admin/settings`).
    pub const SETTING_CHANGED: &str = "settings.changed";

    pub const ALL: &[&str] = &[
        REGISTERED,
        APPROVED,
        DENIED,
        DISABLED,
        ENABLED,
        ROLE_CHANGED,
        SIGN_IN,
        SIGN_OUT,
        OIDC_SIGN_IN,
        OIDC_LINKED,
        LOCKOUT,
        PASSWORD_CHANGED,
        PASSWORD_RESET,
        TOKEN_CREATED,
        TOKEN_REVOKED,
        ADMIN_BOOTSTRAP,
        ACCESS_DENIED,
        UNLOCKED,
        COLLECTION_SHARED,
        MEMBER_ADDED,
        MEMBER_REMOVED,
        DOCUMENT_UPLOADED,
        DOCUMENT_DELETED,
        SETTING_CHANGED,
    ];
}

pub mod outcome {
    pub const SUCCESS: &str = "success";
    pub const FAILURE: &str = "failure";
    pub const DENIED: &str = "denied";
}

/// Who did it, from where: the request's side of an audit entry.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub actor_id: Option<String>,
    pub actor_name: Option<String>,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
}

impl Context {
    pub fn with_actor(mut self, user: &UserRow) -> Self {
        self.actor_id = Some(user.id.clone());
        self.actor_name = Some(user.username.clone());
        self
    }
}

#[derive(Clone)]
pub struct Audit {
    store: Store,
    counter: IntCounterVec,
}

impl Audit {
    pub fn new(store: Store, registry: &prometheus::Registry) -> Audit {
        let counter = IntCounterVec::new(
            Opts::new(
                "audit_events_total",
                "Audit log entries by event and outcome",
            ),
            &["event", "outcome"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(counter.clone()))
            .expect("registered once");
        Audit { store, counter }
    }

    /// Appends one entry. A failure to write is logged loudly but does not undo the action.
    pub async fn record(
        &self,
        ctx: &Context,
        event: &'static str,
        outcome: &'static str,
        target: Option<(&str, &str)>,
        detail: Option<String>,
    ) {
        let entry = NewAuditEntry {
            at: now_ms(),
            event,
            outcome,
            actor_id: ctx.actor_id.clone(),
            actor_name: ctx.actor_name.clone(),
            target_id: target.map(|t| t.0.to_string()),
            target_name: target.map(|t| t.1.to_string()),
            client_addr: ctx.client_addr.clone(),
            user_agent: ctx.user_agent.clone(),
            detail,
        };
        self.counter.with_label_values(&[event, outcome]).inc();
        tracing::info!(
            event,
            outcome,
            actor = ctx.actor_name.as_deref().unwrap_or("-"),
            target = target.map_or("-", |t| t.1),
            "audit"
        );
        if let Err(error) = self.store.append_audit(&entry).await {
            tracing::error!(%error, event, "could not write the audit log");
        }
    }
}
