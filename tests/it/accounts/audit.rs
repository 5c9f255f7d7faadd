//! The audit log: every event once, with its outcome, actor and address; filtered and paged;
//! counted in `/metrics`; append-only; and no secret in any audit row or log line.

use super::*;

/// A server on which every audited kind of event has happened (see [`audited`]).
struct Audited {
    dir: tempfile::TempDir,
    berth: Berth,
    admin: Browser,
    /// Every secret the events carried: none may be in an audit row or a log line.
    secrets: Vec<String>,
}

/// Starts a server and makes every audited event happen: bootstrap, registrations, approval,
/// denial, disable/enable, role changes, sign-ins (one failed), a password change and a reset,
/// a token created and revoked, and a user calling an admin endpoint.
async fn audited() -> Audited {
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
    assert_eq!(
        carol.get("/admin/audit").await.status(),
        403,
        "a user reads the audit log"
    );
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
    assert_eq!(resp.status(), 204, "carol changes her password");
    let reset = "R3set!by-the-cli";
    assert_eq!(
        admin_cli(dir.path(), "reset-password", "carol", reset).0,
        0,
        "berth admin reset-password"
    );
    let secrets = [ADMIN_PW, USER_PW, changed, reset, &token, "Wrong!guess-1"]
        .map(String::from)
        .to_vec();
    Audited {
        dir,
        berth,
        admin,
        secrets,
    }
}

#[tokio::test]
async fn every_event_is_audited_once_with_its_outcome() {
    let a = audited().await;
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
    let all = audit(&a.admin, "").await;
    for (event, outcome, n) in expect {
        let got = all
            .iter()
            .filter(|e| e["event"] == event && e["outcome"] == outcome)
            .count();
        assert_eq!(got, n, "{event}/{outcome}: {all:#?}");
        let filtered = audit(&a.admin, &format!("event={event}")).await;
        assert!(
            filtered.iter().all(|e| e["event"] == event),
            "?event={event} returned other events: {filtered:#?}"
        );
    }
}

#[tokio::test]
async fn a_denied_request_is_audited_with_its_actor_and_path() {
    let a = audited().await;
    let all = audit(&a.admin, "").await;
    let denied = all
        .iter()
        .find(|e| e["event"] == "authz.denied")
        .expect("no authz.denied entry");
    assert_eq!(denied["actor_name"], "carol", "{denied:#?}");
    assert!(
        denied["detail"]
            .as_str()
            .unwrap()
            .contains("/api/v1/admin/audit"),
        "the denied path is not in the detail: {denied:#?}"
    );
}

#[tokio::test]
async fn audit_entries_carry_utc_times_and_the_client_address() {
    let a = audited().await;
    let all = audit(&a.admin, "").await;
    for e in &all {
        assert!(
            e["at"].as_str().unwrap().ends_with('Z'),
            "UTC times: {e:#?}"
        );
        assert!(e.get("client_addr").is_some(), "no client_addr: {e:#?}");
    }
    let signed_in = all
        .iter()
        .find(|e| e["event"] == "auth.sign_in")
        .expect("no auth.sign_in entry");
    assert_eq!(signed_in["client_addr"], "127.0.0.1", "{signed_in:#?}");
    assert!(
        signed_in["user_agent"].is_string(),
        "no user agent: {signed_in:#?}"
    );
}

#[tokio::test]
async fn the_audit_log_filters_by_user_and_time_and_pages() {
    let a = audited().await;
    let admin = &a.admin;
    let carols = audit(admin, "user=carol").await;
    assert!(
        carols.len() >= 8
            && carols
                .iter()
                .all(|e| e["actor_name"] == "carol" || e["target_name"] == "carol"),
        "?user=carol: {carols:#?}"
    );
    let page = json(admin.get("/admin/audit?limit=5").await).await;
    let next = page["next_before"].as_i64().unwrap();
    let page2 = json(
        admin
            .get(&format!("/admin/audit?limit=5&before={next}"))
            .await,
    )
    .await;
    assert!(
        page2["entries"][0]["id"].as_i64().unwrap() < next,
        "the second page does not start before {next}: {page2:#?}"
    );
    let future = json(admin.get("/admin/audit?since=2999-01-01T00:00:00Z").await).await;
    assert_eq!(
        future["entries"].as_array().unwrap().len(),
        0,
        "entries since 2999: {future:#?}"
    );
    assert_eq!(
        admin.get("/admin/audit?since=yesterday").await.status(),
        400,
        "?since=yesterday is not refused"
    );
}

#[tokio::test]
async fn audit_events_are_counted_in_metrics() {
    let a = audited().await;
    let text = reqwest::get(a.berth.url("/metrics"))
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
    assert_eq!(v, Some(1.0), "berth_audit_events_total{{user.approved}}");
}

#[tokio::test]
async fn the_audit_log_is_append_only_even_straight_on_the_database() {
    let a = audited().await;
    let db = a.dir.path();
    assert!(
        support::db_execute(db, "UPDATE audit_log SET outcome = 'success'")
            .await
            .is_err(),
        "an UPDATE of audit_log succeeded"
    );
    assert!(
        support::db_execute(db, "DELETE FROM audit_log")
            .await
            .is_err(),
        "a DELETE from audit_log succeeded"
    );
}

#[tokio::test]
async fn no_secret_is_in_an_audit_row() {
    let a = audited().await;
    let rows = support::db_strings(
        a.dir.path(),
        "SELECT event || coalesce(detail,'') || coalesce(target_name,'') || coalesce(user_agent,'') FROM audit_log",
    )
    .await;
    for row in rows {
        for secret in &a.secrets {
            assert!(!row.contains(secret.as_str()), "secret in audit row: {row}");
        }
    }
}

#[tokio::test]
async fn no_secret_is_in_the_server_log() {
    let a = audited().await;
    let csrf = a.admin.csrf.clone().unwrap();
    let logs = a.berth.stop();
    for line in &logs {
        for secret in a.secrets.iter().chain([&csrf]) {
            assert!(!line.contains(secret.as_str()), "secret in log: {line}");
        }
    }
}
