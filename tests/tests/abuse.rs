//! Hostile and broken clients against the real server: malformed WebSocket frames and
//! handshakes, oversized heads, slowloris, huge lines, UDP floods, attempts to turn the bridge
//! into an open proxy, path traversal, look-alike origins. Each must end with the right close
//! code, status or a clean drop, and the server must keep serving everyone else.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use socklab_server::RunningServer;
use socklab_tests::http::{self, HttpResponse, status_of};
use socklab_tests::raw::{
    WsEnd, frame_header, masked_frame, read_head, read_ws_end, wait_until, ws_request, ws_upgraded,
};
use socklab_tests::{
    LineClient, TIMEOUT, assert_stamped, next_message, send_text, start_server, start_server_with,
    ws_connect,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_tungstenite::tungstenite::Message;

/// Everyone else is still served: a TCP echo client, a bridge session and `/healthz`.
async fn still_serving(server: &RunningServer) {
    let mut c = LineClient::connect(server.addrs.tcp[0]).await;
    c.send(b"still there?\n").await;
    assert_stamped(&c.line().await, b"still there?\n");
    let mut ws = ws_connect(server, "/ws", &[]).await.unwrap();
    send_text(&mut ws, "bridge ok").await;
    match next_message(&mut ws).await.unwrap() {
        Message::Text(t) => assert_stamped(t.as_bytes(), b"bridge ok"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        http::get(server.addrs.http[0], "/healthz", &[])
            .await
            .status,
        200
    );
}

/// Opens a raw bridge session, sends `frames` and returns how the server ended it.
async fn ws_abuse(server: &RunningServer, frames: &[Vec<u8>]) -> WsEnd {
    let addr = server.addrs.http[0];
    let mut s = ws_upgraded(addr, &ws_request(addr, "/ws", "")).await;
    for f in frames {
        // The server may already have closed after an earlier frame.
        if s.write_all(f).await.is_err() {
            break;
        }
    }
    read_ws_end(&mut s).await
}

#[tokio::test]
async fn malformed_frames_are_closed_with_1002() {
    let server = start_server().await;
    let cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
        ("reserved data opcode 0x3", vec![masked_frame(0x83, b"x")]),
        (
            "reserved control opcode 0xB",
            vec![masked_frame(0x8B, b"x")],
        ),
        (
            "fragmented ping (control without FIN)",
            vec![masked_frame(0x09, b"p")],
        ),
        (
            "control frame over 125 bytes",
            vec![masked_frame(0x89, &[b'p'; 126])],
        ),
        (
            "continuation without a start",
            vec![masked_frame(0x80, b"orphan")],
        ),
        (
            "RSV1 set, no extension agreed",
            vec![masked_frame(0xC1, b"x")],
        ),
        ("RSV2 and RSV3 set", vec![masked_frame(0xB1, b"x")]),
        (
            "new message inside a fragmented one",
            vec![masked_frame(0x01, b"part"), masked_frame(0x81, b"new")],
        ),
        (
            "close frame with a 1-byte body",
            vec![masked_frame(0x88, &[0x03])],
        ),
        (
            "close frame with a reserved code (1005)",
            vec![masked_frame(0x88, &1005u16.to_be_bytes())],
        ),
        (
            "close frame with an undefined code (999)",
            vec![masked_frame(0x88, &999u16.to_be_bytes())],
        ),
    ];
    for (what, frames) in &cases {
        assert_eq!(
            ws_abuse(&server, frames).await,
            WsEnd::Close(1002),
            "{what}"
        );
    }
    still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn invalid_utf8_split_across_fragments_is_closed_with_1007() {
    let server = start_server().await;
    // "h" + the first byte of a two-byte sequence, then a byte that cannot continue it.
    let frames = [masked_frame(0x01, b"h\xc3"), masked_frame(0x80, b"\x28")];
    assert_eq!(ws_abuse(&server, &frames).await, WsEnd::Close(1007));
    // An overlong encoding of '/' and a surrogate half in single frames.
    for bad in [&b"\xc0\xaf"[..], b"\xed\xa0\x80"] {
        assert_eq!(
            ws_abuse(&server, &[masked_frame(0x81, bad)]).await,
            WsEnd::Close(1007)
        );
    }
    still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn oversized_frames_are_refused_with_1009_before_their_payload_arrives() {
    let server = start_server_with(|c| c.max_message = 1000).await;
    // Headers announcing 1 TB and 2^63-1 bytes: refused at once, nothing buffered.
    for len in [1u64 << 40, u64::MAX >> 1, 1001] {
        let started = Instant::now();
        assert_eq!(
            ws_abuse(&server, &[frame_header(0x82, len)]).await,
            WsEnd::Close(1009),
            "{len}"
        );
        assert!(started.elapsed() < Duration::from_secs(3));
    }
    // A message of small fragments whose sum is over the limit.
    let frames = [
        masked_frame(0x02, &[b'a'; 600]),
        masked_frame(0x80, &[b'b'; 600]),
    ];
    assert_eq!(ws_abuse(&server, &frames).await, WsEnd::Close(1009));
    still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn malformed_handshakes_are_refused_and_the_server_goes_on() {
    let server = start_server().await;
    let addr = server.addrs.http[0];
    let good = ws_request(addr, "/ws", "");
    let cases: Vec<(&str, String)> = vec![
        (
            "no Sec-WebSocket-Key",
            good.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
        ),
        (
            "Sec-WebSocket-Version 8",
            good.replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"),
        ),
        (
            "no Sec-WebSocket-Version",
            good.replace("Sec-WebSocket-Version: 13\r\n", ""),
        ),
        (
            "Upgrade: h2c",
            good.replace("Upgrade: websocket", "Upgrade: h2c"),
        ),
        (
            "no Upgrade header",
            good.replace("Upgrade: websocket\r\n", ""),
        ),
        (
            "Connection without upgrade",
            good.replace("Connection: Upgrade", "Connection: keep-alive"),
        ),
        ("POST", good.replacen("GET", "POST", 1)),
        ("HTTP/1.0", good.replacen("HTTP/1.1", "HTTP/1.0", 1)),
        ("no HTTP version", "GET /ws\r\n\r\n".to_owned()),
        (
            "garbage request line",
            "\u{1}\u{2}\u{3} / ????\r\n\r\n".to_owned(),
        ),
        (
            "a header without a colon",
            good.replacen("Upgrade: websocket", "Upgrade websocket", 1),
        ),
        (
            "bare LF line ends and a NUL in a header",
            good.replace("\r\n", "\n")
                .replacen("websocket", "web\0socket", 1),
        ),
    ];
    for (what, request) in &cases {
        let (status, response) = http::send(addr, request.as_bytes()).await;
        assert!(
            status == 0 || (400..500).contains(&status),
            "{what}: {status} {}",
            String::from_utf8_lossy(&response)
        );
    }
    // A TLS ClientHello on the plain HTTP port.
    let hello = [
        0x16, 0x03, 0x01, 0x00, 0x2f, 0x01, 0x00, 0x00, 0x2b, 0x03, 0x03, 0, 0, 0, 0,
    ];
    let (status, _) = http::send(addr, &hello).await;
    assert!(status == 0 || status == 400, "TLS hello: {status}");
    still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn oversized_request_heads_get_431_or_a_closed_connection() {
    let server = start_server().await; // --max-header 16 KiB
    let addr = server.addrs.http[0];
    let big_value = "v".repeat(20 * 1024);
    let many: String = (0..200).map(|i| format!("X-H{i}: {i}\r\n")).collect();
    let cases = [
        (
            "one 20 KiB header",
            ws_request(addr, "/ws", &format!("X-Big: {big_value}\r\n")),
        ),
        ("200 headers", ws_request(addr, "/ws", &many)),
        (
            "a 20 KiB path",
            format!("GET /{big_value} HTTP/1.1\r\nHost: {addr}\r\n\r\n"),
        ),
        (
            "a head that never ends (64 KiB of header lines)",
            format!(
                "GET / HTTP/1.1\r\nHost: {addr}\r\n{}",
                "X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n".repeat(2000)
            ),
        ),
    ];
    for (what, request) in &cases {
        let (status, _) = http::send(addr, request.as_bytes()).await;
        assert!(
            status == 431 || status == 414 || status == 400 || status == 0,
            "{what}: {status}"
        );
    }
    still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn slowloris_clients_are_dropped_while_others_are_served() {
    let server = start_server_with(|c| c.header_timeout = 1).await;
    let addr = server.addrs.http[0];
    // 50 clients trickling a handshake one byte every 200 ms, and 10 that send nothing.
    let mut slow = Vec::new();
    let (connected, mut all_connected) = tokio::sync::mpsc::channel::<()>(60);
    for i in 0..60 {
        let connected = connected.clone();
        slow.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            let started = Instant::now();
            connected.send(()).await.unwrap();
            let request = ws_request(addr, "/ws", "X-Slow: zzzzzzzzzzzzzzzzzzzzzzzzzzzzzz\r\n");
            let mut bytes = if i < 50 { request.as_bytes() } else { &[][..] };
            let mut buf = [0u8; 256];
            loop {
                if let Some((b, rest)) = bytes.split_first() {
                    if s.write_all(&[*b]).await.is_err() {
                        break;
                    }
                    bytes = rest;
                }
                match tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await {
                    Ok(Ok(0) | Err(_)) => break,
                    Ok(Ok(n)) => {
                        // hyper may answer 408 before closing; anything but 101 is fine.
                        assert_ne!(status_of(&buf[..n]), 101);
                    }
                    Err(_) => {}
                }
                assert!(
                    started.elapsed() < Duration::from_secs(5),
                    "slow client {i} still connected after 5 s"
                );
            }
            started.elapsed()
        }));
    }
    // Once all are connected, the server still answers promptly.
    drop(connected);
    for _ in 0..60 {
        all_connected
            .recv()
            .await
            .expect("every slow client connects");
    }
    let started = Instant::now();
    still_serving(&server).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    for t in slow {
        let took = t.await.unwrap();
        assert!(
            took >= Duration::from_millis(900),
            "dropped too early: {took:?}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn a_ten_megabyte_upstream_line_reaches_the_browser_in_bounded_messages() {
    const TOTAL: usize = 10 * 1024 * 1024;
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_addr = upstream.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = upstream.accept().await.unwrap();
        let chunk: Vec<u8> = (0..64 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
        let mut sent = 0;
        while sent < TOTAL {
            s.write_all(&chunk).await.unwrap();
            sent += chunk.len();
        }
        s.shutdown().await.unwrap();
    });
    let server = start_server_with(|c| {
        c.upstream = Some(up_addr.to_string());
        c.max_message = 4096;
    })
    .await;
    let mut ws = ws_connect(&server, "/ws", &[]).await.unwrap();
    let mut got = 0usize;
    let code = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match next_message(&mut ws).await {
                Ok(Message::Text(t)) => {
                    // --max-message, plus room for the echo's stamp.
                    let most = 4096 + socklab_protocol::STAMP_LEN;
                    assert!(t.len() <= most, "a message of {} bytes", t.len());
                    for (i, b) in t.as_bytes().iter().enumerate() {
                        assert_eq!(*b, b'a' + (((got + i) % (64 * 1024)) % 26) as u8);
                    }
                    got += t.len();
                }
                Ok(other) => panic!("{other:?}"),
                Err(end) => return end,
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(got, TOTAL);
    assert_eq!(code.map(|c| c.0), Some(1000));
    server.stop().await;
}

#[tokio::test]
async fn a_flood_of_tiny_datagrams_does_not_stop_the_udp_echo() {
    let server = start_server_with(|c| c.max_connections = 50).await;
    let udp = server.addrs.udp[0];
    // One socket floods 30 000 datagrams of 0 and 1 bytes as fast as it can.
    let flooder = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    flooder.connect(udp).await.unwrap();
    let flood = tokio::spawn(async move {
        for i in 0..30_000u32 {
            let payload: &[u8] = if i % 2 == 0 { b"" } else { b"x" };
            let _ = flooder.send(payload).await;
        }
        // An empty datagram is answered with the stamp alone.
        let mut buf = [0u8; 64];
        let mut answered = 0;
        while let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(300), flooder.recv(&mut buf)).await
        {
            assert!(n == 22 || n == 23, "reply of {n} bytes");
            answered += 1;
        }
        answered
    });
    // 200 more peers, beyond the 50 the monitor tracks: all still answered.
    let mut peers = Vec::new();
    for i in 0..200 {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        s.connect(udp).await.unwrap();
        peers.push((i, s));
    }
    let answered = flood.await.unwrap();
    assert!(answered > 0, "the flooder got no reply at all");
    for (i, s) in &peers {
        let msg = format!("peer {i}");
        let mut buf = [0u8; 128];
        // UDP may lose a datagram; three tries on loopback is plenty.
        let mut reply = None;
        for _ in 0..3 {
            s.send(msg.as_bytes()).await.unwrap();
            if let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(500), s.recv(&mut buf)).await
            {
                reply = Some(buf[..n].to_vec());
                break;
            }
        }
        assert_stamped(&reply.expect("answered"), msg.as_bytes());
    }
    let udp_sessions = server
        .registry
        .snapshot()
        .sessions
        .iter()
        .filter(|s| s.kind == socklab_protocol::SessionKind::Udp)
        .count();
    assert!(udp_sessions <= 50, "{udp_sessions} UDP peers tracked");
    server.stop().await;
}

#[tokio::test]
async fn the_largest_udp_payload_that_fits_comes_back_whole() {
    let server = start_server().await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.connect(server.addrs.udp[0]).await.unwrap();
    let payload = vec![b'y'; 65_507 - socklab_protocol::STAMP_LEN];
    sock.send(&payload).await.unwrap();
    let mut buf = vec![0u8; 70_000];
    let n = tokio::time::timeout(TIMEOUT, sock.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 65_507);
    assert_stamped(&buf[..n], &payload);
    server.stop().await;
}

/// A listener that counts the connections it gets: where an open proxy would connect.
async fn decoy() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let hits2 = Arc::clone(&hits);
    tokio::spawn(async move {
        while let Ok((_s, _)) = listener.accept().await {
            hits2.fetch_add(1, Ordering::SeqCst);
        }
    });
    (addr, hits)
}

/// Reads one server frame; returns its opcode and payload.
async fn read_frame(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).await.unwrap();
    let len = match h[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).await.unwrap();
            u16::from_be_bytes(b) as usize
        }
        127 => {
            let mut b = [0u8; 8];
            s.read_exact(&mut b).await.unwrap();
            u64::from_be_bytes(b) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).await.unwrap();
    (h[0] & 0x0f, payload)
}

