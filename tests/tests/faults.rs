//! Faults and limits against the real server: an upstream that is down, dies, stalls or
//! floods; clients that stop reading, half-close or vanish; `--max-connections` reached and
//! recovered from; a thousand connections at once. (SIGTERM with 1000 sessions and real
//! file-descriptor exhaustion need the server as a process: `server/tests/process.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use socklab_protocol::SessionKind;
use socklab_server::RunningServer;
use socklab_tests::http;
use socklab_tests::raw::{reserved_addr, reserved_port, wait_until, ws_request, ws_upgraded};
use socklab_tests::{
    LineClient, TIMEOUT, assert_stamped, close_of, next_message, send_text, start_server,
    start_server_with, ws_connect,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

fn sessions_of(server: &RunningServer, kind: SessionKind) -> usize {
    server
        .registry
        .snapshot()
        .sessions
        .iter()
        .filter(|s| s.kind == kind)
        .count()
}

/// Starts listening on a socket from [`reserved_port`].
fn listen_on(socket: socket2::Socket) -> TcpListener {
    socket.listen(128).unwrap();
    socket.set_nonblocking(true).unwrap();
    TcpListener::from_std(socket.into()).unwrap()
}

/// Serves each connection with `handler` until the test ends.
async fn fake_upstream<F, Fut>(listener: TcpListener, handler: F)
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(handler(s));
        }
    });
}

fn text(msg: Message) -> String {
    match msg {
        Message::Text(t) => t.to_string(),
        other => panic!("expected text, got {other:?}"),
    }
}

#[tokio::test]
async fn an_upstream_down_at_start_gets_1011_and_sessions_work_once_it_is_up() {
    let reserved = reserved_port();
    let up = reserved_addr(&reserved);
    let server = start_server_with(|c| c.upstream = Some(up.to_string())).await;
    let mut ws = ws_connect(&server, "/ws", &[]).await.unwrap();
    let (code, reason) = next_message(&mut ws).await.unwrap_err().unwrap();
    assert_eq!(code, 1011);
    assert!(reason.contains("unreachable"), "{reason}");
    // The upstream comes up: new sessions are bridged, no restart needed.
    let listener = listen_on(reserved);
    fake_upstream(listener, |mut s| async move {
        let mut buf = [0u8; 1024];
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    })
    .await;
    let mut ws = ws_connect(&server, "/ws", &[]).await.unwrap();
    send_text(&mut ws, "back").await;
    assert_eq!(text(next_message(&mut ws).await.unwrap()), "back");
    server.stop().await;
}

#[tokio::test]
async fn an_upstream_that_dies_mid_session_closes_with_1011() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = listener.local_addr().unwrap();
    // The upstream dies once the page has its line (an RST would discard it unread).
    let delivered = Arc::new(tokio::sync::Notify::new());
    let die = Arc::clone(&delivered);
    fake_upstream(listener, move |mut s| {
        let die = Arc::clone(&die);
        async move {
            let mut buf = [0u8; 64];
            let _ = s.read(&mut buf).await;
            s.write_all(b"first and last\n").await.unwrap();
            die.notified().await;
            // Die hard: RST, no FIN.
            socket2::SockRef::from(&s)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
            drop(s);
        }
    })
    .await;
    let server = start_server_with(|c| c.upstream = Some(up.to_string())).await;
    let mut ws = ws_connect(&server, "/ws", &[]).await.unwrap();
    send_text(&mut ws, "hello").await;
    assert_eq!(text(next_message(&mut ws).await.unwrap()), "first and last");
    delivered.notify_one();
    let (code, reason) = next_message(&mut ws).await.unwrap_err().unwrap();
    assert_eq!(code, 1011, "{reason}");
    assert!(reason.contains("upstream"), "{reason}");
    wait_until(TIMEOUT, "the ws session to close", || {
        sessions_of(&server, SessionKind::Ws) == 0
    })
    .await;
    server.stop().await;
}

