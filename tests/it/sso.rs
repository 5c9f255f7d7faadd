//! Single sign-on: Berth against a real OpenID Provider (`oidc-provider` on 127.0.0.1, see
//! `support::oidc`), through its own login form: first sign-in, approval, groups, bad ID
//! tokens, replayed states, key rotation, two providers, sign-out, password sign-in turned off.

use std::path::Path;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::oidc::{
    free_port, providers_file, start_berth, Configured, Provider, SsoBrowser, TestClient,
};
use crate::support::{create_admin, json, Berth, Browser};

const ADMIN_PW: &str = "Adm1n!chosen-well";

fn client(id: &str) -> TestClient {
    TestClient {
        id: id.into(),
        secret: format!("{id}-secret-0123456789"),
    }
}

fn accounts() -> Value {
    json!({
        "alice": {"password": "alice-pw", "claims": {
            "preferred_username": "Alice", "email": "alice@example.com", "groups": ["sales"]}},
        "bob": {"password": "bob-pw", "claims": {
            "preferred_username": "bob", "email": "bob@example.com", "groups": ["staff"]}},
        "carol": {"password": "carol-pw", "claims": {
            "email": "carol@example.com", "groups": ["staff", "berth-admins"]}},
    })
}

/// Berth with one provider `corp`, configured with `extra` TOML lines.
struct One {
    berth: Berth,
    provider: Provider,
    _dir: tempfile::TempDir,
}

fn one(extra: &str, args: &[&str]) -> One {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let c = client("berth");
    let provider = Provider::start(&url, "corp", &c, accounts());
    let file = providers_file(
        dir.path(),
        &[Configured {
            id: "corp",
            display_name: "Corp ID",
            issuer: &provider.issuer,
            client: &c,
            extra,
        }],
    );
    let data = dir.path().join("data");
    let berth = start_berth(&data, port, &file, args);
    One {
        berth,
        provider,
        _dir: dir,
    }
}

async fn admin(berth: &Berth) -> Browser {
    create_admin(&berth.data_dir, "root", ADMIN_PW);
    let mut admin = Browser::new(berth);
    assert_eq!(admin.sign_in("root", ADMIN_PW).await, StatusCode::OK);
    admin
}

async fn audit(admin: &Browser, event: &str) -> Vec<Value> {
    let resp = admin
        .get(&format!("/admin/audit?limit=500&event={event}"))
        .await;
    assert_eq!(resp.status(), 200);
    json(resp).await["entries"].as_array().unwrap().clone()
}

fn details(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .map(|e| format!("{} {}", e["outcome"], e["detail"].as_str().unwrap_or("")))
        .collect()
}

/// Who the browser's session belongs to: (user name, role).
async fn who(browser: &SsoBrowser) -> (String, String) {
    let resp = browser.get("/auth/session").await;
    assert_eq!(resp.status(), 200, "signed in");
    let v = json(resp).await;
    (
        v["user"]["username"].as_str().unwrap().into(),
        v["user"]["role"].as_str().unwrap().into(),
    )
}

#[tokio::test]
async fn a_first_sign_in_waits_for_approval_then_signs_in() {
    let t = one("", &[]);
    let admin = admin(&t.berth).await;
    let alice = SsoBrowser::new(&t.berth);
    let landed = alice.sign_in("corp", "alice", "alice-pw").await;
    assert_eq!(landed.error().as_deref(), Some("pending_approval"));
    assert_eq!(alice.get("/auth/session").await.status(), 401);

    let linked = audit(&admin, "auth.oidc_linked").await;
    assert_eq!(linked.len(), 1, "{linked:?}");
    assert_eq!(
        linked[0]["target_name"], "alice",
        "named after preferred_username"
    );
    let pending = json(admin.get("/admin/users?state=pending").await).await;
    assert_eq!(pending.as_array().unwrap().len(), 1, "{pending}");
    let id = pending[0]["id"].as_str().unwrap().to_string();
    let resp = admin
        .post(&format!("/admin/users/{id}/approve"), json!({}))
        .await;
    assert_eq!(resp.status(), 200);

    let landed = alice.sign_in("corp", "alice", "alice-pw").await;
    assert_eq!(landed.location, "/", "signed in and on to the chat");
    assert_eq!(who(&alice).await, ("alice".into(), "user".into()));
    let sign_ins = details(&audit(&admin, "auth.oidc_sign_in").await);
    assert_eq!(
        sign_ins,
        [
            "\"success\" provider corp",
            "\"denied\" provider corp: account is pending"
        ]
    );
    assert_eq!(
        audit(&admin, "auth.oidc_linked").await.len(),
        1,
        "the second sign-in found the same account"
    );
}

