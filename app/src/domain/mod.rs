//! Plain types that parse: no HTTP, no database. Everything above builds on them.

pub mod accounts;
pub mod chat;
pub mod documents;
pub mod secret;
pub mod settings;
