//! Black-box tests of what hostile input may cost the server: a decompression bomb, a long
//! ingest that is deleted or interrupted by SIGTERM. Each reads the server's memory and CPU
//! from /proc, and bounds what the acceptance names (seconds, megabytes), not how fast it is.

use crate::support;

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::files::{cpu_ticks, docx_inflating_to, pdf_of_contents, status_kib};
use support::{create_admin, json, Berth, Browser};

const PW: &str = "Adm1n!chosen-well";

async fn signed_in(berth: &Berth) -> (Browser, String) {
    create_admin(&berth.data_dir, "root", PW);
    let mut me = Browser::new(berth);
    assert_eq!(me.sign_in("root", PW).await, StatusCode::OK);
    let c = json(me.post("/collections", json!({"name": "c"})).await).await;
    (me, c["id"].as_str().unwrap().to_string())
}

async fn upload(b: &Browser, collection: &str, name: &str, bytes: Vec<u8>) -> (u16, Value) {
    let resp = b.upload(collection, name, bytes).await;
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// A PDF whose text extraction takes tens of seconds: few objects (its structure parses fast),
/// pages dense with text operators.
fn slow_pdf() -> Vec<u8> {
    let ops = "(revenue costs outlook) Tj 0 -1 Td ".repeat(1_500);
    let pages: Vec<String> = (0..150)
        .map(|i| format!("BT /F1 18 Tf 72 700 Td (Page {i}) Tj {ops} ET"))
        .collect();
    pdf_of_contents(&pages)
}

/// Uploads the slow PDF and waits until the worker is busy extracting it, proving it with the
/// server's CPU use (a fixture that finished already would test nothing).
async fn busy_ingesting(berth: &Berth, me: &Browser, collection: &str) -> String {
    let (status, doc) = upload(me, collection, "report.pdf", slow_pdf()).await;
    assert_eq!(status, 202, "{doc}");
    let id = doc["id"].as_str().unwrap().to_string();
    let start = Instant::now();
    loop {
        let doc = json(me.get(&format!("/documents/{id}")).await).await;
        assert_ne!(
            doc["status"], "ready",
            "the fixture is too small to be interrupted"
        );
        if doc["status"] == "processing" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "never processed: {doc}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let used = cpu_over(berth.pid(), Duration::from_millis(500)).await;
    assert!(
        used >= 20,
        "extraction is not running ({used} ticks in 0.5 s)"
    );
    id
}

/// Clock ticks (1/100 s) of CPU the process used during `window`.
async fn cpu_over(pid: u32, window: Duration) -> u64 {
    let before = cpu_ticks(pid);
    tokio::time::sleep(window).await;
    cpu_ticks(pid) - before
}

#[tokio::test(flavor = "multi_thread")]
async fn a_docx_inflating_to_a_gigabyte_is_refused_within_seconds_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start(dir.path());
    let (me, collection) = signed_in(&berth).await;
    let bomb = docx_inflating_to("<w:p><w:r><w:t>aaaaaaaaaaaaaaaa</w:t></w:r></w:p>", 1 << 30);
    assert!(bomb.len() < 4 << 20, "a 1 GiB bomb of {} bytes", bomb.len());
    let rss_before = status_kib(berth.pid(), "VmRSS");
    let sent = Instant::now();
    let (status, body) = upload(&me, &collection, "bomb.docx", bomb).await;
    let took = sent.elapsed();
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["details"]["reason"], "over_budget", "{body}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let peak = status_kib(berth.pid(), "VmHWM");
    assert!(
        peak.saturating_sub(rss_before) < 100 << 10,
        "RSS grew from {rss_before} KiB to a peak of {peak} KiB"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_document_mid_ingest_stops_its_work_within_two_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start(dir.path());
    let (me, collection) = signed_in(&berth).await;
    let id = busy_ingesting(&berth, &me, &collection).await;
    let resp = me
        .send(Method::DELETE, &format!("/documents/{id}"), json!({}))
        .await;
    assert_eq!(resp.status(), 204);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let used = cpu_over(berth.pid(), Duration::from_secs(1)).await;
    assert!(
        used <= 10,
        "still working 2 s after the delete: {used} ticks in 1 s"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_long_ingest_exits_within_the_shutdown_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut berth = Berth::start_with(dir.path(), &["--shutdown-timeout", "2"], &[]);
    let (me, collection) = signed_in(&berth).await;
    busy_ingesting(&berth, &me, &collection).await;
    let signalled = Instant::now();
    berth.signal("TERM");
    let status = berth.wait(Duration::from_secs(15));
    let took = signalled.elapsed();
    assert!(status.success(), "{status}");
    // The timeout, plus a second to abandon blocking work, plus slack for a busy machine.
    assert!(took < Duration::from_secs(5), "exited after {took:?}");
}

/// Reads what the server sends until it closes the connection or `within` passes: (the bytes,
/// whether it closed).
fn read_until_closed(conn: &mut std::net::TcpStream, within: Duration) -> (String, bool) {
    use std::io::Read;
    conn.set_read_timeout(Some(within)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return (String::from_utf8_lossy(&got).into_owned(), true)
            }
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
        }
    }
}

#[test]
fn a_client_that_never_finishes_its_headers_is_cut_off() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start_with(dir.path(), &["--header-read-timeout", "1"], &[]);
    let addr = berth.base.trim_start_matches("http://").to_string();
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        conn,
        "POST /api/v1/auth/sign-in HTTP/1.1\r\nHost: {addr}\r\nX-Slow: "
    )
    .unwrap();
    let sent = Instant::now();
    let (_, closed) = read_until_closed(&mut conn, Duration::from_secs(5));
    assert!(closed, "still open after {:?}", sent.elapsed());
    assert!(
        sent.elapsed() < Duration::from_secs(4),
        "{:?}",
        sent.elapsed()
    );
}

