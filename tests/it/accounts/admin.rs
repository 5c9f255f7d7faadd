//! Administration: the last active admin is kept, and the admin commands bootstrap and recover.

use super::*;

#[tokio::test]
async fn the_last_active_admin_cannot_be_demoted_or_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start(dir.path());
    let (admin, _, carol_id) = admin_and_user(&berth).await;
    let me = json(admin.get("/auth/session").await).await;
    let root_id = me["user"]["id"].as_str().unwrap().to_string();

    let demote = json!({"role": "user"});
    let resp = admin
        .send(
            Method::PUT,
            &format!("/admin/users/{root_id}/role"),
            demote.clone(),
        )
        .await;
    assert_eq!(resp.status(), 409);
    assert!(json(resp).await["error"]["message"]
        .as_str()
        .unwrap()
        .contains("last active admin"));
    assert_eq!(
        admin
            .post(&format!("/admin/users/{root_id}/disable"), json!({}))
            .await
            .status(),
        409
    );

    // With a second admin, the first may step down.
    let promote = json!({"role": "admin"});
    let resp = admin
        .send(
            Method::PUT,
            &format!("/admin/users/{carol_id}/role"),
            promote,
        )
        .await;
    assert_eq!(json(resp).await["role"], "admin");
    let resp = admin
        .send(Method::PUT, &format!("/admin/users/{root_id}/role"), demote)
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        admin.get("/admin/users").await.status(),
        403,
        "no longer an admin"
    );
}

#[tokio::test]
async fn admin_commands_bootstrap_and_recover_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start(dir.path());
    // No default password anywhere; the log says how to create the first admin.
    assert!(berth
        .logs()
        .iter()
        .any(|l| l.contains("berth admin create")));
    let (code, out) = admin_cli(dir.path(), "create", "root", "weak");
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("at least 8 characters") && out.contains("symbol"),
        "{out}"
    );

    let (_, carol, _) = admin_and_user(&berth).await;
    let (code, out) = admin_cli(dir.path(), "create", "root", ADMIN_PW);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("exists already"), "{out}");

    let new_pw = "N3w!password-for-carol";
    let (code, out) = admin_cli(dir.path(), "reset-password", "carol", new_pw);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        carol.get("/auth/session").await.status(),
        401,
        "sessions end on reset"
    );
    let mut carol = Browser::new(&berth);
    assert_eq!(
        carol.sign_in("carol", USER_PW).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(carol.sign_in("carol", new_pw).await, StatusCode::OK);
}

/// An admin helps a locked-out user from the web: sees the lock, lifts it, resets the password,
/// disables and enables the account; each step is in the audit log.
#[tokio::test]
async fn admins_unlock_reset_and_disable_accounts_over_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("BERTH_LOGIN_MAX_FAILURES", "2"),
        ("BERTH_LOGIN_LOCKOUT", "900"),
    ];
    let berth = Berth::start_with(dir.path(), &[], &env);
    let (admin, _, carol_id) = admin_and_user(&berth).await;
    let mut mallory = Browser::new(&berth);
    for _ in 0..2 {
        mallory.sign_in("carol", "Wrong!pass1").await;
    }
    let locked = mallory
        .post(
            "/auth/sign-in",
            json!({"username": "carol", "password": USER_PW}),
        )
        .await;
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    let message = json(locked).await["error"]["message"].to_string();
    assert!(message.contains("try again in 15 minutes"), "{message}");
    let carol = |users: &Value| {
        users
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["id"] == carol_id.as_str())
            .cloned()
            .unwrap()
    };
    let users = json(admin.get("/admin/users").await).await;
    assert!(carol(&users)["locked_until"].is_string(), "{users}");
    let lockout = audit(&admin, "event=auth.lockout").await;
    assert_eq!(lockout[0]["outcome"], "denied", "{lockout:?}");

    let unlock = admin
        .post(&format!("/admin/users/{carol_id}/unlock"), json!({}))
        .await;
    assert_eq!(unlock.status(), 200);
    let users = json(admin.get("/admin/users").await).await;
    assert!(carol(&users)["locked_until"].is_null(), "{users}");
    assert_eq!(mallory.sign_in("carol", USER_PW).await, StatusCode::OK);

    let path = format!("/admin/users/{carol_id}/password");
    let weak = admin.post(&path, json!({"password": "short"})).await;
    assert_eq!(weak.status(), 422);
    let new_pw = "Fr3sh!start-for-carol";
    assert_eq!(
        admin
            .post(&path, json!({"password": new_pw}))
            .await
            .status(),
        200
    );
    assert_eq!(
        mallory.get("/auth/session").await.status(),
        401,
        "sessions end"
    );
    assert_eq!(mallory.sign_in("carol", new_pw).await, StatusCode::OK);

    let disable = admin
        .post(&format!("/admin/users/{carol_id}/disable"), json!({}))
        .await;
    assert_eq!(json(disable).await["state"], "disabled");
    assert_eq!(mallory.get("/auth/session").await.status(), 401);
    let enable = admin
        .post(&format!("/admin/users/{carol_id}/enable"), json!({}))
        .await;
    assert_eq!(json(enable).await["state"], "active");

    for event in [
        "user.unlocked",
        "password.reset",
        "user.disabled",
        "user.enabled",
    ] {
        let entries = audit(&admin, &format!("event={event}")).await;
        assert_eq!(entries.len(), 1, "{event}: {entries:?}");
        assert_eq!(entries[0]["actor_name"], "root");
        assert_eq!(entries[0]["target_name"], "carol");
    }
}

/// The sign-in page learns from the public options whether an admin exists yet.
#[tokio::test]
async fn the_sign_in_options_say_when_no_admin_exists_yet() {
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start(dir.path());
    let options = || async {
        let resp = support::client()
            .get(berth.url("/api/v1/auth/providers"))
            .send()
            .await;
        json(resp.unwrap()).await["needs_admin"].clone()
    };
    assert_eq!(options().await, true);
    create_admin(&berth.data_dir, "root", ADMIN_PW);
    assert_eq!(options().await, false);
}
