//! The WebSocket bridge `/ws`, through tokio-tungstenite as the client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use socklab_tests::raw::{reserved_addr, reserved_port};
use socklab_tests::{
    LineClient, Monitor, TIMEOUT, assert_stamped, close_of, http, next_message, raw, send_text,
    start_server, start_server_with, ws_connect,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

/// The HTTP status of a refused WebSocket handshake (panics on any other error).
fn refused_status(err: tokio_tungstenite::tungstenite::Error) -> u16 {
    match err {
        tokio_tungstenite::tungstenite::Error::Http(resp) => resp.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other:?}"),
    }
}

fn text(msg: Message) -> String {
    match msg {
        Message::Text(t) => t.to_string(),
        other => panic!("expected text, got {other:?}"),
    }
}

#[tokio::test]
async fn hi_comes_back_stamped_as_one_message() {
    let server = start_server().await;
    let mut ws = ws_connect(&server, "/ws", &[]).await.unwrap();
    send_text(&mut ws, "hi").await;
    let reply = text(next_message(&mut ws).await.unwrap());
    assert_stamped(reply.as_bytes(), b"hi");
    server.stop().await;
}

/// The longest message the bridge accepts comes back as one text message: the echo answers
/// it whole and the bridge forwards the stamped line whole, even with multi-byte characters
/// where a cut at the bound would fall.
#[tokio::test]
async fn the_longest_message_accepted_comes_back_as_one_text_message() {
    let server = start_server().await; // --max-message 65536, --max-line 65536
    let mut ws = ws_connect(&server, "/ws", &[]).await.unwrap();
    let longest = format!("a{}", "€".repeat(65_535 / 3));
    assert_eq!(longest.len(), 65_536);
    send_text(&mut ws, &longest).await;
    let reply = text(next_message(&mut ws).await.unwrap());
    assert_eq!(reply.len(), socklab_protocol::STAMP_LEN + 65_536);
    assert_stamped(reply.as_bytes(), longest.as_bytes());
    // Nothing was left over: the next reply is the next message's.
    send_text(&mut ws, "next").await;
    assert_stamped(
        text(next_message(&mut ws).await.unwrap()).as_bytes(),
        b"next",
    );
    server.stop().await;
}

#[tokio::test]
async fn a_multi_line_message_gets_one_reply_per_line() {
    let server = start_server().await;
    let mut ws = ws_connect(&server, "/ws", &[]).await.unwrap();
    send_text(&mut ws, "one\ntwo\nthree").await;
    for expected in ["one", "two", "three"] {
        assert_stamped(
            text(next_message(&mut ws).await.unwrap()).as_bytes(),
            expected.as_bytes(),
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn binary_messages_go_verbatim_and_invalid_utf8_comes_back_binary() {
    let server = start_server().await;
    let mut ws = ws_connect(&server, "/ws", &[]).await.unwrap();
    ws.send(Message::binary(b"\xff\xfe\n".to_vec()))
        .await
        .unwrap();
    match next_message(&mut ws).await.unwrap() {
        Message::Binary(b) => assert_stamped(&b, b"\xff\xfe"),
        other => panic!("expected binary, got {other:?}"),
    }
    server.stop().await;
}

#[tokio::test]
async fn too_big_a_message_closes_with_1009() {
    let server = start_server_with(|c| c.max_message = 1024).await;
    let mut ws = ws_connect(&server, "/ws", &[]).await.unwrap();
    send_text(&mut ws, &"x".repeat(2000)).await;
    let (code, reason) = next_message(&mut ws).await.unwrap_err().unwrap();
    assert_eq!(code, 1009, "{reason}");
    assert!(reason.contains("1024"), "{reason}");
    server.stop().await;
}

#[tokio::test]
async fn unreachable_upstream_closes_with_1011_and_others_are_served() {
    // A port held but not listening: connecting is refused, and nothing else can take it.
    let reserved = reserved_port();
    let dead = reserved_addr(&reserved);
    let server = start_server_with(|c| c.upstream = Some(dead.to_string())).await;
    let mut ws = ws_connect(&server, "/ws", &[]).await.unwrap();
    let (code, reason) = next_message(&mut ws).await.unwrap_err().unwrap();
    assert_eq!(code, 1011);
    assert!(reason.contains("unreachable"), "{reason}");
    // The server still serves everyone else.
    let mut c = LineClient::connect(server.addrs.tcp[0]).await;
    c.send(b"ok?\n").await;
    assert_stamped(&c.line().await, b"ok?\n");
    server.stop().await;
}

#[tokio::test]
async fn upstream_closing_closes_with_1000() {
    // An upstream that says one line and hangs up.
    let up = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_addr = up.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = up.accept().await.unwrap();
        s.write_all(b"bye\n").await.unwrap();
    });
    let server = start_server_with(|c| c.upstream = Some(up_addr.to_string())).await;
    let mut ws = ws_connect(&server, "/ws", &[]).await.unwrap();
    assert_eq!(text(next_message(&mut ws).await.unwrap()), "bye");
    let (code, _) = next_message(&mut ws).await.unwrap_err().unwrap();
    assert_eq!(code, 1000);
    server.stop().await;
}

#[tokio::test]
async fn a_partial_upstream_line_is_forwarded_when_upstream_pauses() {
    let up = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_addr = up.local_addr().unwrap();
    // The upstream stays open until the line has arrived: a close would flush it too.
    let (done, hold) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let (mut s, _) = up.accept().await.unwrap();
        s.write_all(b"no newline").await.unwrap();
        let _ = hold.await;
        drop(s);
    });
    let server = start_server_with(|c| c.upstream = Some(up_addr.to_string())).await;
    let mut ws = ws_connect(&server, "/ws", &[]).await.unwrap();
    assert_eq!(text(next_message(&mut ws).await.unwrap()), "no newline");
    done.send(()).unwrap();
    server.stop().await;
}