#[test]
fn a_body_that_stalls_ends_its_request() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start_with(dir.path(), &["--body-read-timeout", "1"], &[]);
    let addr = berth.base.trim_start_matches("http://").to_string();
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        conn,
        "POST /api/v1/auth/register HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\n\r\n{{\"username\":"
    )
    .unwrap();
    let sent = Instant::now();
    let (response, _) = read_until_closed(&mut conn, Duration::from_secs(5));
    assert!(
        sent.elapsed() < Duration::from_secs(4),
        "{:?}",
        sent.elapsed()
    );
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(response.contains("body_read_timeout"), "{response}");
}

#[test]
fn connections_past_the_per_address_limit_are_closed_at_once() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start_with(dir.path(), &["--max-connections-per-address", "2"], &[]);
    let addr = berth.base.trim_start_matches("http://").to_string();
    let held: Vec<_> = (0..2)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut third = std::net::TcpStream::connect(&addr).unwrap();
    let _ = write!(third, "GET /health HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let (response, closed) = read_until_closed(&mut third, Duration::from_secs(3));
    assert!(closed && response.is_empty(), "{response}");
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    let mut again = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        again,
        "GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let (response, _) = read_until_closed(&mut again, Duration::from_secs(3));
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_rejected_large_bodies_leave_memory_where_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start(dir.path());
    let http = reqwest::Client::new();
    let url = berth.url("/api/v1/auth/register");
    let body = format!(r#"{{"username":"{}"}}"#, "x".repeat((2 << 20) + 1024));
    let send = |n: usize| {
        let (http, url, body) = (http.clone(), url.clone(), body.clone());
        async move {
            for _ in 0..n {
                // Chunked, with no Content-Length to refuse it by: the server reads up to its
                // limit before it can say no.
                let chunks: Vec<Result<Vec<u8>, std::io::Error>> = body
                    .as_bytes()
                    .chunks(64 << 10)
                    .map(|c| Ok(c.to_vec()))
                    .collect();
                let resp = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                        chunks,
                    )))
                    .send()
                    .await;
                if let Ok(resp) = resp {
                    assert_eq!(resp.status(), 413);
                }
            }
        }
    };
    // Warm up: the allocator's arenas and the runtime's buffers reach their working size.
    futures_util::future::join_all((0..4).map(|_| send(25))).await;
    let before = status_kib(berth.pid(), "VmRSS");
    futures_util::future::join_all((0..4).map(|_| send(250))).await;
    let after = status_kib(berth.pid(), "VmRSS");
    eprintln!("RSS {before} KiB → {after} KiB after 1,000 rejected 2 MiB bodies");
    assert!(
        after.saturating_sub(before) < 20 << 10,
        "RSS grew from {before} KiB to {after} KiB"
    );
}
