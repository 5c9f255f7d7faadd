//! The audit log: every event once, and no secret in any log.

use super::*;

#[tokio::test]
async fn every_event_is_audited_once_and_no_secret_is_logged() {
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start(dir.path());
    let (admin, carol, carol_id) = admin_and_user(&berth).await;

    // Token created and revoked.
    let created = json(carol.post("/account/tokens", json!({"name": "t"})).await).await;
    let token = created["token"].as_str().unwrap().to_string();
    let tid = created["id"].as_str().unwrap();
    carol
        .send(Method::DELETE, &format!("/account/tokens/{tid}"), json!({}))
        .await;
    // A user calling an admin endpoint.
    assert_eq!(carol.get("/admin/audit").await.status(), 403);
    // Failed sign-in.
    let mut other = Browser::new(&berth);
    other.sign_in("carol", "Wrong!guess-1").await;
    // Role change, disable, enable.
    admin
        .send(
            Method::PUT,
            &format!("/admin/users/{carol_id}/role"),
            json!({"role": "admin"}),
        )
        .await;
    admin
        .send(
            Method::PUT,
            &format!("/admin/users/{carol_id}/role"),
            json!({"role": "user"}),
        )
        .await;
    admin
        .post(&format!("/admin/users/{carol_id}/disable"), json!({}))
        .await;
    admin
        .post(&format!("/admin/users/{carol_id}/enable"), json!({}))
        .await;
    // Denial.
    let id = json(other.register("ivan", USER_PW).await).await["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    admin
        .post(&format!("/admin/users/{id}/deny"), json!({}))
        .await;
    // Password change by the user, reset by the command line.
    let mut carol = Browser::new(&berth);
    carol.sign_in("carol", USER_PW).await;
    let changed = "Ch4nged!by-carol";
    let resp = carol
        .post(
            "/account/password",
            json!({"current_password": USER_PW, "new_password": changed}),
        )
        .await;
    assert_eq!(resp.status(), 204);
    let reset = "R3set!by-the-cli";
    assert_eq!(admin_cli(dir.path(), "reset-password", "carol", reset).0, 0);

    let expect = [
        ("admin.bootstrap", "success", 1),
        ("user.registered", "success", 2),
        ("user.approved", "success", 1),
        ("user.denied", "success", 1),
        ("user.disabled", "success", 1),
        ("user.enabled", "success", 1),
        ("user.role_changed", "success", 2),
        ("auth.sign_in", "success", 3),
        ("auth.sign_in", "failure", 1),
        ("password.changed", "success", 1),
        ("password.reset", "success", 1),
        ("token.created", "success", 1),
        ("token.revoked", "success", 1),
        ("authz.denied", "denied", 1),
    ];
    let all = audit(&admin, "").await;
    for (event, outcome, n) in expect {
        let got = all
            .iter()
            .filter(|e| e["event"] == event && e["outcome"] == outcome)
            .count();
        assert_eq!(got, n, "{event}/{outcome}: {all:#?}");
        let filtered = audit(&admin, &format!("event={event}")).await;
        assert!(filtered.iter().all(|e| e["event"] == event));
    }
    let denied = all.iter().find(|e| e["event"] == "authz.denied").unwrap();
    assert_eq!(denied["actor_name"], "carol");
    assert!(denied["detail"]
        .as_str()
        .unwrap()
        .contains("/api/v1/admin/audit"));
    for e in &all {
        assert!(e["at"].as_str().unwrap().ends_with('Z'), "UTC times");
        assert!(e.get("client_addr").is_some());
    }
    let signed_in = all.iter().find(|e| e["event"] == "auth.sign_in").unwrap();
    assert_eq!(signed_in["client_addr"], "127.0.0.1");
    assert!(signed_in["user_agent"].is_string());

    // Filters and pagination.
    let carols = audit(&admin, "user=carol").await;
    assert!(
        carols.len() >= 8
            && carols
                .iter()
                .all(|e| e["actor_name"] == "carol" || e["target_name"] == "carol")
    );
    let page = json(admin.get("/admin/audit?limit=5").await).await;
    let next = page["next_before"].as_i64().unwrap();
    let page2 = json(
        admin
            .get(&format!("/admin/audit?limit=5&before={next}"))
            .await,
    )
    .await;
    assert!(page2["entries"][0]["id"].as_i64().unwrap() < next);
    let future = json(admin.get("/admin/audit?since=2999-01-01T00:00:00Z").await).await;
    assert_eq!(future["entries"].as_array().unwrap().len(), 0);
    assert_eq!(
        admin.get("/admin/audit?since=yesterday").await.status(),
        400
    );

    // Counted in /metrics.
    let text = reqwest::get(berth.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let samples = support::metrics::parse(&text);
    let v = support::metrics::value(
        &samples,
        "berth_audit_events_total",
        &[("event", "user.approved"), ("outcome", "success")],
    );
    assert_eq!(v, Some(1.0));

    // Append-only, even straight on the database.
    {
        let db = dir.path();
        assert!(
            support::db_execute(db, "UPDATE audit_log SET outcome = 'success'")
                .await
                .is_err()
        );
        assert!(support::db_execute(db, "DELETE FROM audit_log")
            .await
            .is_err());
        // No secret in any audit row.
        let rows = support::db_strings(
            db,
            "SELECT event || coalesce(detail,'') || coalesce(target_name,'') || coalesce(user_agent,'') FROM audit_log",
        )
        .await;
        for row in rows {
            for secret in [
                ADMIN_PW,
                USER_PW,
                changed,
                reset,
                token.as_str(),
                "Wrong!guess-1",
            ] {
                assert!(!row.contains(secret), "secret in audit row: {row}");
            }
        }
    }
    let csrf = admin.csrf.clone().unwrap();
    let logs = berth.stop();
    for line in &logs {
        for secret in [
            ADMIN_PW,
            USER_PW,
            changed,
            reset,
            token.as_str(),
            csrf.as_str(),
            "Wrong!guess-1",
        ] {
            assert!(!line.contains(secret), "secret in log: {line}");
        }
    }
}
