//! `berth healthcheck`: asks a running server's `/health` and exits 0 on `200 OK`, else 1.
//!
//! For container health checks (`HEALTHCHECK`, compose `healthcheck`, Kubernetes `exec` probes)
//! in images that carry no curl or shell: one plain HTTP/1.1 request over a `TcpStream`, the
//! whole exchange bounded by [`TIMEOUT`]. Only `http://` URLs: the check runs next to the
//! server, inside its container.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use berth::cli::HealthcheckArgs;

/// Everything (resolve, connect, request, status line) must be done within this.
pub const TIMEOUT: Duration = Duration::from_secs(3);

pub fn run(args: &HealthcheckArgs) -> ExitCode {
    let url = args
        .url
        .clone()
        .unwrap_or_else(|| default_url(std::env::var("BERTH_LISTEN").ok().as_deref()));
    match check(&url, TIMEOUT) {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("berth healthcheck: {url}: {why}");
            ExitCode::FAILURE
        }
    }
}

/// `/health` on the listen address, asked where the server can be reached from inside.
pub fn default_url(listen: Option<&str>) -> String {
    let fallback = "http://127.0.0.1:8080/health".to_string();
    let Some(addr) = listen.and_then(|l| l.trim().parse::<SocketAddr>().ok()) else {
        return fallback;
    };
    let port = addr.port();
    match addr {
        SocketAddr::V4(v4) if v4.ip().is_unspecified() => format!("http://127.0.0.1:{port}/health"),
        SocketAddr::V4(v4) => format!("http://{}:{port}/health", v4.ip()),
        SocketAddr::V6(v6) if v6.ip().is_unspecified() => format!("http://[::1]:{port}/health"),
        SocketAddr::V6(v6) => format!("http://[{}]:{port}/health", v6.ip()),
    }
}

/// `Ok` when the server answers `200` in time; otherwise why not, in a few words.
pub fn check(url: &str, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let (host, path) = split_url(url)?;
    let addrs: Vec<SocketAddr> = host
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    let mut last_error = format!("{host} resolves to no address");
    let mut stream = None;
    for addr in addrs {
        let left = remaining(deadline, timeout)?;
        match TcpStream::connect_timeout(&addr, left) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_error = format!("cannot connect to {addr}: {e}"),
        }
    }
    let mut stream = stream.ok_or(last_error)?;
    stream
        .set_write_timeout(Some(remaining(deadline, timeout)?))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: berth-healthcheck\r\n\
         Accept: */*\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("sending the request: {e}"))?;
    // Read until the status line is complete; the rest of the answer does not matter.
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.contains(&b'\n') {
        stream
            .set_read_timeout(Some(remaining(deadline, timeout)?))
            .map_err(|e| e.to_string())?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::Interrupted) => {}
            Err(e) => {
                return Err(format!(
                    "no answer within {:.1}s ({e})",
                    timeout.as_secs_f64()
                ))
            }
        }
        if head.len() > 8192 {
            break;
        }
    }
    let text = String::from_utf8_lossy(&head);
    let status_line = text.lines().next().unwrap_or("").trim();
    let mut parts = status_line.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some(version), Some("200")) if version.starts_with("HTTP/1.") => Ok(()),
        (Some(version), Some(code)) if version.starts_with("HTTP/") => {
            Err(format!("answered {code}, expected 200"))
        }
        _ if status_line.is_empty() => Err("the connection closed without an answer".into()),
        _ => Err(format!("not an HTTP answer: {status_line:?}")),
    }
}

fn remaining(deadline: Instant, timeout: Duration) -> Result<Duration, String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(format!("no answer within {:.1}s", timeout.as_secs_f64()))
    } else {
        Ok(left)
    }
}

/// `http://HOST[:PORT][/PATH]` → (`HOST:PORT`, `/PATH`).
fn split_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| "only http:// URLs can be checked".to_string())?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err("the URL has no host".into());
    }
    // A port is present if the authority ends in `:digits` outside IPv6 brackets.
    let has_port = !authority.ends_with(']')
        && authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let host = if has_port {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Ok((host, path.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn serve_once(answer: &'static [u8]) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = listener.accept() {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
                let _ = s.write_all(answer);
            }
        });
        format!("http://{addr}/health")
    }

    #[test]
    fn ok_on_200() {
        let url = serve_once(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}");
        assert_eq!(check(&url, TIMEOUT), Ok(()));
    }

    #[test]
    fn fails_on_other_statuses_and_garbage() {
        let url = serve_once(b"HTTP/1.1 503 Service Unavailable\r\n\r\n");
        assert!(check(&url, TIMEOUT).unwrap_err().contains("503"));
        let url = serve_once(b"SSH-2.0-OpenSSH\r\n");
        assert!(check(&url, TIMEOUT)
            .unwrap_err()
            .contains("not an HTTP answer"));
    }

    #[test]
    fn fails_when_nothing_listens() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = check(&format!("http://127.0.0.1:{port}/health"), TIMEOUT).unwrap_err();
        assert!(err.contains("cannot connect"), "{err}");
    }

    #[test]
    fn a_silent_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/health", listener.local_addr().unwrap());
        let started = Instant::now();
        let err = check(&url, Duration::from_millis(300)).unwrap_err();
        assert!(err.contains("no answer"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
        drop(listener);
    }

    #[test]
    fn default_url_follows_the_listen_address() {
        assert_eq!(default_url(None), "http://127.0.0.1:8080/health");
        assert_eq!(
            default_url(Some("0.0.0.0:9000")),
            "http://127.0.0.1:9000/health"
        );
        assert_eq!(default_url(Some("[::]:8080")), "http://[::1]:8080/health");
        assert_eq!(
            default_url(Some("10.1.2.3:80")),
            "http://10.1.2.3:80/health"
        );
        assert_eq!(
            default_url(Some("nonsense")),
            "http://127.0.0.1:8080/health"
        );
    }

    #[test]
    fn urls_split_into_host_and_path() {
        assert_eq!(
            split_url("http://127.0.0.1:8080/health").unwrap(),
            ("127.0.0.1:8080".into(), "/health".into())
        );
        assert_eq!(
            split_url("http://app").unwrap(),
            ("app:80".into(), "/".into())
        );
        assert_eq!(
            split_url("http://[::1]:81/x").unwrap(),
            ("[::1]:81".into(), "/x".into())
        );
        assert_eq!(
            split_url("http://[::1]/x").unwrap(),
            ("[::1]:80".into(), "/x".into())
        );
        assert!(split_url("https://x/").is_err());
    }
}
