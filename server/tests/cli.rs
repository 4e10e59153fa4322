//! The two binaries as a user runs them: flags, errors, exit codes, the `>>` prompt.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::time::Duration;

use clap::CommandFactory;
use socklab_server::{Config, start};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

mod common;
use common::{port_zero_flags, sigterm};

const SERVER: &str = env!("CARGO_BIN_EXE_socklab-server");
const CLIENT: &str = env!("CARGO_BIN_EXE_socklab-client");
const TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_port_in_use_is_a_clear_error_and_a_failure() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let mut flags = port_zero_flags();
    flags[1] = &addr;
    let out = tokio::time::timeout(TIMEOUT, Command::new(SERVER).args(&flags).output())
        .await
        .unwrap()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&addr) && stderr.contains("tcp echo"),
        "{stderr}"
    );
    assert!(stderr.to_lowercase().contains("in use"), "{stderr}");
}

#[tokio::test]
async fn sigterm_stops_the_server_cleanly() {
    let (mut child, mut lines) = spawn_server(&[]);
    let first = tokio::time::timeout(TIMEOUT, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(first.starts_with("socklab is running"), "{first}");
    let second = lines.next_line().await.unwrap().unwrap();
    assert!(
        second.contains("try: nc 127.0.0.1 "),
        "the nc line: {second}"
    );
    sigterm_exits_cleanly(&mut child).await;
}

type Lines = tokio::io::Lines<BufReader<tokio::process::ChildStdout>>;

/// The server binary on port 0 with `extra` flags, and the lines it prints.
fn spawn_server(extra: &[&str]) -> (tokio::process::Child, Lines) {
    let mut child = Command::new(SERVER)
        .args(port_zero_flags())
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines)
}

