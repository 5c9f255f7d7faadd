//! Settings admins change while Berth runs: the server's settings are the defaults, the
//! database holds what an admin changed, and every request reads the merged values from here.
//! Each instance re-reads the database every few seconds, so a change made on one reaches the
//! others without a restart.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::domain::accounts::now_ms;
use crate::domain::settings::{Tunable, Tunables};
use crate::service::audit::{self, event, outcome, Audit};
use crate::store::{RuntimeSettingRow, Store};

/// How often an instance re-reads the changed settings.
pub const REFRESH: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A key that is not a run-time setting, or a value out of its range; says what is valid.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] sqlx::Error),
}

/// Whoever must follow a change at once (the retriever's weights, the LLM client's model).
type Listener = Box<dyn Fn(&Tunables) + Send + Sync>;

pub struct Runtime {
    store: Store,
    defaults: Tunables,
    state: RwLock<(Tunables, Vec<RuntimeSettingRow>)>,
    listeners: RwLock<Vec<Listener>>,
}

impl Runtime {
    /// The merged settings, read from the database once now.
    pub async fn load(store: Store, defaults: Tunables) -> Result<Arc<Runtime>, sqlx::Error> {
        let runtime = Arc::new(Runtime {
            store,
            state: RwLock::new((defaults.clone(), Vec::new())),
            defaults,
            listeners: RwLock::new(Vec::new()),
        });
        runtime.refresh().await?;
        Ok(runtime)
    }

    /// Calls `f` now and after every change.
    pub fn on_change(&self, f: impl Fn(&Tunables) + Send + Sync + 'static) {
        f(&self.current());
        self.listeners
            .write()
            .expect("not poisoned")
            .push(Box::new(f));
    }

    pub fn current(&self) -> Tunables {
        self.state.read().expect("not poisoned").0.clone()
    }

    pub fn defaults(&self) -> &Tunables {
        &self.defaults
    }

    /// The rows behind the current values: which were changed, when and by whom.
    pub fn changed(&self) -> Vec<RuntimeSettingRow> {
        self.state.read().expect("not poisoned").1.clone()
    }

    /// Re-reads the database. A stored value that no longer parses (the LLM went away, say) is
    /// skipped with a warning: the default applies.
    pub async fn refresh(&self) -> Result<(), sqlx::Error> {
        let rows = self.store.runtime_settings().await?;
        let mut values = self.defaults.clone();
        let mut used = Vec::new();
        for row in rows {
            match Tunable::from_key(&row.key).map(|t| t.set(&mut values, &row.value)) {
                Some(Ok(())) => used.push(row),
                Some(Err(why)) => tracing::warn!(key = %row.key, %why, "ignoring a stored setting"),
                None => tracing::warn!(key = %row.key, "ignoring an unknown stored setting"),
            }
        }
        let changed = {
            let mut state = self.state.write().expect("not poisoned");
            let changed = state.0 != values;
            *state = (values.clone(), used);
            changed
        };
        if changed {
            for f in self.listeners.read().expect("not poisoned").iter() {
                f(&values);
            }
        }
        Ok(())
    }

    /// Applies `changes` (None: back to the server's setting) all or nothing, each one audited.
    pub async fn change(
        &self,
        audit: &Audit,
        ctx: &audit::Context,
        changes: &[(String, Option<String>)],
    ) -> Result<(), RuntimeError> {
        // Checked together: weights are valid or not as a pair.
        let mut merged = self.current();
        let mut parsed = Vec::with_capacity(changes.len());
        for (key, value) in changes {
            let tunable = Tunable::from_key(key).ok_or_else(|| {
                let keys: Vec<_> = Tunable::ALL.iter().map(|t| t.key()).collect();
                RuntimeError::Invalid(format!(
                    "{key:?} cannot be changed here; these can: {}",
                    keys.join(", ")
                ))
            })?;
            let text = value.clone().or_else(|| tunable.get(&self.defaults));
            if let Some(text) = &text {
                tunable
                    .set(&mut merged, text)
                    .map_err(|why| RuntimeError::Invalid(format!("{key}: {why}")))?;
            }
            parsed.push((tunable, value.as_deref().map(str::trim)));
        }
        let by = ctx.actor_name.as_deref().unwrap_or("-");
        let now = now_ms();
        for (tunable, value) in &parsed {
            self.store
                .set_runtime_setting(tunable.key(), *value, now, by)
                .await?;
            let detail = match value {
                Some(v) => format!("{} = {v}", tunable.key()),
                None => format!("{} back to the server's setting", tunable.key()),
            };
            audit
                .record(
                    ctx,
                    event::SETTING_CHANGED,
                    outcome::SUCCESS,
                    None,
                    Some(detail),
                )
                .await;
        }
        self.refresh().await?;
        Ok(())
    }

    /// Re-reads the database every [`REFRESH`], so changes made on other instances apply here.
    pub fn spawn_refresh(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(REFRESH).await;
                if let Err(error) = this.refresh().await {
                    tracing::warn!(%error, "could not re-read the run-time settings");
                }
            }
        })
    }
}