#[tokio::test]
async fn idle_sessions_close_with_1001() {
    let server = start_server_with(|c| c.idle_timeout = 1).await;
    let mut ws = ws_connect(&server, "/ws", &[]).await.unwrap();
    let (code, reason) = next_message(&mut ws).await.unwrap_err().unwrap();
    assert_eq!(code, 1001);
    assert!(reason.contains("idle"), "{reason}");
    server.stop().await;
}

#[tokio::test]
async fn shutdown_closes_sessions_with_1001() {
    let server = start_server().await;
    let mut ws = ws_connect(&server, "/ws", &[]).await.unwrap();
    send_text(&mut ws, "hi").await;
    next_message(&mut ws).await.unwrap();
    let stopping = tokio::spawn(server.stop());
    let (code, _) = next_message(&mut ws).await.unwrap_err().unwrap();
    assert_eq!(code, 1001);
    tokio::time::timeout(TIMEOUT, stopping)
        .await
        .unwrap()
        .unwrap();
}

/// A client that sends without pause keeps its socket readable at every turn of the session's
/// loop; shutdown still reaches it (1001, a clean close), long before the grace would cut it.
/// With the server's own echo upstream, which closes at shutdown too (a write to it fails):
/// the client hears why, 1001, not 1011.
#[tokio::test]
async fn a_session_that_never_pauses_still_closes_with_1001_at_shutdown() {
    let server = start_server_with(|c| c.shutdown_grace = 60).await;
    busy_session_closes_with_1001(server).await;
}

/// The same with an upstream that stays open through the shutdown: the session itself must
/// notice it.
#[tokio::test]
async fn a_session_that_never_pauses_closes_with_1001_even_if_its_upstream_stays() {
    let up = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_addr = up.local_addr().unwrap();
    tokio::spawn(async move {
        let (s, _) = up.accept().await.unwrap();
        let (mut r, mut w) = s.into_split();
        let _ = tokio::io::copy(&mut r, &mut w).await;
    });
    let server = start_server_with(|c| {
        c.shutdown_grace = 60;
        c.upstream = Some(up_addr.to_string());
    })
    .await;
    busy_session_closes_with_1001(server).await;
}

