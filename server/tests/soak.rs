//! The soak: `socklab-server` as a process under 500 mixed clients (raw TCP, bridge, UDP) with
//! random disconnects, for `SOCKLAB_SOAK_SECS` seconds (default 60). Every byte sent on TCP
//! and through the bridge must come back exactly once, in order; the server's RSS and open
//! file descriptors are read from /proc before, during and after, and printed.
//!
//! Ignored by default (it is long); `cargo xtask soak [--minutes N]` runs it in release mode:
//! `cargo test --release -p socklab-server --test soak -- --ignored --nocapture`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UdpSocket};
use tokio::process::Command;
use tokio_tungstenite::tungstenite::Message;

const SERVER: &str = env!("CARGO_BIN_EXE_socklab-server");
const TIMEOUT: Duration = Duration::from_secs(20);
const STAMP_LEN: usize = 22;

const TCP_CLIENTS: u64 = 200;
const WS_CLIENTS: u64 = 200;
const UDP_CLIENTS: u64 = 100;

/// Everything counted during the soak.
#[derive(Default)]
struct Tally {
    sessions: [AtomicU64; 3],
    sent: [AtomicU64; 3],
    returned: [AtomicU64; 3],
    /// Sessions ended on purpose without waiting for replies (RST or dropped mid-burst).
    abrupt: AtomicU64,
    /// Replies that were wrong, missing, duplicated or out of order: must stay 0.
    errors: AtomicU64,
}

const TCP: usize = 0;
const WS: usize = 1;
const UDP: usize = 2;

fn add(counter: &AtomicU64, n: usize) {
    counter.fetch_add(n as u64, Ordering::Relaxed);
}

/// Resident memory (KiB) and open file descriptors of `pid`. Panics when `/proc` cannot say:
/// zeros would pass the leak checks.
fn usage(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|err| panic!("/proc/{pid}/status: {err}"));
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("/proc/{pid}/status has no VmRSS"));
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|err| panic!("/proc/{pid}/fd: {err}"))
        .count();
    (rss, fds)
}

/// A payload of `len` printable bytes unique to (client, session, message).
fn payload(client: u64, session: u64, msg: u64, len: usize) -> Vec<u8> {
    let mut p = format!("c{client}s{session}m{msg}:").into_bytes();
    let mut x = client
        .wrapping_mul(31)
        .wrapping_add(session * 7)
        .wrapping_add(msg);
    while p.len() < len {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        p.push(b'a' + (x >> 59) as u8 % 26);
    }
    p
}

fn stamped(reply: &[u8], expected: &[u8]) -> bool {
    reply.len() == STAMP_LEN + expected.len()
        && reply[0] == b'['
        && &reply[20..22] == b"]:"
        && &reply[STAMP_LEN..] == expected
}