/// Sends SIGTERM and expects exit status 0 within 5 s.
async fn sigterm_exits_cleanly(child: &mut tokio::process::Child) {
    sigterm(child).await;
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn help_explains_every_flag() {
    let out = Command::new(SERVER).arg("--help").output().await.unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    // The list comes from clap's own definition, so a new flag is covered the day it is added.
    let command = Config::command();
    let flags: Vec<_> = command
        .get_arguments()
        .filter(|a| !a.is_hide_set())
        .filter_map(|a| a.get_long().map(|long| (long, a.get_help())))
        .collect();
    assert!(flags.len() > 30, "only {} flags found", flags.len());
    for (long, doc) in flags {
        assert!(help.contains(&format!("--{long}")), "--help lacks --{long}");
        assert!(
            doc.is_some_and(|d| !d.to_string().trim().is_empty()),
            "--{long} has no help text"
        );
    }
    let out = Command::new(CLIENT).arg("--help").output().await.unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--udp") && help.contains("--ws"));
}

async fn client_session(args: &[String], input: &str) -> (bool, String) {
    let mut child = Command::new(CLIENT)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .await
        .unwrap();
    let out = tokio::time::timeout(TIMEOUT, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn replies(out: &str) -> Vec<String> {
    out.split(">>")
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

fn assert_stamp_then(reply: &str, rest: &str) {
    assert!(
        reply.starts_with('[') && reply.get(20..22) == Some("]:"),
        "{reply}"
    );
    assert_eq!(&reply[22..], rest);
}

#[tokio::test]
async fn the_client_prompts_and_prints_whole_replies_over_tcp_udp_and_ws() {
    let server = start(Config::for_tests()).await.unwrap();
    let tcp = server.addrs.tcp[0].to_string();
    let (ok, out) = client_session(
        std::slice::from_ref(&tcp),
        "hello\n  spaced  \n\nnot sent\n",
    )
    .await;
    assert!(ok, "{out}");
    let r = replies(&out);
    assert_eq!(r.len(), 2, "{out}");
    assert_stamp_then(&r[0], "hello");
    assert_stamp_then(&r[1], "spaced");

    let (ok, out) = client_session(
        &["--udp".into(), server.addrs.udp[0].to_string()],
        "datagram\n",
    )
    .await;
    assert!(ok, "{out}");
    assert_stamp_then(&replies(&out)[0], "datagram");

    let url = format!("ws://{}/ws", server.addrs.http[0]);
    let (ok, out) = client_session(&["--ws".into(), url], "bridged\n").await;
    assert!(ok, "{out}");
    assert_stamp_then(&replies(&out)[0], "bridged");
    server.stop().await;
}

#[tokio::test]
async fn the_client_says_when_the_server_is_not_there() {
    // Bound, not listening: connecting is refused, and nothing else can take the port.
    let held = tokio::net::TcpSocket::new_v4().unwrap();
    held.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let free = held.local_addr().unwrap();
    let (ok, out) = client_session(&[free.to_string()], "x\n").await;
    drop(held);
    assert!(!ok);
    assert!(
        out.contains("cannot connect") && out.contains(&free.to_string()),
        "{out}"
    );
}

#[tokio::test]
async fn one_thread_serves_tcp_and_the_bridge_and_stops_cleanly() {
    let (mut child, mut lines) = spawn_server(&["--threads", "1"]);
    let (mut tcp, mut http) = (None, None);
    while tcp.is_none() || http.is_none() {
        let line = tokio::time::timeout(TIMEOUT, lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .expect("the server prints its addresses");
        let addr = || line.split_whitespace().nth(2).map(str::to_owned);
        if line.trim_start().starts_with("TCP echo") {
            tcp = addr();
        } else if line.trim_start().starts_with("HTTP") {
            http = line.split_whitespace().nth(1).map(str::to_owned);
        }
    }
    let (tcp, http) = (tcp.unwrap(), http.unwrap());
    // Serving from one thread: the process has just the one (a default runtime has a worker
    // per core besides).
    let pid = child.id().unwrap();
    let threads = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .count();
    assert_eq!(threads, 1);
    let (ok, out) = client_session(&[tcp], "one thread\n").await;
    assert!(ok, "{out}");
    assert_stamp_then(&replies(&out)[0], "one thread");
    let (ok, out) = client_session(&["--ws".into(), format!("ws://{http}/ws")], "bridged\n").await;
    assert!(ok, "{out}");
    assert_stamp_then(&replies(&out)[0], "bridged");

    sigterm_exits_cleanly(&mut child).await;
}

/// Runs the server with `flags` (on port-0 listeners), expects it to refuse to start, and
/// returns what it said on stderr.
async fn refused(flags: &[&str]) -> String {
    let out = Command::new(SERVER)
        .args(port_zero_flags())
        .args(flags)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success(), "started with {flags:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn zero_threads_is_refused_with_a_clear_error() {
    let stderr = refused(&["--threads", "0"]).await;
    assert!(
        stderr.contains("--threads") && stderr.contains('0'),
        "{stderr}"
    );
}

/// A time no clock can reach is refused up front, naming the flag and the range, rather than
/// overflowing a deadline in every session later.
#[tokio::test]
async fn a_timeout_beyond_a_year_is_refused_with_a_clear_error() {
    for flag in [
        "--idle-timeout",
        "--ping-interval",
        "--write-timeout",
        "--shutdown-grace",
    ] {
        let stderr = refused(&[flag, "18446744073709551615"]).await;
        assert!(
            stderr.contains(flag) && stderr.contains("0..=31536000"),
            "{flag}: {stderr}"
        );
    }
    let stderr = refused(&["--tcp-keepalive", "40000"]).await;
    assert!(stderr.contains("0..=32767"), "{stderr}");
}

/// Issue 13, item 5: a second instance on one host meets a taken WebTransport port first; the
/// error names the address and the service, and says how to get past it.
#[tokio::test]
async fn a_taken_webtransport_port_names_the_address_and_the_way_out() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let mut flags = port_zero_flags();
    let at = flags.iter().position(|f| *f == "--webtransport").unwrap();
    flags[at + 1] = &addr;
    let out = tokio::time::timeout(TIMEOUT, Command::new(SERVER).args(&flags).output())
        .await
        .unwrap()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "cannot listen on {addr} (webtransport): Address already in use"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("--webtransport ADDR") && stderr.contains("--no-webtransport"),
        "{stderr}"
    );
    assert!(!stderr.contains("certificate"), "{stderr}");
}

/// The server's stderr from start to a clean SIGTERM stop, run with `extra` flags.
async fn stderr_of_a_run(extra: &[&str]) -> String {
    let mut child = Command::new(SERVER)
        .args(port_zero_flags())
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(TIMEOUT, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(first.starts_with("socklab is running"), "{first}");
    sigterm(&child).await;
    let out = tokio::time::timeout(TIMEOUT, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(out.status.success(), "{}", out.status);
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Issue 13, item 5: the defaults start quietly; the open-files line comes only for a
/// `--max-connections` the limit cannot carry.
#[tokio::test]
async fn the_open_files_limit_is_mentioned_only_when_it_matters() {
    let plain = stderr_of_a_run(&[]).await;
    assert!(!plain.contains("open-files"), "{plain}");
    let huge = stderr_of_a_run(&["--max-connections", "1000000000"]).await;
    assert!(
        huge.contains("open-files limit is below") && huge.contains("--max-connections"),
        "{huge}"
    );
}

/// Issue 13, item 5: hyper cannot bound a request head below 8192 bytes; asking for less is
/// an error naming the flag, not a value quietly raised.
#[tokio::test]
async fn a_max_header_under_8192_is_refused() {
    let stderr = refused(&["--max-header", "100"]).await;
    assert!(
        stderr.contains("--max-header") && stderr.contains("8192"),
        "{stderr}"
    );
    let out = Command::new(SERVER).arg("--help").output().await.unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("At least 8192"));
}

/// A unique path for a test's record file.
fn record_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("socklab-record-{}-{name}.json", std::process::id()))
}

/// Runs the client with `--record` over `args`, typing `input`, and reads the record back.
async fn recorded(name: &str, args: &[String], input: &str) -> socklab_protocol::Transcript {
    let path = record_path(name);
    let mut args = args.to_vec();
    args.extend(["--record".into(), path.display().to_string()]);
    let (ok, out) = client_session(&args, input).await;
    assert!(ok, "{out}");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The record holds each line sent, then its reply with a round-trip time.
fn assert_recorded(t: &socklab_protocol::Transcript, lines: &[&str], sent_suffix: &str) {
    use socklab_protocol::TranscriptDir::{Received, Sent};
    assert_eq!(t.format, socklab_protocol::TRANSCRIPT_FORMAT);
    assert_eq!(t.recorder, "socklab-client");
    assert_eq!(t.messages.len(), lines.len() * 2, "{t:#?}");
    for (pair, line) in t.messages.chunks(2).zip(lines) {
        let (sent, reply) = (&pair[0], &pair[1]);
        assert_eq!((sent.dir, reply.dir), (Sent, Received));
        assert_eq!(sent.text, format!("{line}{sent_suffix}"));
        assert_eq!(sent.bytes, sent.text.len() as u64);
        assert_eq!(sent.rtt_ms, None);
        assert_stamp_then(reply.text.trim_end_matches('\n'), line);
        assert_eq!(reply.bytes, reply.text.len() as u64);
        assert!(
            reply.rtt_ms.is_some_and(|ms| ms > 0.0 && ms < 10_000.0),
            "{reply:?}"
        );
        for at in [&sent.at, &reply.at] {
            assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{at}");
        }
    }
    let text = t.to_text();
    assert_eq!(text.lines().count(), lines.len() * 2, "{text}");
    assert!(text.starts_with(&format!("→ {}\n← [", lines[0])), "{text}");
}

#[tokio::test]
async fn the_client_records_its_session_over_tcp_udp_and_ws() {
    let server = start(Config::for_tests()).await.unwrap();
    let tcp = server.addrs.tcp[0].to_string();
    let t = recorded("tcp", std::slice::from_ref(&tcp), "hello\n你好\n\n").await;
    assert_eq!(t.kind, socklab_protocol::SessionKind::Tcp);
    assert_eq!(t.target, tcp);
    // Over TCP the line goes with its `\n` and the reply comes with one.
    assert_recorded(&t, &["hello", "你好"], "\n");
    assert!(t.messages[1].text.ends_with(":hello\n"));

    let udp = server.addrs.udp[0].to_string();
    let t = recorded("udp", &["--udp".into(), udp], "datagram\n").await;
    assert_eq!(t.kind, socklab_protocol::SessionKind::Udp);
    assert_recorded(&t, &["datagram"], "");

    let url = format!("ws://{}/ws", server.addrs.http[0]);
    let t = recorded("ws", &["--ws".into(), url.clone()], "bridged\n").await;
    assert_eq!(
        (t.kind, t.target.as_str()),
        (socklab_protocol::SessionKind::Ws, url.as_str())
    );
    assert_recorded(&t, &["bridged"], "");
    server.stop().await;
}

#[tokio::test]
async fn a_record_file_that_cannot_be_written_is_a_clear_error() {
    let server = start(Config::for_tests()).await.unwrap();
    let path = record_path("no-such-dir").join("record.json");
    let args = [
        server.addrs.tcp[0].to_string(),
        "--record".into(),
        path.display().to_string(),
    ];
    // No input: the client stops before it reads any (typing into it could race its exit).
    let run = Command::new(CLIENT)
        .args(args)
        .stdin(Stdio::null())
        .output();
    let out = tokio::time::timeout(TIMEOUT, run).await.unwrap().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot write the record file")
            && stderr.contains(&path.display().to_string()),
        "{stderr}"
    );
    // It stopped before the prompt: the file is checked before anything is sent.
    assert!(!String::from_utf8_lossy(&out.stdout).contains(">>"));
    server.stop().await;
}
