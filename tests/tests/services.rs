//! The banner, the UDP echo, the lesson's own client.py, and the monitor feed over raw clients.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use socklab_protocol::{Direction, MonitorEvent, SessionKind};
use socklab_tests::{
    LineClient, Monitor, TIMEOUT, assert_stamped, start_server, start_server_with,
};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpStream, UdpSocket};

#[tokio::test]
async fn the_banner_greets_in_the_lessons_words_and_closes() {
    let server = start_server().await;
    let mut s = TcpStream::connect(server.addrs.banner[0]).await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(TIMEOUT, s.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, "欢迎访问菜鸟教程!\r\n".as_bytes());
    server.stop().await;
}

#[tokio::test]
async fn the_banner_text_can_be_changed() {
    let server = start_server_with(|c| c.banner_text = "hello class".into()).await;
    let mut s = TcpStream::connect(server.addrs.banner[0]).await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(TIMEOUT, s.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, b"hello class\r\n");
    server.stop().await;
}

#[tokio::test]
async fn each_datagram_gets_one_stamped_datagram() {
    let server = start_server().await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.connect(server.addrs.udp[0]).await.unwrap();
    for msg in [&b"ping"[..], b"\xff\x00raw", b"two\nlines"] {
        sock.send(msg).await.unwrap();
        let mut buf = [0u8; 2048];
        let n = tokio::time::timeout(TIMEOUT, sock.recv(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_stamped(&buf[..n], msg);
    }
    server.stop().await;
}

#[tokio::test]
async fn an_oversized_udp_reply_is_dropped_and_the_echo_goes_on() {
    let server = start_server().await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.connect(server.addrs.udp[0]).await.unwrap();
    // 65507 bytes is the largest IPv4 datagram: stamped, the reply could not be sent.
    sock.send(&vec![b'x'; 65_507]).await.unwrap();
    sock.send(b"small").await.unwrap();
    let mut buf = vec![0u8; 70_000];
    let n = tokio::time::timeout(TIMEOUT, sock.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_stamped(&buf[..n], b"small");
    server.stop().await;
}

#[tokio::test]
async fn udp_drop_loses_about_that_share() {
    let server = start_server_with(|c| c.udp_drop = 50.0).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.connect(server.addrs.udp[0]).await.unwrap();
    for i in 0..200 {
        sock.send(format!("{i}").as_bytes()).await.unwrap();
    }
    let mut got = 0;
    let mut buf = [0u8; 256];
    while let Ok(Ok(_)) =
        tokio::time::timeout(Duration::from_millis(500), sock.recv(&mut buf)).await
    {
        got += 1;
    }
    assert!(
        (50..=150).contains(&got),
        "{got} of 200 came back at 50% drop"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_lessons_client_py_works_unchanged() {
    let server = start_server().await;
    let addr = server.addrs.tcp[0];
    // The lesson's client.py, only HOST and PORT pointed at the test server.
    let script = format!(
        r#"from socket import *
from time import ctime
HOST = '{ip}' #服务端ip
PORT = {port} #服务端端口号
BUFSIZ = 1024
ADDR = (HOST, PORT)
tcpCliSock = socket(AF_INET, SOCK_STREAM) #创建socket对象
tcpCliSock.connect(ADDR) #连接服务器
while True:
    data = input('>>').strip()
    if not data:
        break
    tcpCliSock.send(data.encode('utf-8')) #发送消息
    data = tcpCliSock.recv(BUFSIZ) #读取消息
    if not data:
        break
    print(data.decode('utf-8'))
tcpCliSock.close() #关闭客户端
"#,
        ip = addr.ip(),
        port = addr.port()
    );
    let dir = std::env::temp_dir().join(format!("socklab-client-py-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("client.py");
    std::fs::write(&path, script).unwrap();
    let mut child = tokio::process::Command::new("python3")
        .arg(&path)
        .env("PYTHONIOENCODING", "utf-8")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().unwrap();
        // Each line waits for its reply before the next input() reads, as a person would type.
        stdin.write_all("hello\n你好\n\n".as_bytes()).await.unwrap();
    }
    let out = tokio::time::timeout(TIMEOUT, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let replies: Vec<&str> = stdout
        .lines()
        .map(|l| l.trim_start_matches(">>"))
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(replies.len(), 2, "{stdout}");
    assert_stamped(replies[0].as_bytes(), b"hello");
    assert_stamped(replies[1].as_bytes(), "你好".as_bytes());
    server.stop().await;
}

#[tokio::test]
async fn a_raw_tcp_clients_messages_appear_on_the_monitor() {
    let server = start_server().await;
    let mut mon = Monitor::connect(&server).await;
    let mut c = LineClient::connect(server.addrs.tcp[0]).await;
    c.send(b"seen?\n").await;
    c.line().await;
    let opened = mon
        .wait_for(|e| matches!(e, MonitorEvent::SessionOpened(o) if o.kind == SessionKind::Tcp))
        .await;
    let MonitorEvent::SessionOpened(opened) = opened else {
        unreachable!()
    };
    chrono::DateTime::parse_from_rfc3339(&opened.at).expect("at is RFC 3339");
    let id = opened.id;
    let msg = mon
        .wait_for(|e| matches!(e, MonitorEvent::Message(m) if m.id == id && m.dir == Direction::In))
        .await;
    let MonitorEvent::Message(m) = msg else {
        unreachable!()
    };
    assert_eq!(m.preview, "seen?\n");
    assert_eq!(m.bytes, 6);
    mon.wait_for(|e| matches!(e, MonitorEvent::Message(m) if m.id == id && m.dir == Direction::Out && m.bytes == 28))
        .await;
    drop(c);
    let closed = mon
        .wait_for(|e| matches!(e, MonitorEvent::SessionClosed(c) if c.id == id))
        .await;
    let MonitorEvent::SessionClosed(closed) = closed else {
        unreachable!()
    };
    assert_eq!((closed.bytes_in, closed.bytes_out), (6, 28));
    assert_eq!(closed.reason, "client closed");
    server.stop().await;
}

#[tokio::test]
async fn a_new_subscriber_first_sees_sessions_already_open() {
    let server = start_server().await;
    let _c = clients_open(&server, 1).await;
    let mut mon = Monitor::connect(&server).await;
    match mon.next().await {
        MonitorEvent::SessionOpened(o) => assert_eq!(o.kind, SessionKind::Tcp),
        other => panic!("expected the snapshot first, got {other:?}"),
    }
    server.stop().await;
}

#[tokio::test]
async fn a_new_subscribers_snapshot_carries_exact_counts_and_live_opens_none() {
    let server = start_server().await;
    let mut c = LineClient::connect(server.addrs.tcp[0]).await;
    let (mut sent, mut got) = (0, 0);
    for line in ["one\n", "two two\n", "三\n"] {
        c.send(line.as_bytes()).await;
        sent += line.len() as u64;
        got += c.line().await.len() as u64;
    }
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    udp.connect(server.addrs.udp[0]).await.unwrap();
    udp.send(b"dgram").await.unwrap();
    let mut buf = [0u8; 2048];
    let udp_got = tokio::time::timeout(TIMEOUT, udp.recv(&mut buf))
        .await
        .unwrap()
        .unwrap() as u64;
    // A reply is counted once written, which may be just after the client read it.
    tokio::time::timeout(TIMEOUT, async {
        while server
            .registry
            .snapshot()
            .sessions
            .iter()
            .map(|s| s.messages_out)
            .sum::<u64>()
            < 4
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();

    let mut mon = Monitor::connect(&server).await;
    let mut snapshot = Vec::new();
    while snapshot.len() < 2 {
        match mon.next().await {
            MonitorEvent::SessionOpened(o) => snapshot.push(o),
            other => panic!("expected the snapshot first, got {other:?}"),
        }
    }
    let counts = |kind| {
        let o = snapshot.iter().find(|o| o.kind == kind).unwrap();
        let c = o
            .counts()
            .expect("a snapshot's session_opened carries counts");
        (c.bytes_in, c.bytes_out, c.messages_in, c.messages_out)
    };
    assert_eq!(counts(SessionKind::Tcp), (sent, got, 3, 3));
    assert_eq!(counts(SessionKind::Udp), (5, udp_got, 1, 1));

    let _late = LineClient::connect(server.addrs.tcp[0]).await;
    let live = mon
        .wait_for(|e| matches!(e, MonitorEvent::SessionOpened(o) if o.kind == SessionKind::Tcp))
        .await;
    let MonitorEvent::SessionOpened(live) = live else {
        unreachable!()
    };
    assert_eq!(live.counts(), None, "a live open carries no counts");
    assert_eq!(live.bytes_in, None);
    server.stop().await;
}

#[tokio::test]
async fn udp_and_banner_sessions_appear_on_the_monitor() {
    let server = start_server().await;
    let mut mon = Monitor::connect(&server).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(b"u", server.addrs.udp[0]).await.unwrap();
    let udp_peer = sock.local_addr().unwrap().to_string();
    match mon
        .wait_for(|e| matches!(e, MonitorEvent::SessionOpened(o) if o.kind == SessionKind::Udp))
        .await
    {
        MonitorEvent::SessionOpened(o) => assert_eq!(o.peer, udp_peer),
        _ => unreachable!(),
    }
    let mut b = TcpStream::connect(server.addrs.banner[0]).await.unwrap();
    let mut greeting = Vec::new();
    tokio::time::timeout(TIMEOUT, b.read_to_end(&mut greeting))
        .await
        .unwrap()
        .unwrap();
    match mon
        .wait_for(|e| matches!(e, MonitorEvent::SessionClosed(c) if c.kind == SessionKind::Banner))
        .await
    {
        // The feed counts exactly the bytes the visitor received.
        MonitorEvent::SessionClosed(c) => {
            assert_eq!((c.bytes_in, c.bytes_out), (0, greeting.len() as u64));
        }
        _ => unreachable!(),
    }
    server.stop().await;
}

#[tokio::test]
async fn a_subscriber_that_never_reads_does_not_slow_echo_clients() {
    let server = start_server_with(|c| c.monitor_buffer = 64).await;
    // Subscribe and never read a single event.
    let _stuck = socklab_tests::ws_connect(&server, "/api/events", &[])
        .await
        .unwrap();
    let mut c = LineClient::connect(server.addrs.tcp[0]).await;
    let started = std::time::Instant::now();
    // Enough traffic to fill the subscriber's socket buffers many times over.
    let line = format!("{}\n", "m".repeat(1000));
    for _ in 0..5000 {
        c.send(line.as_bytes()).await;
        assert_stamped(&c.line().await, line.as_bytes());
    }
    // Not a timing assertion: the point is that this finished at all (a blocking bus would
    // have stalled once the subscriber's buffers filled). Report the time for people.
    eprintln!(
        "5000 round trips with a stuck subscriber: {:?}",
        started.elapsed()
    );
    // The feed itself still works for a new subscriber: its snapshot shows the client.
    let mut fresh = Monitor::connect(&server).await;
    fresh
        .wait_for(|e| matches!(e, MonitorEvent::SessionOpened(o) if o.kind == SessionKind::Tcp))
        .await;
    server.stop().await;
}

/// `n` raw TCP clients, once the server has registered them.
async fn clients_open(
    server: &socklab_tests::socklab_server::RunningServer,
    n: usize,
) -> Vec<LineClient> {
    let mut clients = Vec::new();
    for _ in 0..n {
        clients.push(LineClient::connect(server.addrs.tcp[0]).await);
    }
    tokio::time::timeout(TIMEOUT, async {
        while server.registry.len() < n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    clients
}

/// A subscriber to `/api/events?batch={n}`.
async fn batched_feed(
    server: &socklab_tests::socklab_server::RunningServer,
    n: usize,
) -> socklab_tests::Ws {
    socklab_tests::ws_connect(server, &format!("/api/events?batch={n}"), &[])
        .await
        .expect("a batched feed")
}

/// The events of one `?batch=` frame (it must be a JSON array of events), and its length in
/// bytes.
async fn batch_frame(ws: &mut socklab_tests::Ws) -> (Vec<MonitorEvent>, usize) {
    match socklab_tests::next_message(ws).await {
        Ok(tokio_tungstenite::tungstenite::Message::Text(t)) => {
            let events = serde_json::from_str(t.as_str())
                .unwrap_or_else(|e| panic!("a `?batch=` frame is an array of events ({e}): {t}"));
            (events, t.len())
        }
        other => panic!("expected a frame of events, got {other:?}"),
    }
}

/// `?batch=N`: the snapshot in arrays of at most N, and live events at most N to a frame, in
/// order. On one runtime, shared with the feed, a line's `in` and its reply's `out` are
/// published in one poll of the echo, so both wait when the feed runs: `?batch=2` sends them
/// in one frame and `?batch=1` in two.
#[tokio::test]
async fn a_batched_feed_sends_arrays_of_the_events_waiting_at_most_n_each() {
    let server = start_server_with(|c| c.threads = Some(1)).await;
    let mut clients = clients_open(&server, 5).await;
    let mut two = batched_feed(&server, 2).await;
    let mut one = batched_feed(&server, 1).await;
    let (snapshot, sizes) = batch_frames(&mut two, 5).await;
    assert!(
        snapshot
            .iter()
            .all(|e| matches!(e, MonitorEvent::SessionOpened(_))),
        "{snapshot:?}"
    );
    assert_eq!(
        sizes,
        [2, 2, 1],
        "the snapshot of 5 sessions, two to a frame"
    );
    assert_eq!(batch_frames(&mut one, 5).await.1, [1; 5]);

    let lines: Vec<String> = (0..3).map(|i| format!("b{i}\n")).collect();
    for (c, line) in clients.iter_mut().zip(&lines) {
        c.send(line.as_bytes()).await;
        c.line().await;
    }
    for (ws, most) in [(&mut two, 2), (&mut one, 1)] {
        let (events, sizes) = batch_frames(ws, 6).await;
        let ins: Vec<&str> = events
            .iter()
            .filter_map(|e| match e {
                MonitorEvent::Message(m) if m.dir == Direction::In => Some(m.preview.as_str()),
                MonitorEvent::Message(_) => None,
                other => panic!("only the lines' messages, not {other:?}"),
            })
            .collect();
        assert_eq!(ins, lines, "every line once, in order");
        assert!(sizes.iter().all(|&n| n <= most), "{sizes:?}");
        assert!(
            sizes.contains(&most),
            "waiting events share a frame: {sizes:?}"
        );
    }
    server.stop().await;
}

/// The next `n` events of a `?batch=` feed, and how many each frame carried.
async fn batch_frames(ws: &mut socklab_tests::Ws, n: usize) -> (Vec<MonitorEvent>, Vec<usize>) {
    let (mut events, mut sizes) = (Vec::new(), Vec::new());
    while events.len() < n {
        let (frame, _) = batch_frame(ws).await;
        sizes.push(frame.len());
        events.extend(frame);
    }
    (events, sizes)
}

/// A frame never holds more than half the feed's write buffer (twice `--max-message`, at
/// least 16 KiB), which it must fit to be sent: 100 sessions' snapshot with `?batch=1024`
/// and 16 KiB comes in frames of at most 8 KiB.
#[tokio::test]
async fn a_batched_frame_stays_within_half_the_feeds_write_buffer() {
    let server = start_server_with(|c| c.max_message = 4096).await;
    let _clients = clients_open(&server, 100).await;
    let mut ws = batched_feed(&server, 1024).await;
    let (mut opened, mut lengths) = (0, Vec::new());
    while opened < 100 {
        let (frame, length) = batch_frame(&mut ws).await;
        lengths.push(length);
        opened += frame.len();
    }
    assert_eq!(opened, 100);
    assert!(lengths.iter().all(|&n| n <= 8 * 1024), "{lengths:?}");
    assert!(lengths.len() > 1, "{lengths:?}");
    server.stop().await;
}

/// A `batch` that is not a whole number from 1 to 1024 is refused with a 400 that says so.
#[tokio::test]
async fn a_bad_batch_is_refused_with_a_400_naming_it() {
    let server = start_server().await;
    let addr = server.addrs.http[0];
    for bad in ["0", "1025", "x", ""] {
        let path = format!("/api/events?batch={bad}");
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        );
        let response = socklab_tests::http::fetch(addr, request.as_bytes())
            .await
            .unwrap_or_else(|| panic!("{path}: no whole response"));
        assert_eq!(response.status, 400, "{path}");
        let body = response.text();
        assert!(
            body.contains("`batch` must be a whole number from 1 to 1024"),
            "{path}: {body}"
        );
    }
    server.stop().await;
}
