//! WebTransport, B/S over UDP: `/api/webtransport`, datagrams to the UDP echo (with and without
//! `--udp-drop`), a bidirectional stream bridged to the TCP echo, Origin, limits, idle,
//! shutdown and certificate renewal, all with wtransport's own client trusting the server the
//! way a browser does (`serverCertificateHashes`: ECDSA P-256, valid at most 14 days).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::time::Duration;

use socklab_protocol::{MonitorEvent, SessionKind, WebTransportInfo};
use socklab_tests::socklab_server::RunningServer;
use socklab_tests::{Monitor, TIMEOUT, assert_stamped, http, start_server, start_server_with};
use wtransport::endpoint::ConnectOptions;
use wtransport::endpoint::endpoint_side::Client;
use wtransport::error::{ConnectingError, ConnectionError};
use wtransport::tls::Sha256Digest;
use wtransport::{ClientConfig, Connection, Endpoint};

/// A client session; the endpoint is kept with it.
struct Wt {
    conn: Connection,
    _endpoint: Endpoint<Client>,
}

async fn info(server: &RunningServer) -> WebTransportInfo {
    let r = http::get(server.addrs.http[0], "/api/webtransport", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    serde_json::from_slice(&r.body).expect("WebTransportInfo JSON")
}

async fn try_connect(
    server: &RunningServer,
    path: &str,
    origin: Option<&str>,
) -> Result<Wt, ConnectingError> {
    let info = info(server).await;
    let hash: [u8; 32] = info.cert_sha256.as_slice().try_into().expect("32 bytes");
    let config = ClientConfig::builder()
        .with_bind_default()
        .with_server_certificate_hashes([Sha256Digest::new(hash)])
        .build();
    let endpoint = Endpoint::client(config).expect("client endpoint");
    let url = format!("{}{}", info.url, path.trim_start_matches('/'));
    let mut options = ConnectOptions::builder(url);
    if let Some(origin) = origin {
        options = options.add_header("origin", origin);
    }
    let conn = tokio::time::timeout(TIMEOUT, endpoint.connect(options.build()))
        .await
        .expect("handshake in time")?;
    Ok(Wt {
        conn,
        _endpoint: endpoint,
    })
}

async fn connect(server: &RunningServer) -> Wt {
    try_connect(server, "/", None).await.expect("session")
}

/// Receives datagrams until `want` arrived or nothing came for `quiet`.
async fn collect(conn: &Connection, want: usize, quiet: Duration) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    while got.len() < want {
        match tokio::time::timeout(quiet, conn.receive_datagram()).await {
            Ok(Ok(d)) => got.push(d.payload().to_vec()),
            Ok(Err(err)) => panic!("session closed: {err}"),
            Err(_) => break,
        }
    }
    got
}

async fn read_until(recv: &mut wtransport::RecvStream, want: &[u8]) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    tokio::time::timeout(TIMEOUT, async {
        while !got.ends_with(want) {
            match recv.read(&mut buf).await.expect("stream read") {
                Some(n) => got.extend_from_slice(&buf[..n]),
                None => break,
            }
        }
    })
    .await
    .expect("stream reply in time");
    got
}

#[tokio::test]
async fn api_webtransport_gives_the_url_and_the_certificate_hash() {
    let server = start_server().await;
    let wt = server.addrs.webtransport.expect("webtransport listens");
    let info = info(&server).await;
    assert_eq!(info.url, format!("https://127.0.0.1:{}/", wt.port()));
    assert_eq!(info.cert_sha256.len(), 32);
    assert!(info.cert_sha256.iter().any(|&b| b != 0));
    let raw = http::get(server.addrs.http[0], "/api/webtransport", &[]).await;
    assert_eq!(raw.header("cache-control"), Some("no-store"));
    server.stop().await;

    let off = start_server_with(|c| c.no_webtransport = true).await;
    assert_eq!(off.addrs.webtransport, None);
    let r = http::get(off.addrs.http[0], "/api/webtransport", &[]).await;
    assert_eq!(r.status, 404);
    off.stop().await;
}

#[tokio::test]
async fn a_datagram_comes_back_stamped() {
    let server = start_server().await;
    let wt = connect(&server).await;
    wt.conn.send_datagram(b"hi").unwrap();
    let got = collect(&wt.conn, 1, TIMEOUT).await;
    assert_eq!(got.len(), 1, "no reply");
    assert_stamped(&got[0], b"hi");
    server.stop().await;
}

#[tokio::test]
async fn a_burst_of_100_datagrams_all_come_back_without_drop() {
    let server = start_server().await;
    let wt = connect(&server).await;
    for i in 0..100 {
        wt.conn.send_datagram(format!("n{i}")).unwrap();
    }
    let got = collect(&wt.conn, 100, Duration::from_secs(3)).await;
    let ids: HashSet<String> = got
        .iter()
        .map(|d| String::from_utf8_lossy(&d[socklab_protocol::STAMP_LEN..]).into_owned())
        .collect();
    assert_eq!(
        ids.len(),
        100,
        "lost {} of 100 on loopback",
        100 - ids.len()
    );
    server.stop().await;
}

