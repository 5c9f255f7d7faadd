//! Signing in: lockout, throttling per address, indistinguishable failures, and the session cookie.

use super::*;

#[tokio::test]
async fn failed_sign_ins_lock_the_account_with_429_then_release() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("BERTH_LOGIN_MAX_FAILURES", "3"),
        ("BERTH_LOGIN_LOCKOUT", "2"),
    ];
    let berth = Berth::start_with(dir.path(), &[], &env);
    let (admin, _, _) = admin_and_user(&berth).await;
    let mut mallory = Browser::new(&berth);
    for _ in 0..3 {
        assert_eq!(
            mallory.sign_in("carol", "Wrong!pass1").await,
            StatusCode::UNAUTHORIZED
        );
    }
    let resp = mallory
        .post(
            "/auth/sign-in",
            json!({"username": "carol", "password": USER_PW}),
        )
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "locked even with the right password"
    );
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    // Unknown names lock the same way, so a lock reveals nothing.
    for _ in 0..3 {
        mallory.sign_in("nobody-here", "Wrong!pass1").await;
    }
    assert_eq!(
        mallory.sign_in("nobody-here", "x").await,
        StatusCode::TOO_MANY_REQUESTS
    );

    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(
        mallory.sign_in("carol", USER_PW).await,
        StatusCode::OK,
        "released after the window"
    );
    let lockouts = audit(&admin, "event=auth.lockout").await;
    assert_eq!(lockouts.len(), 2, "{lockouts:?}");
    assert_eq!(lockouts[1]["target_name"], "carol");
}

#[tokio::test]
async fn failures_from_one_address_are_throttled_across_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("BERTH_LOGIN_MAX_FAILURES_PER_ADDRESS", "4")];
    let berth = Berth::start_with(dir.path(), &[], &env);
    let mut b = Browser::new(&berth);
    for i in 0..4 {
        assert_eq!(
            b.sign_in(&format!("user{i}"), "Wrong!pass1").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        b.sign_in("user9", "Wrong!pass1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn registrations_from_one_address_are_throttled() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("BERTH_REGISTER_MAX_PER_ADDRESS", "2")];
    let berth = Berth::start_with(dir.path(), &[], &env);
    let b = Browser::new(&berth);
    for name in ["reg1", "reg2"] {
        assert_eq!(
            b.register(name, USER_PW).await.status(),
            StatusCode::ACCEPTED
        );
    }
    let refused = b.register("reg3", USER_PW).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
    let body = json(refused).await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("too many registrations"), "{message}");
}

#[tokio::test]
async fn an_address_locked_out_of_sign_in_cannot_register_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("BERTH_LOGIN_MAX_FAILURES_PER_ADDRESS", "2")];
    let berth = Berth::start_with(dir.path(), &[], &env);
    let mut b = Browser::new(&berth);
    for i in 0..2 {
        b.sign_in(&format!("user{i}"), "Wrong!pass1").await;
    }
    let refused = b.register("latecomer", USER_PW).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn unknown_user_and_wrong_password_look_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start_with(
        dir.path(),
        &[],
        &[
            ("BERTH_LOGIN_MAX_FAILURES", "1000"),
            ("BERTH_LOGIN_MAX_FAILURES_PER_ADDRESS", "1000"),
        ],
    );
    admin_and_user(&berth).await;
    let b = Browser::new(&berth);
    let attempt = |name: &'static str| {
        let b = &b;
        async move {
            let start = Instant::now();
            let resp = b
                .post(
                    "/auth/sign-in",
                    json!({"username": name, "password": "Wrong!pass1"}),
                )
                .await;
            let status = resp.status();
            (status, resp.text().await.unwrap(), start.elapsed())
        }
    };
    let (s1, body1, _) = attempt("carol").await;
    let (s2, body2, _) = attempt("no-such-user").await;
    assert_eq!((s1, &body1), (s2, &body2));

    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for _ in 0..7 {
        known.push(attempt("carol").await.2);
        unknown.push(attempt("no-such-user").await.2);
    }
    known.sort();
    unknown.sort();
    let (k, u) = (known[3].as_secs_f64(), unknown[3].as_secs_f64());
    // Coarse: both pay for one Argon2 verification; without the decoy the unknown name would
    // answer in well under a tenth of the time.
    assert!(
        u / k > 0.4 && u / k < 2.5,
        "median known {k:.4}s vs unknown {u:.4}s"
    );
}

#[tokio::test]
async fn sign_in_issues_a_fresh_http_only_session_cookie() {
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start(dir.path());
    create_admin(dir.path(), "root", ADMIN_PW);
    let http = reqwest::Client::new();
    let sign_in = || {
        http.post(berth.url("/api/v1/auth/sign-in"))
            .json(&json!({"username": "root", "password": ADMIN_PW}))
            .send()
    };
    let cookie_of = |r: &reqwest::Response| r.headers()["set-cookie"].to_str().unwrap().to_string();
    let first = cookie_of(&sign_in().await.unwrap());
    let second = cookie_of(&sign_in().await.unwrap());
    assert_ne!(first, second, "a new session id at each sign-in");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(first.contains(attr), "{first}");
    }
    assert!(!first.contains("Secure"), "plain HTTP: not Secure");
    let https = http
        .post(berth.url("/api/v1/auth/sign-in"))
        .header("x-forwarded-proto", "https")
        .json(&json!({"username": "root", "password": ADMIN_PW}))
        .send()
        .await
        .unwrap();
    assert!(cookie_of(&https).contains("; Secure"));
}