#[tokio::test]
async fn a_slow_upstream_is_waited_for_and_one_that_stops_reading_gets_1011() {
    // Slow: answers each line after 1.5 s (longer than --write-timeout, which is about
    // writes that cannot proceed, not about answers that take time).
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slow = listener.local_addr().unwrap();
    fake_upstream(listener, |mut s| async move {
        let mut buf = [0u8; 1024];
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let _ = s.write_all(&buf[..n]).await;
        }
    })
    .await;
    let server = start_server_with(|c| {
        c.upstream = Some(slow.to_string());
        c.write_timeout = 1;
    })
    .await;
    let mut ws = ws_connect(&server, "/ws", &[]).await.unwrap();
    send_text(&mut ws, "take your time").await;
    assert_eq!(text(next_message(&mut ws).await.unwrap()), "take your time");
    server.stop().await;

    // Stalled: accepts, never reads. The bridge's writes stop; after --write-timeout the
    // session is closed with 1011 instead of buffering the client's messages.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stalled = listener.local_addr().unwrap();
    fake_upstream(listener, |s| async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(s);
    })
    .await;
    let server = start_server_with(|c| {
        c.upstream = Some(stalled.to_string());
        c.write_timeout = 1;
    })
    .await;
    let ws = ws_connect(&server, "/ws", &[]).await.unwrap();
    let (mut tx, mut rx) = ws.split();
    let sent = Arc::new(AtomicU64::new(0));
    let sent2 = Arc::clone(&sent);
    let writer = tokio::spawn(async move {
        let chunk = vec![b'z'; 60 * 1024];
        for _ in 0..2000 {
            if tx.send(Message::binary(chunk.clone())).await.is_err() {
                break;
            }
            sent2.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
    });
    let started = Instant::now();
    let code = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match rx.next().await {
                Some(Ok(Message::Close(Some(f)))) => return Some(u16::from(f.code)),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .expect("closed in time");
    assert_eq!(code, Some(1011));
    assert!(started.elapsed() < Duration::from_secs(15));
    writer.abort();
    // What got through before the stall was noticed is kernel buffers, not server memory.
    assert!(sent.load(Ordering::Relaxed) < 120 * 1024 * 1024);
    server.stop().await;
}

#[tokio::test]
async fn a_browser_that_stops_reading_is_closed_and_the_flood_is_bounded() {
    // An upstream that sends as fast as it can, counting what it managed to write.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = listener.local_addr().unwrap();
    let written = Arc::new(AtomicU64::new(0));
    let written2 = Arc::clone(&written);
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let done_tx = std::sync::Mutex::new(Some(done_tx));
    fake_upstream(listener, move |mut s| {
        let written = Arc::clone(&written2);
        let done = done_tx.lock().unwrap().take();
        async move {
            let line: Vec<u8> = [vec![b'f'; 1023], vec![b'\n']].concat();
            while s.write_all(&line).await.is_ok() {
                written.fetch_add(line.len() as u64, Ordering::Relaxed);
            }
            if let Some(done) = done {
                let _ = done.send(());
            }
        }
    })
    .await;
    let server = start_server_with(|c| {
        c.upstream = Some(up.to_string());
        c.write_timeout = 1;
    })
    .await;
    // A raw client that completes the handshake and then never reads a byte.
    let addr = server.addrs.http[0];
    let _stuck = ws_upgraded(addr, &ws_request(addr, "/ws", "")).await;
    // The server gives up on it and closes the upstream connection too.
    tokio::time::timeout(Duration::from_secs(20), done_rx)
        .await
        .expect("the bridge closed its upstream")
        .unwrap();
    wait_until(TIMEOUT, "the ws session to close", || {
        sessions_of(&server, SessionKind::Ws) == 0
    })
    .await;
    // The flood stopped at kernel buffers plus the bridge's bounded ones.
    let total = written.load(Ordering::Relaxed);
    assert!(total < 64 * 1024 * 1024, "{total} bytes went in");
    // Everyone else is fine.
    let mut c = LineClient::connect(server.addrs.tcp[0]).await;
    c.send(b"unaffected\n").await;
    assert_stamped(&c.line().await, b"unaffected\n");
    server.stop().await;
}

/// An upstream that never reads: what it cannot take waits (the client is not read meanwhile,
/// so nothing grows), and after the write timeout the browser hears 1011 naming it.
#[tokio::test]
async fn an_upstream_that_never_reads_ends_the_session_with_1011_naming_it() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = listener.local_addr().unwrap();
    let (keep_tx, keep_rx) = tokio::sync::oneshot::channel::<TcpStream>();
    let keep_tx = std::sync::Mutex::new(Some(keep_tx));
    fake_upstream(listener, move |s| {
        // Held open, never read.
        if let Some(keep) = keep_tx.lock().unwrap().take() {
            let _ = keep.send(s);
        }
        async {}
    })
    .await;
    let server = start_server_with(|c| {
        c.upstream = Some(up.to_string());
        c.write_timeout = 1;
    })
    .await;
    let (mut tx, mut rx) = ws_connect(&server, "/ws", &[]).await.unwrap().split();
    let _held = keep_rx.await.unwrap();
    let flood = tokio::spawn(async move {
        let line = "u".repeat(16 * 1024);
        while tx.send(Message::text(line.as_str())).await.is_ok() {}
    });
    let (code, reason) = close_of(&mut rx).await.expect("a close code");
    assert_eq!(code, 1011);
    assert!(
        reason.contains("stopped reading") && reason.contains(&up.to_string()),
        "{reason}"
    );
    flood.abort();
    server.stop().await;
}