#[tokio::test]
async fn with_udp_drop_50_about_half_come_back() {
    let server = start_server_with(|c| c.udp_drop = 50.0).await;
    assert_eq!(info(&server).await.udp_drop, 50.0, "the page is told why");
    let wt = connect(&server).await;
    for i in 0..200 {
        wt.conn.send_datagram(format!("n{i}")).unwrap();
        if i % 20 == 19 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let got = collect(&wt.conn, 200, Duration::from_secs(1)).await;
    // Binomial(200, 0.5): mean 100, sd ~7; 60..=140 is more than 5 sd either way.
    assert!(
        (60..=140).contains(&got.len()),
        "{} of 200 came back with --udp-drop 50",
        got.len()
    );
    server.stop().await;
}

#[tokio::test]
async fn a_bidirectional_stream_is_bridged_to_the_tcp_echo() {
    let server = start_server().await;
    let wt = connect(&server).await;
    let (mut send, mut recv) = wt.conn.open_bi().await.unwrap().await.unwrap();
    send.write_all(b"a\nb\n").await.unwrap();
    let got = read_until(&mut recv, b"]:b\n").await;
    let lines: Vec<&[u8]> = got.split_inclusive(|&b| b == b'\n').collect();
    assert_eq!(lines.len(), 2, "{:?}", String::from_utf8_lossy(&got));
    assert_stamped(lines[0], b"a\n");
    assert_stamped(lines[1], b"b\n");
    // A partial line is answered when the client pauses, like the lesson's client.py needs.
    send.write_all(b"hello").await.unwrap();
    let got = read_until(&mut recv, b"hello").await;
    assert_stamped(&got, b"hello");
    // The client finishing its side ends the upstream connection, and so the stream.
    send.finish().await.unwrap();
    let mut buf = [0u8; 64];
    let end = tokio::time::timeout(TIMEOUT, recv.read(&mut buf))
        .await
        .unwrap();
    assert!(matches!(end, Ok(None)), "stream not finished: {end:?}");
    server.stop().await;
}

/// A stream sent as fast as it can go, its replies read all the while: every byte comes back,
/// stamped (a line the echo read in two passes comes back in two stamped pieces). While the
/// echo upstream cannot take more, the stream is not read but the echo's replies are, so
/// neither waits on the other.
#[tokio::test]
async fn a_stream_sent_without_pause_comes_back_whole() {
    const LINES: usize = 4096;
    let server = start_server().await;
    let wt = connect(&server).await;
    let (mut send, mut recv) = wt.conn.open_bi().await.unwrap().await.unwrap();
    let line: Vec<u8> = [vec![b's'; 1023], vec![b'\n']].concat();
    let writer = tokio::spawn(async move {
        for _ in 0..LINES {
            send.write_all(&line).await.unwrap();
        }
        send
    });
    // The payload so far: the replies without their stamps (`[` starts each one).
    let want = LINES * 1024;
    let (mut payload, mut newlines, mut in_stamp) = (0usize, 0usize, 0usize);
    let mut buf = vec![0u8; 64 * 1024];
    tokio::time::timeout(Duration::from_secs(30), async {
        while payload < want {
            let n = match recv.read(&mut buf).await.unwrap() {
                Some(n) => n,
                None => panic!("finished after {payload} of {want} bytes"),
            };
            for &b in &buf[..n] {
                if in_stamp > 0 {
                    in_stamp -= 1;
                } else if b == b'[' {
                    in_stamp = socklab_protocol::STAMP_LEN - 1;
                } else {
                    assert!(b == b's' || b == b'\n', "{b}");
                    payload += 1;
                    newlines += usize::from(b == b'\n');
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{payload} of {want} bytes back in 30 s"));
    assert_eq!((payload, newlines), (want, LINES));
    let mut send = tokio::time::timeout(TIMEOUT, writer)
        .await
        .unwrap()
        .unwrap();
    send.finish().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn sessions_are_on_the_monitor_with_their_udp_upstream() {
    let server = start_server().await;
    let mut monitor = Monitor::connect(&server).await;
    let wt = try_connect(&server, "/?tag=page-1", None).await.unwrap();
    let opened = monitor
        .wait_for(|e| matches!(e, MonitorEvent::SessionOpened(o) if o.kind == SessionKind::Wt))
        .await;
    let MonitorEvent::SessionOpened(opened) = opened else {
        unreachable!()
    };
    assert_eq!(opened.tag.as_deref(), Some("page-1"));
    wt.conn.send_datagram(b"x").unwrap();
    let udp = monitor
        .wait_for(|e| matches!(e, MonitorEvent::SessionOpened(o) if o.kind == SessionKind::Udp))
        .await;
    let MonitorEvent::SessionOpened(udp) = udp else {
        unreachable!()
    };
    assert_eq!(
        udp.via,
        Some(opened.id),
        "the echo's UDP peer names its wt session"
    );
    assert_eq!(collect(&wt.conn, 1, TIMEOUT).await.len(), 1);
    wt.conn.close(0u32.into(), b"bye");
    let closed = monitor
        .wait_for(|e| matches!(e, MonitorEvent::SessionClosed(c) if c.id == opened.id))
        .await;
    let MonitorEvent::SessionClosed(closed) = closed else {
        unreachable!()
    };
    assert_eq!((closed.bytes_in, closed.bytes_out), (1, 23));
    server.stop().await;
}

#[tokio::test]
async fn a_percent_encoded_tag_is_decoded_as_on_ws() {
    let server = start_server().await;
    let mut monitor = Monitor::connect(&server).await;
    // `%2D` is `-`; read raw, the tag would be "page2D7".
    let _wt = try_connect(&server, "/?tag=page%2D7", None).await.unwrap();
    let opened = monitor
        .wait_for(|e| matches!(e, MonitorEvent::SessionOpened(o) if o.kind == SessionKind::Wt))
        .await;
    let MonitorEvent::SessionOpened(opened) = opened else {
        unreachable!()
    };
    assert_eq!(opened.tag.as_deref(), Some("page-7"));
    server.stop().await;
}

#[tokio::test]
async fn the_origin_rule_of_ws_applies() {
    let server = start_server().await;
    let http = server.addrs.http[0];
    let own = format!("http://127.0.0.1:{}", http.port());
    try_connect(&server, "/", Some(&own))
        .await
        .expect("the server's own page may connect");
    let foreign = try_connect(&server, "/", Some("https://evil.example")).await;
    assert!(
        matches!(foreign, Err(ConnectingError::SessionRejected)),
        "a foreign page must be refused: {:?}",
        foreign.err()
    );
    let other_port = try_connect(&server, "/", Some("http://127.0.0.1:1")).await;
    assert!(matches!(other_port, Err(ConnectingError::SessionRejected)));
    server.stop().await;

    let allowed = start_server_with(|c| c.allow_origin = vec!["https://lab.example".into()]).await;
    try_connect(&allowed, "/", Some("https://lab.example"))
        .await
        .expect("--allow-origin");
    allowed.stop().await;
}

/// Issue 13, item 1: an Origin of exactly the length of `http://` + the host, with a character
/// straddling byte 7, once panicked the session task (a byte-offset slice); now it is one more
/// foreign Origin, and the server goes on serving.
#[tokio::test]
async fn a_non_ascii_origin_is_refused_not_a_panic() {
    let server = start_server().await;
    let own_host = format!("127.0.0.1:{}", server.addrs.http[0].port());
    let filler = "x".repeat("http://".len() + own_host.len() - "http:/é".len());
    let origin = format!("http:/é{filler}");
    assert_eq!(origin.len(), "http://".len() + own_host.len());
    assert!(!origin.is_char_boundary("http://".len()));
    let refused = try_connect(&server, "/", Some(&origin)).await;
    assert!(
        matches!(refused, Err(ConnectingError::SessionRejected)),
        "{:?}",
        refused.err()
    );
    try_connect(&server, "/", Some(&format!("http://{own_host}")))
        .await
        .expect("the server still serves its own page");
    server.stop().await;
}

#[tokio::test]
async fn unknown_paths_are_refused() {
    let server = start_server().await;
    assert!(matches!(
        try_connect(&server, "/other", None).await,
        Err(ConnectingError::SessionRejected)
    ));
    server.stop().await;
}

#[tokio::test]
async fn the_connection_limit_counts_webtransport_sessions() {
    let server = start_server_with(|c| c.max_connections = 1).await;
    let first = connect(&server).await;
    // Refused at the QUIC level, before any HTTP/3: CONNECTION_REFUSED.
    match try_connect(&server, "/", None).await {
        Err(ConnectingError::ConnectionError(ConnectionError::ConnectionClosed(close))) => {
            assert!(
                close
                    .to_string()
                    .contains("refused to accept a new connection"),
                "{close}"
            );
        }
        other => panic!("expected CONNECTION_REFUSED, got {:?}", other.err()),
    }
    drop(first);
    server.stop().await;
}

fn app_code(err: &ConnectionError) -> Option<u64> {
    match err {
        ConnectionError::ApplicationClosed(close) => Some(close.code().into_inner()),
        _ => None,
    }
}

#[tokio::test]
async fn idle_sessions_are_closed_with_1001() {
    let server = start_server_with(|c| c.idle_timeout = 1).await;
    let wt = connect(&server).await;
    let err = tokio::time::timeout(TIMEOUT, wt.conn.closed())
        .await
        .unwrap();
    assert_eq!(app_code(&err), Some(1001), "{err}");
    server.stop().await;
}

#[tokio::test]
async fn shutdown_closes_sessions_with_1001() {
    let server = start_server().await;
    let wt = connect(&server).await;
    let stop = tokio::spawn(server.stop());
    let err = tokio::time::timeout(TIMEOUT, wt.conn.closed())
        .await
        .unwrap();
    assert_eq!(app_code(&err), Some(1001), "{err}");
    tokio::time::timeout(TIMEOUT, stop).await.unwrap().unwrap();
}

#[tokio::test]
async fn the_certificate_is_renewed_without_dropping_sessions() {
    let server = start_server_with(|c| c.cert_renew_after = Some(2)).await;
    let before = info(&server).await.cert_sha256;
    let old = connect(&server).await;
    let after = tokio::time::timeout(TIMEOUT, async {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now = info(&server).await.cert_sha256;
            if now != before {
                return now;
            }
        }
    })
    .await
    .expect("a new certificate within the timeout");
    assert_eq!(after.len(), 32);
    // The open session goes on; a new one trusts the new hash.
    old.conn.send_datagram(b"still here").unwrap();
    assert_stamped(&collect(&old.conn, 1, TIMEOUT).await[0], b"still here");
    let new = connect(&server).await;
    new.conn.send_datagram(b"new").unwrap();
    assert_stamped(&collect(&new.conn, 1, TIMEOUT).await[0], b"new");
    server.stop().await;
}

/// Datagram round trips, one in flight at a time: through the WebTransport gateway and
/// directly to the UDP echo, against the same server in the same run. Not a test: run with
/// `cargo test --release -p socklab-tests --test webtransport -- --ignored --nocapture
/// datagram_round_trip_benchmark` (`SOCKLAB_WT_BENCH_N` round trips each, default 5000). It
/// prints a table and one `WT_BENCH {json}` line for `cargo xtask bench` to pick up.
#[tokio::test]
#[ignore = "a benchmark: run explicitly"]
async fn datagram_round_trip_benchmark() {
    let n: usize = std::env::var("SOCKLAB_WT_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let server = start_server().await;
    let wt = connect(&server).await;
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    udp.connect(server.addrs.udp[0]).await.unwrap();
    let mut buf = [0u8; 2048];
    // Warm up both paths.
    for _ in 0..100 {
        wt.conn.send_datagram(b"warm").unwrap();
        let _ = collect(&wt.conn, 1, TIMEOUT).await;
        udp.send(b"warm").await.unwrap();
        let _ = tokio::time::timeout(TIMEOUT, udp.recv(&mut buf)).await;
    }
    let mut results = Vec::new();
    for path in ["webtransport", "udp"] {
        let mut rtts = Vec::with_capacity(n);
        let mut lost = 0;
        let start = std::time::Instant::now();
        for i in 0..n {
            let msg = format!("b{i}");
            let t = std::time::Instant::now();
            let ok = if path == "webtransport" {
                wt.conn.send_datagram(msg.as_bytes()).unwrap();
                tokio::time::timeout(Duration::from_secs(1), wt.conn.receive_datagram())
                    .await
                    .is_ok()
            } else {
                udp.send(msg.as_bytes()).await.unwrap();
                tokio::time::timeout(Duration::from_secs(1), udp.recv(&mut buf))
                    .await
                    .is_ok()
            };
            if ok {
                rtts.push(t.elapsed().as_secs_f64() * 1e6);
            } else {
                lost += 1;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        rtts.sort_by(f64::total_cmp);
        let pct = |p: f64| rtts[((rtts.len() - 1) as f64 * p).round() as usize];
        results.push(serde_json::json!({
            "path": path,
            "round_trips": rtts.len(),
            "lost": lost,
            "per_sec": (rtts.len() as f64 / secs).round(),
            "p50_us": pct(0.5).round(),
            "p99_us": pct(0.99).round(),
        }));
    }
    println!("datagram round trips, one in flight, {n} each:");
    println!(
        "{:<14} {:>10} {:>9} {:>9} {:>6}",
        "path", "per s", "p50 µs", "p99 µs", "lost"
    );
    for r in &results {
        let num = |k: &str| r[k].as_f64().unwrap_or_default();
        println!(
            "{:<14} {:>10.0} {:>9.0} {:>9.0} {:>6.0}",
            r["path"].as_str().unwrap(),
            num("per_sec"),
            num("p50_us"),
            num("p99_us"),
            num("lost")
        );
    }
    println!(
        "WT_BENCH {}",
        serde_json::json!({ "n": n, "paths": results })
    );
    server.stop().await;
}
