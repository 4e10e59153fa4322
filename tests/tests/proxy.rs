//! Behind a load balancer: the PROXY protocol on the TCP listeners and `X-Forwarded-For` on
//! HTTP name the real client, and are believed only from trusted proxies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;

use socklab_protocol::{MonitorEvent, SessionKind};
use socklab_tests::{
    LineClient, Monitor, TIMEOUT, assert_stamped, next_message, send_text, start_server_with,
    ws_connect,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;

/// A PROXY v2 header for a TCP/IPv4 connection from `client` to `server`.
fn v2_header(client: SocketAddr, server: SocketAddr) -> Vec<u8> {
    let (SocketAddr::V4(c), SocketAddr::V4(s)) = (client, server) else {
        panic!("IPv4 only here");
    };
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend_from_slice(&[0x21, 0x11, 0, 12]);
    h.extend_from_slice(&c.ip().octets());
    h.extend_from_slice(&s.ip().octets());
    h.extend_from_slice(&c.port().to_be_bytes());
    h.extend_from_slice(&s.port().to_be_bytes());
    h
}

/// Reads until the server closes; the bytes it sent.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut got))
        .await
        .expect("closed in time");
    got
}

#[tokio::test]
async fn a_proxy_v2_header_names_the_client_on_sessions_and_the_monitor() {
    let server = start_server_with(|c| c.proxy_protocol = true).await;
    let mut monitor = Monitor::connect(&server).await;
    let echo = server.addrs.tcp[0];
    let client: SocketAddr = "203.0.113.7:51000".parse().unwrap();
    let mut c = LineClient::connect(echo).await;
    // The header and the first line in one write: not a byte of the line may be lost.
    let mut first = v2_header(client, echo);
    first.extend_from_slice(b"hello\n");
    c.send(&first).await;
    assert_stamped(&c.line().await, b"hello\n");
    let opened = monitor
        .wait_for(|e| matches!(e, MonitorEvent::SessionOpened(o) if o.kind == SessionKind::Tcp))
        .await;
    let MonitorEvent::SessionOpened(opened) = opened else {
        unreachable!()
    };
    assert_eq!(opened.peer, "203.0.113.7:51000");
    assert_eq!(
        server.registry.snapshot().sessions[0].peer,
        "203.0.113.7:51000"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_proxy_v1_header_works_for_the_echo_and_the_banner() {
    let server = start_server_with(|c| c.proxy_protocol = true).await;
    let mut c = LineClient::connect(server.addrs.tcp[0]).await;
    c.send(b"PROXY TCP4 198.51.100.4 127.0.0.1 40000 21566\r\n")
        .await;
    c.send(b"hi\n").await;
    assert_stamped(&c.line().await, b"hi\n");
    assert_eq!(
        server.registry.snapshot().sessions[0].peer,
        "198.51.100.4:40000"
    );

    // The banner answers at once either way; the session's peer says the header was read.
    let mut monitor = Monitor::connect(&server).await;
    let mut banner = TcpStream::connect(server.addrs.banner[0]).await.unwrap();
    banner
        .write_all(b"PROXY TCP4 198.51.100.5 127.0.0.1 40001 9001\r\n")
        .await
        .unwrap();
    assert_eq!(
        read_to_close(&mut banner).await,
        "欢迎访问菜鸟教程!\r\n".as_bytes()
    );
    let opened = monitor
        .wait_for(|e| matches!(e, MonitorEvent::SessionOpened(o) if o.kind == SessionKind::Banner))
        .await;
    let MonitorEvent::SessionOpened(opened) = opened else {
        unreachable!()
    };
    assert_eq!(opened.peer, "198.51.100.5:40001");
    server.stop().await;
}

#[tokio::test]
async fn without_a_header_or_from_an_untrusted_peer_the_connection_is_refused() {
    // Loopback is trusted by default: a connection with no header is refused.
    let server = start_server_with(|c| c.proxy_protocol = true).await;
    let mut plain = TcpStream::connect(server.addrs.tcp[0]).await.unwrap();
    plain.write_all(b"just a line, no header\n").await.unwrap();
    assert_eq!(read_to_close(&mut plain).await, b"");
    assert!(server.registry.is_empty());
    server.stop().await;

    // Only 10.0.0.0/8 is trusted: a perfect header from loopback is refused all the same.
    let server = start_server_with(|c| {
        c.proxy_protocol = true;
        c.trusted_proxy = vec!["10.0.0.0/8".parse().unwrap()];
    })
    .await;
    let echo = server.addrs.tcp[0];
    let mut forged = TcpStream::connect(echo).await.unwrap();
    let mut bytes = v2_header("203.0.113.7:1".parse().unwrap(), echo);
    bytes.extend_from_slice(b"hi\n");
    // The server may close before reading it all; a reset on this write is fine too.
    let _ = forged.write_all(&bytes).await;
    assert_eq!(read_to_close(&mut forged).await, b"");
    assert!(server.registry.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn the_bridge_still_reaches_its_own_echo_with_proxy_protocol_on() {
    let server = start_server_with(|c| c.proxy_protocol = true).await;
    let mut ws = ws_connect(&server, "/ws", &[]).await.unwrap();
    send_text(&mut ws, "through the bridge").await;
    match next_message(&mut ws).await {
        Ok(Message::Text(t)) => assert_stamped(t.as_bytes(), b"through the bridge"),
        other => panic!("expected a reply, got {other:?}"),
    }
    let snap = server.registry.snapshot();
    let upstream = snap
        .sessions
        .iter()
        .find(|s| s.kind == SessionKind::Tcp)
        .unwrap();
    assert!(
        upstream.via.is_some(),
        "the upstream is still linked to its ws session"
    );
    server.stop().await;
}

/// Issue 13, item 3: with the echo on `0.0.0.0` (the classroom setup) a LAN client that
/// happens to use the bridge's source port is not the bridge: not shown as a page's upstream,
/// and held to the PROXY header check like any other client.
#[tokio::test]
async fn a_client_on_the_bridge_s_source_port_is_not_taken_for_the_bridge() {
    let server = start_server_with(|c| {
        c.proxy_protocol = true;
        c.tcp = vec!["0.0.0.0:0".parse().unwrap()];
    })
    .await;
    let mut ws = ws_connect(&server, "/ws", &[]).await.unwrap();
    send_text(&mut ws, "through the bridge").await;
    match next_message(&mut ws).await {
        Ok(Message::Text(t)) => assert_stamped(t.as_bytes(), b"through the bridge"),
        other => panic!("expected a reply, got {other:?}"),
    }
    let snap = server.registry.snapshot();
    let ws_id = snap
        .sessions
        .iter()
        .find(|s| s.kind == SessionKind::Ws)
        .unwrap()
        .id;
    let upstream = snap.sessions.iter().find(|s| s.via == Some(ws_id)).unwrap();
    let bridge_peer: SocketAddr = upstream.peer.parse().unwrap();
    assert!(
        bridge_peer.ip().is_loopback(),
        "the bridge's source is exact: {bridge_peer}"
    );

    // Another host, the same source port. (Before the fix the registry linked the bridge as
    // 0.0.0.0:PORT and matched any address on that port: this client was echoed unchecked.)
    let stranger_addr = SocketAddr::from(([127, 0, 0, 2], bridge_peer.port()));
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(stranger_addr)
        .expect("127.0.0.2 on the bridge's port is free");
    let echo = SocketAddr::from(([127, 0, 0, 1], server.addrs.tcp[0].port()));
    let mut stranger = socket.connect(echo).await.unwrap();
    let _ = stranger.write_all(b"no header, just a line\n").await;
    assert_eq!(
        read_to_close(&mut stranger).await,
        b"",
        "refused: no PROXY header"
    );
    let snap = server.registry.snapshot();
    assert!(
        snap.sessions
            .iter()
            .all(|s| s.peer != stranger_addr.to_string()),
        "the stranger has no session: {:?}",
        snap.sessions
    );
    assert_eq!(snap.sessions.iter().filter(|s| s.via.is_some()).count(), 1);
    server.stop().await;
}

async fn ws_peer(server: &socklab_server::RunningServer, xff: Option<&str>) -> String {
    let headers: Vec<(&str, &str)> = xff.map(|v| ("x-forwarded-for", v)).into_iter().collect();
    let mut ws = ws_connect(server, "/ws?tag=xff", &headers).await.unwrap();
    send_text(&mut ws, "hi").await;
    next_message(&mut ws).await.unwrap();
    let peer = server
        .registry
        .snapshot()
        .sessions
        .into_iter()
        .find(|s| s.kind == SessionKind::Ws)
        .unwrap()
        .peer;
    ws.close(None).await.unwrap();
    // Wait for the session to leave, so the next call finds its own.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while server
        .registry
        .snapshot()
        .sessions
        .iter()
        .any(|s| s.kind == SessionKind::Ws)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "ws session did not close"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    peer
}

#[tokio::test]
async fn x_forwarded_for_names_the_client_only_when_asked_and_trusted() {
    let trusting = start_server_with(|c| c.forwarded_for = true).await;
    assert_eq!(
        ws_peer(&trusting, Some("6.6.6.6, 203.0.113.9")).await,
        "203.0.113.9:0"
    );
    assert!(ws_peer(&trusting, None).await.starts_with("127.0.0.1:"));
    trusting.stop().await;

    let off = start_server_with(|_| {}).await;
    assert!(
        ws_peer(&off, Some("203.0.113.9"))
            .await
            .starts_with("127.0.0.1:")
    );
    off.stop().await;

    let untrusted = start_server_with(|c| {
        c.forwarded_for = true;
        c.trusted_proxy = vec!["10.0.0.0/8".parse().unwrap()];
    })
    .await;
    assert!(
        ws_peer(&untrusted, Some("203.0.113.9"))
            .await
            .starts_with("127.0.0.1:")
    );
    untrusted.stop().await;
}
