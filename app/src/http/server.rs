//! The HTTP server loop: accept, cap, serve each connection with hyper, drain on stop.
//!
//! Written out instead of `axum::serve` because that one has no timer, so a client that sends
//! half its headers holds its connection for ever, and it takes every connection it is
//! offered. Here a connection must send its headers within `header_read_timeout`, and there
//! are at most `max_connections` of them, `max_connections_per_address` from one address; one
//! past either is closed at once, before a byte is read.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::pin::pin;
use std::sync::{Arc, Mutex};

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::domain::settings::ConnectionLimits;

/// Serves `app` on `listener` until `stop` turns true; then stops accepting, lets every open
/// connection finish its request, and returns once they are all closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) {
    let open = Arc::new(Mutex::new(Open::default()));
    // Every connection holds a receiver: `closed()` resolves once the last one is gone.
    let (all_closed_tx, all_closed_rx) = watch::channel(());
    let (drain_tx, drain_rx) = watch::channel(false);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, mostly: wait rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = async { let _ = stop.wait_for(|stop| *stop).await; } => break,
        };
        let Some(slot) = Slot::take(&open, peer.ip(), &limits) else {
            tracing::debug!(%peer, "connection refused: over the connection limit");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service =
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let mut req = req.map(axum::body::Body::new);
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                let mut app = app.clone();
                async move {
                    use tower::Service as _;
                    Ok::<_, Infallible>(app.call(req).await.unwrap_or_else(|e| match e {}))
                }
            });
        let (all_closed, mut drain) = (all_closed_rx.clone(), drain_rx.clone());
        let header_read_timeout = limits.header_read_timeout;
        tokio::spawn(async move {
            let _slot = slot;
            let _all_closed = all_closed;
            let mut conn = pin!(hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout)
                .serve_connection(TokioIo::new(stream), service));
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, %peer, "connection ended with an error");
                    }
                }
                () = async { let _ = drain.wait_for(|drain| *drain).await; } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    drop(all_closed_rx);
    let _ = drain_tx.send(true);
    all_closed_tx.closed().await;
}

/// Open connections, in all and per address.
#[derive(Default)]
struct Open {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// One open connection's place under the limits; given back when dropped.
struct Slot {
    open: Arc<Mutex<Open>>,
    address: IpAddr,
}

impl Slot {
    fn take(open: &Arc<Mutex<Open>>, address: IpAddr, limits: &ConnectionLimits) -> Option<Slot> {
        let mut o = open
            .lock()
            .expect("never poisoned: no panics under the lock");
        let from_address = o.by_address.get(&address).copied().unwrap_or(0);
        if o.total >= limits.max_connections || from_address >= limits.max_connections_per_address {
            return None;
        }
        o.total += 1;
        *o.by_address.entry(address).or_insert(0) += 1;
        Some(Slot {
            open: open.clone(),
            address,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut o = self
            .open
            .lock()
            .expect("never poisoned: no panics under the lock");
        o.total -= 1;
        if let Some(n) = o.by_address.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                o.by_address.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_count_in_all_and_per_address_and_come_back() {
        let limits = ConnectionLimits {
            max_connections: 3,
            max_connections_per_address: 2,
            header_read_timeout: std::time::Duration::from_secs(10),
            body_read_timeout: std::time::Duration::from_secs(30),
            request_timeout: std::time::Duration::from_secs(60),
        };
        let open = Arc::new(Mutex::new(Open::default()));
        let (a, b) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let a1 = Slot::take(&open, a, &limits).unwrap();
        let _a2 = Slot::take(&open, a, &limits).unwrap();
        assert!(Slot::take(&open, a, &limits).is_none(), "per address");
        let _b1 = Slot::take(&open, b, &limits).unwrap();
        assert!(Slot::take(&open, b, &limits).is_none(), "in all");
        drop(a1);
        assert!(Slot::take(&open, b, &limits).is_some(), "given back");
    }
}
