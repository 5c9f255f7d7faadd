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
