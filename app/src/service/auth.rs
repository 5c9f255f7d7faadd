//! Accounts' use cases: register, sign in (throttled, against a decoy for unknown names),
//! authenticate a request's session or API token, change a password, create an admin, reset a
//! password. The routes and `berth admin` call the same functions; each says what went wrong
//! in an [`AuthError`], which the HTTP layer maps to a status in one place.

use crate::domain::accounts::policy::PasswordPolicy;
use crate::domain::accounts::{now_ms, password, AccountState, Role, Username};
use crate::domain::secret::{constant_time_eq, random_token, sha256_hex};
use crate::domain::settings::{AuthSettings, OidcProvider};
use crate::service::audit::{self, event, outcome, Audit};
use crate::service::oidc::Verified;
use crate::service::throttle::{self, Counted, Locked};
use crate::store::UserRow;
use crate::store::{Linked, NewIdentity, Store};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The input breaks a rule; `details` lists each one when there are several.
    #[error("{message}")]
    Invalid {
        message: String,
        details: Option<serde_json::Value>,
    },
    /// No valid credentials.
    #[error("{0}")]
    Unauthenticated(String),
    /// Known, but not allowed; `code` says why (`pending_approval`, `csrf_failed`, ...).
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    /// The name is taken.
    #[error("{0}")]
    Taken(String),
    #[error("{}", .0.message())]
    Throttled(Locked),
    #[error(transparent)]
    Store(#[from] sqlx::Error),
}

/// Refuses a password that breaks the policy, listing every rule it breaks.
pub fn check_password(policy: &PasswordPolicy, password: &str) -> Result<(), AuthError> {
    let broken = policy.violations(password);
    if broken.is_empty() {
        return Ok(());
    }
    let list: Vec<_> = broken.iter().map(|v| v.message.as_str()).collect();
    Err(AuthError::Invalid {
        message: format!("the password is not accepted: {}", list.join("; ")),
        details: Some(serde_json::json!({ "password": broken })),
    })
}

pub fn parse_username(raw: &str) -> Result<Username, AuthError> {
    Username::parse(raw).map_err(|why| AuthError::Invalid {
        message: format!("the user name is not accepted: {why}"),
        details: None,
    })
}

/// How a request proved who it is.
#[derive(Debug, Clone)]
pub enum Credential {
    Session { token_hash: String, csrf: String },
    Token { id: String },
}

/// What a request presents: a bearer token, or a session cookie (with the CSRF token it sent,
/// when the request changes something).
pub enum Presented<'a> {
    Bearer(&'a str),
    Session {
        cookie: &'a str,
        csrf: Option<&'a str>,
    },
}

/// A new browser session: its secret (the cookie's value) and CSRF token.
pub struct NewSession {
    pub user: UserRow,
    pub token: String,
    pub csrf: String,
}

/// Who signs in from where.
pub struct Client<'a> {
    pub addr: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub audit: audit::Context,
}

/// The accounts service: the store, the audit log and the rules it runs with.
pub struct Auth<'a> {
    pub store: &'a Store,
    pub audit: &'a Audit,
    pub settings: &'a AuthSettings,
    /// Whether people may register now (an admin may close it at run time).
    pub registration_open: bool,
}

