//! Where the data is: `database_url`, with `database_ca_file` and the URL's `sslmode` checked
//! together (the CA file means nothing unless the certificate is verified).

use super::declared as d;
use super::layers::Layers;
use super::DatabaseLocation;
use crate::error::BootError;

/// The database, with `database_ca_file` folded into a PostgreSQL URL as libpq's `sslrootcert`,
/// which sqlx and the backups' `pg_dump`/`psql` all read: every connection checks the server the
/// same way. The URL is never echoed (it may hold a password).
pub(super) fn location(
    l: &Layers<'_>,
    data_dir: &std::path::Path,
) -> Result<DatabaseLocation, BootError> {
    let location = l
        .get(&d::DATABASE_URL)?
        .unwrap_or_else(|| DatabaseLocation::Sqlite(data_dir.join("berth.db")));
    let ca_file = l.get(&d::DATABASE_CA_FILE)?;
    let url = match (&location, &ca_file) {
        (DatabaseLocation::Postgres(url), _) => url,
        (DatabaseLocation::Sqlite(_), None) => return Ok(location),
        (DatabaseLocation::Sqlite(_), Some(_)) => {
            return Err(l.refuse(
                &d::DATABASE_CA_FILE,
                "the database is SQLite (database_url is unset or sqlite://), which has no \
                 server to check: unset database_ca_file, or set a postgres:// database_url",
            ))
        }
    };
    let mut parsed =
        reqwest::Url::parse(url).map_err(|_| l.refuse(&d::DATABASE_URL, "the URL is not valid"))?;
    let param = |names: &[&str]| {
        parsed
            .query_pairs()
            .find(|(k, _)| names.contains(&k.as_ref()))
            .map(|(_, v)| v.to_ascii_lowercase())
    };
    if param(&["sslrootcert", "ssl-root-cert", "ssl-ca"]).is_some() {
        return Err(l.refuse(
            &d::DATABASE_URL,
            "sslrootcert in the URL is not read: name the CA file with database_ca_file",
        ));
    }
    let mode = param(&["sslmode", "ssl-mode"]);
    match mode.as_deref() {
        None | Some("disable" | "prefer" | "require" | "verify-full") => {}
        // sqlx 0.8.6 lets a name mismatch through for verify-ca by matching rustls' old error
        // variant only; rustls now reports another, so verify-ca checks the name as verify-full
        // does (launchbadge/sqlx#3793, fixed after 0.8.6). Refused rather than surprising.
        Some("verify-ca") => {
            return Err(l.refuse(
                &d::DATABASE_URL,
                "sslmode=verify-ca is not supported by this build (its TLS client checks the \
                 host name anyway): use sslmode=verify-full, connecting by a name or address \
                 the server's certificate holds",
            ))
        }
        Some("allow") => {
            return Err(l.refuse(
                &d::DATABASE_URL,
                "sslmode=allow is not supported (it would never use TLS): use disable, prefer, \
                 require or verify-full",
            ))
        }
        Some(other) => {
            return Err(l.refuse(
                &d::DATABASE_URL,
                format!("sslmode={other:?} is not one of disable, prefer, require, verify-full"),
            ))
        }
    }
    let Some(ca_file) = ca_file else {
        return Ok(location);
    };
    crate::tls::read_ca_file(&ca_file).map_err(|e| l.refuse(&d::DATABASE_CA_FILE, e))?;
    let Some(ca_text) = ca_file.to_str() else {
        return Err(l.refuse(&d::DATABASE_CA_FILE, "the path is not valid UTF-8"));
    };
    match mode.as_deref() {
        // A CA file means the certificate is to be checked: in full, unless the URL says.
        None => {
            parsed
                .query_pairs_mut()
                .append_pair("sslmode", "verify-full");
        }
        Some("verify-full") => {}
        Some(weak) => {
            return Err(l.refuse(
                &d::DATABASE_CA_FILE,
                format!(
                    "database_url has sslmode={weak}, which does not check the server's \
                     certificate, so the CA file would be ignored: use sslmode=verify-full, or \
                     drop sslmode"
                ),
            ))
        }
    }
    parsed.query_pairs_mut().append_pair("sslrootcert", ca_text);
    Ok(DatabaseLocation::Postgres(parsed.to_string()))
}
