//! The store's contract: the audit log: filtered, paged newest first, append-only.

use super::*;

cases! {
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
}
