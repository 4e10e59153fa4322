//! `/api/events` subscribers that stop cooperating: one that never answers pings, one that
//! stops reading in the middle of a large snapshot. Each holds a `--max-connections` slot, so
//! each must be dropped in bounded time and its slot given back. And the HTTP sockets they
//! come on get TCP keepalive, like the raw TCP services.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use socklab_protocol::SessionKind;
use socklab_server::RunningServer;
use socklab_server::registry::Extra;
use socklab_tests::http::status_of;
use socklab_tests::raw::{read_head, ws_request, ws_upgraded};
use socklab_tests::{TIMEOUT, Ws, start_server_with, ws_connect};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Tries to open `/api/events` until it succeeds (the one `--max-connections` slot came
/// back), failing after `within`. Returns the subscriber and how long it took from `since`.
async fn slot_returns(server: &RunningServer, since: Instant, within: Duration) -> (Ws, Duration) {
    let deadline = since + within;
    loop {
        if let Ok(ws) = ws_connect(server, "/api/events", &[]).await {
            return (ws, since.elapsed());
        }
        assert!(
            Instant::now() < deadline,
            "the stuck subscriber still holds its slot after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts that the server is at its limit: a second subscriber is refused with 503.
async fn assert_at_limit(server: &RunningServer) {
    let addr = server.addrs.http[0];
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(ws_request(addr, "/api/events", "").as_bytes())
        .await
        .unwrap();
    let head = read_head(&mut s).await;
    assert_eq!(
        status_of(&head),
        503,
        "expected 503 at the limit, got {}",
        String::from_utf8_lossy(&head)
    );
}

#[tokio::test]
async fn a_subscriber_that_never_answers_pings_is_dropped_within_two_intervals() {
    let server = start_server_with(|c| {
        c.ping_interval = 2;
        c.max_connections = 1;
    })
    .await;
    let addr = server.addrs.http[0];
    // A hand-made upgrade, then nothing: the kernel ACKs, but no pong ever comes. Timed from
    // before the request, so the time taken is never less than the server's.
    let upgrading = Instant::now();
    let mut silent = ws_upgraded(addr, &ws_request(addr, "/api/events", "")).await;
    assert_at_limit(&server).await;
    let (_next, took) = slot_returns(&server, upgrading, Duration::from_secs(10)).await;
    // Two intervals of silence (4 s): not one, not three; half an interval of slack below,
    // an interval above for a loaded machine.
    assert!(
        took >= Duration::from_millis(3500),
        "dropped after {took:?}"
    );
    assert!(took < Duration::from_secs(6), "dropped after {took:?}");
    // What it was sent: a ping (its snapshot was empty), then the end of the connection.
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, silent.read_to_end(&mut buf)).await;
    assert_eq!(buf.first().map(|b| b & 0x0f), Some(0x9), "a ping first");
    server.stop().await;
}

#[tokio::test]
async fn a_subscriber_that_stops_reading_during_a_5000_session_snapshot_is_dropped() {
    let server = start_server_with(|c| {
        c.write_timeout = 1;
        // Pings would find it too, but much later: this is the write timeout's job.
        c.ping_interval = 60;
        c.max_connections = 1;
    })
    .await;
    // 5,000 sessions straight into the registry (no sockets, no slots), each with a 1 KiB tag
    // so the snapshot (~6 MB) is larger than what loopback's socket buffers can hold (at most
    // 4 MB sent + the client's small receive buffer): the server must block in the middle.
    let peer: SocketAddr = "192.0.2.1:40000".parse().unwrap();
    let local = server.addrs.tcp[0];
    let sessions: Vec<_> = (0..5000)
        .map(|i| {
            let extra = Extra {
                tag: Some(format!("{i:0>1024}")),
                ..Extra::default()
            };
            server.registry.open(SessionKind::Ws, peer, local, extra)
        })
        .collect();
    let snapshot_bytes: usize = server
        .registry
        .opened_events()
        .iter()
        .map(|e| serde_json::to_string(e).unwrap().len())
        .sum();
    // A subscriber with a small receive buffer that reads the 101 and then nothing.
    let addr = server.addrs.http[0];
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stuck = socket.connect(addr).await.unwrap();
    stuck
        .write_all(ws_request(addr, "/api/events", "").as_bytes())
        .await
        .unwrap();
    assert_eq!(status_of(&read_head(&mut stuck).await), 101);
    let upgraded = Instant::now();
    assert_at_limit(&server).await;
    let (_next, took) = slot_returns(&server, upgraded, Duration::from_secs(6)).await;
    // The write timeout (1 s), with slack for a loaded machine.
    assert!(took < Duration::from_secs(4), "dropped after {took:?}");
    // It got part of the snapshot and no more: the server gave up writing, not the kernel.
    let mut got = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, stuck.read_to_end(&mut got)).await;
    assert!(
        got.len() < snapshot_bytes,
        "the whole snapshot ({snapshot_bytes} bytes) was sent: the test proves nothing"
    );
    drop(sessions);
    server.stop().await;
}

/// The `tr` (timer) field of the server's side of the connection `server` ↔ `client` in
/// `/proc/net/tcp`: 2 is the keepalive timer.
fn timer_of(server: SocketAddr, client: SocketAddr) -> Option<u8> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let port = |hex: &str| u16::from_str_radix(hex.rsplit(':').next().unwrap_or(""), 16).ok();
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let ours = port(f.get(1)?)? == server.port() && port(f.get(2)?)? == client.port();
        ours.then(|| f.get(5)?.split(':').next()?.parse().ok())?
    })
}

#[tokio::test]
async fn http_connections_get_tcp_keepalive() {
    let server = start_server_with(|c| c.tcp_keepalive = 45).await;
    let addr = server.addrs.http[0];
    let mut s = TcpStream::connect(addr).await.unwrap();
    // A whole request and its answer: the server has accepted and set up the socket.
    let req = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    assert_eq!(status_of(&read_head(&mut s).await), 200);
    let client = s.local_addr().unwrap();
    let deadline = Instant::now() + TIMEOUT;
    // Idle now: once the last ACK is in, the only timer left is keepalive's (or none).
    while timer_of(addr, client) != Some(2) {
        assert!(
            Instant::now() < deadline,
            "no keepalive timer on the server's side (timer {:?})",
            timer_of(addr, client)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop().await;
}
