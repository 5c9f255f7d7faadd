//! The published OpenAPI document.

use super::*;

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
        "/auth/providers",
        "/auth/oidc/{provider}/start",
        "/auth/oidc/{provider}/callback",
        "/account/password",
        "/account/tokens",
        "/account/tokens/{id}",
        "/admin/users",
        "/admin/users/{id}/approve",
        "/admin/users/{id}/role",
        "/admin/audit",
        "/admin/users/{id}/password",
        "/admin/users/{id}/unlock",
        "/admin/settings",
        "/collections",
        "/collections/{id}/documents",
        "/collections/{id}/members",
        "/documents/{id}",
        "/documents/{id}/retry",
        "/documents/{id}/file",
        "/documents/{id}/text",
        "/chunks/{id}",
        "/search",
        "/conversations",
        "/conversations/{id}",
        "/conversations/{id}/messages",
        "/conversations/{id}/messages/{message_id}/feedback",
        "/status",
    ] {
        assert!(paths.contains_key(p), "{p} missing from {:?}", paths.keys());
    }
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
}
