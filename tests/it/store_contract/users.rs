//! The store's contract: users, passwords, sessions, API tokens and sign-in failures.

use super::*;

cases! {
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
}