#[tokio::test]
async fn no_request_path_header_or_message_changes_the_bridge_upstream() {
    let (target, hits) = decoy().await;
    let server = start_server().await;
    let addr = server.addrs.http[0];
    let t = target.to_string();
    // Handshakes that succeed: each must be bridged to the server's own echo.
    let upgraded = [
        format!(
            "/ws?upstream={t}&target={t}&host={t}&url=ws://{t}/&addr={t}&port={}",
            target.port()
        ),
        format!("/ws?tag={t}"),
    ];
    let headers = [
        format!(
            "X-Forwarded-Host: {t}\r\nX-Forwarded-For: {t}\r\nX-Real-IP: {}\r\n",
            target.ip()
        ),
        format!("Forwarded: for=1.2.3.4;host={t};proto=http\r\nX-Upstream: {t}\r\n"),
        format!("Sec-WebSocket-Protocol: {t}\r\nX-Target: {t}\r\nVia: 1.1 {t}\r\n"),
    ];
    let mut requests: Vec<String> = upgraded.iter().map(|p| ws_request(addr, p, "")).collect();
    requests.extend(headers.iter().map(|h| ws_request(addr, "/ws", h)));
    // The Host header itself pointing at the target.
    requests.push(ws_request(addr, "/ws", "").replacen(
        &format!("Host: {addr}"),
        &format!("Host: {t}"),
        1,
    ));
    // Absolute-form request target naming the target.
    requests.push(ws_request(addr, "/ws", "").replacen(
        "GET /ws ",
        &format!("GET http://{t}/ws "),
        1,
    ));
    for request in &requests {
        let mut s = ws_upgraded(addr, request).await;
        // In-band attempts too: the message is just a line for the echo.
        for text in [format!("CONNECT {t} HTTP/1.1"), t.clone()] {
            s.write_all(&masked_frame(0x81, text.as_bytes()))
                .await
                .unwrap();
            let (op, payload) = tokio::time::timeout(TIMEOUT, read_frame(&mut s))
                .await
                .unwrap();
            assert_eq!(op, 1, "{request}");
            assert_stamped(&payload, text.as_bytes());
        }
    }
    // Requests that do not upgrade: paths and methods naming the target.
    for request in [
        format!("CONNECT {t} HTTP/1.1\r\nHost: {t}\r\n\r\n"),
        ws_request(addr, &format!("/ws/{t}"), ""),
        ws_request(addr, &format!("//{t}/ws"), ""),
        ws_request(addr, &format!("/ws/../{t}"), ""),
        format!("GET /ws@{t} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    ] {
        let (status, _) = http::send(addr, request.as_bytes()).await;
        assert_ne!(status, 101, "{request}");
        assert_ne!(status, 200, "{request}");
    }
    // After the stop no session can connect anywhere. The decoy accepts in order, so once it
    // has accepted a connection of our own, it has accepted any the bridge made before.
    server.stop().await;
    let _own = TcpStream::connect(target).await.unwrap();
    wait_until(TIMEOUT, "the decoy to accept our own connection", || {
        hits.load(Ordering::SeqCst) >= 1
    })
    .await;
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "the bridge connected to the decoy"
    );
}

