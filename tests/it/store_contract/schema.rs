//! The store's contract: migrations, schema versions and meta values.

use super::*;

cases! {
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
