//! `on_pool!`: run the same query code on whichever backend is open, type-checked for each.

/// Runs `$body` with `$pool` bound to the open backend's pool.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store {
            Store::Sqlite(s) => {
                let $pool = &s.pool;
                $body
            }
            Store::Postgres(s) => {
                let $pool = &s.pool;
                $body
            }
        }
    };
}

pub(crate) use on_pool;
