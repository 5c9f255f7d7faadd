//! What every response carries: health, readiness and metrics, the security headers, the error
//! envelope, the JSON request log, early refusal of oversized uploads and a graceful SIGTERM.

use super::*;

#[tokio::test]
async fn health_ready_and_metrics_answer_and_count() {
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start(dir.path());
    let http = client();

    let health = http.get(berth.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = http.get(berth.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["database"]["ok"], true, "{body}");
    if support::postgres_backend() {
        assert_eq!(body["checks"]["database"]["backend"], "postgres", "{body}");
    } else {
        assert!(
            dir.path().join("berth.db").exists(),
            "embedded database created in the data dir"
        );
    }

    let scrape = |http: reqwest::Client, url: String| async move {
        let resp = http.get(url).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let ctype = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ctype.starts_with("text/plain"), "{ctype}");
        metrics::parse(&resp.text().await.unwrap())
    };
    let before = scrape(http.clone(), berth.url("/metrics")).await;
    let health_200 = [("route", "/health"), ("status", "200"), ("method", "GET")];
    let count = |s: &[metrics::Sample]| {
        metrics::value(s, "berth_http_requests_total", &health_200).unwrap_or(0.0)
    };
    for _ in 0..3 {
        http.get(berth.url("/health")).send().await.unwrap();
    }
    http.get(berth.url("/no/such/thing")).send().await.unwrap();
    let after = scrape(http.clone(), berth.url("/metrics")).await;
    assert_eq!(count(&after) - count(&before), 3.0);
    assert!(
        metrics::value(
            &after,
            "berth_http_request_duration_seconds_count",
            &health_200
        )
        .unwrap()
            >= 4.0
    );
    assert_eq!(
        metrics::value(
            &after,
            "berth_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ),
        Some(1.0),
        "unknown paths are counted under one label, not one per path"
    );
    assert_eq!(
        metrics::value(
            &after,
            "berth_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    assert!(metrics::value(&after, "berth_uptime_seconds", &[]).unwrap() > 0.0);
    berth.stop();
}

/// Every answer says `nosniff`; API answers (accounts, tokens, documents) are never cached.
#[tokio::test]
async fn responses_carry_the_security_headers_of_their_kind() {
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start(dir.path());
    let http = client();
    let header = |resp: &reqwest::Response, name: &str| {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    for path in [
        "/health",
        "/ready",
        "/metrics",
        "/",
        "/api/v1/status",
        "/api/v1/no/such",
    ] {
        let resp = http.get(berth.url(path)).send().await.unwrap();
        assert_eq!(header(&resp, "x-content-type-options"), "nosniff", "{path}");
    }
    let api = register(&http, &berth, "carol").await;
    assert!(api.status().is_success(), "{}", api.status());
    assert_eq!(header(&api, "cache-control"), "no-store");
    let refused = http
        .get(berth.url("/api/v1/account/tokens"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(header(&refused, "cache-control"), "no-store");
    berth.stop();
}

/// What the framework refuses (bad JSON, a missing field, a wrong type, a non-numeric id, a
/// method the route does not take, an oversized body) answers in the one JSON error envelope,
/// in words for the caller, never Rust's.
#[tokio::test]
async fn framework_rejections_answer_in_the_error_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start(dir.path());
    support::create_admin(dir.path(), "root", "Adm1n!chosen-well");
    let mut admin = support::Browser::new(&berth);
    admin.sign_in("root", "Adm1n!chosen-well").await;
    let http = client();
    let register = berth.url("/api/v1/auth/register");
    let raw = |body: &'static str, content_type: &'static str| {
        http.post(&register)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let cases = [
        (
            "bad JSON",
            raw("{not json", "application/json").await.unwrap(),
            400,
            "bad_request",
        ),
        (
            "missing field",
            raw(r#"{"username":"x"}"#, "application/json")
                .await
                .unwrap(),
            422,
            "validation_failed",
        ),
        (
            "wrong type",
            raw(r#"{"username":5,"password":"p"}"#, "application/json")
                .await
                .unwrap(),
            422,
            "validation_failed",
        ),
        (
            "not JSON at all",
            raw("username=x", "text/plain").await.unwrap(),
            415,
            "unsupported_type",
        ),
        (
            "an array for an object",
            raw(r#"["ann","Pw!1234567"]"#, "application/json")
                .await
                .unwrap(),
            422,
            "validation_failed",
        ),
        (
            "non-numeric id",
            admin.get("/chunks/abc").await,
            400,
            "bad_request",
        ),
        (
            "wrong method",
            http.put(&register).send().await.unwrap(),
            405,
            "method_not_allowed",
        ),
        (
            "oversized body",
            http.post(&register)
                .header("content-type", "application/json")
                .body(format!(r#"{{"username":"{}"}}"#, "x".repeat(3 << 20)))
                .send()
                .await
                .unwrap(),
            413,
            "too_large",
        ),
    ];
    for (what, resp, status, code) in cases {
        assert_eq!(resp.status().as_u16(), status, "{what}");
        let ctype = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ctype.starts_with("application/json"), "{what}: {ctype}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{what}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        for rust in ["i64", "usize", "target type", "Failed to"] {
            assert!(!message.contains(rust), "{what}: {message}");
        }
    }
    berth.stop();
}

#[tokio::test]
async fn every_request_is_logged_as_json_with_its_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let mut berth = Berth::start(dir.path());
    let http = client();

    let resp = http
        .get(berth.url("/health"))
        .header("x-request-id", "trace-me-7f3a")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["x-request-id"],
        "trace-me-7f3a",
        "propagated"
    );
    let resp = http.get(berth.url("/ready")).send().await.unwrap();
    let made = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(made.len() >= 16, "a generated id is returned: {made}");

    for id in ["trace-me-7f3a", made.as_str()] {
        let line = berth.wait_for_log(|l| l.contains(id), Duration::from_secs(5));
        let v: serde_json::Value = serde_json::from_str(&line).expect("log line is JSON");
        assert_eq!(v["span"]["request_id"], id, "{line}");
        assert!(
            v["timestamp"].is_string() && v["level"].is_string(),
            "{line}"
        );
    }
    let logs = berth.stop();
    for line in logs.iter().filter(|l| l.starts_with('{')) {
        serde_json::from_str::<serde_json::Value>(line).expect("every stdout line is JSON");
    }
}

/// A declared 2 GiB upload is refused at once, with the JSON error, before its body is sent.
#[test]
fn an_oversized_declared_upload_is_refused_before_its_body() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start(dir.path());
    let addr = berth.base.trim_start_matches("http://").to_string();
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        conn,
        "POST /api/v1/collections/any/documents HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 2147483648\r\n\r\n"
    )
    .unwrap();
    conn.flush().unwrap();
    let mut response = vec![0; 4096];
    let n = conn
        .read(&mut response)
        .expect("an answer without the body");
    let response = String::from_utf8_lossy(&response[..n]);
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(response.contains("\"too_large\""), "{response}");
    assert!(response.contains("max_upload_mb"), "{response}");
}

#[test]
fn sigterm_lets_an_in_flight_request_finish() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let mut berth = Berth::start(dir.path());
    let addr = berth.base.trim_start_matches("http://").to_string();

    // A registration whose body arrives slowly: half now, half after the signal.
    let body = r#"{"username":"slowpoke","password":"Sl0w!but-steady"}"#;
    let (first, rest) = body.split_at(20);
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        conn,
        "POST /api/v1/auth/register HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{first}",
        body.len()
    )
    .unwrap();
    conn.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    berth.signal("TERM");
    berth.wait_for_log(|l| l.contains("shutting down"), Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(500));
    conn.write_all(rest.as_bytes()).unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 202"), "{response}");
    assert!(response.contains("slowpoke"), "{response}");

    let status = berth.wait(Duration::from_secs(10));
    assert!(status.success(), "clean exit after the request: {status}");
    // New connections are refused once it has stopped.
    assert!(std::net::TcpStream::connect(&addr).is_err());
    // The registration was committed before the database closed.
    let berth = Berth::start(dir.path());
    support::create_admin(dir.path(), "root", "Adm1n!chosen-well");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut admin = support::Browser::new(&berth);
        admin.sign_in("root", "Adm1n!chosen-well").await;
        let pending = support::json(admin.get("/admin/users?state=pending").await).await;
        assert_eq!(pending[0]["username"], "slowpoke");
    });
}