async fn busy_session_closes_with_1001(server: socklab_tests::socklab_server::RunningServer) {
    let (mut tx, mut rx) = ws_connect(&server, "/ws", &[]).await.unwrap().split();
    let flood = tokio::spawn(async move {
        let line = "x".repeat(1000);
        while tx.send(Message::text(line.as_str())).await.is_ok() {}
    });
    for _ in 0..100 {
        let reply = tokio::time::timeout(TIMEOUT, rx.next()).await.unwrap();
        assert!(matches!(reply, Some(Ok(Message::Text(_)))), "{reply:?}");
    }
    let stopping = tokio::spawn(server.stop());
    // Long before the 60 s grace.
    let close = close_of(&mut rx).await;
    assert_eq!(close.map(|(code, _)| code), Some(1001));
    tokio::time::timeout(TIMEOUT, stopping)
        .await
        .unwrap()
        .unwrap();
    flood.abort();
}

#[tokio::test]
async fn a_foreign_origin_is_refused_with_403() {
    let server = start_server().await;
    let err = ws_connect(&server, "/ws", &[("origin", "http://evil.example")])
        .await
        .unwrap_err();
    assert_eq!(refused_status(err), 403);
    // The same rule guards the monitor.
    let err = ws_connect(&server, "/api/events", &[("origin", "http://evil.example")])
        .await
        .unwrap_err();
    assert_eq!(refused_status(err), 403);
    // The server's own origin, and no Origin at all (tools), are allowed.
    let own = format!("http://{}", server.addrs.http[0]);
    assert!(
        ws_connect(&server, "/ws", &[("origin", &own)])
            .await
            .is_ok()
    );
    assert!(ws_connect(&server, "/ws", &[]).await.is_ok());
    server.stop().await;
}

#[tokio::test]
async fn an_allowed_origin_is_accepted() {
    let server =
        start_server_with(|c| c.allow_origin = vec!["https://lab.example.org".into()]).await;
    assert!(
        ws_connect(&server, "/ws", &[("origin", "https://lab.example.org")])
            .await
            .is_ok()
    );
    let err = ws_connect(&server, "/ws", &[("origin", "https://other.example.org")])
        .await
        .unwrap_err();
    assert_eq!(refused_status(err), 403);
    server.stop().await;
}

#[tokio::test]
async fn no_query_parameter_changes_the_upstream() {
    let server = start_server().await;
    let mut ws = ws_connect(
        &server,
        "/ws?tag=t1&upstream=127.0.0.1:1&host=10.0.0.1&target=x",
        &[("x-upstream", "127.0.0.1:1")],
    )
    .await
    .unwrap();
    send_text(&mut ws, "where").await;
    assert_stamped(
        text(next_message(&mut ws).await.unwrap()).as_bytes(),
        b"where",
    );
    server.stop().await;
}

#[tokio::test]
async fn the_monitor_links_a_ws_session_to_its_upstream_tcp_session() {
    let server = start_server().await;
    let mut mon = Monitor::connect(&server).await;
    // A handshake written by hand, so the bytes sent and received are known exactly.
    let addr = server.addrs.http[0];
    let request = raw::ws_request(addr, "/ws?tag=page-42", "");
    let mut ws = tokio::net::TcpStream::connect(addr).await.unwrap();
    ws.write_all(request.as_bytes()).await.unwrap();
    let response = raw::read_head(&mut ws).await;
    assert_eq!(http::status_of(&response), 101, "{response:?}");
    let ws_id = match mon
        .wait_for(|e| matches!(e, socklab_protocol::MonitorEvent::SessionOpened(o) if o.kind == socklab_protocol::SessionKind::Ws))
        .await
    {
        socklab_protocol::MonitorEvent::SessionOpened(o) => {
            assert_eq!(o.tag.as_deref(), Some("page-42"));
            let hs = o.handshake.expect("handshake size");
            assert_eq!(
                (hs.request, hs.response),
                (request.len() as u64, response.len() as u64),
                "handshake sizes vs the bytes on the wire\n{request}{}",
                String::from_utf8_lossy(&response)
            );
            o.id
        }
        _ => unreachable!(),
    };
    mon.wait_for(|e| matches!(e, socklab_protocol::MonitorEvent::SessionOpened(o) if o.kind == socklab_protocol::SessionKind::Tcp && o.via == Some(ws_id)))
        .await;
    server.stop().await;
}

