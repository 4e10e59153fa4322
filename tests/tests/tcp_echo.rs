//! The TCP timestamp echo, byte for byte against DESIGN.md's contract.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use socklab_tests::raw::wait_until;
use socklab_tests::{LineClient, TIMEOUT, assert_stamped, start_server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn a_line_is_answered_with_a_stamp() {
    let server = start_server().await;
    let mut c = LineClient::connect(server.addrs.tcp[0]).await;
    c.send(b"hello\n").await;
    assert_stamped(&c.line().await, b"hello\n");
    server.stop().await;
}

#[tokio::test]
async fn two_lines_in_one_write_get_two_replies() {
    let server = start_server().await;
    let mut c = LineClient::connect(server.addrs.tcp[0]).await;
    c.send(b"a\nb\n").await;
    assert_stamped(&c.line().await, b"a\n");
    assert_stamped(&c.line().await, b"b\n");
    server.stop().await;
}

#[tokio::test]
async fn a_partial_line_is_answered_when_the_client_pauses() {
    let server = start_server().await;
    let mut s = TcpStream::connect(server.addrs.tcp[0]).await.unwrap();
    s.write_all(b"hello").await.unwrap();
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(TIMEOUT, s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    // Exactly `[t]:hello`, no newline added — what the lesson's client.py expects.
    assert_stamped(&buf[..n], b"hello");
    server.stop().await;
}

/// Issue 13, item 6: TCP is a byte stream, so a line that arrives in two pieces is answered in
/// two pieces, each under its own stamp; every byte comes back once, in order. The second
/// write goes only once the first piece is answered, so the server surely read `hel` alone
/// (no timing luck involved).
#[tokio::test]
async fn a_line_sent_in_two_writes_comes_back_under_two_stamps() {
    let server = start_server().await;
    let mut s = TcpStream::connect(server.addrs.tcp[0]).await.unwrap();
    s.set_nodelay(true).unwrap();
    s.write_all(b"hel").await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let stamp = socklab_protocol::STAMP_LEN;
    while got.len() < stamp + 3 {
        let n = tokio::time::timeout(TIMEOUT, s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_ne!(n, 0, "closed early");
        got.extend_from_slice(&buf[..n]);
    }
    assert_stamped(&got, b"hel");
    s.write_all(b"lo\n").await.unwrap();
    while !got.ends_with(b"\n") {
        let n = tokio::time::timeout(TIMEOUT, s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_ne!(n, 0, "closed early");
        got.extend_from_slice(&buf[..n]);
    }
    let (first, second) = got.split_at(stamp + 3);
    assert_stamped(first, b"hel");
    assert_stamped(second, b"lo\n");
    assert_eq!(
        got.len(),
        2 * stamp + b"hello\n".len(),
        "two stamps, every byte once"
    );
    assert_eq!([&first[stamp..], &second[stamp..]].concat(), b"hello\n");
    server.stop().await;
}

#[tokio::test]
async fn bytes_come_back_verbatim() {
    let server = start_server().await;
    let mut c = LineClient::connect(server.addrs.tcp[0]).await;
    let weird = b"\x00\xff\xfe\r caf\xc3\xa9 \r\n";
    c.send(weird).await;
    assert_stamped(&c.line().await, weird);
    server.stop().await;
}

#[tokio::test]
async fn utf8_text_from_the_lesson_round_trips() {
    let server = start_server().await;
    let mut c = LineClient::connect(server.addrs.tcp[0]).await;
    c.send("你好,socket!\n".as_bytes()).await;
    assert_stamped(&c.line().await, "你好,socket!\n".as_bytes());
    server.stop().await;
}

#[tokio::test]
async fn many_clients_keep_their_own_order() {
    let server = start_server().await;
    let addr = server.addrs.tcp[0];
    let tasks: Vec<_> = (0..50)
        .map(|client| {
            tokio::spawn(async move {
                let mut c = LineClient::connect(addr).await;
                let mut all = Vec::new();
                for i in 0..20 {
                    all.extend_from_slice(format!("c{client}-m{i}\n").as_bytes());
                }
                c.send(&all).await;
                for i in 0..20 {
                    assert_stamped(&c.line().await, format!("c{client}-m{i}\n").as_bytes());
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
async fn ipv6_works_when_asked_for() {
    if let Err(err) = std::net::TcpListener::bind("[::1]:0") {
        socklab_tests::skip::skip_unless_required(
            "ipv6_works_when_asked_for",
            socklab_tests::skip::Need::Ipv6,
            &format!("this machine has no IPv6 loopback (binding [::1]:0: {err})"),
        );
        return;
    }
    let server =
        socklab_tests::start_server_with(|c| c.tcp = vec!["[::1]:0".parse().unwrap()]).await;
    assert!(server.addrs.tcp[0].is_ipv6());
    let mut c = LineClient::connect(server.addrs.tcp[0]).await;
    c.send(b"v6\n").await;
    assert_stamped(&c.line().await, b"v6\n");
    server.stop().await;
}

/// `--max-line` bounds a line without its `\n`: a line of exactly that many bytes is answered
/// whole, under one stamp; one byte more, in two pieces.
#[tokio::test]
async fn a_line_as_long_as_max_line_is_answered_whole() {
    let server = start_server_small_lines().await; // --max-line 4096
    let mut c = LineClient::connect(server.addrs.tcp[0]).await;
    let mut line = vec![b'x'; 4096];
    line.push(b'\n');
    c.send(&line).await;
    assert_stamped(&c.line().await, &line);
    let mut longer = vec![b'y'; 4097];
    longer.push(b'\n');
    c.send(&longer).await;
    let got = c.line().await;
    let stamp = socklab_protocol::STAMP_LEN;
    assert_eq!(got.len(), 2 * stamp + longer.len(), "two stamped pieces");
    assert_stamped(&got[..stamp + 4096], &longer[..4096]);
    assert_stamped(&got[stamp + 4096..], b"y\n");
    server.stop().await;
}

#[tokio::test]
async fn ten_megabytes_without_a_newline_all_come_back() {
    let server = start_server_small_lines().await;
    let s = TcpStream::connect(server.addrs.tcp[0]).await.unwrap();
    let (mut r, mut w) = s.into_split();
    const TOTAL: usize = 10 * 1024 * 1024;
    let writer = tokio::spawn(async move {
        let chunk: Vec<u8> = (0..64 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
        let mut sent = 0;
        while sent < TOTAL {
            w.write_all(&chunk).await.unwrap();
            sent += chunk.len();
        }
        w.shutdown().await.unwrap();
    });
    // Strip the stamps and check every byte came back once, in order.
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), r.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    writer.await.unwrap();
    let payload = unstamp(&got);
    assert_eq!(payload.len(), TOTAL);
    assert!(
        payload
            .iter()
            .enumerate()
            .all(|(i, &b)| b == b'a' + ((i % (64 * 1024)) % 26) as u8)
    );
    server.stop().await;
}

/// Removes every `[YYYY-MM-DD HH:MM:SS]:` stamp (payload here is only lowercase letters).
fn unstamp(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    let mut pieces = 0;
    let mut piece_len = 0;
    while i < data.len() {
        if data[i] == b'[' {
            assert_eq!(data[i + 21], b':', "stamp at {i}");
            i += 22;
            pieces += 1;
            piece_len = 0;
        } else {
            piece_len += 1;
            assert!(piece_len <= 4096, "a piece longer than --max-line");
            out.push(data[i]);
            i += 1;
        }
    }
    assert!(
        pieces >= 10 * 1024 * 1024 / 4096,
        "answered in {pieces} pieces"
    );
    out
}

async fn start_server_small_lines() -> socklab_server::RunningServer {
    socklab_tests::start_server_with(|c| c.max_line = 4096).await
}

#[tokio::test]
async fn a_client_that_resets_mid_stream_does_not_disturb_others() {
    let server = start_server().await;
    let addr = server.addrs.tcp[0];
    let mut c = LineClient::connect(addr).await;
    c.send(b"before\n").await;
    assert_stamped(&c.line().await, b"before\n");
    let s = TcpStream::connect(addr).await.unwrap();
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    let (_, mut w) = s.into_split();
    w.write_all(b"half a li").await.unwrap();
    wait_until(TIMEOUT, "the second session to open", || {
        server.registry.len() == 2
    })
    .await;
    drop(w); // with linger 0: RST
    // The server has dealt with the reset (the session is gone), and the other client is
    // served as before.
    wait_until(TIMEOUT, "the reset session to close", || {
        server.registry.len() == 1
    })
    .await;
    c.send(b"still here\n").await;
    assert_stamped(&c.line().await, b"still here\n");
    server.stop().await;
}
