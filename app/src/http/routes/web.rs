//! The web UI: the bundle `cargo xtask frontend` builds into `frontend/dist`, served by the
//! router's fallback.
//!
//! Release builds embed the bundle in the binary; debug builds read it from `frontend/dist` at
//! run time (rust-embed's default), so a rebuilt UI shows without rebuilding the server. Without
//! a bundle the binary still builds, and serves a page saying how to build the UI.
//!
//! - `GET /` and every other page path that accepts `text/html`: `index.html` (the UI routes on
//!   the client), `Cache-Control: no-cache`.
//! - Files under `/assets/` have content hashes in their names: cached for a year, immutable.
//! - Unknown `/api/...` paths, other methods, and non-HTML requests for unknown paths get the
//!   API's JSON 404, as before the UI existed.
//! - Every UI response carries a strict Content-Security-Policy and the other security headers.

use std::borrow::Cow;

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rust_embed::Embed;

#[derive(Embed)]
#[folder = "../frontend/dist/"]
// A checkout without a built UI must still compile (see build.rs for release builds).
#[allow_missing = true]
#[exclude = "*.map"]
struct Bundle;

/// No inline script or style, nothing from elsewhere, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
    base-uri 'self'; form-action 'self'";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const NO_CACHE: &str = "no-cache";
const INDEX: &str = "index.html";

/// One file of the bundle, as the handler needs it.
struct Asset {
    bytes: Cow<'static, [u8]>,
    etag: String,
}

fn from_bundle(path: &str) -> Option<Asset> {
    Bundle::get(path).map(|file| Asset {
        etag: etag(&file.metadata.sha256_hash()),
        bytes: file.data,
    })
}

fn etag(hash: &[u8]) -> String {
    let hex: String = hash.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// The router's fallback: the UI for page paths, the API's 404 for everything else.
pub async fn serve(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    match respond(&from_bundle, &method, uri.path(), &headers) {
        Some(response) => response,
        None => super::not_found().await.into_response(),
    }
}

/// What the UI answers, or `None` when the request is not for the UI (the API's 404 then).
fn respond(
    lookup: &dyn Fn(&str) -> Option<Asset>,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Option<Response> {
    if is_api(path) || (method != Method::GET && method != Method::HEAD) {
        return None;
    }
    let relative = path.trim_start_matches('/');
    if !is_safe(relative) {
        return None;
    }
    if relative.is_empty() || relative == INDEX {
        return Some(index(lookup, headers));
    }
    if let Some(asset) = lookup(relative) {
        let cache = if relative.starts_with("assets/") {
            IMMUTABLE
        } else {
            NO_CACHE
        };
        return Some(file(asset, content_type(relative), cache, headers));
    }
    if relative.starts_with("assets/") {
        // A hashed file that is not there: a stale page asked for an old build's file. Never
        // answer it with index.html, which the browser would try to run as a script.
        return Some(secured(
            (
                StatusCode::NOT_FOUND,
                [(header::CACHE_CONTROL, NO_CACHE)],
                "not found\n",
            )
                .into_response(),
        ));
    }
    if accepts_html(headers) {
        return Some(index(lookup, headers));
    }
    None
}

fn index(lookup: &dyn Fn(&str) -> Option<Asset>, headers: &HeaderMap) -> Response {
    match lookup(INDEX) {
        Some(asset) => file(asset, content_type(INDEX), NO_CACHE, headers),
        None => not_built(),
    }
}

fn file(
    asset: Asset,
    content_type: &'static str,
    cache: &'static str,
    headers: &HeaderMap,
) -> Response {
    let etag = HeaderValue::from_str(&asset.etag).ok();
    let fresh = etag.as_ref().is_some_and(|tag| matches_etag(headers, tag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
            asset.bytes,
        )
            .into_response()
    };
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Some(tag) = etag {
        h.insert(header::ETAG, tag);
    }
    secured(response)
}

/// The page served when the binary has no UI bundle.
fn not_built() -> Response {
    let page = "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">\
        <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
        <title>Berth: web UI not built</title></head>\n<body>\n\
        <h1>The web UI was not built</h1>\n\
        <p>This Berth server runs, and its API answers under <code>/api/v1/</code> (described by \
        <a href=\"/api/openapi.json\">/api/openapi.json</a>), but it has no web interface to \
        serve: the bundle in <code>frontend/dist</code> is missing.</p>\n\
        <p>Build it with <code>cargo xtask frontend</code> (it needs Node.js and npm), then reload \
        this page. A release binary embeds the bundle when it is compiled: build the interface \
        first, then the binary. <code>cargo xtask dev</code> does it all.</p>\n</body>\n</html>\n";
    secured(
        (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, NO_CACHE),
            ],
            page,
        )
            .into_response(),
    )
}

/// Adds the security headers every UI response carries.
fn secured(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    response
}

fn is_api(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

/// No way out of the bundle's folder (debug builds read files from disk).
fn is_safe(relative: &str) -> bool {
    !relative.contains('\\')
        && !relative.contains('\0')
        && !relative.starts_with('/')
        && relative
            .split('/')
            .all(|segment| segment != ".." && segment != ".")
}

fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let kind = parts.next().unwrap_or("").trim();
            // `text/html;q=0` means "not HTML".
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            kind.eq_ignore_ascii_case("text/html") && !refused
        })
}

