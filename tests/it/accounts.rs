//! Black-box tests of accounts: approval, password policy, throttling, sessions, CSRF, tokens,
//! the last-admin guard and the audit log, through the HTTP API of the real binary.

use crate::support;

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{admin_cli, create_admin, json, Berth, Browser};

const ADMIN_PW: &str = "Adm1n!chosen-well";
const USER_PW: &str = "Us3r!another-one";

/// A running Berth with a signed-in admin and an approved, signed-in user `carol`.
async fn admin_and_user(berth: &Berth) -> (Browser, Browser, String) {
    create_admin(&berth.data_dir, "root", ADMIN_PW);
    let mut admin = Browser::new(berth);
    assert_eq!(admin.sign_in("root", ADMIN_PW).await, StatusCode::OK);
    let mut user = Browser::new(berth);
    let reg = json(user.register("carol", USER_PW).await).await;
    let id = reg["user"]["id"].as_str().unwrap().to_string();
    let resp = admin
        .post(&format!("/admin/users/{id}/approve"), json!({}))
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(user.sign_in("carol", USER_PW).await, StatusCode::OK);
    (admin, user, id)
}

async fn audit(admin: &Browser, query: &str) -> Vec<Value> {
    let resp = admin.get(&format!("/admin/audit?limit=500&{query}")).await;
    assert_eq!(resp.status(), 200);
    json(resp).await["entries"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_pending_account_cannot_sign_in_until_approved() {
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start(dir.path());
    create_admin(dir.path(), "root", ADMIN_PW);
    let mut admin = Browser::new(&berth);
    admin.sign_in("root", ADMIN_PW).await;

    let mut dave = Browser::new(&berth);
    let resp = dave.register("Dave", USER_PW).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let body = json(resp).await;
    assert_eq!(body["user"]["state"], "pending");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("awaits approval"));
    assert_eq!(
        dave.register("dave", USER_PW).await.status(),
        StatusCode::CONFLICT
    );

    assert_eq!(dave.sign_in("dave", USER_PW).await, StatusCode::FORBIDDEN);
    let resp = dave
        .post(
            "/auth/sign-in",
            json!({"username": "dave", "password": USER_PW}),
        )
        .await;
    assert_eq!(json(resp).await["error"]["code"], "pending_approval");

    let queue = json(admin.get("/admin/users?state=pending").await).await;
    assert_eq!(queue.as_array().unwrap().len(), 1);
    let id = queue[0]["id"].as_str().unwrap();
    let resp = admin
        .post(&format!("/admin/users/{id}/approve"), json!({}))
        .await;
    assert_eq!(json(resp).await["state"], "active");
    assert_eq!(
        dave.sign_in("DAVE", USER_PW).await,
        StatusCode::OK,
        "names are case-blind"
    );
    let me = json(dave.get("/auth/session").await).await;
    assert_eq!(me["user"]["username"], "dave");
    assert_eq!(me["user"]["role"], "user");

    // Denied accounts stay out.
    let erin = Browser::new(&berth);
    let id = json(erin.register("erin", USER_PW).await).await["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        admin
            .post(&format!("/admin/users/{id}/deny"), json!({}))
            .await
            .status(),
        200
    );
    let resp = erin
        .post(
            "/auth/sign-in",
            json!({"username": "erin", "password": USER_PW}),
        )
        .await;
    assert_eq!(resp.status(), 403);
    assert_eq!(json(resp).await["error"]["code"], "account_denied");
}

#[tokio::test]
async fn the_password_policy_reports_every_rule_and_accepts_long_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start(dir.path());
    let b = Browser::new(&berth);

    let resp = b.register("frank", "abc").await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = json(resp).await;
    let rules: Vec<&str> = body["error"]["details"]["password"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule"].as_str().unwrap())
        .collect();
    assert_eq!(
        rules,
        ["min_length", "uppercase", "digit", "symbol"],
        "{body}"
    );
    assert_eq!(body["error"]["code"], "validation_failed");

    let resp = b.register("frank", "P@ssw0rd").await;
    let body = json(resp).await;
    assert_eq!(
        body["error"]["details"]["password"][0]["rule"], "common",
        "{body}"
    );

    // 64 characters (and more), accepted and never truncated: a prefix does not sign in.
    let long = format!("Aa1!{}", "long passphrase ".repeat(6));
    assert!(long.chars().count() >= 64);
    assert_eq!(
        b.register("frank", &long).await.status(),
        StatusCode::ACCEPTED
    );
    create_admin(dir.path(), "root", ADMIN_PW);
    let mut admin = Browser::new(&berth);
    admin.sign_in("root", ADMIN_PW).await;
    let id = json(admin.get("/admin/users?state=pending").await).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    admin
        .post(&format!("/admin/users/{id}/approve"), json!({}))
        .await;
    let mut frank = Browser::new(&berth);
    assert_eq!(
        frank.sign_in("frank", &long[..72]).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(frank.sign_in("frank", &long).await, StatusCode::OK);

    let policy = json(b.get("/auth/password-policy").await).await;
    assert_eq!(policy["kind"], "composition");
}

#[tokio::test]
async fn the_length_only_policy_drops_composition_rules() {
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start_with(dir.path(), &[], &[("BERTH_PASSWORD_POLICY", "length")]);
    let b = Browser::new(&berth);
    let resp = b.register("gina", "all lower case words").await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let body = json(b.register("hank", "short").await).await;
    assert_eq!(
        body["error"]["details"]["password"][0]["rule"],
        "min_length"
    );
}

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
async fn stored_hashes_are_argon2id_with_owasp_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start(dir.path());
    admin_and_user(&berth).await;
    let hashes = support::db_strings(dir.path(), "SELECT password_hash FROM users").await;
    assert_eq!(hashes.len(), 2);
    for h in hashes {
        let params = h.split('$').nth(3).unwrap();
        assert!(h.starts_with("$argon2id$v=19$"), "{h}");
        let get = |k: &str| -> u32 {
            params
                .split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
                .unwrap()
                .parse()
                .unwrap()
        };
        assert!(get("m") >= 19 * 1024 && get("t") >= 2, "{h}");
    }
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

#[tokio::test]
async fn the_openapi_document_covers_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start(dir.path());
    let doc: Value = reqwest::get(berth.url("/api/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/auth/register",
        "/auth/sign-in",
        "/auth/sign-out",
        "/auth/session",
        "/account/password",
        "/account/tokens",
        "/account/tokens/{id}",
        "/admin/users",
        "/admin/users/{id}/approve",
        "/admin/users/{id}/role",
        "/admin/audit",
        "/collections",
        "/collections/{id}/documents",
        "/collections/{id}/members",
        "/documents/{id}",
        "/documents/{id}/retry",
        "/documents/{id}/file",
        "/chunks/{id}",
        "/search",
        "/conversations",
        "/conversations/{id}",
        "/conversations/{id}/messages",
        "/status",
    ] {
        assert!(paths.contains_key(p), "{p} missing from {:?}", paths.keys());
    }
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
}
