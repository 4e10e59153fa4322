//! `GET /metrics` (on the HTTP listeners, or alone with `--metrics ADDR`), the periodic
//! histogram upkeep, and the layer that counts refused WebSocket handshakes. The counters
//! themselves are `metrics.rs`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::metrics::{Refusal, UPKEEP};
use crate::state::Shared;

/// Folds histogram samples into buckets every [`UPKEEP`] until shutdown.
pub(crate) async fn upkeep(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(UPKEEP);
    loop {
        tokio::select! {
            () = shared.shutdown.cancelled() => return,
            _ = every.tick() => shared.registry.metrics().upkeep(),
        }
    }
}

/// `GET /metrics`.
pub(crate) async fn handler(State(shared): State<Arc<Shared>>) -> Response {
    if let Some(capture) = &shared.capture {
        shared.registry.metrics().capture(capture.stats.snapshot());
    }
    let body = shared.registry.render_metrics(&shared.runtimes.accepted());
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// Counts the WebSocket handshakes `/ws` and `/api/events` refused, by their answer: a
/// response layer, so the handlers need no hook of their own.
pub(crate) async fn count_refusals(
    State(shared): State<Arc<Shared>>,
    uri: axum::http::Uri,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let endpoint = if uri.path() == "/ws" {
        "/ws"
    } else {
        "/api/events"
    };
    let response = next.run(request).await;
    let why = match response.status() {
        StatusCode::FORBIDDEN => Some(Refusal::Origin),
        StatusCode::SERVICE_UNAVAILABLE => Some(Refusal::Limit),
        s if s.is_client_error() => Some(Refusal::BadRequest),
        _ => None,
    };
    if let Some(why) = why {
        shared.registry.metrics().refused(why, endpoint);
    }
    response
}
