//! Who sees and deletes what: shared collections, their members, and nothing leaking between users.

use super::*;

/// The same for a document: a store failure while checking access is a server error, never a
/// "no such document" (which would tell a member their document is gone).
#[tokio::test]
async fn a_store_failure_while_checking_access_is_not_a_missing_document() {
    let f = fixture(&[]).await;
    let eve = approved_user(&f, "eve").await;
    let sid = shared_with(&f, json!({"name": "team", "shared": true}), "eve").await;
    let doc =
        f.me.ingest(&sid, "team.txt", "The team offsite is in Lisbon.")
            .await;
    assert_eq!(eve.get(&format!("/documents/{doc}")).await.status(), 200);

    support::db_execute(
        f._dir.path(),
        "ALTER TABLE collection_members RENAME TO collection_members_away",
    )
    .await
    .unwrap();
    let resp = eve.get(&format!("/documents/{doc}")).await;
    let status = resp.status();
    let body = resp.text().await.unwrap();
    assert!(status.is_server_error(), "{status}: {body}");
    assert!(!body.contains("collection_members"), "{body}");
}

async fn delete(b: &Browser, id: &str) -> reqwest::Response {
    b.send(Method::DELETE, &format!("/documents/{id}"), json!({}))
        .await
}

/// In a shared collection the owner deletes anything; a member only what they uploaded.
#[tokio::test]
async fn in_a_shared_collection_members_delete_only_their_own_uploads() {
    let f = fixture(&[]).await;
    let eve = approved_user(&f, "eve").await;
    let sid = shared_with(&f, json!({"name": "team", "shared": true}), "eve").await;
    let owners = f.me.ingest(&sid, "plan.txt", "The owner's plan.").await;
    let eves = eve.ingest(&sid, "notes.txt", "Eve's notes.").await;
    let eves_second = eve.ingest(&sid, "more.txt", "More of Eve's notes.").await;
    let refused = delete(&eve, &owners).await;
    assert_eq!(refused.status(), 403);
    let message = json(refused).await["error"]["message"].to_string();
    assert!(message.contains("owner"), "{message}");
    assert_eq!(delete(&eve, &eves).await.status(), 204, "her own upload");
    assert_eq!(
        delete(&f.me, &eves_second).await.status(),
        204,
        "the owner's right"
    );
    let left = json(f.me.get(&format!("/collections/{sid}/documents")).await).await;
    let names: Vec<&str> = left
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["filename"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["plan.txt"]);

    // Unless the owner lets members delete any document.
    let open = json!({"name": "open", "shared": true, "members_delete_any": true});
    let oid = shared_with(&f, open, "eve").await;
    let listed = json(f.me.get("/collections").await).await;
    let open = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == oid.as_str());
    assert_eq!(open.unwrap()["members_delete_any"], true, "{listed}");
    let owners =
        f.me.ingest(&oid, "plan.txt", "The owner's other plan.")
            .await;
    assert_eq!(delete(&eve, &owners).await.status(), 204);

    // Removing a member is idempotent; afterwards the collection is gone from her view.
    let members = json(f.me.get(&format!("/collections/{oid}/members")).await).await;
    let eve_id = members[0]["id"].as_str().unwrap().to_string();
    let remove = format!("/collections/{oid}/members/{eve_id}");
    for _ in 0..2 {
        let resp = f.me.send(Method::DELETE, &remove, json!({})).await;
        assert_eq!(resp.status(), 204);
    }
    let hers = eve.get(&format!("/collections/{oid}/documents")).await;
    assert_eq!(hers.status(), 404);
}

/// Adding a member reveals nothing about accounts that cannot be added: no such user and a
/// pending one get the same answer.
#[tokio::test]
async fn adding_a_member_answers_the_same_for_missing_and_inactive_accounts() {
    let f = fixture(&[]).await;
    let shared = json(
        f.me.post("/collections", json!({"name": "team", "shared": true}))
            .await,
    )
    .await;
    let members = format!("/collections/{}/members", shared["id"].as_str().unwrap());
    Browser::new(&f.berth)
        .register("pending", "Pend!ng-for-now1")
        .await;
    let missing = f.me.post(&members, json!({"username": "nobody"})).await;
    let (missing_status, missing) = (missing.status(), json(missing).await);
    let pending = f.me.post(&members, json!({"username": "pending"})).await;
    let (pending_status, pending) = (pending.status(), json(pending).await);
    assert_eq!(missing_status, 422);
    assert_eq!(pending_status, missing_status);
    let without_name = |v: &Value| v.to_string().replace("nobody", "X").replace("pending", "X");
    assert_eq!(without_name(&pending), without_name(&missing));
}