/// A page directory with a file, a subdirectory without an index, and a secret beside it.
fn page_dir() -> (std::path::PathBuf, std::path::PathBuf) {
    let base = std::env::temp_dir().join(format!(
        "socklab-traversal-{}-{}",
        std::process::id(),
        fastrand_u64()
    ));
    let dist = base.join("dist");
    std::fs::create_dir_all(dist.join("sub")).unwrap();
    std::fs::write(dist.join("index.html"), "<!doctype html>socklab page").unwrap();
    std::fs::write(dist.join("sub").join("listed-file.txt"), "in sub").unwrap();
    std::fs::write(base.join("secret.txt"), "TOP SECRET").unwrap();
    (base, dist)
}

fn fastrand_u64() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

#[tokio::test]
async fn path_traversal_gets_404_and_directories_are_never_listed() {
    let (base, dist) = page_dir();
    let server = start_server_with(|c| c.static_dir = dist.clone()).await;
    let addr = server.addrs.http[0];
    let HttpResponse { status, body, .. } = http::get(addr, "/index.html", &[]).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    for target in [
        "/../secret.txt",
        "/sub/../../secret.txt",
        "/..%2fsecret.txt",
        "/%2e%2e/secret.txt",
        "/%2e%2e%2fsecret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/.%2e/secret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt",
        "/%252e%252e/secret.txt",
        "/..%252fsecret.txt",
        "/%c0%ae%c0%ae/secret.txt",
        "/..%5csecret.txt",
        "/sub%5c..%5c..%5csecret.txt",
        "/....//secret.txt",
        "/./../secret.txt",
        "//secret.txt",
        "/%2fetc%2fpasswd",
        "/etc/passwd",
        "/index.html%00.txt",
        "/%00",
    ] {
        let HttpResponse { status, body, .. } = http::get(addr, target, &[]).await;
        assert_eq!(status, 404, "{target}: {}", String::from_utf8_lossy(&body));
        assert!(
            !String::from_utf8_lossy(&body).contains("TOP SECRET"),
            "{target} leaked the secret"
        );
    }
    // Targets the HTTP parser itself refuses never reach the files either.
    for target in ["/..\\secret.txt", "/sub\\..\\..\\secret.txt"] {
        let HttpResponse { status, body, .. } = http::get(addr, target, &[]).await;
        assert!(status == 400 || status == 404, "{target}: {status}");
        assert!(!String::from_utf8_lossy(&body).contains("TOP SECRET"));
    }
    // No listing of a directory without an index (with or without the slash).
    for target in ["/sub/", "/sub", "/sub/.", "/sub//"] {
        let HttpResponse { status, body, .. } = http::get(addr, target, &[]).await;
        assert_ne!(status, 200, "{target}");
        assert!(
            !String::from_utf8_lossy(&body).contains("listed-file"),
            "{target} listed the directory"
        );
    }
    server.stop().await;
    let _ = std::fs::remove_dir_all(base);
}

