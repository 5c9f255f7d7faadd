//! Schema migrations, embedded in the binary, one folder per backend.

use sqlx::migrate::Migrator;

use crate::error::BootError;

pub static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
pub static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");

/// Refuses a database that has migrations this binary does not know: it was written by a newer
/// Berth, and touching it could lose data. `applied` are the versions recorded in the database.
pub fn refuse_unknown(migrator: &Migrator, applied: &[i64], where_: &str) -> Result<(), BootError> {
    let known_max = migrator.iter().map(|m| m.version).max().unwrap_or(0);
    let unknown: Vec<i64> = applied
        .iter()
        .copied()
        .filter(|v| !migrator.iter().any(|m| m.version == *v))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(BootError::Database(format!(
        "the database at {where_} has schema migration(s) {unknown:?} that this Berth {} does not \
         know (it knows up to {known_max}): it was written by a newer Berth. Run that newer \
         version, or restore a backup made by this one. The database was not modified.",
        env!("CARGO_PKG_VERSION")
    )))
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
