//! `--threads N`: N single-threaded runtimes, each with its own `SO_REUSEPORT` copy of the
//! listeners. Sessions land on every runtime (on the one port that port 0 gave them all), yet
//! the connection limit counts across all of them, shutdown closes the sessions of every one,
//! and another server cannot slip onto the ports through `SO_REUSEPORT`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use socklab_server::{RunningServer, ServerError};
use socklab_tests::http;
use socklab_tests::raw::{wait_until, ws_request};
use socklab_tests::{
    LineClient, TIMEOUT, Ws, assert_stamped, next_message, send_text, start_server_with, ws_connect,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Opens `n` echo sessions, each answered once (so each is open and served).
async fn echo_sessions(server: &RunningServer, n: usize) -> Vec<LineClient> {
    let mut held = Vec::new();
    for i in 0..n {
        let mut c = LineClient::connect(server.addrs.tcp[0]).await;
        let msg = format!("held {i}\n");
        c.send(msg.as_bytes()).await;
        assert_stamped(&c.line().await, msg.as_bytes());
        held.push(c);
    }
    held
}

/// Every runtime accepted at least one connection (of the `n` asked for).
fn assert_spread(accepted: &[u64], runtimes: usize) {
    assert_eq!(accepted.len(), runtimes, "{accepted:?}");
    assert!(
        accepted.iter().all(|&a| a > 0),
        "every runtime serves some connections: {accepted:?}"
    );
}

#[tokio::test]
async fn sessions_spread_over_runtimes_and_the_limit_counts_across_them() {
    let server = start_server_with(|c| {
        c.threads = Some(2);
        c.max_connections = 24;
    })
    .await;
    // 24 connections on one port: the chance that the kernel's hash puts them all on one
    // runtime is 2^-23.
    let mut held = echo_sessions(&server, 24).await;
    let accepted = server.accepted_per_runtime();
    assert_spread(&accepted, 2);
    // /metrics tells the spread too (its own HTTP connection is counted once more).
    let metrics = http::get(server.addrs.http[0], "/metrics", &[])
        .await
        .text();
    let on_second = metrics
        .lines()
        .find_map(|l| l.strip_prefix(r#"socklab_runtime_connections_accepted_total{runtime="1"} "#))
        .and_then(|n| n.parse::<u64>().ok())
        .expect("runtime 1's counter");
    assert!(on_second >= accepted[1], "{metrics}");
    // Over the limit on whichever runtime accepts it: closed at once, unanswered.
    for _ in 0..6 {
        let mut s = TcpStream::connect(server.addrs.tcp[0]).await.unwrap();
        let _ = s.write_all(b"let me in\n").await;
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
            .await
            .expect("closed at once")
            .unwrap_or(0);
        assert_eq!(n, 0, "{:?}", String::from_utf8_lossy(&buf[..n]));
    }
    let http = server.addrs.http[0];
    let (status, _) = http::send(http, ws_request(http, "/ws", "").as_bytes()).await;
    assert_eq!(status, 503);
    // Slots freed on either runtime serve new sessions on any.
    held.truncate(20);
    wait_until(TIMEOUT, "4 sessions to close", || {
        server.registry.len() <= 20
    })
    .await;
    let mut more = echo_sessions(&server, 2).await;
    let mut ws = ws_connect(&server, "/ws", &[]).await.unwrap();
    send_text(&mut ws, "across runtimes").await;
    let reply = next_message(&mut ws).await.unwrap().into_text().unwrap();
    assert_stamped(reply.as_bytes(), b"across runtimes");
    more.append(&mut held);
    drop(more);
    server.stop().await;
}

#[tokio::test]
async fn shutdown_closes_the_sessions_of_every_runtime() {
    let server = start_server_with(|c| c.threads = Some(3)).await;
    let mut tcp = echo_sessions(&server, 30).await;
    assert_spread(&server.accepted_per_runtime(), 3);
    let mut ws: Vec<Ws> = Vec::new();
    for i in 0..30 {
        let mut w = ws_connect(&server, "/ws", &[]).await.unwrap();
        let msg = format!("bridged {i}");
        send_text(&mut w, &msg).await;
        let reply = next_message(&mut w).await.unwrap().into_text().unwrap();
        assert_stamped(reply.as_bytes(), msg.as_bytes());
        ws.push(w);
    }
    let registry = std::sync::Arc::clone(&server.registry);
    assert_eq!(
        registry.len(),
        90,
        "30 echo, 30 WebSocket, 30 upstream sessions"
    );
    server.stop().await;
    // Every echo client hears the end of its connection, every browser a 1001.
    for c in &mut tcp {
        let mut rest = Vec::new();
        tokio::time::timeout(TIMEOUT, c.reader.read_to_end(&mut rest))
            .await
            .expect("the echo closes")
            .unwrap();
        assert!(rest.is_empty(), "{rest:?}");
    }
    for w in &mut ws {
        let (code, _) = next_message(w)
            .await
            .expect_err("closed by the server")
            .unwrap();
        assert_eq!(code, 1001);
    }
    assert!(registry.is_empty(), "{:?}", registry.snapshot());
}

#[tokio::test]
async fn another_server_cannot_share_the_ports_of_a_running_one() {
    let first = start_server_with(|c| c.threads = Some(2)).await;
    let taken = first.addrs.tcp[0];
    let mut config = socklab_server::Config::for_tests();
    config.threads = Some(2);
    config.tcp = vec![taken];
    let Err(err) = socklab_server::start(config).await else {
        panic!("a second server bound {taken} beside the first");
    };
    assert!(
        matches!(err, ServerError::Bind { service: "tcp echo", addr, .. } if addr == taken),
        "{err}"
    );
    // The first still serves.
    let mut c = LineClient::connect(taken).await;
    c.send(b"still mine\n").await;
    assert_stamped(&c.line().await, b"still mine\n");
    first.stop().await;
}