#[tokio::test]
async fn look_alike_origins_are_refused_with_403() {
    let server = start_server().await;
    let host = server.addrs.http[0].to_string();
    let port = server.addrs.http[0].port();
    for origin in [
        "null".to_owned(),
        format!("http://{host}.evil.example"),
        format!("http://evil.example.{host}"),
        format!("http://evil{host}"),
        format!("ws://{host}"),
        format!("file://{host}"),
        format!("http://127.0.0.2:{port}"),
        format!("http://{host}:1"),
        format!("http://user@{host}"),
        format!("http://{host}/path"),
        "http://localhost".to_owned(),
    ] {
        for path in ["/ws", "/api/events"] {
            match ws_connect(&server, path, &[("origin", &origin)]).await {
                Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                    assert_eq!(resp.status(), 403, "{origin} on {path}")
                }
                other => panic!("{origin} on {path}: {other:?}"),
            }
        }
    }
    // Scheme and host compare case-insensitively, a trailing slash is tolerated.
    for origin in [format!("HTTP://{host}"), format!("https://{host}/")] {
        assert!(
            ws_connect(&server, "/ws", &[("origin", &origin)])
                .await
                .is_ok(),
            "{origin}"
        );
    }
    server.stop().await;
    // `--allow-origin '*'` opens it to every page (documented as not advised).
    let server = start_server_with(|c| c.allow_origin = vec!["*".into()]).await;
    let mut ws = ws_connect(&server, "/ws", &[("origin", "http://evil.example")])
        .await
        .unwrap();
    send_text(&mut ws, "anyone").await;
    assert!(matches!(next_message(&mut ws).await, Ok(Message::Text(_))));
    server.stop().await;
}

