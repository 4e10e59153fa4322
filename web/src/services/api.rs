//! Plain HTTP calls, each read into its type from `socklab-protocol`: `/api/info` (addresses
//! for the join commands) and `/api/webtransport` (where and how to open WebTransport).
//!
//! One `fetch` through web-sys is all the page needs, so it does without an HTTP client crate.

use socklab_protocol::{ServerInfo, WebTransportInfo};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use super::json;

/// Fetches `api/info` (relative to the page, so it also works under a path prefix).
pub async fn server_info() -> Result<ServerInfo, String> {
    let text = get_text("api/info").await?;
    let value = json::parse(&text).map_err(|e| format!("GET api/info: {e}"))?;
    json::server_info(&value).map_err(|e| format!("GET api/info: {e}"))
}

/// Fetches `api/webtransport`: the endpoint's URL and certificate hash, and `--udp-drop`.
pub async fn webtransport_info() -> Result<WebTransportInfo, String> {
    let text = get_text("api/webtransport").await?;
    let value = json::parse(&text).map_err(|e| format!("GET api/webtransport: {e}"))?;
    json::webtransport_info(&value).map_err(|e| format!("GET api/webtransport: {e}"))
}

/// The body of `GET path`, or why not (naming the path).
async fn get_text(path: &str) -> Result<String, String> {
    // The same texts as `{:?}` of a `&str`, whose `Debug` (Unicode escaping) cost 1.4 KB of wasm.
    let fail = |e: &JsValue| format!("GET {path}: {e:?}");
    let failed = |what: &str| format!("GET {path}: \"{what}\"");
    let window = web_sys::window().ok_or_else(|| failed("no window"))?;
    let init = web_sys::RequestInit::new();
    init.set_cache(web_sys::RequestCache::NoStore);
    let resp = JsFuture::from(window.fetch_with_str_and_init(path, &init))
        .await
        .map_err(|e| fail(&e))?
        .dyn_into::<web_sys::Response>()
        .map_err(|_| failed("not a response"))?;
    if !resp.ok() {
        return Err(format!("GET {path}: HTTP {}", resp.status()));
    }
    JsFuture::from(resp.text().map_err(|e| fail(&e))?)
        .await
        .map_err(|e| fail(&e))?
        .as_string()
        .ok_or_else(|| failed("the body is not text"))
}