impl Auth<'_> {
    /// Creates an account that waits for an admin's approval.
    pub async fn register(
        &self,
        client: &Client<'_>,
        username: &str,
        password: String,
    ) -> Result<UserRow, AuthError> {
        self.password_login_allowed()?;
        if !self.registration_open {
            return Err(AuthError::Refused {
                code: "registration_closed",
                message: "registration is closed here; ask an admin of this Berth for an account"
                    .into(),
            });
        }
        let username = parse_username(username)?;
        check_password(&self.settings.password_policy, &password)?;
        if let Some(addr) = client.addr {
            // An address locked out of sign-in does not get to make accounts meanwhile either.
            let signing_in = [throttle::address_key(addr)];
            if let Some(locked) =
                throttle::check(self.store, &signing_in, Counted::FailedSignIns).await?
            {
                return Err(AuthError::Throttled(locked));
            }
            let key = throttle::registration_key(addr);
            let registering = std::slice::from_ref(&key);
            if let Some(locked) =
                throttle::check(self.store, registering, Counted::Registrations).await?
            {
                return Err(AuthError::Throttled(locked));
            }
            let limit = self.settings.register_max_per_address;
            throttle::fail(self.store, self.settings.login_lockout, &[(key, limit)]).await?;
        }
        let row = new_user(&username, password, Role::User, AccountState::Pending).await;
        if !self.store.insert_user(&row).await? {
            return Err(AuthError::Taken(format!(
                "the user name {username} is taken; choose another"
            )));
        }
        let target = Some((row.id.as_str(), row.username.as_str()));
        self.audit
            .record(
                &client.audit,
                event::REGISTERED,
                outcome::SUCCESS,
                target,
                None,
            )
            .await;
        Ok(row)
    }

    /// Signs in with a password and starts a session; the one `old_session` names ends.
    pub async fn sign_in(
        &self,
        client: &Client<'_>,
        username: &str,
        password: String,
        old_session: Option<&str>,
    ) -> Result<NewSession, AuthError> {
        self.password_login_allowed()?;
        let username = Username::parse(username).ok();
        let name = username.as_ref().map_or("", Username::as_str).to_string();
        let mut keys = vec![throttle::account_key(&name)];
        if let Some(addr) = client.addr {
            keys.push(throttle::address_key(addr));
        }
        if let Some(locked) = throttle::check(self.store, &keys, Counted::FailedSignIns).await? {
            return Err(AuthError::Throttled(locked));
        }

        let user = match &username {
            Some(u) => self.store.user_by_name(u.as_str()).await?,
            None => None,
        };
        // Verify against a decoy when there is no such user: same work, same answer, same time.
        let hash = user.as_ref().map_or_else(
            || password::decoy_hash().to_string(),
            |u| u.password_hash.clone(),
        );
        let matches = password::verify(password, hash).await && user.is_some();
        let target_owned = user.as_ref().map(|u| (u.id.clone(), u.username.clone()));
        let target = target_owned.as_ref().map(|(i, n)| (i.as_str(), n.as_str()));

        let Some(user) = user.filter(|_| matches) else {
            let mut limits = vec![(keys[0].clone(), self.settings.login_max_failures)];
            if let Some(k) = keys.get(1) {
                limits.push((k.clone(), self.settings.login_max_failures_per_address));
            }
            let locked = throttle::fail(self.store, self.settings.login_lockout, &limits).await?;
            let attempted = (!name.is_empty()).then(|| format!("attempted user name: {name}"));
            self.audit
                .record(
                    &client.audit,
                    event::SIGN_IN,
                    outcome::FAILURE,
                    target,
                    attempted,
                )
                .await;
            if locked {
                let detail = format!(
                    "locked for {} after repeated failures",
                    throttle::humane_duration(self.settings.login_lockout.as_secs())
                );
                // A lockout is a refusal of further sign-ins, not a success of anything.
                self.audit
                    .record(
                        &client.audit,
                        event::LOCKOUT,
                        outcome::DENIED,
                        target,
                        Some(detail),
                    )
                    .await;
            }
            return Err(AuthError::Unauthenticated(
                "wrong user name or password".into(),
            ));
        };

        if let Some((code, message)) = refusal(user.state()) {
            self.audit
                .record(
                    &client.audit,
                    event::SIGN_IN,
                    outcome::DENIED,
                    target,
                    Some(format!("account is {}", user.state)),
                )
                .await;
            return Err(AuthError::Refused {
                code,
                message: message.into(),
            });
        }
        self.store.clear_throttle(&keys[0]).await?;
        let session = self.start_session(client, user, old_session).await?;
        let user = &session.user;
        self.audit
            .record(
                &client.audit.clone().with_actor(user),
                event::SIGN_IN,
                outcome::SUCCESS,
                target,
                None,
            )
            .await;
        Ok(session)
    }

    /// A new session for `user`. A new session id at every sign-in; the one the browser had
    /// (if any) ends.
    async fn start_session(
        &self,
        client: &Client<'_>,
        user: UserRow,
        old_session: Option<&str>,
    ) -> Result<NewSession, AuthError> {
        if let Some(old) = old_session {
            self.store.delete_session(&sha256_hex(old)).await?;
        }
        let token = random_token(32);
        let csrf = random_token(32);
        let now = now_ms();
        let absolute = self.settings.session_absolute_timeout;
        self.store
            .insert_session(
                &sha256_hex(&token),
                &user.id,
                &csrf,
                now,
                now + absolute.as_millis() as i64,
                client.addr,
                client.user_agent,
            )
            .await?;
        Ok(NewSession { user, token, csrf })
    }

    fn password_login_allowed(&self) -> Result<(), AuthError> {
        if self.settings.password_login {
            return Ok(());
        }
        Err(AuthError::Refused {
            code: "password_login_disabled",
            message: "signing in with a password is turned off here: sign in with your \
                      organisation's account (the buttons on the sign-in page)"
                .into(),
        })
    }

    /// Signs in a person an OpenID provider vouched for. Their account is the one linked to the
    /// provider's (issuer, subject); at the first sign-in one is made, pending an admin's
    /// approval unless the provider's groups claim names an auto-approve or admin group. With
    /// `admin_groups` configured, an active account's role follows those groups at each sign-in.
    pub async fn sign_in_oidc(
        &self,
        client: &Client<'_>,
        provider: &OidcProvider,
        person: &Verified,
        old_session: Option<&str>,
    ) -> Result<NewSession, AuthError> {
        let member = |groups: &[String]| person.groups.iter().any(|g| groups.contains(g));
        let admin = member(&provider.admin_groups);
        let approved = admin || member(&provider.auto_approve_groups);
        let user = match self
            .store
            .user_by_identity(&person.issuer, &person.subject)
            .await?
        {
            Some(user) => {
                self.store
                    .touch_identity(&person.issuer, &person.subject, now_ms())
                    .await?;
                self.follow_groups(client, provider, user, admin, approved)
                    .await?
            }
            None => self.link(client, provider, person, admin, approved).await?,
        };
        let target = Some((user.id.as_str(), user.username.as_str()));
        if let Some((code, message)) = refusal(user.state()) {
            self.audit
                .record(
                    &client.audit,
                    event::OIDC_SIGN_IN,
                    outcome::DENIED,
                    target,
                    Some(format!(
                        "provider {}: account is {}",
                        provider.id, user.state
                    )),
                )
                .await;
            return Err(AuthError::Refused {
                code,
                message: message.into(),
            });
        }
        let session = self.start_session(client, user, old_session).await?;
        self.store
            .set_session_provider(&sha256_hex(&session.token), &provider.id)
            .await?;
        let user = &session.user;
        self.audit
            .record(
                &client.audit.clone().with_actor(user),
                event::OIDC_SIGN_IN,
                outcome::SUCCESS,
                Some((user.id.as_str(), user.username.as_str())),
                Some(format!("provider {}", provider.id)),
            )
            .await;
        Ok(session)
    }

    /// A new account linked to the person's identity, named after what the provider calls
    /// them (numbered when the name is taken).
    async fn link(
        &self,
        client: &Client<'_>,
        provider: &OidcProvider,
        person: &Verified,
        admin: bool,
        approved: bool,
    ) -> Result<UserRow, AuthError> {
        let base = Username::derive(person.name_hint.as_deref().unwrap_or("user"));
        let (role, state) = match (admin, approved) {
            (true, _) => (Role::Admin, AccountState::Active),
            (false, true) => (Role::User, AccountState::Active),
            (false, false) => (Role::User, AccountState::Pending),
        };
        // No password signs in to this account; a random one keeps the column's meaning.
        let mut row = new_user(&base, random_token(32), role, state).await;
        let identity = NewIdentity {
            issuer: &person.issuer,
            subject: &person.subject,
            provider: &provider.id,
            email: person.email.as_deref(),
            now: now_ms(),
        };
        for n in 1..=50u32 {
            row.username = match n {
                1 => base.to_string(),
                50 => format!("{base}-{}", &random_token(8)[..8].to_lowercase()),
                n => base.numbered(n).to_string(),
            };
            match self
                .store
                .insert_user_with_identity(&row, &identity)
                .await?
            {
                Linked::NameTaken => continue,
                Linked::IdentityTaken => {
                    // Another sign-in of the same person linked it a moment ago.
                    return self
                        .store
                        .user_by_identity(&person.issuer, &person.subject)
                        .await?
                        .ok_or_else(not_signed_in);
                }
                Linked::Created => {
                    let detail = format!(
                        "provider {}, subject {}, account {}{}",
                        provider.id,
                        person.subject,
                        state.as_str(),
                        if admin { ", admin by group" } else { "" }
                    );
                    self.audit
                        .record(
                            &client.audit,
                            event::OIDC_LINKED,
                            outcome::SUCCESS,
                            Some((row.id.as_str(), row.username.as_str())),
                            Some(detail),
                        )
                        .await;
                    return Ok(row);
                }
            }
        }
        Err(AuthError::Taken(format!(
            "no free user name near {base}; ask an admin"
        )))
    }

    /// Applies the provider's groups to a known account: a pending one in an approving group
    /// becomes active; with `admin_groups` set, an active one's role follows them (never
    /// taking the last admin's role). Denied and disabled accounts stay as an admin left them.
    async fn follow_groups(
        &self,
        client: &Client<'_>,
        provider: &OidcProvider,
        user: UserRow,
        admin: bool,
        approved: bool,
    ) -> Result<UserRow, AuthError> {
        let state = match user.state() {
            AccountState::Pending if approved => AccountState::Active,
            state => state,
        };
        let role = if state == AccountState::Active && !provider.admin_groups.is_empty() {
            if admin {
                Role::Admin
            } else {
                Role::User
            }
        } else {
            user.role()
        };
        if state == user.state() && role == user.role() {
            return Ok(user);
        }
        let target = Some((user.id.as_str(), user.username.as_str()));
        if !self
            .store
            .update_user_access(&user.id, state, role, now_ms())
            .await?
        {
            tracing::warn!(user = %user.username, "kept the last admin's role despite the provider's groups");
            return Ok(user);
        }
        let (event, detail) = if state != user.state() {
            (event::APPROVED, "by group membership")
        } else {
            (event::ROLE_CHANGED, "by group membership")
        };
        self.audit
            .record(
                &client.audit,
                event,
                outcome::SUCCESS,
                target,
                Some(format!(
                    "{detail} at provider {}: {} {}",
                    provider.id,
                    state.as_str(),
                    role.as_str()
                )),
            )
            .await;
        Ok(self.store.user_by_id(&user.id).await?.unwrap_or(user))
    }

    /// The active user a request's credentials name. Sessions end after the idle and absolute
    /// timeouts; one that changes something must send its CSRF token.
    pub async fn authenticate(
        &self,
        presented: Presented<'_>,
        changes_state: bool,
    ) -> Result<(UserRow, Credential), AuthError> {
        let now = now_ms();
        let (user_id, credential) = match presented {
            Presented::Bearer(token) => {
                let row = self
                    .store
                    .live_token(&sha256_hex(token))
                    .await?
                    .ok_or_else(|| {
                        AuthError::Unauthenticated("the API token is unknown or revoked".into())
                    })?;
                // As with sessions below: a write per request would serialise concurrent
                // requests with one token on that row (and on SQLite's single writer); a minute
                // is precise enough for "last used".
                if row.last_used_at.is_none_or(|t| now - t > 60_000) {
                    self.store.touch_token(&row.id, now).await?;
                }
                (row.user_id, Credential::Token { id: row.id })
            }
            Presented::Session { cookie, csrf } => {
                let token_hash = sha256_hex(cookie);
                let session = self
                    .store
                    .session(&token_hash)
                    .await?
                    .ok_or_else(not_signed_in)?;
                let idle_ms = self.settings.session_idle_timeout.as_millis() as i64;
                if now >= session.expires_at || now - session.last_seen_at >= idle_ms {
                    self.store.delete_session(&token_hash).await?;
                    return Err(AuthError::Unauthenticated(
                        "your session has expired; sign in again".into(),
                    ));
                }
                // Refreshing last-seen on every request would be a write per request; a little
                // slack (at most a tenth of the idle timeout, capped at a minute) is enough.
                if now - session.last_seen_at > (idle_ms / 10).min(60_000) {
                    self.store.touch_session(&token_hash, now).await?;
                }
                let sent = csrf.unwrap_or("");
                if changes_state
                    && !constant_time_eq(sent.as_bytes(), session.csrf_token.as_bytes())
                {
                    return Err(AuthError::Refused {
                        code: "csrf_failed",
                        message: format!(
                            "missing or wrong {CSRF_HEADER} header; take the token from \
                             GET /api/v1/auth/session"
                        ),
                    });
                }
                let credential = Credential::Session {
                    token_hash,
                    csrf: session.csrf_token,
                };
                (session.user_id, credential)
            }
        };
        let user = self
            .store
            .user_by_id(&user_id)
            .await?
            .ok_or_else(not_signed_in)?;
        if user.state() != AccountState::Active {
            // Sessions of a disabled user are already deleted; this covers any race with that.
            return Err(AuthError::Refused {
                code: "forbidden",
                message: "this account is not active".into(),
            });
        }
        Ok((user, credential))
    }

    /// Changes `user`'s password after checking the current one; every session and token of
    /// theirs ends.
    pub async fn change_password(
        &self,
        context: &audit::Context,
        user: &UserRow,
        current: String,
        new: String,
    ) -> Result<(), AuthError> {
        let target = Some((user.id.as_str(), user.username.as_str()));
        if !password::verify(current, user.password_hash.clone()).await {
            self.audit
                .record(
                    context,
                    event::PASSWORD_CHANGED,
                    outcome::FAILURE,
                    target,
                    Some("current password wrong".into()),
                )
                .await;
            return Err(AuthError::Refused {
                code: "wrong_password",
                message: "the current password is wrong".into(),
            });
        }
        check_password(&self.settings.password_policy, &new)?;
        self.replace_password(user, new).await?;
        self.audit
            .record(
                context,
                event::PASSWORD_CHANGED,
                outcome::SUCCESS,
                target,
                None,
            )
            .await;
        Ok(())
    }

    /// Sets a new password (checked by the caller) and ends every session, token and sign-in
    /// lock of the account: an operator's reset.
    pub async fn reset_password(
        &self,
        context: &audit::Context,
        user: &UserRow,
        new: String,
    ) -> Result<(), AuthError> {
        self.replace_password(user, new).await?;
        self.store
            .clear_throttle(&throttle::account_key(&user.username))
            .await?;
        let target = Some((user.id.as_str(), user.username.as_str()));
        self.audit
            .record(
                context,
                event::PASSWORD_RESET,
                outcome::SUCCESS,
                target,
                None,
            )
            .await;
        Ok(())
    }

    async fn replace_password(&self, user: &UserRow, new: String) -> Result<(), AuthError> {
        let hash = password::hash(new).await;
        let now = now_ms();
        self.store.set_password_hash(&user.id, &hash, now).await?;
        self.store
            .end_user_sessions_and_tokens(&user.id, now)
            .await?;
        Ok(())
    }

    /// Creates an active admin with `password` (checked by the caller), audited as done by
    /// `context`'s actor: `berth admin create`, and the throwaway account of a backup drill.
    pub async fn create_admin(
        &self,
        context: &audit::Context,
        name: &Username,
        password: String,
    ) -> Result<UserRow, AuthError> {
        let row = new_user(name, password, Role::Admin, AccountState::Active).await;
        if !self.store.insert_user(&row).await? {
            return Err(AuthError::Taken(format!(
                "an account named {name} exists already"
            )));
        }
        let target = Some((row.id.as_str(), row.username.as_str()));
        self.audit
            .record(
                context,
                event::ADMIN_BOOTSTRAP,
                outcome::SUCCESS,
                target,
                None,
            )
            .await;
        Ok(row)
    }
}

/// The header a session's state-changing requests carry their CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// No credentials at all, or none that name a live session or token.
pub fn not_signed_in() -> AuthError {
    AuthError::Unauthenticated(
        "sign in first (or send an API token as `Authorization: Bearer ...`)".into(),
    )
}

/// Why an account in `state` may not sign in, as (code, message); None when it may.
fn refusal(state: AccountState) -> Option<(&'static str, &'static str)> {
    match state {
        AccountState::Active => None,
        AccountState::Pending => Some((
            "pending_approval",
            "your account awaits approval by an admin",
        )),
        AccountState::Denied => Some(("account_denied", "an admin declined this account")),
        AccountState::Disabled => Some(("account_disabled", "this account is disabled")),
    }
}

async fn new_user(name: &Username, password: String, role: Role, state: AccountState) -> UserRow {
    let now = now_ms();
    UserRow {
        id: uuid::Uuid::new_v4().to_string(),
        username: name.to_string(),
        password_hash: password::hash(password).await,
        role: role.as_str().into(),
        state: state.as_str().into(),
        created_at: now,
        updated_at: now,
    }
}
