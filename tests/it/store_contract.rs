//! The store's contract: the same cases, through the library API, against both backends. Each
//! case is written once inside `contract!`, which makes a `sqlite::NAME` test (a fresh SQLite file)
//! and a `postgres::NAME` test (a fresh database on the test PostgreSQL, see `support::pg`).

use crate::support;

use berth::config::DatabaseLocation;
use berth::domain::accounts::{AccountState, Role};
use berth::store::UserRow;
use berth::store::{
    AuditFilter, ConversationRow, DocumentRow, NewAuditEntry, NewChunk, Store, TokenRow,
};

/// Defines each case once for every backend. A case is `async fn NAME(store, location) { BODY }`;
/// the body sees the open `Store` and its `DatabaseLocation` under the names given.
macro_rules! contract {
    ($(async fn $name:ident($store:ident, $location:ident) $body:block)*) => {
        mod sqlite {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let $location = DatabaseLocation::Sqlite(dir.path().join("berth.db"));
                    let $store = Store::open(&$location).await.unwrap();
                    let _ = &$location;
                    $body
                    $store.close().await;
                }
            )*
        }
        mod postgres {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(db) = support::pg::database() else { return };
                    let $location = DatabaseLocation::Postgres(db.url.clone());
                    let $store = Store::open(&$location).await.unwrap();
                    let _ = &$location;
                    $body
                    $store.close().await;
                }
            )*
        }
    };
}

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
    async fn a_second_instance_shares_the_data_and_migrates_nothing(store, location) {
        store.check().await.unwrap();
        let migrations = raw_count(&store, "SELECT COUNT(*) FROM _sqlx_migrations").await;
        assert!(migrations >= 2, "{migrations}");
        insert(&store, &user("kept", Role::User, AccountState::Pending, 1)).await;
        let other = Store::open(&location).await.unwrap();
        other.check().await.unwrap();
        assert_eq!(raw_count(&other, "SELECT COUNT(*) FROM _sqlx_migrations").await, migrations);
        assert!(other.user_by_name("kept").await.unwrap().is_some());
        // A write through one is seen by the other at once.
        insert(&other, &user("second", Role::User, AccountState::Pending, 2)).await;
        assert!(store.user_by_name("second").await.unwrap().is_some());
        other.close().await;
        store.check().await.unwrap();
    }

    async fn users_insert_once_and_are_found_by_name_and_id(store, location) {
        let alice = user("alice", Role::User, AccountState::Pending, 10);
        insert(&store, &alice).await;
        let mut again = user("alice", Role::Admin, AccountState::Active, 11);
        again.id = "another-id".into();
        assert!(!store.insert_user(&again).await.unwrap(), "the name is taken");

        let found = store.user_by_name("alice").await.unwrap().unwrap();
        assert_eq!(
            (found.id.as_str(), found.role.as_str(), found.state.as_str()),
            ("id-alice", "user", "pending")
        );
        assert_eq!(found.password_hash, "hash-alice");
        assert_eq!((found.created_at, found.updated_at), (10, 10));
        let by_id = store.user_by_id("id-alice").await.unwrap().unwrap();
        assert_eq!(by_id.username, "alice");
        assert!(store.user_by_name("nobody").await.unwrap().is_none());
        assert!(store.user_by_id("another-id").await.unwrap().is_none());
        // Names are compared exactly.
        assert!(store.user_by_name("Alice").await.unwrap().is_none());
    }

    async fn users_are_listed_by_state_oldest_first(store, location) {
        insert(&store, &user("bob", Role::User, AccountState::Pending, 30)).await;
        insert(&store, &user("amy", Role::User, AccountState::Pending, 30)).await;
        insert(&store, &user("cat", Role::Admin, AccountState::Active, 20)).await;
        insert(&store, &user("dan", Role::User, AccountState::Disabled, 40)).await;
        let names = |rows: Vec<UserRow>| rows.into_iter().map(|u| u.username).collect::<Vec<_>>();
        assert_eq!(
            names(store.list_users(None).await.unwrap()),
            ["cat", "amy", "bob", "dan"]
        );
        assert_eq!(
            names(store.list_users(Some(AccountState::Pending)).await.unwrap()),
            ["amy", "bob"]
        );
        assert_eq!(
            names(store.list_users(Some(AccountState::Disabled)).await.unwrap()),
            ["dan"]
        );
        assert!(store.list_users(Some(AccountState::Denied)).await.unwrap().is_empty());
        assert_eq!(store.count_active_admins().await.unwrap(), 1);
    }

    async fn the_last_active_admin_cannot_lose_access(store, location) {
        use AccountState::*;
        insert(&store, &user("root", Role::Admin, Active, 1)).await;
        insert(&store, &user("carol", Role::User, Pending, 2)).await;
        // Demoting or disabling the only active admin is refused, and nothing changes.
        assert!(!store.update_user_access("id-root", Active, Role::User, 5).await.unwrap());
        assert!(!store.update_user_access("id-root", Disabled, Role::Admin, 5).await.unwrap());
        let root = store.user_by_id("id-root").await.unwrap().unwrap();
        assert_eq!((root.role.as_str(), root.state.as_str(), root.updated_at), ("admin", "active", 1));
        // Keeping it an active admin is always allowed.
        assert!(store.update_user_access("id-root", Active, Role::Admin, 6).await.unwrap());

        // With a second active admin, either may step down, but not both.
        assert!(store.update_user_access("id-carol", Active, Role::Admin, 7).await.unwrap());
        assert_eq!(store.count_active_admins().await.unwrap(), 2);
        assert!(store.update_user_access("id-root", Disabled, Role::Admin, 8).await.unwrap());
        assert!(!store.update_user_access("id-carol", Active, Role::User, 9).await.unwrap());
        let carol = store.user_by_id("id-carol").await.unwrap().unwrap();
        assert_eq!((carol.role.as_str(), carol.state.as_str(), carol.updated_at), ("admin", "active", 7));
        let root = store.user_by_id("id-root").await.unwrap().unwrap();
        assert_eq!((root.state.as_str(), root.updated_at), ("disabled", 8));
        assert_eq!(store.count_active_admins().await.unwrap(), 1);

        // Unknown ids change nothing.
        assert!(!store.update_user_access("id-nobody", Active, Role::Admin, 10).await.unwrap());
    }

    async fn passwords_are_replaced(store, location) {
        insert(&store, &user("erin", Role::User, AccountState::Active, 1)).await;
        assert!(store.set_password_hash("id-erin", "new-hash", 50).await.unwrap());
        let erin = store.user_by_id("id-erin").await.unwrap().unwrap();
        assert_eq!((erin.password_hash.as_str(), erin.updated_at), ("new-hash", 50));
        assert!(!store.set_password_hash("id-nobody", "x", 50).await.unwrap());
    }

    async fn sessions_are_created_touched_and_ended(store, location) {
        insert(&store, &user("fay", Role::User, AccountState::Active, 1)).await;
        insert(&store, &user("gus", Role::User, AccountState::Active, 1)).await;
        store
            .insert_session("s1", "id-fay", "csrf1", 100, 900, Some("10.0.0.1"), Some("ua"))
            .await
            .unwrap();
        store.insert_session("s2", "id-fay", "csrf2", 110, 910, None, None).await.unwrap();
        store.insert_session("s3", "id-gus", "csrf3", 120, 920, None, None).await.unwrap();
        // A session's key is unique.
        assert!(store.insert_session("s1", "id-gus", "x", 1, 2, None, None).await.is_err());

        let s1 = store.session("s1").await.unwrap().unwrap();
        assert_eq!(
            (s1.user_id.as_str(), s1.csrf_token.as_str(), s1.created_at, s1.last_seen_at, s1.expires_at),
            ("id-fay", "csrf1", 100, 100, 900)
        );
        store.touch_session("s1", 150).await.unwrap();
        assert_eq!(store.session("s1").await.unwrap().unwrap().last_seen_at, 150);
        store.delete_session("s1").await.unwrap();
        assert!(store.session("s1").await.unwrap().is_none());
        assert!(store.session("never").await.unwrap().is_none());
        // Deleting or touching what is not there is no error.
        store.delete_session("s1").await.unwrap();
        store.touch_session("s1", 160).await.unwrap();

        // A session must belong to a user.
        assert!(store.insert_session("s9", "id-nobody", "x", 1, 2, None, None).await.is_err());

        store.end_user_sessions_and_tokens("id-fay", 200).await.unwrap();
        assert!(store.session("s2").await.unwrap().is_none());
        assert!(store.session("s3").await.unwrap().is_some(), "other users' sessions stay");
    }

    async fn api_tokens_live_until_revoked(store, location) {
        insert(&store, &user("hal", Role::User, AccountState::Active, 1)).await;
        insert(&store, &user("ivy", Role::User, AccountState::Active, 1)).await;
        store.insert_token(&token("t1", "id-hal", 100), "hash1").await.unwrap();
        store.insert_token(&token("t2", "id-hal", 200), "hash2").await.unwrap();
        store.insert_token(&token("t3", "id-ivy", 300), "hash3").await.unwrap();
        // A token hash is unique.
        assert!(store.insert_token(&token("t4", "id-ivy", 1), "hash1").await.is_err());

        let live = store.live_token("hash1").await.unwrap().unwrap();
        assert_eq!(
            (live.id.as_str(), live.user_id.as_str(), live.name.as_str(), live.prefix.as_str()),
            ("t1", "id-hal", "name-t1", "brt_t1")
        );
        assert_eq!((live.last_used_at, live.revoked_at), (None, None));
        store.touch_token("t1", 150).await.unwrap();
        assert_eq!(store.live_token("hash1").await.unwrap().unwrap().last_used_at, Some(150));

        let listed: Vec<_> = store.list_tokens("id-hal").await.unwrap().into_iter().map(|t| t.id).collect();
        assert_eq!(listed, ["t2", "t1"], "newest first, only the user's own");

        // Only the owner revokes, once.
        assert_eq!(store.revoke_token("id-ivy", "t1", 160).await.unwrap(), None);
        assert_eq!(store.revoke_token("id-hal", "t1", 160).await.unwrap().as_deref(), Some("name-t1"));
        assert_eq!(store.revoke_token("id-hal", "t1", 170).await.unwrap(), None);
        assert!(store.live_token("hash1").await.unwrap().is_none());
        let t1 = store.list_tokens("id-hal").await.unwrap().into_iter().find(|t| t.id == "t1").unwrap();
        assert_eq!(t1.revoked_at, Some(160), "the first revocation time stays");

        store.end_user_sessions_and_tokens("id-hal", 300).await.unwrap();
        assert!(store.live_token("hash2").await.unwrap().is_none());
        assert!(store.live_token("hash3").await.unwrap().is_some(), "other users' tokens stay");
        let t2 = store.list_tokens("id-hal").await.unwrap().into_iter().find(|t| t.id == "t2").unwrap();
        assert_eq!(t2.revoked_at, Some(300));
    }

    async fn failures_are_counted_per_window_and_lock_at_the_limit(store, location) {
        let (window, max) = (1_000, 3);
        assert!(store.throttle("user:kim").await.unwrap().is_none());
        let r = store.record_failure("user:kim", 10_000, window, max).await.unwrap();
        assert_eq!((r.failures, r.window_start, r.locked_until), (1, 10_000, None));
        let r = store.record_failure("user:kim", 10_500, window, max).await.unwrap();
        assert_eq!((r.failures, r.window_start, r.locked_until), (2, 10_000, None));
        // The third failure in the window locks until a window from now.
        let r = store.record_failure("user:kim", 10_900, window, max).await.unwrap();
        assert_eq!((r.failures, r.window_start, r.locked_until), (3, 10_000, Some(11_900)));
        let row = store.throttle("user:kim").await.unwrap().unwrap();
        assert_eq!((row.failures, row.locked_until), (3, Some(11_900)));
        // Keys are independent.
        let other = store.record_failure("addr:10.0.0.1", 10_900, window, max).await.unwrap();
        assert_eq!(other.failures, 1);

        // After the window a failure starts a new count; the old lock time is kept as it was.
        let r = store.record_failure("user:kim", 12_000, window, max).await.unwrap();
        assert_eq!((r.failures, r.window_start, r.locked_until), (1, 12_000, Some(11_900)));

        // With a limit of one, the first failure locks.
        let r = store.record_failure("user:lee", 5_000, window, 1).await.unwrap();
        assert_eq!((r.failures, r.locked_until), (1, Some(6_000)));

        store.clear_throttle("user:kim").await.unwrap();
        assert!(store.throttle("user:kim").await.unwrap().is_none());
        assert!(store.throttle("addr:10.0.0.1").await.unwrap().is_some());
    }

    async fn the_audit_log_filters_pages_newest_first(store, location) {
        let entries = [
            audit(1_000, "user.registered", "amy", None),
            audit(2_000, "user.approved", "root", Some("amy")),
            audit(3_000, "auth.sign_in", "amy", None),
            audit(4_000, "user.disabled", "root", Some("amy")),
            audit(5_000, "auth.sign_in", "root", None),
        ];
        for e in &entries {
            store.append_audit(e).await.unwrap();
        }
        let all = |f: AuditFilter| {
            let store = store.clone();
            async move {
                store.list_audit(&AuditFilter { limit: 100, ..f }).await.unwrap()
            }
        };
        let rows = all(AuditFilter::default()).await;
        assert_eq!(rows.len(), 5);
        assert!(rows.windows(2).all(|w| w[0].id > w[1].id), "newest first");
        assert_eq!(rows[0].at, 5_000);
        let first = rows.last().unwrap();
        assert_eq!(
            (first.event.as_str(), first.outcome.as_str(), first.actor_name.as_deref(), first.client_addr.as_deref()),
            ("user.registered", "success", Some("amy"), Some("127.0.0.1"))
        );
        assert_eq!((first.target_id.clone(), first.detail.clone()), (None, None));

        let events = |rows: Vec<berth::store::AuditRow>| rows.into_iter().map(|r| r.at).collect::<Vec<_>>();
        let by_event = all(AuditFilter { event: Some("auth.sign_in".into()), ..Default::default() }).await;
        assert_eq!(events(by_event), [5_000, 3_000]);
        // `user` matches the actor or the target, by name or id.
        let amy = all(AuditFilter { user: Some("amy".into()), ..Default::default() }).await;
        assert_eq!(events(amy), [4_000, 3_000, 2_000, 1_000]);
        let amy_id = all(AuditFilter { user: Some("id-amy".into()), ..Default::default() }).await;
        assert_eq!(events(amy_id), [4_000, 3_000, 2_000, 1_000]);
        let root_sign_in = all(AuditFilter {
            user: Some("root".into()),
            event: Some("auth.sign_in".into()),
            ..Default::default()
        })
        .await;
        assert_eq!(events(root_sign_in), [5_000]);
        // since is inclusive, until exclusive.
        let range = all(AuditFilter { since: Some(2_000), until: Some(4_000), ..Default::default() }).await;
        assert_eq!(events(range), [3_000, 2_000]);

        // Pages of two, each starting before the last id seen.
        let mut pages = Vec::new();
        let mut before = None;
        loop {
            let page = store
                .list_audit(&AuditFilter { before_id: before, limit: 2, ..Default::default() })
                .await
                .unwrap();
            if page.is_empty() {
                break;
            }
            before = Some(page.last().unwrap().id);
            pages.push(events(page));
        }
        assert_eq!(pages, [vec![5_000, 4_000], vec![3_000, 2_000], vec![1_000]]);
    }

    async fn the_audit_log_is_append_only_even_in_raw_sql(store, location) {
        store.append_audit(&audit(1, "user.registered", "amy", None)).await.unwrap();
        store.append_audit(&audit(2, "user.approved", "root", Some("amy"))).await.unwrap();
        for sql in [
            "UPDATE audit_log SET outcome = 'failure'",
            "UPDATE audit_log SET detail = 'x' WHERE at = 1",
            "DELETE FROM audit_log",
            "DELETE FROM audit_log WHERE at = 2",
        ] {
            let err = raw_execute(&store, sql).await.unwrap_err();
            assert!(err.contains("append-only"), "{sql}: {err}");
        }
        if matches!(store, Store::Postgres(_)) {
            let err = raw_execute(&store, "TRUNCATE audit_log").await.unwrap_err();
            assert!(err.contains("append-only"), "{err}");
        }
        let rows = store.list_audit(&AuditFilter { limit: 10, ..Default::default() }).await.unwrap();
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().all(|r| r.outcome == "success" && r.detail.is_none()));
    }

    async fn a_database_from_a_newer_berth_is_refused(store, location) {
        let sql = match &store {
            Store::Sqlite(_) => "INSERT INTO _sqlx_migrations (version, description, success, \
                checksum, execution_time) VALUES (99990101000000, 'future', 1, x'00', 0)",
            Store::Postgres(_) => "INSERT INTO _sqlx_migrations (version, description, success, \
                checksum, execution_time) VALUES (99990101000000, 'future', true, '\\x00', 0)",
        };
        raw_execute(&store, sql).await.unwrap();
        store.close().await;
        let err = match Store::open(&location).await {
            Ok(_) => panic!("a database with a newer migration was opened"),
            Err(e) => e,
        };
        assert_eq!(err.exit_code(), 3, "{err}");
        let err = err.to_string();
        assert!(err.contains("99990101000000") && err.contains("newer Berth"), "{err}");
        assert!(!err.contains("postgres://"), "no URL (it may hold a password): {err}");
    }

    async fn documents_insert_once_per_content_hash(store, location) {
        with_collections(&store).await;
        insert_doc(&store, &doc("d1", "c1", "h1", 10)).await;
        // The same content in the same collection names the existing document.
        assert_eq!(store.insert_document(&doc("d2", "c1", "h1", 11)).await.unwrap().as_deref(), Some("d1"));
        // In another collection it is a new document.
        insert_doc(&store, &doc("d3", "c2", "h1", 12)).await;
        let d1 = store.document("d1").await.unwrap().unwrap();
        assert_eq!(
            (d1.collection_id.as_str(), d1.filename.as_str(), d1.status.as_str(), d1.size, d1.created_at, d1.updated_at),
            ("c1", "d1.txt", "queued", 10, 10, 10)
        );
        assert_eq!((d1.progress, d1.chunk_count, d1.attempts, d1.error), (0.0, 0, 0, None));
        assert!(store.document("d2").await.unwrap().is_none());
        let ids: Vec<_> = store.documents_in("c1").await.unwrap().into_iter().map(|d| d.id).collect();
        assert_eq!(ids, ["d1"]);
        assert_eq!(store.collection("c1").await.unwrap().unwrap().document_count, 1);
        assert_eq!(store.queue_depth().await.unwrap(), 2);
        store.delete_document("d1").await.unwrap();
        assert!(store.document("d1").await.unwrap().is_none());
        assert_eq!(store.queue_depth().await.unwrap(), 1);
    }

    async fn uploaded_bytes_live_with_their_document(store, location) {
        with_collections(&store).await;
        let bytes = b"%PDF-1.7 \x00\xff binary bytes survive".to_vec();
        assert_eq!(store.insert_document_with_file(&doc("d1", "c1", "h1", 10), &bytes).await.unwrap(), None);
        assert_eq!(store.document_file("d1").await.unwrap(), Some(bytes.clone()));
        // A duplicate names the existing document and stores nothing.
        let dup = store.insert_document_with_file(&doc("d2", "c1", "h1", 11), b"other").await.unwrap();
        assert_eq!(dup.as_deref(), Some("d1"));
        assert!(store.document("d2").await.unwrap().is_none());
        assert_eq!(store.document_file("d2").await.unwrap(), None);
        assert_eq!(raw_count(&store, "SELECT COUNT(*) FROM document_files").await, 1);
        // Documents inserted without bytes (before migration 4) have none in the database.
        insert_doc(&store, &doc("d3", "c2", "h1", 12)).await;
        assert_eq!(store.document_file("d3").await.unwrap(), None);
        // Deleting the document deletes its bytes.
        store.delete_document("d1").await.unwrap();
        assert_eq!(store.document_file("d1").await.unwrap(), None);
        assert_eq!(raw_count(&store, "SELECT COUNT(*) FROM document_files").await, 0);
    }

    async fn concurrent_claimers_never_share_a_document(store, location) {
        with_collections(&store).await;
        for i in 0..20 {
            insert_doc(&store, &doc(&format!("d{i:02}"), "c1", &format!("h{i}"), 100 + i)).await;
        }
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                while let Some(d) = store.claim_document(1_000, 60_000).await.unwrap() {
                    assert_eq!((d.status.as_str(), d.attempts), ("processing", 1));
                    mine.push(d.id);
                    tokio::task::yield_now().await;
                }
                mine
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        let expected: Vec<_> = (0..20).map(|i| format!("d{i:02}")).collect();
        assert_eq!(sorted(all), expected, "each document claimed exactly once");
        assert!(store.claim_document(1_000, 60_000).await.unwrap().is_none());
        assert_eq!(store.queue_depth().await.unwrap(), 20);
    }

    async fn claims_go_oldest_first_and_expired_leases_are_reclaimed(store, location) {
        with_collections(&store).await;
        insert_doc(&store, &doc("late", "c1", "h2", 20)).await;
        insert_doc(&store, &doc("early", "c1", "h1", 10)).await;
        let first = store.claim_document(1_000, 500).await.unwrap().unwrap();
        assert_eq!((first.id.as_str(), first.status.as_str(), first.attempts, first.updated_at), ("early", "processing", 1, 1_000));
        let second = store.claim_document(1_000, 500).await.unwrap().unwrap();
        assert_eq!(second.id, "late");
        store.set_progress("early", 0.5, 1_600).await.unwrap();
        assert_eq!(store.document("early").await.unwrap().unwrap().progress, 0.5);
        // Within the leases nothing is claimable; after "late"'s lease (1_500) it is, again.
        assert!(store.claim_document(1_400, 500).await.unwrap().is_none());
        let again = store.claim_document(1_550, 500).await.unwrap().unwrap();
        assert_eq!((again.id.as_str(), again.attempts, again.progress), ("late", 2, 0.0));
        assert!(store.claim_document(1_550, 500).await.unwrap().is_none());
        // release_claims puts every processing document back.
        assert_eq!(store.release_claims().await.unwrap(), 2);
        assert_eq!(store.document("early").await.unwrap().unwrap().status, "queued");
        assert_eq!(store.claim_document(1_550, 500).await.unwrap().unwrap().id, "early");
    }

    async fn requeue_fail_and_retry(store, location) {
        with_collections(&store).await;
        insert_doc(&store, &doc("d1", "c1", "h1", 10)).await;
        let d = store.claim_document(1_000, 60_000).await.unwrap().unwrap();
        assert_eq!(d.attempts, 1);
        // A transient failure: queued again, not due before 5_000, the attempt not counted.
        store.requeue_document("d1", 5_000, "model server down").await.unwrap();
        let d = store.document("d1").await.unwrap().unwrap();
        assert_eq!((d.status.as_str(), d.attempts, d.error.as_deref()), ("queued", 0, Some("model server down")));
        assert!(store.claim_document(4_999, 60_000).await.unwrap().is_none());
        let d = store.claim_document(5_000, 60_000).await.unwrap().unwrap();
        assert_eq!((d.id.as_str(), d.attempts), ("d1", 1));
        // Requeueing what is not processing does nothing.
        store.fail_document("d1", "bad pdf", 6_000).await.unwrap();
        store.requeue_document("d1", 0, "x").await.unwrap();
        let d = store.document("d1").await.unwrap().unwrap();
        assert_eq!((d.status.as_str(), d.error.as_deref(), d.updated_at), ("failed", Some("bad pdf"), 6_000));
        assert!(store.claim_document(10_000, 60_000).await.unwrap().is_none());
        assert_eq!(store.queue_depth().await.unwrap(), 0);
        // Only a failed document is retried.
        assert!(store.retry_document("d1", 7_000).await.unwrap());
        assert!(!store.retry_document("d1", 7_001).await.unwrap());
        assert!(!store.retry_document("nope", 7_001).await.unwrap());
        let d = store.document("d1").await.unwrap().unwrap();
        assert_eq!((d.status.as_str(), d.error, d.attempts, d.updated_at), ("queued", None, 0, 7_000));
        assert_eq!(store.claim_document(7_000, 60_000).await.unwrap().unwrap().id, "d1");
    }

    async fn completed_chunks_become_visible_only_then(store, location) {
        with_collections(&store).await;
        insert_doc(&store, &doc("d1", "c1", "h1", 10)).await;
        let terms = vec!["harbour".to_string()];
        let both = vec!["c1".to_string(), "c2".to_string()];
        // Not ours to complete before it is claimed.
        let texts = ["The harbour master keeps the tide tables.", "Ships berth at the quay."];
        assert_eq!(store.complete_document("d1", "x", &chunks(&texts), None, 5).await.unwrap(), None);
        assert!(store.chunk_ids_of("d1").await.unwrap().is_empty());
        store.claim_document(1_000, 60_000).await.unwrap().unwrap();
        assert!(store.lexical_search(&terms, &both, 10).await.unwrap().is_empty());
        let ids = store
            .complete_document("d1", &texts.join(" "), &chunks(&texts), None, 2_000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ids.len(), 2);
        assert_eq!(sorted(store.chunk_ids_of("d1").await.unwrap()), sorted(ids.clone()));
        let d = store.document("d1").await.unwrap().unwrap();
        assert_eq!((d.status.as_str(), d.progress, d.chunk_count, d.updated_at), ("ready", 1.0, 2, 2_000));
        assert_eq!(store.document_text("d1").await.unwrap().as_deref(), Some(texts.join(" ").as_str()));
        let rows = store.chunks_by_ids(&ids).await.unwrap();
        let mut rows: Vec<_> = rows.into_iter().map(|c| (c.ordinal, c.text, c.document_name, c.collection_id, c.start_offset)).collect();
        rows.sort();
        assert_eq!(rows[0], (0, texts[0].to_string(), "d1.txt".to_string(), "c1".to_string(), 0));
        assert_eq!(rows[1].0, 1);
        let hits = store.lexical_search(&terms, &both, 10).await.unwrap();
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), [ids[0]]);
        assert!(hits[0].1 > 0.0);
        // Completing twice is refused: it is no longer processing.
        assert_eq!(store.complete_document("d1", "x", &chunks(&texts), None, 3_000).await.unwrap(), None);
        // Deleting the document drops its chunks.
        store.delete_document("d1").await.unwrap();
        assert!(store.chunks_by_ids(&ids).await.unwrap().is_empty());
        assert!(store.lexical_search(&terms, &both, 10).await.unwrap().is_empty());
    }

    async fn lexical_search_sees_ready_documents_in_the_given_collections(store, location) {
        with_collections(&store).await;
        insert_doc(&store, &doc("a", "c1", "h1", 10)).await;
        insert_doc(&store, &doc("b", "c2", "h2", 20)).await;
        insert_doc(&store, &doc("q", "c1", "h3", 30)).await;
        let a = ingest(&store, "a", &["Invoices are paid within thirty days.", "Lunch is at noon."], None).await;
        let b = ingest(&store, "b", &["Late invoices incur a fee.", "Invoices invoices invoices."], None).await;
        // "q" is claimed but never completed: never found.
        store.claim_document(1_000, 60_000).await.unwrap().unwrap();
        let c1 = vec!["c1".to_string()];
        let c2 = vec!["c2".to_string()];
        let both = vec!["c1".to_string(), "c2".to_string()];
        let t = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let ids = |h: Vec<(i64, f64)>| h.into_iter().map(|x| x.0).collect::<Vec<_>>();
        assert_eq!(ids(store.lexical_search(&t(&["invoices"]), &c1, 10).await.unwrap()), [a[0]]);
        assert_eq!(sorted(ids(store.lexical_search(&t(&["invoices"]), &c2, 10).await.unwrap())), sorted(b.clone()));
        let all = store.lexical_search(&t(&["invoices"]), &both, 10).await.unwrap();
        assert_eq!(all.len(), 3);
        assert!(all.windows(2).all(|w| w[0].1 >= w[1].1), "best first: {all:?}");
        assert_eq!(all[0].0, b[1], "the chunk saying it three times ranks first: {all:?}");
        // Any term may match; the limit holds; nothing for no terms, no collections, or unknown words.
        assert_eq!(sorted(ids(store.lexical_search(&t(&["lunch", "fee"]), &both, 10).await.unwrap())), sorted(vec![a[1], b[0]]));
        assert_eq!(store.lexical_search(&t(&["invoices"]), &both, 2).await.unwrap().len(), 2);
        assert!(store.lexical_search(&[], &both, 10).await.unwrap().is_empty());
        assert!(store.lexical_search(&t(&["invoices"]), &[], 10).await.unwrap().is_empty());
        assert!(store.lexical_search(&t(&["zeppelin"]), &both, 10).await.unwrap().is_empty());
        // User text is never query syntax.
        for odd in ["\"in\"voices", "invoices OR", "-invoices", "(invoices", "inv*", "'", "\"", "NEAR"] {
            store.lexical_search(&t(&[odd]), &both, 10).await.unwrap();
        }
    }

    async fn search_leaves_out_terms_too_common_to_rank_by(store, location) {
        // 2,100 chunks hold "alpha" and "beta" (in every chunk: far past the common-term share);
        // three also hold "zeta".
        with_collections(&store).await;
        insert_doc(&store, &doc("a", "c1", "h1", 10)).await;
        let texts: Vec<String> = (0..2_100)
            .map(|i| match i % 700 {
                0 => format!("alpha beta zeta filler{i}"),
                _ => format!("alpha beta alpha filler{i}"),
            })
            .collect();
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        let ids = ingest(&store, "a", &texts, None).await;
        let zeta: Vec<i64> = vec![ids[0], ids[700], ids[1400]];
        let retriever = berth::service::retrieval::Retriever::open(
            store.clone(),
            &berth::config::Settings::defaults().rag,
            berth::metrics::Metrics::new(),
        )
        .await
        .unwrap();
        let c1 = vec!["c1".to_string()];
        let found = |hits: Vec<berth::service::retrieval::Hit>| {
            sorted(hits.into_iter().map(|h| h.chunk.id).collect::<Vec<_>>())
        };
        // "alpha" is left out beside the rarer "zeta": only zeta's chunks match, where an OR of
        // both terms would fill all ten places with alpha's.
        let (_, hits) = retriever.search("alpha zeta", &c1, 10).await.unwrap();
        assert_eq!(found(hits), zeta);
        // Alone, or with only other common terms, a common term is still searched.
        assert_eq!(retriever.search("alpha", &c1, 10).await.unwrap().1.len(), 10);
        assert_eq!(retriever.search("alpha beta", &c1, 10).await.unwrap().1.len(), 10);
    }

    async fn vectors_are_stored_per_model_and_searched(store, location) {
        with_collections(&store).await;
        insert_doc(&store, &doc("a", "c1", "h1", 10)).await;
        insert_doc(&store, &doc("b", "c2", "h2", 20)).await;
        let va = vec![vec![1.0f32, 0.0, 0.0], vec![0.0, 1.0, 0.0]];
        let a = ingest(&store, "a", &["one", "two"], Some(("m1", &va))).await;
        let b = ingest(&store, "b", &["three"], None).await;
        let both = vec!["c1".to_string(), "c2".to_string()];
        // b has no vector from m1; a has all.
        let missing: Vec<_> = store.chunks_missing_vectors("m1", 10).await.unwrap();
        assert_eq!(missing, [(b[0], "c2".to_string(), "three".to_string())]);
        assert_eq!(store.chunks_missing_vectors("m2", 10).await.unwrap().len(), 3);
        assert_eq!(store.chunks_missing_vectors("m2", 2).await.unwrap().len(), 2);
        store.put_vectors("m1", &[(b[0], vec![0.6, 0.8, 0.0])]).await.unwrap();
        assert!(store.chunks_missing_vectors("m1", 10).await.unwrap().is_empty());
        match &store {
            Store::Postgres(_) => {
                let hits = store.pg_vector_search(&[0.0, 1.0, 0.0], "m1", &both, 10).await.unwrap();
                assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), [a[1], b[0], a[0]]);
                assert!((hits[0].1 - 1.0).abs() < 1e-6 && (hits[1].1 - 0.8).abs() < 1e-6 && hits[2].1.abs() < 1e-6, "{hits:?}");
                let c1 = vec!["c1".to_string()];
                assert_eq!(store.pg_vector_search(&[0.0, 1.0, 0.0], "m1", &c1, 1).await.unwrap()[0].0, a[1]);
                assert!(store.pg_vector_search(&[0.0, 1.0, 0.0], "m2", &both, 10).await.unwrap().is_empty());
                // Another dimension never mixes in.
                assert!(store.pg_vector_search(&[0.0, 1.0], "m1", &both, 10).await.unwrap().is_empty());
                assert!(store.sqlite_vectors("m1").await.unwrap().is_empty());
                // The HNSW index for the dimension, created once (again is a no-op), is the one
                // the search's ORDER BY uses.
                store.ensure_vector_index(3).await.unwrap();
                store.ensure_vector_index(3).await.unwrap();
                assert_eq!(raw_count(&store, "SELECT COUNT(*) FROM pg_indexes WHERE indexname = 'chunk_vectors_hnsw_3'").await, 1);
                let Store::Postgres(pg) = &store else { unreachable!() };
                let mut conn = pg.pool.acquire().await.unwrap();
                sqlx::query("SET enable_seqscan = off").execute(&mut *conn).await.unwrap();
                let plan: Vec<String> = sqlx::query_scalar(
                    "EXPLAIN SELECT v.chunk_id FROM chunk_vectors v WHERE v.dim = 3 \
                     ORDER BY v.embedding::vector(3) <=> '[0,1,0]'::vector(3) LIMIT 5",
                )
                .fetch_all(&mut *conn)
                .await
                .unwrap();
                sqlx::query("RESET enable_seqscan").execute(&mut *conn).await.unwrap();
                assert!(plan.join("\n").contains("chunk_vectors_hnsw_3"), "{plan:#?}");
                drop(conn);
                let hits = store.pg_vector_search(&[0.0, 1.0, 0.0], "m1", &both, 10).await.unwrap();
                assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), [a[1], b[0], a[0]]);
            }
            Store::Sqlite(_) => {
                let mut rows: Vec<_> = store
                    .sqlite_vectors("m1")
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|(id, c, v)| (id, c, berth::store::blob_to_f32s(&v)))
                    .collect();
                rows.sort_by_key(|r| r.0);
                assert_eq!(rows, [
                    (a[0], "c1".to_string(), va[0].clone()),
                    (a[1], "c1".to_string(), va[1].clone()),
                    (b[0], "c2".to_string(), vec![0.6, 0.8, 0.0]),
                ]);
                assert!(store.pg_vector_search(&[0.0, 1.0, 0.0], "m1", &both, 10).await.unwrap().is_empty());
            }
        }
        // Replacing a vector with another model's.
        store.put_vectors("m2", &[(a[0], vec![0.0, 0.0, 1.0])]).await.unwrap();
        assert_eq!(store.chunks_missing_vectors("m1", 10).await.unwrap(), [(a[0], "c1".to_string(), "one".to_string())]);
    }

    async fn conversations_and_messages(store, location) {
        insert(&store, &user("ann", Role::User, AccountState::Active, 1)).await;
        insert(&store, &user("ben", Role::User, AccountState::Active, 1)).await;
        let conv = |id: &str, user: &str, at: i64| ConversationRow {
            id: id.into(),
            user_id: format!("id-{user}"),
            title: format!("title {id}"),
            collection_ids: "[\"c1\"]".into(),
            created_at: at,
            updated_at: at,
        };
        store.insert_conversation(&conv("k1", "ann", 10)).await.unwrap();
        store.insert_conversation(&conv("k2", "ann", 20)).await.unwrap();
        store.insert_conversation(&conv("k3", "ben", 30)).await.unwrap();
        assert!(store.insert_conversation(&conv("k1", "ben", 40)).await.is_err());
        let ids = |rows: Vec<ConversationRow>| rows.into_iter().map(|c| c.id).collect::<Vec<_>>();
        assert_eq!(ids(store.conversations_of("id-ann").await.unwrap()), ["k2", "k1"]);
        // A message brings its conversation to the top.
        let m1 = store.insert_message("k1", "user", "hello?", None, "[]", 50).await.unwrap();
        let m2 = store
            .insert_message("k1", "assistant", "hi", Some("extractive"), "[{\"n\":1}]", 51)
            .await
            .unwrap();
        assert!(m2 > m1);
        assert!(store.insert_message("k1", "robot", "x", None, "[]", 52).await.is_err());
        assert_eq!(ids(store.conversations_of("id-ann").await.unwrap()), ["k1", "k2"]);
        let msgs = store.messages("k1").await.unwrap();
        assert_eq!(msgs.len(), 2);
        assert_eq!((msgs[0].id, msgs[0].role.as_str(), msgs[0].content.as_str(), msgs[0].mode.clone(), msgs[0].created_at), (m1, "user", "hello?", None, 50));
        assert_eq!((msgs[1].mode.as_deref(), msgs[1].citations.as_str()), (Some("extractive"), "[{\"n\":1}]"));
        // Only the owner sees or deletes it.
        let k1 = store.conversation("k1", "id-ann").await.unwrap().unwrap();
        assert_eq!((k1.title.as_str(), k1.collection_ids.as_str(), k1.created_at, k1.updated_at), ("title k1", "[\"c1\"]", 10, 51));
        assert!(store.conversation("k1", "id-ben").await.unwrap().is_none());
        store.set_conversation_title("k1", "renamed").await.unwrap();
        assert_eq!(store.conversation("k1", "id-ann").await.unwrap().unwrap().title, "renamed");
        assert!(!store.delete_conversation("k1", "id-ben").await.unwrap());
        assert!(store.delete_conversation("k1", "id-ann").await.unwrap());
        assert!(store.conversation("k1", "id-ann").await.unwrap().is_none());
        assert!(store.messages("k1").await.unwrap().is_empty());
        assert!(!store.delete_conversation("k1", "id-ann").await.unwrap());
    }

    async fn meta_values_are_set_and_replaced(store, location) {
        assert_eq!(store.meta("embedding_model").await.unwrap(), None);
        store.set_meta("embedding_model", "m1").await.unwrap();
        store.set_meta("other", "x").await.unwrap();
        assert_eq!(store.meta("embedding_model").await.unwrap().as_deref(), Some("m1"));
        store.set_meta("embedding_model", "m2").await.unwrap();
        assert_eq!(store.meta("embedding_model").await.unwrap().as_deref(), Some("m2"));
        assert_eq!(store.meta("other").await.unwrap().as_deref(), Some("x"));
    }
}
