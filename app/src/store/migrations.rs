//! Schema migrations, embedded in the binary, one folder per backend, and what `berth migrate`
//! says about them.
//!
//! Each migration is either **expand** (the previous release keeps working on the new schema:
//! new tables, new nullable columns, new indexes) or **contract** (it would break the previous
//! release: dropping or renaming what it reads). Deploys run the new release beside the old one
//! on one database, so a contract migration may only run once the old release is stopped. The
//! kind is the migration's first line, `-- berth-migration: expand` or `… contract`; the six
//! migrations written before the convention are all expand (each only added to the schema).

use std::collections::BTreeMap;

use sqlx::migrate::{Migration, Migrator};

use crate::error::BootError;

pub static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
pub static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");

/// The last version from before the `-- berth-migration:` line (all of them expand). Their files
/// cannot gain the line: sqlx checksums every applied migration's text.
const LAST_UNMARKED: i64 = 6;
const MARKER: &str = "-- berth-migration:";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Expand,
    Contract,
}

impl Kind {
    /// The kind a migration's SQL declares on its first line.
    pub fn of(version: i64, sql: &str) -> Result<Kind, String> {
        let first = sql.lines().next().unwrap_or("").trim();
        match first.strip_prefix(MARKER).map(str::trim) {
            Some("expand") => Ok(Kind::Expand),
            Some("contract") => Ok(Kind::Contract),
            Some(other) => Err(format!(
                "migration {version}: `{MARKER} {other}`: the kind must be expand or contract"
            )),
            None if version <= LAST_UNMARKED => Ok(Kind::Expand),
            None => Err(format!(
                "migration {version} does not start with `{MARKER} expand` (the previous release \
                 keeps working on the new schema) or `{MARKER} contract` (it would not)"
            )),
        }
    }
}

/// One migration this binary carries.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Known {
    pub version: i64,
    pub description: String,
    pub kind: Kind,
}

/// This binary's migrations for a backend, with their kinds.
pub fn known(migrator: &Migrator) -> Vec<Known> {
    migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| Known {
            version: m.version,
            description: m.description.to_string(),
            // A binary is only built after the `every_migration_declares_its_kind` test passed.
            kind: Kind::of(m.version, &m.sql).unwrap_or(Kind::Contract),
        })
        .collect()
}

/// A row of `_sqlx_migrations`.
#[derive(Debug, Clone)]
pub struct Applied {
    pub version: i64,
    pub success: bool,
    pub checksum: Vec<u8>,
    /// Unix seconds.
    pub installed_at: i64,
}

/// Where a database stands against this binary's migrations.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    /// Every migration this binary has, and when it was applied (None: pending).
    pub migrations: Vec<(Known, Option<i64>)>,
    /// Applied versions this binary does not know: the database was written by a newer Berth.
    pub unknown: Vec<i64>,
    /// Applied versions whose text differs from this binary's (an edited migration).
    pub modified: Vec<i64>,
    /// Versions recorded as failed (a migration that ran outside a transaction and broke).
    pub failed: Vec<i64>,
}

impl Status {
    pub fn new(migrator: &Migrator, applied: &[Applied]) -> Status {
        let by_version: BTreeMap<i64, &Applied> = applied.iter().map(|a| (a.version, a)).collect();
        let ours: BTreeMap<i64, &Migration> = migrator.iter().map(|m| (m.version, m)).collect();
        Status {
            migrations: known(migrator)
                .into_iter()
                .map(|k| {
                    let at = by_version
                        .get(&k.version)
                        .filter(|a| a.success)
                        .map(|a| a.installed_at);
                    (k, at)
                })
                .collect(),
            unknown: applied
                .iter()
                .filter(|a| !ours.contains_key(&a.version))
                .map(|a| a.version)
                .collect(),
            modified: applied
                .iter()
                .filter(|a| {
                    ours.get(&a.version)
                        .is_some_and(|m| *m.checksum != *a.checksum)
                })
                .map(|a| a.version)
                .collect(),
            failed: applied
                .iter()
                .filter(|a| !a.success)
                .map(|a| a.version)
                .collect(),
        }
    }

    pub fn pending(&self) -> impl Iterator<Item = &Known> {
        self.migrations
            .iter()
            .filter(|(_, at)| at.is_none())
            .map(|(k, _)| k)
    }

