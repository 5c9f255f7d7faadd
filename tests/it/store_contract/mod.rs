//! The store's contract: the same cases, through the library API, against both backends. Each
//! case is written once, inside `cases!` in the file of its group, and listed in `contract!`,
//! which makes a `sqlite::NAME` test (a fresh SQLite file) and a `postgres::NAME` test (a fresh
//! database on the test PostgreSQL, see `support::pg`).

use crate::support;

use berth::config::DatabaseLocation;
use berth::domain::accounts::{AccountState, Role};
use berth::store::UserRow;
use berth::store::{
    AuditFilter, ConversationRow, DocumentRow, NewAuditEntry, NewChunk, Store, TokenRow,
};

/// Defines each case of a group file once, as `pub(super) async fn NAME(location)`: it opens the
/// store at `location`, runs the body with the open `Store` and its `DatabaseLocation` under the
/// names given, and closes it. A case is `async fn NAME(store, location) { BODY }`.
macro_rules! cases {
    ($(async fn $name:ident($store:ident, $location:ident) $body:block)*) => {
        $(
            pub(super) async fn $name($location: DatabaseLocation) {
                let $store = Store::open(&$location).await.unwrap();
                let _ = &$location;
                $body
                $store.close().await;
            }
        )*
    };
}

/// Makes each case of each group a `sqlite::NAME` test (a fresh SQLite file) and a
/// `postgres::NAME` test (a fresh database on the test PostgreSQL). A case not listed here is
/// dead code, which the build refuses.
macro_rules! contract {
    ($($group:ident: [$($name:ident),* $(,)?])*) => {
        mod sqlite {
            use super::*;
            $($(
                #[tokio::test]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    super::$group::$name(DatabaseLocation::Sqlite(dir.path().join("berth.db"))).await;
                }
            )*)*
        }
        mod postgres {
            use super::*;
            $($(
                #[tokio::test]
                async fn $name() {
                    let Some(db) = support::pg::database() else { return };
                    super::$group::$name(DatabaseLocation::Postgres(db.url.clone())).await;
                }
            )*)*
        }
    };
}

mod audit_log;
mod conversations;
mod documents;
mod oidc;
mod schema;
mod search;
mod users;

fn user(name: &str, role: Role, state: AccountState, at: i64) -> UserRow {
    UserRow {
        id: format!("id-{name}"),
        username: name.into(),
        password_hash: format!("hash-{name}"),
        role: role.as_str().into(),
        state: state.as_str().into(),
        created_at: at,
        updated_at: at,
    }
}

fn token(id: &str, user_id: &str, at: i64) -> TokenRow {
    TokenRow {
        id: id.into(),
        user_id: user_id.into(),
        name: format!("name-{id}"),
        prefix: format!("brt_{id}"),
        created_at: at,
        last_used_at: None,
        revoked_at: None,
    }
}

async fn insert(store: &Store, u: &UserRow) {
    assert!(store.insert_user(u).await.unwrap(), "insert {}", u.username);
}

/// Executes raw SQL on the store's own pool: the database's refusal as text.
async fn raw_execute(store: &Store, sql: &str) -> Result<u64, String> {
    let result = match store {
        Store::Sqlite(s) => sqlx::query(sql)
            .execute(&s.pool)
            .await
            .map(|r| r.rows_affected()),
        Store::Postgres(s) => sqlx::query(sql)
            .execute(&s.pool)
            .await
            .map(|r| r.rows_affected()),
    };
    result.map_err(|e| e.to_string())
}

async fn raw_count(store: &Store, sql: &str) -> i64 {
    match store {
        Store::Sqlite(s) => sqlx::query_scalar(sql).fetch_one(&s.pool).await.unwrap(),
        Store::Postgres(s) => sqlx::query_scalar(sql).fetch_one(&s.pool).await.unwrap(),
    }
}