#[tokio::test]
async fn group_members_are_approved_at_once_and_admin_groups_make_admins() {
    let t = one(
        "auto_approve_groups = [\"staff\"]\nadmin_groups = [\"berth-admins\"]",
        &[],
    );
    let bob = SsoBrowser::new(&t.berth);
    assert_eq!(bob.sign_in("corp", "bob", "bob-pw").await.location, "/");
    assert_eq!(who(&bob).await, ("bob".into(), "user".into()));
    let carol = SsoBrowser::new(&t.berth);
    assert_eq!(
        carol.sign_in("corp", "carol", "carol-pw").await.location,
        "/"
    );
    // No preferred_username: the e-mail's local part.
    assert_eq!(who(&carol).await, ("carol".into(), "admin".into()));
    let alice = SsoBrowser::new(&t.berth);
    let landed = alice.sign_in("corp", "alice", "alice-pw").await;
    assert_eq!(
        landed.error().as_deref(),
        Some("pending_approval"),
        "sales is no approving group"
    );
}

#[tokio::test]
async fn bad_id_tokens_are_refused_and_audited() {
    let t = one("auto_approve_groups = [\"staff\"]", &[]);
    let admin = admin(&t.berth).await;
    let cases = [
        ("expired", "ID token expired"),
        ("wrong_aud", "wrong audience"),
        ("wrong_nonce", "nonce does not match"),
        ("forged", "signature is invalid"),
    ];
    for (mode, _) in cases {
        t.provider.spoil_next_id_token(mode).await;
        let bob = SsoBrowser::new(&t.berth);
        let landed = bob.sign_in("corp", "bob", "bob-pw").await;
        assert_eq!(landed.error().as_deref(), Some("invalid_token"), "{mode}");
        assert_eq!(bob.get("/auth/session").await.status(), 401, "{mode}");
    }
    let failures = details(&audit(&admin, "auth.oidc_sign_in").await);
    assert_eq!(failures.len(), cases.len(), "{failures:?}");
    // Newest first.
    for ((mode, reason), entry) in cases.iter().rev().zip(&failures) {
        assert!(
            entry.starts_with("\"failure\" provider corp: ") && entry.contains(reason),
            "{mode}: {entry}"
        );
    }
    // And the provider works when it behaves.
    let bob = SsoBrowser::new(&t.berth);
    assert_eq!(bob.sign_in("corp", "bob", "bob-pw").await.location, "/");
}

#[tokio::test]
async fn a_state_is_used_once_and_only_by_its_browser() {
    let t = one("auto_approve_groups = [\"staff\"]", &[]);
    let admin = admin(&t.berth).await;
    let bob = SsoBrowser::new(&t.berth);
    let callback = bob.through_provider("corp", "bob", "bob-pw").await;
    // Another browser with the same answer (a stolen or injected callback URL).
    let mallory = SsoBrowser::new(&t.berth);
    assert_eq!(
        mallory.land(&callback).await.error().as_deref(),
        Some("bad_state")
    );
    // The state was spent by that attempt: a new sign-in works, the old answer does not.
    assert_eq!(
        bob.land(&callback).await.error().as_deref(),
        Some("bad_state")
    );
    let callback = bob.through_provider("corp", "bob", "bob-pw").await;
    assert_eq!(bob.land(&callback).await.location, "/");
    assert_eq!(
        bob.land(&callback).await.error().as_deref(),
        Some("bad_state"),
        "replayed"
    );
    let entries = details(&audit(&admin, "auth.oidc_sign_in").await);
    assert!(
        entries[0].contains("state unknown or already used"),
        "{entries:?}"
    );
    assert!(entries[1].starts_with("\"success\""), "{entries:?}");
    assert!(
        entries[2].contains("state unknown or already used"),
        "{entries:?}"
    );
    assert!(
        entries[3].contains("not issued to this browser"),
        "{entries:?}"
    );
}

