//! The HTTP side: health, the JSON APIs, and the page's static files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use socklab_protocol::{ServerInfo, SessionsSnapshot};
use socklab_tests::{LineClient, http, start_server, start_server_with};

#[tokio::test]
async fn healthz_says_ok() {
    let server = start_server().await;
    let r = http::get(server.addrs.http[0], "/healthz", &[]).await;
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    server.stop().await;
}

#[tokio::test]
async fn sessions_lists_open_sessions_with_their_bytes() {
    let server = start_server().await;
    let mut c = LineClient::connect(server.addrs.tcp[0]).await;
    c.send(b"count me\n").await;
    c.line().await;
    let r = http::get(server.addrs.http[0], "/api/sessions", &[]).await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap_or("")
            .starts_with("application/json")
    );
    let snap: SessionsSnapshot = serde_json::from_slice(&r.body).unwrap();
    let tcp: Vec<_> = snap
        .sessions
        .iter()
        .filter(|s| s.kind == socklab_protocol::SessionKind::Tcp)
        .collect();
    assert_eq!(tcp.len(), 1);
    assert_eq!(tcp[0].bytes_in, 9);
    server.stop().await;
}

#[tokio::test]
async fn info_names_the_listeners_for_the_join_commands() {
    let server = start_server().await;
    let r = http::get(server.addrs.http[0], "/api/info", &[]).await;
    let info: ServerInfo = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(info.tcp, vec![server.addrs.tcp[0].to_string()]);
    assert_eq!(info.upstream, server.addrs.tcp[0].to_string());
    assert_eq!(info.max_message, 65_536);
    server.stop().await;
}

#[tokio::test]
async fn an_unbuilt_page_says_how_to_build_it() {
    let server = start_server().await;
    let r = http::get(server.addrs.http[0], "/", &[]).await;
    assert_eq!(r.status, 503);
    assert!(r.text().contains("cargo xtask run"), "{}", r.text());
    server.stop().await;
}

fn page_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("socklab-page-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(
        dir.join("index.html"),
        "<!doctype html><title>socklab</title>",
    )
    .unwrap();
    // Big and repetitive enough to be worth compressing.
    std::fs::write(
        dir.join("socklab-web-0123456789abcdef_bg.wasm"),
        vec![0u8; 4096],
    )
    .unwrap();
    std::fs::write(
        dir.join("socklab-web-0123456789abcdef.js"),
        "export {};\n".repeat(200),
    )
    .unwrap();
    dir
}

#[tokio::test]
async fn the_page_is_served_with_types_caching_and_gzip() {
    let dir = page_dir();
    let server = start_server_with(|c| c.static_dir = dir.clone()).await;
    let http = server.addrs.http[0];

    let index = http::get(http, "/", &[]).await;
    assert_eq!(index.status, 200);
    assert!(
        index
            .header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(index.header("cache-control"), Some("no-cache"));

    let wasm = http::get(
        http,
        "/socklab-web-0123456789abcdef_bg.wasm",
        &[("Accept-Encoding", "gzip")],
    )
    .await;
    assert_eq!(wasm.status, 200);
    assert_eq!(wasm.header("content-type"), Some("application/wasm"));
    assert_eq!(wasm.header("content-encoding"), Some("gzip"));
    assert!(
        wasm.body.len() < 4096,
        "gzip shrank 4 KiB of zeros to {}",
        wasm.body.len()
    );
    assert!(wasm.header("cache-control").unwrap().contains("immutable"));

    let js = http::get(http, "/socklab-web-0123456789abcdef.js", &[]).await;
    assert!(js.header("content-type").unwrap().contains("javascript"));
    assert_eq!(
        js.header("content-encoding"),
        None,
        "no gzip unless asked for"
    );

    // No directory listings; no escapes.
    assert_eq!(http::get(http, "/sub/", &[]).await.status, 404);
    assert_eq!(http::get(http, "/../../etc/passwd", &[]).await.status, 404);
    assert_eq!(
        http::get(http, "/%2e%2e/%2e%2e/etc/passwd", &[])
            .await
            .status,
        404
    );
    server.stop().await;
}