#[tokio::test]
async fn two_hundred_sessions_times_fifty_messages_all_in_order() {
    let server = start_server().await;
    let url = format!("ws://{}/ws", server.addrs.http[0]);
    let tasks: Vec<_> = (0..200)
        .map(|s| {
            let url = url.clone();
            tokio::spawn(async move {
                let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
                for m in 0..50 {
                    ws.feed(Message::text(format!("s{s}m{m}"))).await.unwrap();
                }
                ws.flush().await.unwrap();
                for m in 0..50 {
                    let reply = text(next_message(&mut ws).await.unwrap());
                    assert_stamped(reply.as_bytes(), format!("s{s}m{m}").as_bytes());
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    server.stop().await;
}

#[tokio::test]
async fn invalid_utf8_in_a_text_frame_closes_with_1007() {
    let server = start_server().await;
    let mut s = raw_ws(&server).await;
    // A masked text frame whose payload is not UTF-8.
    s.write_all(&raw::masked_frame(0x81, b"\xff\xfe"))
        .await
        .unwrap();
    assert_eq!(raw::read_ws_end(&mut s).await, raw::WsEnd::Close(1007));
    server.stop().await;
}

#[tokio::test]
async fn an_unmasked_client_frame_closes_with_1002() {
    let server = start_server().await;
    let mut s = raw_ws(&server).await;
    s.write_all(&[0x81, 0x02, b'h', b'i']).await.unwrap();
    assert_eq!(raw::read_ws_end(&mut s).await, raw::WsEnd::Close(1002));
    server.stop().await;
}

/// A raw TCP connection that has completed a WebSocket handshake on `/ws`.
async fn raw_ws(server: &socklab_server::RunningServer) -> tokio::net::TcpStream {
    let addr = server.addrs.http[0];
    raw::ws_upgraded(addr, &raw::ws_request(addr, "/ws", "")).await
}

#[tokio::test]
async fn a_handshake_that_would_leave_no_slot_for_its_upstream_gets_503() {
    let server = start_server_with(|c| c.max_connections = 3).await;
    let _a = LineClient::connect(server.addrs.tcp[0]).await;
    let _b = LineClient::connect(server.addrs.tcp[0]).await;
    raw::wait_until(TIMEOUT, "both TCP clients to hold a slot", || {
        server.registry.len() == 2
    })
    .await;
    match ws_connect(&server, "/ws", &[]).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 503),
        other => panic!("expected 503, got {other:?}"),
    }
    drop(_b);
    // The slot comes back when the server has seen the close: retry until then.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let mut ws = loop {
        match ws_connect(&server, "/ws", &[]).await {
            Ok(ws) => break ws,
            Err(err) => {
                assert_eq!(refused_status(err), 503);
                assert!(tokio::time::Instant::now() < deadline, "no slot came back");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    send_text(&mut ws, "room now").await;
    assert_stamped(
        text(next_message(&mut ws).await.unwrap()).as_bytes(),
        b"room now",
    );
    server.stop().await;
}

/// Frames may come in the handshake's own packet (hyper reads them with the request): they are
/// read. A ping between a message's fragments is answered at once with its payload, and the
/// message still goes upstream whole.
#[tokio::test]
async fn frames_sent_with_the_handshake_and_a_ping_between_fragments_are_answered() {
    let server = start_server().await;
    let addr = server.addrs.http[0];
    let mut bytes = raw::ws_request(addr, "/ws", "").into_bytes();
    bytes.extend(raw::masked_frame(0x01, "hé".as_bytes())); // text, not final
    bytes.extend(raw::masked_frame(0x89, b"are you there")); // ping
    bytes.extend(raw::masked_frame(0x80, "llo wörld".as_bytes())); // its final fragment
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(&bytes).await.unwrap();
    let head = raw::read_head(&mut s).await;
    assert_eq!(
        http::status_of(&head),
        101,
        "{}",
        String::from_utf8_lossy(&head)
    );
    let role = tokio_tungstenite::tungstenite::protocol::Role::Client;
    let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(s, role, None).await;
    let mut next = async || {
        let msg = tokio::time::timeout(TIMEOUT, futures_util::StreamExt::next(&mut ws)).await;
        msg.expect("a frame in time")
            .expect("open")
            .expect("a frame")
    };
    match next().await {
        Message::Pong(payload) => assert_eq!(&payload[..], b"are you there"),
        other => panic!("expected the pong first, got {other:?}"),
    }
    let reply = text(next().await);
    assert_stamped(reply.as_bytes(), "héllo wörld".as_bytes());
    server.stop().await;
}