#[tokio::test]
async fn a_rotated_signing_key_is_fetched_but_unknown_keys_are_not_chased() {
    let t = one("auto_approve_groups = [\"staff\"]", &[]);
    let bob = SsoBrowser::new(&t.berth);
    assert_eq!(bob.sign_in("corp", "bob", "bob-pw").await.location, "/");
    let before = t.provider.key_fetches().await;
    t.provider.rotate_keys().await;
    let bob = SsoBrowser::new(&t.berth);
    assert_eq!(
        bob.sign_in("corp", "bob", "bob-pw").await.location,
        "/",
        "a token signed with the new key is accepted"
    );
    assert_eq!(
        t.provider.key_fetches().await,
        before + 1,
        "the keys were fetched again"
    );
    // Tokens naming unknown keys, again and again: no new fetch within the floor.
    for _ in 0..3 {
        t.provider.spoil_next_id_token("unknown_kid").await;
        let bob = SsoBrowser::new(&t.berth);
        let landed = bob.sign_in("corp", "bob", "bob-pw").await;
        assert_eq!(landed.error().as_deref(), Some("invalid_token"));
    }
    assert_eq!(
        t.provider.key_fetches().await,
        before + 1,
        "the provider was not hammered"
    );
}

#[tokio::test]
async fn two_providers_sign_in_side_by_side_as_separate_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let (a, b) = (client("berth-a"), client("berth-b"));
    let corp = Provider::start(&url, "corp", &a, accounts());
    let partner = Provider::start(&url, "partner", &b, accounts());
    let approve = "auto_approve_groups = [\"staff\"]";
    let file = providers_file(
        dir.path(),
        &[
            Configured {
                id: "corp",
                display_name: "Corp ID",
                issuer: &corp.issuer,
                client: &a,
                extra: approve,
            },
            Configured {
                id: "partner",
                display_name: "Partner SSO",
                issuer: &partner.issuer,
                client: &b,
                extra: approve,
            },
        ],
    );
    let berth = start_berth(&dir.path().join("data"), port, &file, &[]);
    let options = json(
        reqwest::get(berth.url("/api/v1/auth/providers"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        options,
        json!({"password_login": true, "providers": [
            {"id": "corp", "display_name": "Corp ID"},
            {"id": "partner", "display_name": "Partner SSO"}],
            "needs_admin": true})
    );
    let one = SsoBrowser::new(&berth);
    assert_eq!(one.sign_in("corp", "bob", "bob-pw").await.location, "/");
    let two = SsoBrowser::new(&berth);
    assert_eq!(two.sign_in("partner", "bob", "bob-pw").await.location, "/");
    // Same login, other issuer: another person as far as Berth knows.
    assert_eq!(who(&one).await.0, "bob");
    assert_eq!(who(&two).await.0, "bob-2");
    // A flow started for one provider cannot finish at the other.
    let callback = one.through_provider("corp", "bob", "bob-pw").await;
    let crossed = callback.replace("/oidc/corp/", "/oidc/partner/");
    assert_eq!(
        one.land(&crossed).await.error().as_deref(),
        Some("bad_state")
    );
}

#[tokio::test]
async fn sign_out_offers_the_providers_end_session_page() {
    let t = one("auto_approve_groups = [\"staff\"]", &[]);
    let bob = SsoBrowser::new(&t.berth);
    assert_eq!(bob.sign_in("corp", "bob", "bob-pw").await.location, "/");
    let csrf = json(bob.get("/auth/session").await).await["csrf_token"]
        .as_str()
        .unwrap()
        .to_string();
    let resp = bob
        .http
        .post(t.berth.url("/api/v1/auth/sign-out"))
        .header("x-csrf-token", csrf)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let url = json(resp).await["end_session_url"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        url.starts_with(&format!("{}/session/end?", t.provider.issuer))
            && url.contains("client_id=berth"),
        "{url}"
    );
    assert_eq!(
        bob.get("/auth/session").await.status(),
        401,
        "Berth's session ended"
    );
}

#[tokio::test]
async fn password_sign_in_can_be_turned_off_and_berth_admin_still_works() {
    let t = one("", &["--password-login", "false"]);
    create_admin(&t.berth.data_dir, "root", ADMIN_PW);
    let root = Browser::new(&t.berth);
    let resp = root
        .post(
            "/auth/sign-in",
            json!({"username": "root", "password": ADMIN_PW}),
        )
        .await;
    assert_eq!(resp.status(), 403);
    assert_eq!(json(resp).await["error"]["code"], "password_login_disabled");
    assert_eq!(
        root.register("dave", "Us3r!another-one").await.status(),
        403
    );
    let options = json(root.get("/auth/providers").await).await;
    assert_eq!(options["password_login"], false);

    // The way in: sign in through the provider, then make that account an admin on the
    // command line.
    let alice = SsoBrowser::new(&t.berth);
    let landed = alice.sign_in("corp", "alice", "alice-pw").await;
    assert_eq!(landed.error().as_deref(), Some("pending_approval"));
    let (code, out) = promote(&t.berth.data_dir, "alice");
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        alice.sign_in("corp", "alice", "alice-pw").await.location,
        "/"
    );
    assert_eq!(who(&alice).await, ("alice".into(), "admin".into()));
}