fn matches_etag(headers: &HeaderMap, tag: &HeaderValue) -> bool {
    let Ok(tag) = tag.to_str() else {
        return false;
    };
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().trim_start_matches("W/"))
        .any(|v| v == tag || v == "*")
}

fn content_type(path: &str) -> &'static str {
    let extension = path.rsplit_once('.').map_or("", |(_, ext)| ext);
    match extension.to_ascii_lowercase().as_str() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "txt" => "text/plain; charset=utf-8",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;
    use std::collections::HashMap;

    fn bundle(files: &[(&str, &str)]) -> impl Fn(&str) -> Option<Asset> {
        let files: HashMap<String, String> = files
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |path| {
            files.get(path).map(|text| Asset {
                bytes: Cow::Owned(text.clone().into_bytes()),
                etag: format!("\"{}\"", text.len()),
            })
        }
    }

    fn built() -> impl Fn(&str) -> Option<Asset> {
        bundle(&[
            ("index.html", "<!doctype html><title>Berth</title>"),
            ("assets/index-abc123.js", "console.log(1)"),
            ("assets/index-abc123.css", "body{}"),
            ("theme.js", "/* theme */"),
        ])
    }

    fn html() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html,application/xhtml+xml,*/*;q=0.8"),
        );
        h
    }

    fn get(
        lookup: &dyn Fn(&str) -> Option<Asset>,
        path: &str,
        headers: &HeaderMap,
    ) -> Option<Response> {
        respond(lookup, &Method::GET, path, headers)
    }

    async fn body(response: Response) -> String {
        String::from_utf8(
            to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap()
                .to_vec(),
        )
        .unwrap()
    }

    fn header_of<'a>(response: &'a Response, name: &HeaderName) -> &'a str {
        response.headers().get(name).unwrap().to_str().unwrap()
    }

    fn assert_secured(response: &Response) {
        assert_eq!(
            header_of(response, &header::CONTENT_SECURITY_POLICY),
            CONTENT_SECURITY_POLICY
        );
        assert_eq!(
            header_of(response, &header::X_CONTENT_TYPE_OPTIONS),
            "nosniff"
        );
        assert_eq!(header_of(response, &header::X_FRAME_OPTIONS), "DENY");
        assert_eq!(header_of(response, &header::REFERRER_POLICY), "no-referrer");
    }

    #[tokio::test]
    async fn root_and_page_paths_serve_index_uncached() {
        let lookup = built();
        for path in ["/", "/index.html", "/chat", "/chat/3f2a", "/admin/audit"] {
            let response = get(&lookup, path, &html()).unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert_eq!(header_of(&response, &header::CACHE_CONTROL), "no-cache");
            assert_eq!(
                header_of(&response, &header::CONTENT_TYPE),
                "text/html; charset=utf-8"
            );
            assert_secured(&response);
            assert!(body(response).await.contains("<title>Berth</title>"));
        }
    }

    #[tokio::test]
    async fn hashed_assets_are_immutable() {
        let response = get(&built(), "/assets/index-abc123.js", &HeaderMap::new()).unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            header_of(&response, &header::CACHE_CONTROL),
            "public, max-age=31536000, immutable"
        );
        assert_eq!(
            header_of(&response, &header::CONTENT_TYPE),
            "text/javascript; charset=utf-8"
        );
        assert_secured(&response);
        assert_eq!(body(response).await, "console.log(1)");

        let other = get(&built(), "/theme.js", &HeaderMap::new()).unwrap();
        assert_eq!(header_of(&other, &header::CACHE_CONTROL), "no-cache");
    }

    #[tokio::test]
    async fn a_missing_asset_is_404_not_index() {
        let response = get(&built(), "/assets/index-old999.js", &html()).unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_secured(&response);
    }

    #[test]
    fn api_paths_other_methods_and_non_html_requests_fall_through() {
        let lookup = built();
        assert!(get(&lookup, "/api/v1/nope", &html()).is_none());
        assert!(get(&lookup, "/api", &html()).is_none());
        assert!(get(&lookup, "/chat", &HeaderMap::new()).is_none());
        let mut json = HeaderMap::new();
        json.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert!(get(&lookup, "/chat", &json).is_none());
        assert!(respond(&lookup, &Method::POST, "/chat", &html()).is_none());
        assert!(respond(&lookup, &Method::HEAD, "/chat", &html()).is_some());
    }

    #[test]
    fn paths_cannot_leave_the_bundle() {
        let lookup = built();
        for path in [
            "/../Cargo.toml",
            "/assets/../../secret",
            "/a\\b",
            "/./index.html",
        ] {
            assert!(get(&lookup, path, &html()).is_none(), "{path}");
        }
    }

    #[tokio::test]
    async fn etags_answer_not_modified() {
        let first = get(&built(), "/assets/index-abc123.css", &HeaderMap::new()).unwrap();
        let tag = first.headers().get(header::ETAG).unwrap().clone();
        let mut again = HeaderMap::new();
        again.insert(header::IF_NONE_MATCH, tag);
        let second = get(&built(), "/assets/index-abc123.css", &again).unwrap();
        assert_eq!(second.status(), StatusCode::NOT_MODIFIED);
        assert_secured(&second);
        assert!(body(second).await.is_empty());
    }

    #[tokio::test]
    async fn without_a_bundle_pages_say_how_to_build_it() {
        let empty = bundle(&[]);
        let response = get(&empty, "/", &HeaderMap::new()).unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_secured(&response);
        let page = body(response).await;
        assert!(page.contains("The web UI was not built"));
        assert!(page.contains("cargo xtask frontend"));
        assert!(get(&empty, "/documents", &html()).is_some());
    }

    #[test]
    fn html_acceptance() {
        let accept = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, HeaderValue::from_static(v));
            accepts_html(&h)
        };
        assert!(accept("text/html"));
        assert!(accept("application/json, TEXT/HTML;q=0.9"));
        assert!(!accept("text/html;q=0"));
        assert!(!accept("*/*"));
        assert!(!accept("application/json"));
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type("favicon.svg"), "image/svg+xml");
        assert_eq!(content_type("assets/x.CSS"), "text/css; charset=utf-8");
        assert_eq!(content_type("noextension"), "application/octet-stream");
    }

    #[tokio::test]
    async fn the_fallback_keeps_the_json_404_for_the_api() {
        use tower::ServiceExt;
        let app = axum::Router::new().fallback(serve);
        let request = |path: &str| {
            axum::http::Request::get(path)
                .header(header::ACCEPT, "text/html")
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let response = app.clone().oneshot(request("/api/v1/nope")).await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let text = body(response).await;
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["error"]["code"], "not_found");

        // Whatever the bundle holds (debug builds read frontend/dist now), a page path is
        // answered by the UI: the index, or the not-built page.
        let page = app.oneshot(request("/chat")).await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        assert_secured(&page);
    }
}
