//! `--capture`: the real server captures its own packets from an AF_PACKET socket, and the
//! pcap files it serves are read by Debian's real `tshark`.
//!
//! These tests need root or CAP_NET_RAW. Without it they say so and pass locally; under CI
//! (`CI` set, which runs as root) they fail instead, so they can never be skipped unseen.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use socklab_protocol::{MonitorEvent, ServerInfo, SessionKind};
use socklab_tests::http;
use socklab_tests::raw::wait_until;
use socklab_tests::skip::{Need, skip_unless_required};
use socklab_tests::socklab_server::RunningServer;
use socklab_tests::{
    LineClient, Monitor, TIMEOUT, assert_stamped, next_message, send_text, start_server_with,
    ws_connect,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_tungstenite::tungstenite::Message;

/// A server with `--capture` on, or `None` (a recorded skip; a failure in CI or with
/// `SOCKLAB_REQUIRE_CAPTURE=1`) when this process may not capture.
async fn capture_server(test: &str) -> Option<RunningServer> {
    let server = start_server_with(|c| c.capture = true).await;
    let response = http::get(server.addrs.http[0], "/api/info", &[]).await;
    assert_eq!(response.status, 200);
    let info: ServerInfo = serde_json::from_slice(&response.body).unwrap();
    if info.capture {
        return Some(server);
    }
    server.stop().await;
    skip_unless_required(
        test,
        Need::Capture,
        "this process may not capture packets (it needs root or CAP_NET_RAW)",
    );
    None
}

/// `GET /api/sessions/{id}/pcap`.
async fn pcap(server: &RunningServer, id: u64) -> http::HttpResponse {
    http::get(
        server.addrs.http[0],
        &format!("/api/sessions/{id}/pcap"),
        &[],
    )
    .await
}

/// Runs `tshark -r FILE args…` on `file`; fails unless it reads the file with no error.
/// Returns its output lines.
fn tshark(file: &[u8], args: &[&str]) -> Vec<String> {
    static N: AtomicU32 = AtomicU32::new(0);
    let path = std::env::temp_dir().join(format!(
        "socklab-capture-{}-{}.pcap",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, file).unwrap();
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&path)
        .args(args)
        .output()
        .expect("tshark runs (cargo xtask test installs Debian's tshark)");
    let _ = std::fs::remove_file(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with("Running as user"))
        .collect();
    assert!(
        out.status.success() && errors.is_empty(),
        "tshark: {stderr}"
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Fetches session `id`'s pcap until tshark's lines for `args` satisfy `done` (packets reach
/// the store a little after they cross the wire), failing after [`TIMEOUT`].
async fn pcap_until(
    server: &RunningServer,
    id: u64,
    args: &[&str],
    done: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let r = pcap(server, id).await;
        if r.status == 200 {
            let lines = tshark(&r.body, args);
            if done(&lines) {
                return lines;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "session {id}'s pcap never got there: {lines:#?}"
            );
        } else {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no pcap for session {id}: {}",
                r.status
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The id of the open session of `kind` whose peer is `peer`, once it is registered.
async fn session_of(server: &RunningServer, kind: SessionKind, peer: SocketAddr) -> u64 {
    let find = || {
        server
            .registry
            .snapshot()
            .sessions
            .iter()
            .find(|s| s.kind == kind && peer.to_string().ends_with(&s.peer))
            .map(|s| s.id)
    };
    wait_until(TIMEOUT, "the session to be registered", || find().is_some()).await;
    find().unwrap()
}

/// One TCP segment as tshark's fields show it.
#[derive(Debug, PartialEq)]
struct Segment {
    from_client: bool,
    syn: bool,
    ack: bool,
    fin: bool,
    payload: Vec<u8>,
}

const TCP_FIELDS: [&str; 14] = [
    "-T",
    "fields",
    "-E",
    "separator=,",
    "-e",
    "tcp.srcport",
    "-e",
    "tcp.flags.syn",
    "-e",
    "tcp.flags.ack",
    "-e",
    "tcp.flags.fin",
    "-e",
    "tcp.payload",
];

fn segments(lines: &[String], client_port: u16) -> Vec<Segment> {
    lines
        .iter()
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            Segment {
                from_client: f[0] == client_port.to_string(),
                syn: f[1] == "1",
                ack: f[2] == "1",
                fin: f[3] == "1",
                payload: unhex(f.get(4).copied().unwrap_or("")),
            }
        })
        .collect()
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

#[tokio::test]
async fn a_tcp_session_s_pcap_holds_the_handshake_the_line_the_stamp_and_both_fins() {
    let Some(server) =
        capture_server("a_tcp_session_s_pcap_holds_the_handshake_the_line_the_stamp_and_both_fins")
            .await
    else {
        return;
    };
    let mut client = LineClient::connect(server.addrs.tcp[0]).await;
    let port = client.writer.local_addr().unwrap().port();
    let id = session_of(
        &server,
        SessionKind::Tcp,
        client.writer.local_addr().unwrap(),
    )
    .await;
    client.send(b"hi\n").await;
    let reply = client.line().await;
    assert_stamped(&reply, b"hi\n");
    drop(client);
    let two_fins = |lines: &[String]| segments(lines, port).iter().filter(|s| s.fin).count() == 2;
    let lines = pcap_until(&server, id, &TCP_FIELDS, two_fins).await;
    let segs = segments(&lines, port);
    let find = |from: usize, what: &dyn Fn(&Segment) -> bool| {
        from + segs[from..]
            .iter()
            .position(what)
            .unwrap_or_else(|| panic!("missing after #{from}: {segs:#?}"))
    };
    assert!(
        segs[0].from_client && segs[0].syn && !segs[0].ack,
        "{segs:#?}"
    );
    assert!(
        !segs[1].from_client && segs[1].syn && segs[1].ack,
        "{segs:#?}"
    );
    assert!(
        segs[2].from_client && !segs[2].syn && segs[2].ack,
        "{segs:#?}"
    );
    let hi = find(3, &|s| s.from_client && s.payload == b"hi\n");
    let stamped = find(hi, &|s| !s.from_client && !s.payload.is_empty());
    assert_stamped(&segs[stamped].payload, b"hi\n");
    let client_fin = find(stamped, &|s| s.from_client && s.fin);
    let server_fin = find(stamped, &|s| !s.from_client && s.fin);
    assert!(client_fin.max(server_fin) > stamped);
    // The file is served as a download with a useful name; unknown sessions are 404.
    let r = pcap(&server, id).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/vnd.tcpdump.pcap")
    );
    let name = format!("attachment; filename=\"socklab-tcp-{id}.pcap\"");
    assert_eq!(r.header("content-disposition"), Some(name.as_str()));
    assert_eq!(pcap(&server, 999_999).await.status, 404);
    server.stop().await;
}

#[tokio::test]
async fn a_bridged_session_s_pcap_decodes_as_http_upgrade_websocket_and_the_tcp_hop() {
    let Some(server) = capture_server(
        "a_bridged_session_s_pcap_decodes_as_http_upgrade_websocket_and_the_tcp_hop",
    )
    .await
    else {
        return;
    };
    let mut ws = ws_connect(&server, "/ws", &[]).await.unwrap();
    send_text(&mut ws, "hi\n").await;
    let Ok(Message::Text(reply)) = next_message(&mut ws).await else {
        panic!("no echo");
    };
    assert!(reply.as_str().ends_with("]:hi"), "{reply}");
    let ws_id = server
        .registry
        .snapshot()
        .sessions
        .iter()
        .find(|s| s.kind == SessionKind::Ws)
        .map(|s| s.id)
        .expect("the ws session is open while it echoes");
    ws.close(None).await.unwrap();
    while next_message(&mut ws).await.is_ok() {}
    let echo_port = server.addrs.tcp[0].port().to_string();
    let filter = format!(
        "http.request.method == \"GET\" || http.response.code == 101 || websocket || \
         tcp.port == {echo_port}"
    );
    let fields = [
        "-Y",
        &filter,
        "-T",
        "fields",
        "-E",
        "separator=,",
        "-e",
        "http.request.method",
        "-e",
        "http.response.code",
        "-e",
        "websocket.opcode",
        "-e",
        "tcp.dstport",
    ];
    let has = |lines: &[String], f: &dyn Fn(&[&str]) -> bool| {
        lines.iter().any(|l| f(&l.split(',').collect::<Vec<_>>()))
    };
    let complete = |lines: &[String]| {
        has(lines, &|f| f[0] == "GET")
            && has(lines, &|f| f[1] == "101")
            && has(lines, &|f| f[2] == "1")
            && has(lines, &|f| f[2] == "8")
            && has(lines, &|f| f[3] == echo_port)
    };
    pcap_until(&server, ws_id, &fields, complete).await;
    let r = pcap(&server, ws_id).await;
    let disposition = r.header("content-disposition").unwrap_or_default();
    assert!(
        disposition.contains(&format!("filename=\"socklab-ws-{ws_id}.pcap\"")),
        "{disposition}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_udp_session_has_datagrams_and_no_handshake() {
    let Some(server) = capture_server("a_udp_session_has_datagrams_and_no_handshake").await else {
        return;
    };
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(b"ping", server.addrs.udp[0]).await.unwrap();
    let mut buf = [0u8; 256];
    let (n, _) = tokio::time::timeout(TIMEOUT, socket.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(buf[..n].ends_with(b"]:ping"));
    let id = session_of(&server, SessionKind::Udp, socket.local_addr().unwrap()).await;
    let fields = [
        "-T",
        "fields",
        "-E",
        "separator=,",
        "-e",
        "udp.length",
        "-e",
        "tcp.flags.syn",
    ];
    let lines = pcap_until(&server, id, &fields, |l| l.len() >= 2).await;
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines.iter().all(|l| l.ends_with(',')),
        "no TCP at all: {lines:#?}"
    );
    assert_eq!(lines[0], "12,", "8 bytes of UDP header + `ping`");
    server.stop().await;
}

#[tokio::test]
async fn other_loopback_traffic_is_never_captured_nor_shown() {
    let Some(server) = capture_server("other_loopback_traffic_is_never_captured_nor_shown").await
    else {
        return;
    };
    let mut packets = Monitor::connect_to(&server, "/api/events?packets=1").await;
    let mut plain = Monitor::connect(&server).await;
    let other_port = other_loopback_connection().await;
    // Then one echo session, whose last packet ends the wait.
    let mut client = LineClient::connect(server.addrs.tcp[0]).await;
    let id = session_of(
        &server,
        SessionKind::Tcp,
        client.writer.local_addr().unwrap(),
    )
    .await;
    client.send(b"hi\n").await;
    client.line().await;
    assert_only_the_echo_sessions_packets_are_shown(&mut packets, client, id).await;
    assert_no_pcap_holds_the_port(&server, id, other_port).await;
    // A subscriber that did not ask for packets gets none.
    plain
        .wait_for(|e| {
            assert!(
                !matches!(e, MonitorEvent::Packet(_)),
                "not asked for: {e:?}"
            );
            matches!(e, MonitorEvent::SessionClosed(c) if c.id == id)
        })
        .await;
    server.stop().await;
}

/// A TCP connection between two loopback ports that are not socklab's, one line sent over
/// it, then closed; the listening port.
async fn other_loopback_connection() -> u16 {
    let other = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other_port = other.local_addr().unwrap().port();
    let mut a = TcpStream::connect(other.local_addr().unwrap())
        .await
        .unwrap();
    let (mut b, _) = other.accept().await.unwrap();
    a.write_all(b"not socklab's\n").await.unwrap();
    let mut got = [0u8; 14];
    b.read_exact(&mut got).await.unwrap();
    drop((a, b));
    other_port
}

/// Every packet event up to the close of `client` (session `id`) is that session's (its
/// handshake first), and its `hi\n` segment is shown as it went.
async fn assert_only_the_echo_sessions_packets_are_shown(
    packets: &mut Monitor,
    client: LineClient,
    id: u64,
) {
    let only_echo = |e: &MonitorEvent| {
        if let MonitorEvent::Packet(p) = e {
            assert_eq!(p.id, id, "only the echo session's packets are shown: {p:?}");
        }
    };
    let hi = packets
        .wait_for(|e| {
            only_echo(e);
            matches!(e, MonitorEvent::Packet(p) if p.payload_len == 3)
        })
        .await;
    let MonitorEvent::Packet(hi) = hi else {
        unreachable!()
    };
    assert_eq!(
        (hi.ip, hi.proto.as_str(), hi.payload_hex.as_str()),
        (4, "tcp", "68690a")
    );
    assert_eq!(hi.flags, ["PSH", "ACK"]);
    assert_eq!((hi.seq, hi.ack), (Some(1), Some(1)), "relative to the SYNs");
    assert_eq!(hi.ip_header, 20);
    assert!(hi.transport_header >= 20);
    drop(client);
    packets
        .wait_for(|e| {
            only_echo(e);
            matches!(e, MonitorEvent::Packet(p) if p.flags.contains(&"FIN".to_owned()))
        })
        .await;
}

/// No pcap of any session up to `id` holds the other connection's port; session `id`'s own
/// pcap is there (so the check never passes on pcaps that all went missing).
async fn assert_no_pcap_holds_the_port(server: &RunningServer, id: u64, other_port: u16) {
    for s in 1..=id {
        let r = pcap(server, s).await;
        if s == id {
            assert_eq!(r.status, 200, "session {id}'s pcap");
        }
        if r.status == 200 {
            let ports = tshark(&r.body, &["-T", "fields", "-e", "tcp.port"]);
            assert!(
                ports
                    .iter()
                    .all(|p| !p.split(',').any(|p| p == other_port.to_string())),
                "session {s} holds port {other_port}: {ports:?}"
            );
        }
    }
}

/// `/api/info`'s capture counters.
async fn capture_stats(server: &RunningServer) -> socklab_protocol::CaptureStats {
    let response = http::get(server.addrs.http[0], "/api/info", &[]).await;
    assert_eq!(response.status, 200);
    let info: ServerInfo = serde_json::from_slice(&response.body).unwrap();
    info.capture_stats
        .expect("capture counters while capture runs")
}

/// The value of the one `/metrics` sample whose line starts with `series `.
async fn sample(server: &RunningServer, series: &str) -> u64 {
    let response = http::get(server.addrs.http[0], "/metrics", &[]).await;
    assert_eq!(response.status, 200);
    let text = response.text();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn the_capture_counts_what_it_read_what_the_kernel_and_the_queue_dropped_and_what_it_kept() {
    let Some(server) = capture_server(
        "the_capture_counts_what_it_read_what_the_kernel_and_the_queue_dropped_and_what_it_kept",
    )
    .await
    else {
        return;
    };
    let mut client = LineClient::connect(server.addrs.tcp[0]).await;
    client.send(b"hi\n").await;
    assert_stamped(&client.line().await, b"hi\n");
    drop(client);
    // Handshake (3), `hi\n` and its ACK, the stamp and its ACK, two FINs and their ACKs:
    // at least 8 of the session's packets are matched.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let stats = loop {
        let stats = capture_stats(&server).await;
        if stats.captured >= 8 {
            break stats;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never 8 packets captured: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Every packet matched was read and not dropped on the way; under this light load
    // nothing is dropped anywhere.
    assert!(
        stats.captured + stats.queue_dropped <= stats.read,
        "{stats:?}"
    );
    assert_eq!(
        (stats.kernel_dropped, stats.queue_dropped, stats.unstored),
        (0, 0, 0),
        "{stats:?}"
    );
    // `/metrics` has the same counters (scraped later: never less).
    let read = sample(&server, "socklab_capture_packets_read_total").await;
    let captured = sample(&server, "socklab_capture_packets_captured_total").await;
    assert!(read >= stats.read && captured >= stats.captured);
    for series in [
        r#"socklab_capture_packets_dropped_total{where="kernel"}"#,
        r#"socklab_capture_packets_dropped_total{where="queue"}"#,
        "socklab_capture_packets_unstored_total",
    ] {
        assert_eq!(sample(&server, series).await, 0, "{series}");
    }
    server.stop().await;
}