#[tokio::test]
async fn a_tcp_client_that_never_reads_is_dropped_and_others_are_served() {
    // Long enough that a reader stuck behind the flood would wait well past the bound below.
    let server = start_server_with(|c| c.write_timeout = 5).await;
    let addr = server.addrs.tcp[0];
    let s = TcpStream::connect(addr).await.unwrap();
    let (_r, mut w) = s.into_split(); // never read
    let progress = Arc::new(AtomicU64::new(0));
    let written = Arc::clone(&progress);
    let writer = tokio::spawn(async move {
        let lines = b"never read my replies\n".repeat(3000);
        let mut sent = 0u64;
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            match w.write_all(&lines).await {
                Ok(()) => sent += lines.len() as u64,
                Err(_) => return (sent, started.elapsed()),
            }
            written.store(sent, Ordering::SeqCst);
        }
        panic!("still accepted after 20 s and {sent} bytes");
    });
    // While it floods the server with lines whose replies it never reads (more than the
    // socket buffers hold), others are answered at once.
    wait_until(TIMEOUT, "the flood to start", || {
        progress.load(Ordering::SeqCst) > 0
    })
    .await;
    for i in 0..5 {
        let mut c = LineClient::connect(addr).await;
        let msg = format!("reader {i}\n");
        c.send(msg.as_bytes()).await;
        let started = Instant::now();
        assert_stamped(&c.line().await, msg.as_bytes());
        // At once: well before the flood's 5 s write timeout, with slack for a loaded machine.
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(3),
            "reader {i} answered after {took:?}"
        );
    }
    let (sent, took) = writer.await.unwrap();
    // Kernel buffers on both sides, not a growing server buffer.
    assert!(sent < 64 * 1024 * 1024, "{sent} bytes accepted in {took:?}");
    wait_until(TIMEOUT, "the stuck session to close", || {
        sessions_of(&server, SessionKind::Tcp) == 0
    })
    .await;
    server.stop().await;
}

#[tokio::test]
async fn a_half_closed_client_gets_every_reply_then_fin() {
    let server = start_server().await;
    let mut s = TcpStream::connect(server.addrs.tcp[0]).await.unwrap();
    s.write_all(b"one\ntwo\nhalf").await.unwrap();
    s.shutdown().await.unwrap(); // FIN: "I am done sending", still reading
    let mut got = Vec::new();
    tokio::time::timeout(TIMEOUT, s.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    let replies: Vec<&[u8]> = got.split_inclusive(|&b| b == b'\n').collect();
    assert_eq!(replies.len(), 3, "{}", String::from_utf8_lossy(&got));
    assert_stamped(replies[0], b"one\n");
    assert_stamped(replies[1], b"two\n");
    assert_stamped(replies[2], b"half");

    // The bridge: the upstream half-closes after its answer; the browser gets it, then 1000.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = listener.local_addr().unwrap();
    fake_upstream(listener, |mut s| async move {
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).await.unwrap();
        s.write_all(&buf[..n]).await.unwrap();
        s.shutdown().await.unwrap();
        // Keep reading: the bridge's own FIN must come.
        let _ = s.read(&mut buf).await;
    })
    .await;
    let server2 = start_server_with(|c| c.upstream = Some(up.to_string())).await;
    let mut ws = ws_connect(&server2, "/ws", &[]).await.unwrap();
    send_text(&mut ws, "bye").await;
    assert_eq!(text(next_message(&mut ws).await.unwrap()), "bye");
    assert_eq!(next_message(&mut ws).await.unwrap_err().unwrap().0, 1000);
    server.stop().await;
    server2.stop().await;
}

