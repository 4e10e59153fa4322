//! Every URL the HTTP listeners answer, in one table: the WebSocket endpoints (`ws/`), the
//! APIs and the page (`http/`).

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use crate::http::{api, metrics, pcap, static_files};
use crate::state::Shared;
use crate::ws::{bridge, monitor};

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
        .route("/healthz", get(api::healthz))
        .route("/api/sessions", get(api::sessions))
        .route("/api/sessions/{id}/pcap", get(pcap::pcap_handler))
        .route("/api/info", get(api::info))
        .route("/api/webtransport", get(api::webtransport))
        .fallback_service(static_files::router(Arc::clone(&shared)))
        .with_state(shared)
}

/// `--metrics ADDR`: `/metrics` alone, on its own listener.
pub(crate) fn metrics_app(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/metrics", get(metrics::handler))
        .with_state(shared)
}