async fn tcp_client(id: u64, addr: SocketAddr, until: Instant, t: Arc<Tally>) {
    let mut session = 0;
    while Instant::now() < until {
        session += 1;
        add(&t.sessions[TCP], 1);
        let Ok(stream) = TcpStream::connect(addr).await else {
            add(&t.errors, 1);
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let (r, mut w) = stream.into_split();
        let mut r = BufReader::new(r);
        let bursts = fastrand::u32(1..40);
        let mut msg = 0;
        for _ in 0..bursts {
            // A burst of lines in one write, then every reply, in order.
            let k = fastrand::usize(1..8);
            let mut lines = Vec::new();
            let mut out = Vec::new();
            for _ in 0..k {
                msg += 1;
                let mut p = payload(id, session, msg, fastrand::usize(8..600));
                p.push(b'\n');
                out.extend_from_slice(&p);
                lines.push(p);
            }
            if w.write_all(&out).await.is_err() {
                add(&t.errors, 1);
                break;
            }
            add(&t.sent[TCP], out.len());
            for line in &lines {
                let mut reply = Vec::new();
                match tokio::time::timeout(TIMEOUT, r.read_until(b'\n', &mut reply)).await {
                    Ok(Ok(_)) if stamped(&reply, line) => add(&t.returned[TCP], line.len()),
                    _ => {
                        add(&t.errors, 1);
                        return;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(fastrand::u64(5..80))).await;
        }
        match fastrand::u8(0..10) {
            // Abrupt: half a line, then a reset.
            0 => {
                let _ = w.write_all(b"never finished").await;
                let s = r.into_inner().reunite(w).unwrap();
                let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
                add(&t.abrupt, 1);
            }
            // Clean: FIN, then the server's FIN.
            _ => {
                let _ = w.shutdown().await;
                let mut rest = Vec::new();
                let _ = tokio::time::timeout(TIMEOUT, r.read_until(b'\n', &mut rest)).await;
                if !rest.is_empty() {
                    add(&t.errors, 1);
                }
            }
        }
    }
}

async fn ws_client(id: u64, url: String, until: Instant, t: Arc<Tally>) {
    let mut session = 0;
    while Instant::now() < until {
        session += 1;
        add(&t.sessions[WS], 1);
        let Ok(Ok((mut ws, _))) =
            tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(url.as_str())).await
        else {
            add(&t.errors, 1);
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let bursts = fastrand::u32(1..30);
        let mut msg = 0;
        'session: for _ in 0..bursts {
            let k = fastrand::usize(1..6);
            let mut sent = Vec::new();
            for _ in 0..k {
                msg += 1;
                let p =
                    String::from_utf8(payload(id, session, msg, fastrand::usize(8..600))).unwrap();
                if ws.feed(Message::text(p.clone())).await.is_err() {
                    add(&t.errors, 1);
                    break 'session;
                }
                sent.push(p);
            }
            if ws.flush().await.is_err() {
                add(&t.errors, 1);
                break;
            }
            add(&t.sent[WS], sent.iter().map(String::len).sum());
            for p in &sent {
                let reply = loop {
                    match tokio::time::timeout(TIMEOUT, ws.next()).await {
                        Ok(Some(Ok(Message::Text(r)))) => break Some(r),
                        Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                        _ => break None,
                    }
                };
                match reply {
                    Some(r) if stamped(r.as_bytes(), p.as_bytes()) => add(&t.returned[WS], p.len()),
                    _ => {
                        add(&t.errors, 1);
                        break 'session;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(fastrand::u64(5..80))).await;
        }
        match fastrand::u8(0..10) {
            // Abrupt: the browser tab is killed (TCP dropped, no close frame).
            0 => {
                let _ = ws.send(Message::text("gone")).await;
                drop(ws);
                add(&t.abrupt, 1);
            }
            _ => {
                let _ = ws.close(None).await;
                // The server answers the close.
                let _ = tokio::time::timeout(TIMEOUT, async {
                    while let Some(Ok(_)) = ws.next().await {}
                })
                .await;
            }
        }
    }
}

async fn udp_client(id: u64, addr: SocketAddr, until: Instant, t: Arc<Tally>) {
    let mut session = 0;
    while Instant::now() < until {
        session += 1;
        add(&t.sessions[UDP], 1);
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        sock.connect(addr).await.unwrap();
        let mut buf = vec![0u8; 2048];
        for msg in 0..fastrand::u64(1..50) {
            let p = payload(id, session, msg, fastrand::usize(8..1200));
            if sock.send(&p).await.is_err() {
                continue;
            }
            add(&t.sent[UDP], p.len());
            // UDP may lose; on loopback it should not, but only wrong replies are errors.
            if let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(500), sock.recv(&mut buf)).await
            {
                if stamped(&buf[..n], &p) {
                    add(&t.returned[UDP], p.len());
                } else {
                    add(&t.errors, 1);
                }
            }
            tokio::time::sleep(Duration::from_millis(fastrand::u64(10..100))).await;
        }
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: run by `cargo xtask soak`"]
async fn soak_mixed_clients_lose_nothing() {
    let secs: u64 = std::env::var("SOCKLAB_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let mut child = Command::new(SERVER)
        .args(socklab_server::Config::PORT_ZERO_FLAGS)
        .args(["--udp-idle", "5"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut tcp, mut udp, mut http) = (None, None, None);
    while tcp.is_none() || udp.is_none() || http.is_none() {
        let line = out.next_line().await.unwrap().expect("server banner");
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["TCP", "echo", a, ..] => tcp = a.parse::<SocketAddr>().ok(),
            ["UDP", "echo", a, ..] => udp = a.parse::<SocketAddr>().ok(),
            ["HTTP", a, ..] => http = a.parse::<SocketAddr>().ok(),
            _ => {}
        }
    }
    tokio::spawn(async move { while let Ok(Some(_)) = out.next_line().await {} });
    let (tcp, udp, http) = (tcp.unwrap(), udp.unwrap(), http.unwrap());

    let (rss_start, fds_start) = usage(pid);
    println!(
        "soak: {secs} s, {TCP_CLIENTS} TCP + {WS_CLIENTS} bridge + {UDP_CLIENTS} UDP clients; \
         server pid {pid}: RSS {}, {fds_start} fds at start",
        mib(rss_start)
    );
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let until = started + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for id in 0..TCP_CLIENTS {
        tasks.push(tokio::spawn(tcp_client(id, tcp, until, Arc::clone(&tally))));
    }
    for id in 0..WS_CLIENTS {
        let url = format!("ws://{http}/ws?tag=soak{id}");
        tasks.push(tokio::spawn(ws_client(id, url, until, Arc::clone(&tally))));
    }
    for id in 0..UDP_CLIENTS {
        tasks.push(tokio::spawn(udp_client(id, udp, until, Arc::clone(&tally))));
    }
    // Sample the server every tenth of the run.
    let mut samples = Vec::new();
    let every = Duration::from_secs((secs / 10).max(1));
    while Instant::now() < until {
        tokio::time::sleep(every.min(until.saturating_duration_since(Instant::now()))).await;
        let (rss, fds) = usage(pid);
        println!(
            "soak: t={:>4}s RSS {} fds {fds}; TCP {} B, bridge {} B returned; errors {}",
            started.elapsed().as_secs(),
            mib(rss),
            tally.returned[TCP].load(Ordering::Relaxed),
            tally.returned[WS].load(Ordering::Relaxed),
            tally.errors.load(Ordering::Relaxed),
        );
        samples.push(rss);
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .expect("clients finish")
            .unwrap();
    }
    // Until the server has noticed the last closes (or 30 s: then the fd check below fails).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let (rss_end, fds_end) = loop {
        let (rss, fds) = usage(pid);
        if fds <= fds_start + 2 || tokio::time::Instant::now() >= deadline {
            break (rss, fds);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let warm = samples.get(1).copied().unwrap_or(rss_start);
    let peak = samples.iter().copied().max().unwrap_or(rss_end);
    let load = |k: usize| {
        (
            tally.sessions[k].load(Ordering::Relaxed),
            tally.sent[k].load(Ordering::Relaxed),
            tally.returned[k].load(Ordering::Relaxed),
        )
    };
    let (ts, tsent, tret) = load(TCP);
    let (ws, wsent, wret) = load(WS);
    let (us, usent, uret) = load(UDP);
    let errors = tally.errors.load(Ordering::Relaxed);
    println!("soak: ---- figures after {:?} ----", started.elapsed());
    println!("soak: TCP     {ts:>6} sessions, {tsent:>11} B sent, {tret:>11} B returned");
    println!("soak: bridge  {ws:>6} sessions, {wsent:>11} B sent, {wret:>11} B returned");
    println!("soak: UDP     {us:>6} peers,    {usent:>11} B sent, {uret:>11} B returned");
    println!(
        "soak: abrupt disconnects (RST / tab killed) {}; errors (lost, duplicated, reordered, wrong) {errors}",
        tally.abrupt.load(Ordering::Relaxed)
    );
    println!(
        "soak: server RSS start {}, after warm-up {}, peak {}, end {}; fds start {fds_start}, end {fds_end}",
        mib(rss_start),
        mib(warm),
        mib(peak),
        mib(rss_end)
    );

    let pid_s = pid.to_string();
    let _ = Command::new("kill").args(["-TERM", &pid_s]).status().await;
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("stopped within 5 s")
        .unwrap();
    println!("soak: SIGTERM → {status}");

    assert_eq!(errors, 0, "replies lost, duplicated, reordered or wrong");
    assert_eq!(tsent, tret, "TCP bytes");
    assert_eq!(wsent, wret, "bridge bytes");
    assert!(
        ts > TCP_CLIENTS && ws > WS_CLIENTS,
        "random disconnects happened"
    );
    assert!(fds_end <= fds_start + 2, "fd leak: {fds_start} → {fds_end}");
    // Flat: after the load the server holds no more than warm-up plus allocator slack.
    assert!(
        rss_end <= warm.max(rss_start) * 2 + 16 * 1024,
        "RSS grew: {} → {}",
        mib(warm),
        mib(rss_end)
    );
    assert!(status.success());
}
