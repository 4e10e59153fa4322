//! Plain HTTP calls: `/api/info` tells the page the addresses for the join commands.

use gloo_net::http::Request;
use socklab_protocol::ServerInfo;

/// Fetches `/api/info` (relative to the page).
pub async fn server_info() -> Result<ServerInfo, String> {
    let resp = Request::get("api/info")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !resp.ok() {
        return Err(format!("HTTP {}", resp.status()));
    }
    resp.json::<ServerInfo>().await.map_err(|e| e.to_string())
}
