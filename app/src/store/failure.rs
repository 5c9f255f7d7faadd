//! What a database error means for the caller: the database away for now (answer 503, keep
//! waiting at start) or its disk full (507, the operator's to fix), as opposed to a bug.

/// True when `err` means the database cannot be reached or is not accepting work right now
/// (down, restarting, out of connections, busy), as opposed to a query or a bug that would fail
/// again the same way. Requests answer 503 for these, and start-up keeps waiting.
pub fn database_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::WorkerCrashed => true,
        // Nothing came back to the TLS request (0x00: the connection closed before a byte was
        // read), as while a server restarts behind a proxy that accepts and drops connections
        // until the server listens (Docker's port forwarding): the server is away, not broken.
        sqlx::Error::Protocol(message) => {
            message.starts_with("unexpected response from SSLRequest: 0x00")
        }
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            if db
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .is_some()
            {
                // SQLSTATEs: connection exceptions (08...), the server shutting down or starting
                // up (57P01-57P03), too many connections (53300), a read-only standby after a
                // failover (25006).
                code.starts_with("08")
                    || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300" | "25006")
            } else if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // Result codes BUSY, LOCKED, CANTOPEN (the primary code is the low byte).
                code.parse::<u32>()
                    .is_ok_and(|n| matches!(n & 0xff, 5 | 6 | 14))
            } else {
                false
            }
        }
        _ => false,
    }
}

/// SQLite's SQLITE_FULL (13) or PostgreSQL's disk_full (53100).
pub fn database_full(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                code.parse::<u32>().is_ok_and(|n| n & 0xff == 13)
            } else {
                code == "53100"
            }
        }
        _ => false,
    }
}