    /// Why this database cannot be migrated by this binary at all, if it cannot.
    pub fn problem(&self, where_: &str) -> Option<String> {
        if !self.unknown.is_empty() {
            return Some(newer_berth(&self.unknown, where_));
        }
        if !self.modified.is_empty() {
            return Some(format!(
                "the database at {where_} applied migration(s) {:?} with a different text than \
                 this Berth {} carries: a migration was edited after it was applied. Restore \
                 the original migration file (migrations are append-only; write a new one)",
                self.modified,
                env!("CARGO_PKG_VERSION")
            ));
        }
        if !self.failed.is_empty() {
            return Some(format!(
                "the database at {where_} records migration(s) {:?} as failed; restore the \
                 backup taken before it and run `berth migrate up` again",
                self.failed
            ));
        }
        None
    }

    /// Refuses pending contract migrations unless allowed: the previous release may still run.
    pub fn refuse_contract(&self, allow_contract: bool) -> Result<(), BootError> {
        let contract: Vec<String> = self
            .pending()
            .filter(|k| k.kind == Kind::Contract)
            .map(|k| format!("{} {}", k.version, k.description))
            .collect();
        if contract.is_empty() || allow_contract {
            return Ok(());
        }
        Err(BootError::Refused(format!(
            "refusing to apply contract migration(s) {}: the previous release cannot work on \
             the schema they leave. Stop every instance of the previous release first, then run \
             `berth migrate up --allow-contract`. Nothing was applied",
            contract.join(", ")
        )))
    }
}

fn newer_berth(unknown: &[i64], where_: &str) -> String {
    format!(
        "the database at {where_} has schema migration(s) {unknown:?} that this Berth {} does \
         not know: it was written by a newer Berth. Run that newer version, or restore a backup \
         made by this one. The database was not modified.",
        env!("CARGO_PKG_VERSION")
    )
}

/// Refuses a database that has migrations this binary does not know: it was written by a newer
/// Berth, and touching it could lose data. `applied` are the versions recorded in the database.
pub fn refuse_unknown(migrator: &Migrator, applied: &[i64], where_: &str) -> Result<(), BootError> {
    let unknown: Vec<i64> = applied
        .iter()
        .copied()
        .filter(|v| !migrator.iter().any(|m| m.version == *v))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(BootError::Database(newer_berth(&unknown, where_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_the_same_on_both_backends() {
        let s: Vec<_> = SQLITE
            .iter()
            .map(|m| (m.version, m.description.clone()))
            .collect();
        let p: Vec<_> = POSTGRES
            .iter()
            .map(|m| (m.version, m.description.clone()))
            .collect();
        assert_eq!(
            s, p,
            "every migration needs a twin in the other backend's folder"
        );
    }

    #[test]
    fn every_migration_declares_its_kind_the_same_on_both_backends() {
        for (s, p) in SQLITE.iter().zip(POSTGRES.iter()) {
            let ks = Kind::of(s.version, &s.sql).unwrap();
            let kp = Kind::of(p.version, &p.sql).unwrap();
            assert_eq!(ks, kp, "migration {} differs in kind", s.version);
            assert!(
                !s.no_tx && !p.no_tx,
                "migration {} runs outside a transaction: a failure would half-apply it",
                s.version
            );
        }
    }

    #[test]
    fn kinds_parse_from_the_first_line() {
        assert_eq!(Kind::of(3, "CREATE TABLE t (a INT);"), Ok(Kind::Expand));
        assert_eq!(
            Kind::of(
                20270101000000,
                "-- berth-migration: contract\nDROP TABLE t;"
            ),
            Ok(Kind::Contract)
        );
        assert!(Kind::of(20270101000000, "DROP TABLE t;")
            .unwrap_err()
            .contains("does not start with"));
        assert!(Kind::of(20270101000000, "-- berth-migration: maybe")
            .unwrap_err()
            .contains("expand or contract"));
    }

    #[test]
    fn a_pending_contract_migration_is_refused_unless_allowed() {
        let mut status = Status::new(&SQLITE, &[]);
        assert!(
            status.refuse_contract(false).is_ok(),
            "all shipped are expand"
        );
        status.migrations[0].0.kind = Kind::Contract;
        let err = status.refuse_contract(false).unwrap_err().to_string();
        assert!(err.contains("--allow-contract"), "{err}");
        assert!(status.refuse_contract(true).is_ok());
        status.migrations[0].1 = Some(1);
        assert!(status.refuse_contract(false).is_ok(), "already applied");
    }

    #[test]
    fn unknown_versions_are_refused_with_advice() {
        assert!(refuse_unknown(&SQLITE, &[1], "x").is_ok());
        let err = refuse_unknown(&SQLITE, &[1, 99_999], "x")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("99999") && err.contains("not modified"),
            "{err}"
        );
    }
}
