//! Sessions and tokens: ended by disabling, revocation, idle and absolute timeouts; CSRF on cookies.

use super::*;

#[tokio::test]
async fn disabling_a_user_ends_their_open_session_and_tokens_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start(dir.path());
    let (admin, carol, id) = admin_and_user(&berth).await;
    let token = json(
        carol
            .post("/account/tokens", json!({"name": "script"}))
            .await,
    )
    .await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let bearer = |t: &str| {
        reqwest::Client::new()
            .get(berth.url("/api/v1/auth/session"))
            .bearer_auth(t.to_string())
            .send()
    };
    assert_eq!(bearer(&token).await.unwrap().status(), 200);
    assert_eq!(carol.get("/auth/session").await.status(), 200);

    assert_eq!(
        admin
            .post(&format!("/admin/users/{id}/disable"), json!({}))
            .await
            .status(),
        200
    );
    assert_eq!(
        carol.get("/auth/session").await.status(),
        401,
        "the open session ended"
    );
    assert_eq!(
        bearer(&token).await.unwrap().status(),
        401,
        "the token ended too"
    );

    assert_eq!(
        admin
            .post(&format!("/admin/users/{id}/enable"), json!({}))
            .await
            .status(),
        200
    );
    assert_eq!(
        bearer(&token).await.unwrap().status(),
        401,
        "re-enabling revives nothing"
    );
}

#[tokio::test]
async fn cookie_requests_that_change_state_need_the_csrf_token() {
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start(dir.path());
    let (_, mut carol, _) = admin_and_user(&berth).await;
    let csrf = carol.csrf.take();
    let resp = carol.post("/account/tokens", json!({"name": "x"})).await;
    assert_eq!(resp.status(), 403);
    assert_eq!(json(resp).await["error"]["code"], "csrf_failed");
    carol.csrf = Some("forged".into());
    assert_eq!(
        carol
            .post("/account/tokens", json!({"name": "x"}))
            .await
            .status(),
        403
    );
    carol.csrf = csrf;
    assert_eq!(
        carol
            .post("/account/tokens", json!({"name": "x"}))
            .await
            .status(),
        201
    );
    // No state change on GET.
    assert_eq!(carol.get("/auth/sign-out").await.status(), 405);
    assert_eq!(carol.get("/auth/session").await.status(), 200);
}

#[tokio::test]
async fn a_revoked_token_stops_working_immediately() {
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start(dir.path());
    let (_, carol, _) = admin_and_user(&berth).await;
    let created = json(carol.post("/account/tokens", json!({"name": "ci"})).await).await;
    let token = created["token"].as_str().unwrap();
    let id = created["id"].as_str().unwrap();
    assert!(token.starts_with("berth_"));
    let http = reqwest::Client::new();
    let call = || {
        http.get(berth.url("/api/v1/auth/session"))
            .bearer_auth(token)
            .send()
    };
    let me = json(call().await.unwrap()).await;
    assert_eq!(me["user"]["username"], "carol");
    assert!(
        me["csrf_token"].is_null(),
        "bearer calls need no CSRF token"
    );

    let listed = json(carol.get("/account/tokens").await).await;
    assert_eq!(listed[0]["name"], "ci");
    assert!(
        listed[0].get("token").is_none(),
        "the secret is shown only once"
    );

    let resp = carol
        .send(Method::DELETE, &format!("/account/tokens/{id}"), json!({}))
        .await;
    assert_eq!(resp.status(), 204);
    assert_eq!(call().await.unwrap().status(), 401);
    let resp = carol
        .send(Method::DELETE, &format!("/account/tokens/{id}"), json!({}))
        .await;
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn sessions_end_after_the_idle_timeout_and_on_sign_out() {
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start_with(dir.path(), &[], &[("BERTH_SESSION_IDLE_TIMEOUT", "1")]);
    let (_, carol, _) = admin_and_user(&berth).await;
    assert_eq!(carol.get("/auth/session").await.status(), 200);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(carol.get("/auth/session").await.status(), 401);

    let mut carol = Browser::new(&berth);
    carol.sign_in("carol", USER_PW).await;
    let resp = carol.post("/auth/sign-out", json!({})).await;
    assert_eq!(resp.status(), 204);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("Max-Age=0"), "{cookie}");
    assert_eq!(carol.get("/auth/session").await.status(), 401);
}

#[tokio::test]
async fn sessions_end_at_the_absolute_timeout_however_active() {
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start_with(dir.path(), &[], &[("BERTH_SESSION_ABSOLUTE_TIMEOUT", "2")]);
    let (_, carol, _) = admin_and_user(&berth).await;
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(1600) {
        assert_eq!(carol.get("/auth/session").await.status(), 200);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(carol.get("/auth/session").await.status(), 401);
}