fn promote(data_dir: &Path, username: &str) -> (i32, String) {
    let out = std::process::Command::new(crate::support::BIN)
        .args(["admin", "promote", "--username", username, "--data-dir"])
        .arg(data_dir)
        .args(crate::support::database_args(data_dir))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test]
async fn a_provider_that_is_down_does_not_stop_berth_and_the_person_is_told() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let down = format!("http://127.0.0.1:{}", free_port());
    let c = client("berth");
    let file = providers_file(
        dir.path(),
        &[Configured {
            id: "corp",
            display_name: "Corp ID",
            issuer: &down,
            client: &c,
            extra: "",
        }],
    );
    let berth = start_berth(&dir.path().join("data"), port, &file, &[]);
    let admin = admin(&berth).await;
    let bob = SsoBrowser::new(&berth);
    let resp = bob.get("/auth/oidc/corp/start").await;
    assert_eq!(resp.status(), 303);
    assert_eq!(
        resp.headers()["location"],
        "/sign-in?sign_in_error=provider_unavailable&provider=corp"
    );
    let entries = details(&audit(&admin, "auth.oidc_sign_in").await);
    assert!(entries[0].contains("discovery at"), "{entries:?}");
    assert_eq!(bob.get("/auth/oidc/nobody/start").await.status(), 404);
}

#[tokio::test]
async fn a_sign_in_that_took_too_long_or_was_cancelled_is_refused_and_audited() {
    let t = one("auto_approve_groups = [\"staff\"]", &[]);
    let admin = admin(&t.berth).await;
    let bob = SsoBrowser::new(&t.berth);
    let callback = bob.through_provider("corp", "bob", "bob-pw").await;
    // As if the person had left the provider's page open for eleven minutes.
    let aged = "UPDATE oidc_flows SET created_at = created_at - 660000";
    assert_eq!(
        crate::support::db_execute(&t.berth.data_dir, aged).await,
        Ok(1)
    );
    assert_eq!(
        bob.land(&callback).await.error().as_deref(),
        Some("expired")
    );

    // The person cancels at the provider: it sends back an error instead of a code.
    let resp = bob.get("/auth/oidc/corp/start").await;
    let to_provider = reqwest::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    let state = to_provider
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let cancelled = format!(
        "{}/api/v1/auth/oidc/corp/callback?error=access_denied&error_description=cancelled&state={state}",
        t.berth.base
    );
    assert_eq!(
        bob.land(&cancelled).await.error().as_deref(),
        Some("provider_refused")
    );
    assert_eq!(bob.get("/auth/session").await.status(), 401);

    let entries = details(&audit(&admin, "auth.oidc_sign_in").await);
    assert!(
        entries[0].contains("the provider answered access_denied: cancelled"),
        "{entries:?}"
    );
    assert!(
        entries[1].contains("the sign-in took longer than 600 s"),
        "{entries:?}"
    );
    assert_eq!(
        bob.get("/auth/oidc/nobody/callback?state=x").await.status(),
        404
    );
}

#[tokio::test]
async fn an_answer_naming_another_issuer_is_refused() {
    let t = one("auto_approve_groups = [\"staff\"]", &[]);
    let admin = admin(&t.berth).await;
    let bob = SsoBrowser::new(&t.berth);
    let callback = bob.through_provider("corp", "bob", "bob-pw").await;
    let mut url = reqwest::Url::parse(&callback).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    assert!(
        pairs.iter().any(|(k, _)| k == "iss"),
        "the provider names itself: {callback}"
    );
    url.query_pairs_mut()
        .clear()
        .extend_pairs(pairs.iter().map(|(k, v)| {
            (
                k.as_str(),
                if k == "iss" {
                    "https://evil.example"
                } else {
                    v.as_str()
                },
            )
        }));
    assert_eq!(
        bob.land(url.as_str()).await.error().as_deref(),
        Some("bad_state")
    );
    let entries = details(&audit(&admin, "auth.oidc_sign_in").await);
    assert!(entries[0].contains("names another issuer"), "{entries:?}");
}