#[tokio::test]
async fn a_handshake_head_is_read_byte_by_byte_without_confusion() {
    // A legitimate but pathologically fragmented handshake still works (no timing tricks).
    let server = start_server().await;
    let addr = server.addrs.http[0];
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    for b in ws_request(addr, "/ws", "").bytes() {
        s.write_all(&[b]).await.unwrap();
    }
    let head = read_head(&mut s).await;
    assert_eq!(status_of(&head), 101);
    s.write_all(&masked_frame(0x81, b"slow but fine"))
        .await
        .unwrap();
    let (op, payload) = tokio::time::timeout(TIMEOUT, read_frame(&mut s))
        .await
        .unwrap();
    assert_eq!(op, 1);
    assert_stamped(&payload, b"slow but fine");
    server.stop().await;
}

#[tokio::test]
async fn a_clients_close_is_answered_with_a_close_frame() {
    let server = start_server().await;
    let addr = server.addrs.http[0];
    for path in ["/ws", "/api/events"] {
        for code in [1000u16, 1001, 4000] {
            let mut s = ws_upgraded(addr, &ws_request(addr, path, "")).await;
            s.write_all(&masked_frame(0x88, &code.to_be_bytes()))
                .await
                .unwrap();
            assert_eq!(
                read_ws_end(&mut s).await,
                WsEnd::Close(code),
                "{path} {code}"
            );
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_dropped_like_a_slow_head() {
    let server = start_server_with(|c| c.header_timeout = 1).await;
    let addr = server.addrs.http[0];
    let mut s = TcpStream::connect(addr).await.unwrap();
    // One complete request, kept alive, then silence.
    s.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let head = read_head(&mut s).await;
    assert_eq!(status_of(&head), 200);
    let started = Instant::now();
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(_)) => continue, // the body, or a 408
            Err(_) => panic!("an idle keep-alive connection is still open after 5 s"),
        }
    }
    assert!(started.elapsed() < Duration::from_secs(4));
    server.stop().await;
}