/// An admin's private collection holding a secret document and a conversation, and another
/// approved user, eve, who must see nothing of them. A test binds `model` and `f` (as `_model`,
/// `_f` if unused): dropped, they stop the model server or the server under test.
struct Private {
    model: ModelServer,
    f: Fixture,
    secret: String,
    conv: String,
    eve: Browser,
}

async fn private_secret() -> Private {
    let model = ModelServer::start();
    let f = fixture(&real_embeddings(&model, "ollama")).await;
    let secret =
        f.me.ingest(
            &f.collection,
            "salaries.txt",
            "The secret project codename is Bluebird.",
        )
        .await;
    let conv = new_conversation(&f.me).await;
    let eve = approved_user(&f, "eve").await;
    Private {
        model,
        f,
        secret,
        conv,
        eve,
    }
}

#[tokio::test]
async fn another_user_lists_and_searches_nothing_of_a_private_collection() {
    let Private {
        f,
        eve,
        model: _model,
        ..
    } = private_secret().await;
    assert_eq!(
        json(eve.get("/collections").await)
            .await
            .as_array()
            .unwrap()
            .len(),
        0,
        "eve lists the admin's collection"
    );
    assert_eq!(
        search(&eve, "secret project codename").await["results"]
            .as_array()
            .unwrap()
            .len(),
        0,
        "eve's search finds the admin's document"
    );
    let resp = eve
        .post(
            "/search",
            json!({"query": "codename", "collection_ids": [f.collection]}),
        )
        .await;
    assert_eq!(
        resp.status(),
        404,
        "eve searches the admin's collection by id"
    );
}

#[tokio::test]
async fn another_user_cannot_open_a_private_document_chunk_or_conversation() {
    let Private {
        f,
        secret,
        conv,
        eve,
        model: _model,
    } = private_secret().await;
    assert_eq!(
        eve.get(&format!("/documents/{secret}")).await.status(),
        404,
        "the document"
    );
    assert_eq!(
        eve.get(&format!("/documents/{secret}/file")).await.status(),
        404,
        "the document's file"
    );
    assert_eq!(
        eve.get(&format!("/collections/{}/documents", f.collection))
            .await
            .status(),
        404,
        "the collection's documents"
    );
    assert_eq!(
        eve.get(&format!("/conversations/{conv}")).await.status(),
        404,
        "the admin's conversation"
    );
    let chunk = search(&f.me, "codename").await["results"][0]["chunk_id"].clone();
    assert_eq!(
        eve.get(&format!("/chunks/{chunk}")).await.status(),
        404,
        "the document's chunk"
    );
}

#[tokio::test]
async fn another_users_chat_neither_answers_from_nor_prompts_with_a_private_document() {
    let Private {
        model, eve, f: _f, ..
    } = private_secret().await;
    let eve_conv = new_conversation(&eve).await;
    let events = events(ask(&eve, &eve_conv, "What is the secret project codename?").await).await;
    let all = format!("{events:?}");
    assert!(!all.contains("Bluebird"), "leaked through chat: {all}");
    let sent = model
        .shared
        .last_chat_request
        .lock()
        .unwrap()
        .clone()
        .unwrap();
    assert!(
        !sent.to_string().contains("Bluebird"),
        "leaked into eve's prompt"
    );
}

#[tokio::test]
async fn another_user_cannot_upload_into_a_private_collection() {
    let Private {
        f,
        eve,
        model: _model,
        ..
    } = private_secret().await;
    assert!(
        eve.upload(&f.collection, "x.txt", b"x".to_vec())
            .await
            .status()
            == 404,
        "eve uploads into the admin's collection"
    );
}

#[tokio::test]
async fn a_member_of_a_shared_collection_reads_it_and_nothing_private() {
    let Private {
        f,
        eve,
        model: _model,
        ..
    } = private_secret().await;
    let shared = json(
        f.me.post("/collections", json!({"name": "team", "shared": true}))
            .await,
    )
    .await;
    let sid = shared["id"].as_str().unwrap();
    f.me.ingest(sid, "team.txt", "The team offsite is in Lisbon.")
        .await;
    assert_eq!(
        f.me.post(
            &format!("/collections/{sid}/members"),
            json!({"username": "eve"})
        )
        .await
        .status(),
        204,
        "adding eve to the shared collection"
    );
    let hits = search(&eve, "offsite Lisbon").await;
    assert_eq!(hits["results"][0]["document_name"], "team.txt", "{hits}");
    assert!(
        !hits.to_string().contains("Bluebird"),
        "the private document among a member's hits: {hits}"
    );
}

