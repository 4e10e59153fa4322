//! The small JSON APIs: `/healthz`, `/api/sessions`, `/api/info`, `/api/webtransport`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use socklab_protocol::{ServerInfo, WebTransportInfo};

use crate::state::Shared;

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn sessions(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    no_store(Json(shared.registry.snapshot()))
}

pub async fn info(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
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
        capture_stats: shared.capture.as_ref().map(|c| c.stats.snapshot()),
    }))
}

/// `GET /api/webtransport`: the WebTransport URL and the certificate's SHA-256 (it changes
/// when the certificate is renewed, so pages ask before every connect). 404 when the endpoint
/// is off.
pub async fn webtransport(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
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
