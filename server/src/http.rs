//! The HTTP side: an axum app served by hyper with a bounded request head and a time limit on
//! it (slowloris), the Origin rule shared by both WebSocket endpoints, and the small JSON APIs.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use socklab_protocol::client_text::{origin_listed, origin_matches_host};
use socklab_protocol::{ServerInfo, WebTransportInfo};
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::shared::Shared;
use crate::{bridge, capture, metrics, monitor, proxy, static_files};

/// Both ends of an HTTP connection, put in every request's extensions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnAddrs {
    /// The client.
    pub peer: SocketAddr,
    /// The listener's address the client reached.
    pub local: SocketAddr,
}

/// The axum application: the page, the WebSocket endpoints and the APIs.
pub(crate) fn app(shared: Arc<Shared>) -> Router {
    let websockets = Router::new()
        .route("/ws", get(bridge::handler))
        .route("/api/events", get(monitor::handler))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            metrics::count_refusals,
        ));
    let mut app = Router::new();
    if shared.config.metrics.is_none() {
        app = app.route("/metrics", get(metrics::handler));
    }
    app.merge(websockets)
        .route("/healthz", get(healthz))
        .route("/api/sessions", get(sessions))
        .route("/api/sessions/{id}/pcap", get(capture::pcap_handler))
        .route("/api/info", get(info))
        .route("/api/webtransport", get(webtransport))
        .fallback_service(static_files::router(Arc::clone(&shared)))
        .with_state(shared)
}

/// `--metrics ADDR`: `/metrics` alone, on its own listener.
pub(crate) fn metrics_app(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/metrics", get(metrics::handler))
        .with_state(shared)
}

async fn healthz() -> &'static str {
    "ok"
}

async fn sessions(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    no_store(Json(shared.registry.snapshot()))
}

async fn info(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let list = |v: &[SocketAddr]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    no_store(Json(ServerInfo {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        tcp: list(&shared.addrs.tcp),
        udp: list(&shared.addrs.udp),
        banner: list(&shared.addrs.banner),
        upstream: shared.upstream.clone(),
        max_message: shared.config.max_message,
        instance: shared.registry.instance().map(str::to_owned),
        cluster: shared.cluster.as_ref().map(|c| c.info()),
        capture: shared.capture.is_some(),
    }))
}

/// `GET /api/webtransport`: the WebTransport URL and the certificate's SHA-256 (it changes
/// when the certificate is renewed, so pages ask before every connect). 404 when the endpoint
/// is off.
async fn webtransport(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let Some(wt) = shared.webtransport.as_ref() else {
        return (
            StatusCode::NOT_FOUND,
            "WebTransport is off on this server (--no-webtransport)\n",
        )
            .into_response();
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    no_store(Json(WebTransportInfo {
        url: wt.url(host),
        cert_sha256: wt.cert_sha256().to_vec(),
        udp_drop: shared.config.udp_drop.clamp(0.0, 100.0),
    }))
}

fn no_store(body: impl IntoResponse) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], body).into_response()
}

/// Accepts HTTP connections until shutdown. Plain HTTP connections finish their request at
/// shutdown; upgraded WebSockets are closed by their own tasks.
pub(crate) async fn serve(listener: TcpListener, app: Router, shared: Arc<Shared>) {
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
        let _ = stream.set_nodelay(true);
        // Like the raw TCP services: a client that vanished without a FIN (its WebSocket
        // holding a --max-connections slot) is found even when nothing is being sent.
        crate::shared::set_keepalive(&stream, shared.config.tcp_keepalive);
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
                addrs.peer = proxy::forwarded_client(req.headers(), addrs.peer, &shared.config);
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

/// The Origin rule of `/ws` and `/api/events`: a browser page may open them only from the
/// server's own origin (http or https with the Host the client used) or an origin listed with
/// `--allow-origin`. Tools that send no Origin are allowed: the rule stops cross-site
/// WebSocket hijacking by other web pages, not clients that could open a socket anyway.
pub(crate) fn check_origin(headers: &HeaderMap, shared: &Shared) -> Result<(), OriginRefused> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("").trim_end_matches('/');
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if origin_matches_host(origin, host) || origin_listed(origin, &shared.config.allow_origin) {
        Ok(())
    } else {
        tracing::warn!(origin, host, "WebSocket handshake refused: foreign Origin");
        Err(OriginRefused {
            origin: origin.to_owned(),
        })
    }
}

/// A handshake refused by the Origin rule; answered with 403.
#[derive(Debug)]
pub(crate) struct OriginRefused {
    origin: String,
}

impl IntoResponse for OriginRefused {
    fn into_response(self) -> Response {
        (
            StatusCode::FORBIDDEN,
            format!(
                "Origin {} is not allowed here (only this server's own origin and \
                 --allow-origin ones are)\n",
                self.origin
            ),
        )
            .into_response()
    }
}

/// The size of a request head as it came on the wire (request line, headers, blank line).
pub(crate) fn request_head_len(method: &Method, uri: &Uri, headers: &HeaderMap) -> u64 {
    let target = uri.path_and_query().map(|p| p.as_str().len()).unwrap_or(1);
    // "GET " + target + " HTTP/1.1\r\n"
    let line = method.as_str().len() + 1 + target + " HTTP/1.1\r\n".len();
    (line + headers_len(headers) + 2) as u64
}

/// The bytes of `name: value\r\n` for every header.
pub(crate) fn headers_len(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(k, v)| k.as_str().len() + 2 + v.len() + 2)
        .sum()
}
