//! Plain HTTP calls: `/api/info` tells the page the addresses for the join commands.
//!
//! One `fetch` through web-sys is all the page needs, so it does without an HTTP client crate.

use socklab_protocol::ServerInfo;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// Fetches `api/info` (relative to the page, so it also works under a path prefix).
pub async fn server_info() -> Result<ServerInfo, String> {
    let window = web_sys::window().ok_or("no window")?;
    let resp = JsFuture::from(window.fetch_with_str("api/info"))
        .await
        .map_err(|e| format!("{e:?}"))?
        .dyn_into::<web_sys::Response>()
        .map_err(|_| "not a response")?;
    if !resp.ok() {
        return Err(format!("HTTP {}", resp.status()));
    }
    let text = JsFuture::from(resp.text().map_err(|e| format!("{e:?}"))?)
        .await
        .map_err(|e| format!("{e:?}"))?
        .as_string()
        .unwrap_or_default();
    serde_json::from_str(&text).map_err(|e| e.to_string())
}