fn audit(at: i64, event: &'static str, actor: &str, target: Option<&str>) -> NewAuditEntry {
    NewAuditEntry {
        at,
        event,
        outcome: "success",
        actor_id: Some(format!("id-{actor}")),
        actor_name: Some(actor.into()),
        target_id: target.map(|t| format!("id-{t}")),
        target_name: target.map(String::from),
        client_addr: Some("127.0.0.1".into()),
        user_agent: Some("tests".into()),
        detail: None,
    }
}

fn doc(id: &str, collection: &str, hash: &str, at: i64) -> DocumentRow {
    DocumentRow {
        id: id.into(),
        collection_id: collection.into(),
        filename: format!("{id}.txt"),
        media_type: "text/plain".into(),
        size: 10,
        content_hash: hash.into(),
        status: "queued".into(),
        progress: 0.0,
        error: None,
        chunk_count: 0,
        attempts: 0,
        created_at: at,
        updated_at: at,
        uploaded_by: None,
    }
}

/// A user "owner" and collections `c1`, `c2` it owns.
async fn with_collections(store: &Store) {
    insert(store, &user("owner", Role::User, AccountState::Active, 1)).await;
    store
        .insert_collection("c1", "first", "id-owner", false, 1)
        .await
        .unwrap();
    store
        .insert_collection("c2", "second", "id-owner", false, 2)
        .await
        .unwrap();
}

async fn insert_doc(store: &Store, d: &DocumentRow) {
    assert_eq!(
        store.insert_document(d).await.unwrap(),
        None,
        "insert {}",
        d.id
    );
}

fn chunks<'a>(texts: &[&'a str]) -> Vec<NewChunk<'a>> {
    let mut at = 0;
    texts
        .iter()
        .map(|t| {
            let c = NewChunk {
                text: t,
                context: "",
                start: at,
                end: at + t.len() as i64,
            };
            at += t.len() as i64 + 1;
            c
        })
        .collect()
}

/// Claims the document `id` (the only one due) and completes it with `texts` and `vectors`.
async fn ingest(
    store: &Store,
    id: &str,
    texts: &[&str],
    vectors: Option<(&str, &[Vec<f32>])>,
) -> Vec<i64> {
    let claimed = store.claim_document(1_000, 60_000).await.unwrap().unwrap();
    assert_eq!(claimed.id, id);
    let text = texts.join(" ");
    store
        .complete_document(id, &text, &chunks(texts), vectors, 1_001)
        .await
        .unwrap()
        .unwrap()
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

contract! {
    oidc: [
        an_identity_links_one_new_account_or_nothing,
        a_flow_is_taken_once_and_old_ones_are_forgotten,
        a_session_remembers_its_provider,
    ]
    schema: [
        a_second_instance_shares_the_data_and_migrates_nothing,
        a_database_from_a_newer_berth_is_refused,
        meta_values_are_set_and_replaced,
    ]
    users: [
        users_insert_once_and_are_found_by_name_and_id,
        users_are_listed_by_state_oldest_first,
        the_last_active_admin_cannot_lose_access,
        passwords_are_replaced,
        sessions_are_created_touched_and_ended,
        api_tokens_live_until_revoked,
        failures_are_counted_per_window_and_lock_at_the_limit,
    ]
    audit_log: [
        the_audit_log_filters_pages_newest_first,
        the_audit_log_is_append_only_even_in_raw_sql,
    ]
    documents: [
        documents_insert_once_per_content_hash,
        uploaded_bytes_live_with_their_document,
        concurrent_claimers_never_share_a_document,
        claims_go_oldest_first_and_expired_leases_are_reclaimed,
        requeue_fail_and_retry,
        completed_chunks_become_visible_only_then,
    ]
    search: [
        lexical_search_sees_ready_documents_in_the_given_collections,
        every_run_of_letters_and_digits_is_a_term,
        lexical_ranking_is_exhaustive_bm25,
        a_chunks_context_is_searched_with_its_text,
        vectors_are_stored_per_model_and_searched,
    ]
    conversations: [
        conversations_and_messages,
    ]
}
