//! The server as a process, under stress a test cannot give an in-process server: SIGTERM with
//! a thousand sessions open, running out of file descriptors, and `--capture` without the
//! privilege it needs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Timelike;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;

mod common;
use common::{port_zero_flags, sigterm};

const SERVER: &str = env!("CARGO_BIN_EXE_socklab-server");
const TIMEOUT: Duration = Duration::from_secs(10);

/// A running `socklab-server` and where it listens; its stderr is collected.
struct Proc {
    child: Child,
    tcp: SocketAddr,
    http: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

/// Starts `program args…` (the server, or a shell that execs it) and reads its addresses.
async fn spawn(program: &str, args: &[&str]) -> Proc {
    let mut child = Command::new(program)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Drain stderr as it comes: a full pipe would block the server's logging.
    let stderr = Arc::new(Mutex::new(String::new()));
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    let sink = Arc::clone(&stderr);
    tokio::spawn(async move {
        while let Ok(Some(line)) = err.next_line().await {
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut tcp, mut http) = (None, None);
    while tcp.is_none() || http.is_none() {
        let line = tokio::time::timeout(TIMEOUT, out.next_line())
            .await
            .expect("banner in time")
            .unwrap()
            .unwrap_or_else(|| panic!("server exited: {}", stderr.lock().unwrap()));
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["TCP", "echo", addr, ..] => tcp = addr.parse().ok(),
            ["HTTP", addr, ..] => http = addr.parse().ok(),
            _ => {}
        }
    }
    // Keep reading stdout so the server never blocks on it.
    tokio::spawn(async move { while let Ok(Some(_)) = out.next_line().await {} });
    Proc {
        child,
        tcp: tcp.unwrap(),
        http: http.unwrap(),
        stderr,
    }
}

async fn echo_once(addr: SocketAddr, msg: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("{msg}\n").as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut b = [0u8; 1];
    while !got.ends_with(b"\n") {
        let n = tokio::time::timeout(TIMEOUT, s.read(&mut b))
            .await
            .expect("reply in time")
            .unwrap();
        assert_eq!(n, 1, "closed before the reply to {msg}");
        got.push(b[0]);
    }
    assert!(got.ends_with(format!("]:{msg}\n").as_bytes()));
    s
}

/// The stamp the server at `addr` puts on a reply, as a date and time.
async fn stamp_of(addr: SocketAddr) -> chrono::NaiveDateTime {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"tz\n").await.unwrap();
    let mut reply = [0u8; 25];
    tokio::time::timeout(TIMEOUT, s.read_exact(&mut reply))
        .await
        .expect("reply in time")
        .unwrap();
    let reply = String::from_utf8_lossy(&reply).into_owned();
    assert!(reply.ends_with("]:tz\n"), "{reply:?}");
    chrono::NaiveDateTime::parse_from_str(&reply, "[%Y-%m-%d %H:%M:%S]:tz\n")
        .unwrap_or_else(|e| panic!("{reply:?}: {e}"))
}

/// The stamp is local time as `TZ` says: the real binary under `TZ=UTC` stamps UTC (checked
/// against the test's own UTC clock, not the server's code path) and under
/// `TZ=Asia/Shanghai` eight hours later.
#[tokio::test]
async fn the_stamp_honours_tz() {
    let mut flags = vec!["TZ=UTC", SERVER];
    flags.extend(port_zero_flags());
    let mut utc = spawn("env", &flags).await;
    flags[0] = "TZ=Asia/Shanghai";
    let mut shanghai = spawn("env", &flags).await;

    let before = chrono::Utc::now().naive_utc().with_nanosecond(0).unwrap();
    let at_utc = stamp_of(utc.tcp).await;
    let at_shanghai = stamp_of(shanghai.tcp).await;
    let after = chrono::Utc::now().naive_utc();
    assert!(
        before <= at_utc && at_utc <= after,
        "TZ=UTC stamped {at_utc}, the UTC clock read {before} .. {after}"
    );
    // Two readings a moment apart: eight hours, give or take the second between them.
    let diff = (at_shanghai - at_utc).num_seconds();
    assert!(
        (8 * 3600..=8 * 3600 + 2).contains(&diff),
        "Asia/Shanghai {at_shanghai} vs UTC {at_utc}: {diff} s apart"
    );
    for p in [&mut utc, &mut shanghai] {
        sigterm(&p.child).await;
        let _ = tokio::time::timeout(TIMEOUT, p.child.wait()).await;
    }
}

#[tokio::test]
async fn sigterm_with_a_thousand_sessions_closes_them_all_and_exits_0_within_5_s() {
    let mut proc = spawn(SERVER, &port_zero_flags()).await;
    const TCP: usize = 600;
    const WS: usize = 400;
    let mut tcp = Vec::new();
    for i in 0..TCP {
        tcp.push(echo_once(proc.tcp, &format!("tcp {i}")).await);
    }
    let url = format!("ws://{}/ws", proc.http);
    let mut ws = Vec::new();
    for i in 0..WS {
        let (mut s, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .unwrap();
        s.send(Message::text(format!("ws {i}"))).await.unwrap();
        match tokio::time::timeout(TIMEOUT, s.next()).await.unwrap() {
            Some(Ok(Message::Text(t))) => assert!(t.ends_with(&format!("]:ws {i}"))),
            other => panic!("{other:?}"),
        }
        ws.push(s);
    }
    // Every client waits for its end.
    let tcp_ends: Vec<_> = tcp
        .into_iter()
        .map(|mut s| {
            tokio::spawn(async move {
                let mut rest = Vec::new();
                // A clean end is EOF (FIN) after nothing more.
                matches!(s.read_to_end(&mut rest).await, Ok(0))
            })
        })
        .collect();
    let ws_ends: Vec<_> = ws
        .into_iter()
        .map(|mut s| {
            tokio::spawn(async move {
                while let Some(msg) = s.next().await {
                    match msg {
                        Ok(Message::Close(Some(f))) => return Some(u16::from(f.code)),
                        Ok(_) => continue,
                        Err(_) => return None,
                    }
                }
                None
            })
        })
        .collect();
    let started = Instant::now();
    sigterm(&proc.child).await;
    let status = tokio::time::timeout(Duration::from_secs(5), proc.child.wait())
        .await
        .unwrap_or_else(|_| panic!("not stopped within 5 s: {}", proc.stderr.lock().unwrap()))
        .unwrap();
    let took = started.elapsed();
    assert!(status.success(), "{status}");
    let mut clean_tcp = 0;
    for t in tcp_ends {
        clean_tcp += usize::from(tokio::time::timeout(TIMEOUT, t).await.unwrap().unwrap());
    }
    let mut codes = std::collections::BTreeMap::new();
    for t in ws_ends {
        let code = tokio::time::timeout(TIMEOUT, t).await.unwrap().unwrap();
        *codes.entry(code).or_insert(0) += 1;
    }
    println!(
        "SIGTERM: exit 0 after {took:?}; TCP clean EOF {clean_tcp}/{TCP}; WS close codes {codes:?}"
    );
    assert_eq!(clean_tcp, TCP);
    assert_eq!(codes.get(&Some(1001)), Some(&WS), "{codes:?}");
}

#[tokio::test]
async fn out_of_file_descriptors_the_server_waits_logs_and_recovers() {
    // The server with only 64 file descriptors: a few dozen connections exhaust them.
    let mut args = vec!["-c", "ulimit -n 64 && exec \"$0\" \"$@\"", SERVER];
    args.extend(port_zero_flags());
    let mut proc = spawn("sh", &args).await;
    let mut clients = Vec::new();
    for _ in 0..120 {
        clients.push(TcpStream::connect(proc.tcp).await.unwrap());
    }
    // The kernel queued them; the server accepted what it could and logs the rest.
    let deadline = Instant::now() + TIMEOUT;
    while !proc.stderr.lock().unwrap().contains("accept failed") {
        assert!(
            Instant::now() < deadline,
            "no log line about accept failing"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(proc.child.try_wait().unwrap().is_none(), "the server died");
    // The ones it accepted are served all the same. Which ones those are depends on the
    // runtime the kernel queued each on (one listener per `--threads` runtime, each with its
    // own queue), so every client asks and the answers are counted.
    let asked = clients.iter_mut().enumerate().map(|(i, c)| async move {
        let msg = format!("early {i}\n");
        c.write_all(msg.as_bytes()).await.ok()?;
        let mut buf = [0u8; 128];
        let n = tokio::time::timeout(Duration::from_secs(3), c.read(&mut buf))
            .await
            .ok()?
            .ok()?;
        Some(buf[..n].ends_with(msg.as_bytes()))
    });
    let answers = futures_util::future::join_all(asked).await;
    let served = answers.iter().filter(|a| **a == Some(true)).count();
    assert!(
        served >= 10,
        "only {served} of the accepted clients were answered"
    );
    assert!(
        !answers.contains(&Some(false)),
        "a wrong answer: {answers:?}"
    );
    // Load drops: everything is served again.
    drop(clients);
    let started = Instant::now();
    loop {
        let ok = tokio::time::timeout(Duration::from_secs(2), echo_once(proc.tcp, "recovered"))
            .await
            .is_ok();
        if ok {
            break;
        }
        assert!(started.elapsed() < TIMEOUT, "no recovery");
    }
    let (status, _) = http_get(proc.http).await;
    assert_eq!(status, 200);
    sigterm(&proc.child).await;
    let status = tokio::time::timeout(Duration::from_secs(5), proc.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
}

async fn http_get(addr: SocketAddr) -> (u16, String) {
    http_get_path(addr, "/healthz").await
}

async fn http_get_path(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut got = String::new();
    tokio::time::timeout(TIMEOUT, s.read_to_string(&mut got))
        .await
        .unwrap()
        .unwrap();
    let status = got.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, got)
}

#[tokio::test]
async fn with_capture_but_without_cap_net_raw_the_server_runs_and_says_capture_false() {
    let mut args = vec!["--capture"];
    args.extend(port_zero_flags());
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    // Root has CAP_NET_RAW: take it away (from the bounding set too, so exec gives it not back).
    let mut proc = if root {
        let mut wrapped = vec![
            "--inh-caps=-net_raw",
            "--bounding-set=-net_raw",
            "--",
            SERVER,
        ];
        wrapped.extend(&args);
        spawn("setpriv", &wrapped).await
    } else {
        spawn(SERVER, &args).await
    };
    drop(echo_once(proc.tcp, "still echoes").await);
    let (status, info) = http_get_path(proc.http, "/api/info").await;
    assert_eq!(status, 200);
    assert!(info.contains("\"capture\":false"), "{info}");
    let (status, _) = http_get_path(proc.http, "/api/sessions/1/pcap").await;
    assert_eq!(status, 404);
    sigterm(&proc.child).await;
    let exit = tokio::time::timeout(TIMEOUT, proc.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success());
    let stderr = proc.stderr.lock().unwrap().clone();
    let said = stderr.matches("packet capture is off").count();
    assert_eq!(said, 1, "one clear line: {stderr}");
    assert!(stderr.contains("setcap cap_net_raw+ep"), "{stderr}");
}
