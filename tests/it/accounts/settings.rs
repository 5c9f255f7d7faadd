//! Run-time settings: an admin changes them over the API; they are checked, stored, audited
//! and in effect at once, with the server's settings as the defaults.

use super::*;

fn setting<'a>(all: &'a Value, key: &str) -> &'a Value {
    all.as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == key)
        .unwrap_or_else(|| panic!("no {key} in {all}"))
}

#[tokio::test]
async fn admins_change_run_time_settings_which_apply_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("BERTH_CHUNK_SIZE", "100"), ("BERTH_CHUNK_OVERLAP", "0")];
    let berth = Berth::start_with(dir.path(), &[], &env);
    let (admin, carol, _) = admin_and_user(&berth).await;
    assert_eq!(carol.get("/admin/settings").await.status(), 403);

    let all = json(admin.get("/admin/settings").await).await;
    let k = setting(&all, "retrieval_k");
    assert_eq!((&k["value"], &k["source"]), (&json!("6"), &json!("server")));
    assert!(setting(&all, "llm_model")["value"].is_null(), "no LLM here");

    // Invalid values say what is valid, and change nothing (all or nothing).
    let bad = admin
        .send(
            Method::PUT,
            "/admin/settings",
            json!({"registration_open": false, "retrieval_k": 0}),
        )
        .await;
    assert_eq!(bad.status(), 422);
    let message = json(bad).await["error"]["message"].to_string();
    assert!(message.contains("from 1 to 50"), "{message}");
    let no_llm = admin
        .send(Method::PUT, "/admin/settings", json!({"llm_model": "x"}))
        .await;
    assert!(json(no_llm).await["error"]["message"]
        .to_string()
        .contains("no LLM"));
    assert_eq!(
        Browser::new(&berth)
            .register("dave", USER_PW)
            .await
            .status(),
        202
    );

    let changed = admin
        .send(
            Method::PUT,
            "/admin/settings",
            json!({"registration_open": false, "retrieval_k": 2}),
        )
        .await;
    assert_eq!(changed.status(), 200);
    let all = json(changed).await;
    let k = setting(&all, "retrieval_k");
    assert_eq!(
        (&k["value"], &k["default"], &k["source"]),
        (&json!("2"), &json!("6"), &json!("admin"))
    );
    assert_eq!(k["updated_by"], "root");

    let refused = Browser::new(&berth).register("erin", USER_PW).await;
    assert_eq!(refused.status(), 403);
    assert_eq!(json(refused).await["error"]["code"], "registration_closed");
    let c = json(carol.post("/collections", json!({"name": "notes"})).await).await;
    let text = "The harbour opens at dawn. ".repeat(30);
    carol
        .ingest(c["id"].as_str().unwrap(), "harbour.txt", text)
        .await;
    let found = json(
        carol
            .post("/search", json!({"query": "harbour dawn"}))
            .await,
    )
    .await;
    assert_eq!(
        found["results"].as_array().map(Vec::len),
        Some(2),
        "{found}"
    );

    // null: back to the server's setting.
    let reset = admin
        .send(
            Method::PUT,
            "/admin/settings",
            json!({"registration_open": null}),
        )
        .await;
    assert_eq!(
        setting(&json(reset).await, "registration_open")["source"],
        "server"
    );
    assert_eq!(
        Browser::new(&berth)
            .register("erin", USER_PW)
            .await
            .status(),
        202
    );
    let audit = audit(&admin, "event=settings.changed").await;
    let details: Vec<_> = audit
        .iter()
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert_eq!(
        details,
        [
            "registration_open back to the server's setting",
            "retrieval_k = 2",
            "registration_open = false"
        ]
    );
}
