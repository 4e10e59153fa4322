//! The built page: files from `--static-dir` with the right MIME types (`application/wasm`),
//! gzip, long caching for Trunk's hashed assets and none for `index.html`. No directory
//! listings, no path escapes (tower-http's `ServeDir` refuses `..`). When the page has not been
//! built yet, `/` says so and how to build it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use tower_http::compression::CompressionLayer;
use tower_http::services::ServeDir;

use crate::state::Shared;

/// The static-file service, used as the app's fallback.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let dir = shared.config.static_dir.clone();
    Router::new()
        .fallback_service(ServeDir::new(&dir).append_index_html_on_directories(true))
        .layer(middleware::from_fn_with_state(dir, headers_and_not_built))
        .layer(CompressionLayer::new())
}

async fn headers_and_not_built(State(dir): State<PathBuf>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if (path == "/" || path == "/index.html") && !dir.join("index.html").is_file() {
        return not_built(&dir);
    }
    let mut response = next.run(req).await;
    let cache = if response.status().is_success() && is_hashed_asset(&path) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// Trunk names built assets `name-<16 hex digits>.ext` (or `_bg.wasm`): their content never
/// changes under that name, so browsers may keep them for good.
fn is_hashed_asset(path: &str) -> bool {
    let file = path.rsplit('/').next().unwrap_or("");
    let stem = file.split('.').next().unwrap_or("");
    stem.split(['-', '_'])
        .any(|part| part.len() == 16 && part.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn not_built(dir: &Path) -> Response {
    let body = format!(
        "<!doctype html><meta charset=utf-8><title>socklab: page not built</title>\
         <body style=\"font:16px system-ui;max-width:40em;margin:3em auto\">\
         <h1>socklab is running, but its page has not been built</h1>\
         <p>No <code>index.html</code> in <code>{}</code>.</p>\
         <p>Build and serve it with <code>cargo xtask run</code>, or build it with \
         <code>trunk build --release</code> and pass <code>--static-dir dist</code>.</p>\
         <p>Everything else works now: <code>nc 127.0.0.1 21566</code>, \
         <code>/ws</code>, <code>/api/events</code>, <code>/api/sessions</code>.</p>",
        html_escape(&dir.display().to_string())
    );
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::CACHE_CONTROL, "no-cache")],
        Html(body),
    )
        .into_response()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_assets_are_recognised() {
        assert!(is_hashed_asset("/socklab-web-5c1f2b9d3a0e1f2a.js"));
        assert!(is_hashed_asset("/socklab-web-5c1f2b9d3a0e1f2a_bg.wasm"));
        assert!(!is_hashed_asset("/index.html"));
        assert!(!is_hashed_asset("/"));
    }
}
