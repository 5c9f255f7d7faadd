//! An idle server: its memory and the latency and throughput of `/health`.

use super::*;

pub(crate) async fn idle_and_health(args: &Args, figures: &mut Vec<Figure>) -> Result<()> {
    let dir = tempdir("idle")?;
    let t = Instant::now();
    let server = start(args, &dir, &[]).await?;
    figures.push(Figure {
        name: "process start → ready".into(),
        value: t.elapsed().as_secs_f64() * 1000.0,
        unit: "ms",
        how: "fresh data dir, embedded store, until GET /ready is 200".into(),
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    figures.push(Figure {
        name: "idle RSS".into(),
        value: rss_kib(server.child.id()) / 1024.0,
        unit: "MiB",
        how: "VmRSS 2 s after start, embedded store, no models".into(),
    });
    let secs = if args.quick { 5 } else { 10 };
    if which("wrk") {
        let out = Command::new("wrk")
            .args([
                "-t2",
                "-c64",
                &format!("-d{secs}s"),
                "--latency",
                &format!("{}/health", server.base),
            ])
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let load = Wrk::parse(&text);
        let how = format!("wrk -t2 -c64 -d{secs}s on the same 2 cores as the server");
        for (name, value, unit) in [
            ("/health throughput, 64 connections", load.rps, "req/s"),
            ("/health latency at 64 connections, p50", load.p50_ms, "ms"),
            ("/health latency at 64 connections, p99", load.p99_ms, "ms"),
        ] {
            figures.push(Figure {
                name: name.into(),
                value,
                unit,
                how: how.clone(),
            });
        }
        figures.push(Figure {
            name: "RSS after /health load".into(),
            value: rss_kib(server.child.id()) / 1024.0,
            unit: "MiB",
            how: "VmRSS right after the wrk run".into(),
        });
    } else {
        eprintln!("bench: wrk not found; /health throughput skipped (apt-get install wrk)");
    }
    Ok(())
}
