//! Serving HTTP: hyper with a bounded request head and a time limit on it (slowloris), each
//! request told both ends of its connection ([`ConnAddrs`], the client behind a trusted proxy
//! with `--forwarded-for`), graceful at shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::http::access::{ConnAddrs, forwarded_client};
use crate::state::Shared;

/// Accepts HTTP connections until shutdown. Plain HTTP connections finish their request at
/// shutdown; upgraded WebSockets are closed by their own tasks.
pub async fn serve(listener: TcpListener, app: Router, shared: Arc<Shared>) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(shared.config.header_timeout())
        // A head over the limit gets 431. hyper panics on a bound under 8 KiB: the flag
        // refuses one, and `max` keeps a `Config` built in code from reaching hyper with it.
        .max_buf_size(shared.config.max_header.max(crate::config::MIN_MAX_HEADER));
    let listen_addr = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    loop {
        let (stream, peer) = tokio::select! {
            () = shared.shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    tracing::warn!(addr = %listen_addr, cause = %err, "http accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        shared.runtimes.accepted_here();
        let _ = stream.set_nodelay(true);
        // Like the raw TCP services: a client that vanished without a FIN (its WebSocket
        // holding a --max-connections slot) is found even when nothing is being sent.
        crate::net::listen::set_keepalive(&stream, shared.config.tcp_keepalive);
        let addrs = ConnAddrs {
            peer,
            local: stream.local_addr().unwrap_or(listen_addr),
        };
        let app = app.clone();
        let forwarded = shared.config.forwarded_for.then(|| Arc::clone(&shared));
        let service = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
            let mut addrs = addrs;
            if let Some(shared) = &forwarded {
                // Behind a trusted proxy: the client it names (per request, as proxies reuse
                // connections for many clients).
                addrs.peer = forwarded_client(req.headers(), addrs.peer, &shared.config);
            }
            req.extensions_mut().insert(addrs);
            app.clone().oneshot(req.map(axum::body::Body::new))
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let token = shared.shutdown.clone();
        shared.tracker.spawn(async move {
            tokio::pin!(conn);
            let result = tokio::select! {
                result = conn.as_mut() => result,
                () = token.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(err) = result {
                tracing::debug!(%peer, cause = %err, "http connection ended with an error");
            }
        });
    }
}
