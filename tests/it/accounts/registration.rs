//! Registration: pending until approved, the password policy, and how passwords are stored.

use super::*;

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