#[tokio::test]
async fn a_websocket_peer_that_vanishes_is_found_by_ping_and_dropped() {
    let server = start_server_with(|c| c.ping_interval = 1).await;
    let addr = server.addrs.http[0];
    // Handshake, then silence: the kernel still ACKs, but nobody answers the pings. Timed
    // from before the request, so the time taken is never less than the server's.
    let started = Instant::now();
    let mut silent = ws_upgraded(addr, &ws_request(addr, "/ws", "")).await;
    wait_until(TIMEOUT, "the ws session to open", || {
        sessions_of(&server, SessionKind::Ws) == 1
    })
    .await;
    wait_until(
        Duration::from_secs(8),
        "the silent peer to be dropped",
        || sessions_of(&server, SessionKind::Ws) == 0,
    )
    .await;
    assert!(started.elapsed() >= Duration::from_millis(1500));
    // Its upstream connection went with it.
    wait_until(TIMEOUT, "its upstream to close", || {
        sessions_of(&server, SessionKind::Tcp) == 0
    })
    .await;
    // What it was sent: pings, then the connection closed.
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, silent.read_to_end(&mut buf)).await;
    assert!(buf.first().is_some_and(|b| b & 0x0f == 0x9), "a ping first");
    // A client that answers pings (tungstenite does) stays.
    let mut live = ws_connect(&server, "/ws", &[]).await.unwrap();
    // Reading is what makes tungstenite answer pings, as a browser always does.
    let _ = tokio::time::timeout(Duration::from_secs(4), async {
        while let Some(Ok(msg)) = live.next().await {
            assert!(matches!(msg, Message::Ping(_)), "{msg:?}");
        }
        panic!("the live client was dropped");
    })
    .await;
    send_text(&mut live, "alive").await;
    // next_message skips pings and lets tungstenite answer them.
    let reply = text(next_message(&mut live).await.unwrap());
    assert_stamped(reply.as_bytes(), b"alive");
    server.stop().await;
}

#[tokio::test]
async fn max_connections_closes_tcp_at_once_refuses_handshakes_with_503_and_recovers() {
    let server = start_server_with(|c| c.max_connections = 50).await;
    let tcp = server.addrs.tcp[0];
    let mut held = Vec::new();
    for i in 0..50 {
        let mut c = LineClient::connect(tcp).await;
        let msg = format!("held {i}\n");
        c.send(msg.as_bytes()).await;
        assert_stamped(&c.line().await, msg.as_bytes());
        held.push(c);
    }
    // Over the limit: a TCP connection is closed at once, unanswered.
    for _ in 0..5 {
        let mut s = TcpStream::connect(tcp).await.unwrap();
        let _ = s.write_all(b"let me in\n").await;
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
            .await
            .expect("closed at once")
            .unwrap_or(0);
        assert_eq!(n, 0, "{:?}", String::from_utf8_lossy(&buf[..n]));
    }
    // The banner counts too.
    let mut b = TcpStream::connect(server.addrs.banner[0]).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, b.read_to_end(&mut buf)).await;
    assert!(buf.is_empty(), "banner over the limit");
    // WebSocket handshakes get 503; plain HTTP still works (it holds no session).
    let http = server.addrs.http[0];
    for path in ["/ws", "/api/events"] {
        let (status, _) = http::send(http, ws_request(http, path, "").as_bytes()).await;
        assert_eq!(status, 503, "{path}");
    }
    assert_eq!(http::get(http, "/healthz", &[]).await.status, 200);
    // Load drops: new sessions are served again.
    held.truncate(40);
    wait_until(TIMEOUT, "10 sessions to close", || {
        server.registry.len() <= 40
    })
    .await;
    let mut c = LineClient::connect(tcp).await;
    c.send(b"recovered\n").await;
    assert_stamped(&c.line().await, b"recovered\n");
    let mut ws = ws_connect(&server, "/ws", &[]).await.unwrap();
    send_text(&mut ws, "bridge recovered").await;
    assert_stamped(
        text(next_message(&mut ws).await.unwrap()).as_bytes(),
        b"bridge recovered",
    );
    drop(held);
    server.stop().await;
}

#[tokio::test]
async fn a_thousand_simultaneous_tcp_connections_are_all_served() {
    let server = start_server().await;
    let addr = server.addrs.tcp[0];
    let barrier = Arc::new(tokio::sync::Barrier::new(1000));
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                let mut c = LineClient::connect(addr).await;
                let first = format!("client {i} first\n");
                c.send(first.as_bytes()).await;
                assert_stamped(&c.line().await, first.as_bytes());
                // All 1000 are open at this point.
                barrier.wait().await;
                let second = format!("client {i} second\n");
                c.send(second.as_bytes()).await;
                assert_stamped(&c.line().await, second.as_bytes());
                c
            })
        })
        .collect();
    let mut clients = Vec::new();
    for t in tasks {
        clients.push(t.await.unwrap());
    }
    assert!(sessions_of(&server, SessionKind::Tcp) >= 1000);
    drop(clients);
    wait_until(TIMEOUT, "all sessions to close", || {
        server.registry.is_empty()
    })
    .await;
    server.stop().await;
}