#[tokio::test]
async fn a_private_collection_takes_no_members() {
    let Private {
        f, model: _model, ..
    } = private_secret().await;
    let resp =
        f.me.post(
            &format!("/collections/{}/members", f.collection),
            json!({"username": "eve"}),
        )
        .await;
    assert_eq!(resp.status(), 409, "a member added to a private collection");
}

/// A private collection becomes shared; the owner adds and removes members by name; uploads,
/// deletions and membership changes are audited.
#[tokio::test]
async fn a_private_collection_is_shared_and_its_members_managed_with_an_audit_trail() {
    let f = fixture(&[]).await;
    let eve = approved_user(&f, "eve").await;
    let id = &f.collection;
    let members = format!("/collections/{id}/members");
    let refused = f.me.post(&members, json!({"username": "eve"})).await;
    assert_eq!(refused.status(), 409, "private: share it first");
    assert!(json(refused).await["error"]["message"]
        .to_string()
        .contains("share it first"));

    let path = format!("/collections/{id}");
    let not_hers = eve
        .send(Method::PATCH, &path, json!({"shared": true}))
        .await;
    assert_eq!(
        not_hers.status(),
        404,
        "not her collection: she cannot see it"
    );
    let shared =
        f.me.send(Method::PATCH, &path, json!({"shared": true}))
            .await;
    assert_eq!(shared.status(), 200);
    assert_eq!(json(shared).await["shared"], true);
    assert_eq!(
        f.me.post(&members, json!({"username": "eve"}))
            .await
            .status(),
        204
    );
    let listed = json(f.me.get(&members).await).await;
    assert_eq!(listed[0]["username"], "eve", "{listed}");
    let eve_id = listed[0]["id"].as_str().unwrap().to_string();

    let doc = eve
        .ingest(id, "notes.txt", "Eve's notes on the harbour.")
        .await;
    let again = eve
        .upload(id, "copy.txt", b"Eve's notes on the harbour.".to_vec())
        .await;
    assert_eq!(again.status(), 409);
    let message = json(again).await["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains(r#"as "notes.txt""#),
        "named by its file name: {message}"
    );
    assert!(!message.contains(&doc), "not by its id: {message}");
    let text = json(f.me.get(&format!("/documents/{doc}/text")).await).await;
    assert_eq!(text["text"], "Eve's notes on the harbour.", "{text}");
    assert_eq!(text["passages"][0]["start"], 0, "{text}");
    let private =
        f.me.send(Method::PATCH, &path, json!({"shared": false}))
            .await;
    assert_eq!(private.status(), 409, "members remain");
    assert_eq!(delete(&eve, &doc).await.status(), 204);
    let removed =
        f.me.send(Method::DELETE, &format!("{members}/{eve_id}"), json!({}))
            .await;
    assert_eq!(removed.status(), 204);
    assert_eq!(
        eve.get(&format!("/collections/{id}/documents"))
            .await
            .status(),
        404
    );

    let audit = |event: &'static str| {
        let me = &f.me;
        async move {
            let page = json(me.get(&format!("/admin/audit?event={event}")).await).await;
            page["entries"].as_array().unwrap().clone()
        }
    };
    let shared = audit("collection.shared").await;
    assert_eq!(shared.len(), 1);
    assert!(shared[0]["detail"].as_str().unwrap().contains("handbook"));
    for event in ["collection.member_added", "collection.member_removed"] {
        let entries = audit(event).await;
        assert_eq!(entries.len(), 1, "{event}");
        assert_eq!(entries[0]["actor_name"], "root");
        assert_eq!(entries[0]["target_name"], "eve");
    }
    for event in ["document.uploaded", "document.deleted"] {
        let entries = audit(event).await;
        assert_eq!(entries.len(), 1, "{event}: {entries:?}");
        assert_eq!(entries[0]["actor_name"], "eve");
        assert!(entries[0]["detail"].as_str().unwrap().contains("notes.txt"));
    }
}
