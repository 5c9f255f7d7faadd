//! The store's contract: the same cases, through the library API, against both backends. Each
//! case is written once inside `contract!`, which makes a `sqlite::NAME` test (a fresh SQLite file)
//! and a `postgres::NAME` test (a fresh database on the test PostgreSQL, see `support::pg`).

mod support;

use berth::accounts::{AccountState, Role, UserRow};
use berth::config::DatabaseLocation;
use berth::store::{AuditFilter, NewAuditEntry, Store, TokenRow};

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
}
