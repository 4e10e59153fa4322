//! `socklab-loadgen` as `cargo xtask bench` drives it: a tiny run of each subcommand, checking
//! the shape of what it prints (the figures themselves are the bench's business, not a test's).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use socklab_server::{Config, start};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const LOADGEN: &str = env!("CARGO_BIN_EXE_socklab-loadgen");
const TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `socklab-loadgen ARGS` to its end; one JSON object per line of its output.
async fn loadgen(args: &[&str]) -> Vec<Value> {
    let out = tokio::time::timeout(
        TIMEOUT,
        Command::new(LOADGEN)
            .args(args)
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("socklab-loadgen ends by itself")
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "socklab-loadgen failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[tokio::test]
async fn two_connections_by_ten_messages_over_tcp_and_the_bridge() {
    let server = start(Config::for_tests()).await.unwrap();
    let tcp = server.addrs.tcp[0].to_string();
    let ws = format!("ws://{}/ws", server.addrs.http[0]);
    let flags = ["-c", "2", "-n", "10", "--warmup", "0", "--duration", "20"];
    let mut args = vec!["load", "--json", "--tcp", &tcp, "--ws", &ws];
    args.extend(flags);
    let outcomes = loadgen(&args).await;
    assert_eq!(outcomes.len(), 2);
    assert_eq!(outcomes[0]["target"], format!("tcp {tcp}"));
    assert_eq!(outcomes[1]["target"], format!("ws {ws}"));
    for o in &outcomes {
        assert_eq!(o["connected"], 2, "{o}");
        assert_eq!(o["errors"], 0, "{o}");
        assert_eq!(o["messages"], 20, "every reply measured: {o}");
        assert_eq!(o["total"], 20, "{o}");
        for key in ["msgs_per_s", "p50_us", "p99_us", "p999_us", "max_us"] {
            assert!(o[key].as_f64().unwrap() > 0.0, "{key} in {o}");
        }
        assert!(o["p50_us"].as_f64() <= o["p99_us"].as_f64());
    }
    server.stop().await;
}

#[tokio::test]
async fn the_table_puts_the_targets_side_by_side() {
    let server = start(Config::for_tests()).await.unwrap();
    let tcp = server.addrs.tcp[0].to_string();
    let ws = format!("ws://{}/ws", server.addrs.http[0]);
    let out = Command::new(LOADGEN)
        .args(["load", "--tcp", &tcp, "--ws", &ws, "-c", "2", "-n", "5"])
        .args(["--warmup", "0", "--duration", "20"])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("msgs/s") && text.contains("p99 µs"), "{text}");
    assert!(text.contains(&format!("tcp {tcp}")), "{text}");
    assert!(text.contains(&format!("ws {ws}")), "{text}");
    server.stop().await;
}

#[tokio::test]
async fn the_bare_echo_baseline_and_held_sessions() {
    let mut echo = Command::new(LOADGEN)
        .args(["bare-echo", "127.0.0.1:0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(echo.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().unwrap();
    let addr = first
        .strip_prefix("bare echo on ")
        .expect(&first)
        .to_owned();
    let outcomes = loadgen(&[
        "load", "--json", "--tcp", &addr, "-c", "2", "-n", "10", "--warmup", "0",
    ])
    .await;
    assert_eq!(outcomes[0]["messages"], 20);
    assert_eq!(outcomes[0]["errors"], 0);
    // Closing its standard input stops the bare echo.
    drop(echo.stdin.take());
    tokio::time::timeout(TIMEOUT, echo.wait())
        .await
        .expect("the bare echo exits when its stdin closes")
        .unwrap();

    let server = start(Config::for_tests()).await.unwrap();
    let ws = format!("ws://{}/ws", server.addrs.http[0]);
    let held = loadgen(&["hold", "--json", "--ws", &ws, "-c", "3", "--secs", "0"]).await;
    assert_eq!(held[0]["sessions"], 3, "{}", held[0]);
    assert_eq!(held[0]["failed"], 0);
    assert!(held[0]["open_ms"].as_f64().unwrap() > 0.0);
    server.stop().await;
}

#[tokio::test]
async fn the_bare_relay_forwards_to_its_upstream() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let server = start(Config::for_tests()).await.unwrap();
    let upstream = server.addrs.tcp[0].to_string();
    let mut relay = Command::new(LOADGEN)
        .args(["bare-relay", "127.0.0.1:0", "--to"])
        .arg(&upstream)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(relay.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().unwrap();
    let addr = first
        .strip_prefix("bare relay on ")
        .and_then(|rest| rest.split(' ').next())
        .expect(&first)
        .to_owned();

    // The reply is stamped: it came from socklab's echo behind the relay.
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream.write_all(b"hi\n").await.unwrap();
    let mut reply = Vec::new();
    while !reply.ends_with(b"\n") {
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(TIMEOUT, stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "the relay closed early: {reply:?}");
        reply.extend_from_slice(&buf[..n]);
    }
    let reply = String::from_utf8(reply).unwrap();
    assert!(
        reply.starts_with('[') && reply.ends_with("]:hi\n"),
        "{reply:?}"
    );
    drop(stream);

    let outcomes = loadgen(&[
        "load", "--json", "--tcp", &addr, "-c", "2", "-n", "10", "--warmup", "0",
    ])
    .await;
    assert_eq!(outcomes[0]["messages"], 20);
    assert_eq!(outcomes[0]["errors"], 0);
    drop(relay.stdin.take());
    tokio::time::timeout(TIMEOUT, relay.wait())
        .await
        .expect("the bare relay exits when its stdin closes")
        .unwrap();
    server.stop().await;
}

#[tokio::test]
async fn flags_out_of_range_are_refused_by_name() {
    for (flag, value) in [("--size", "0"), ("--size", "60001"), ("--connections", "0")] {
        let out = Command::new(LOADGEN)
            .args(["load", "--tcp", "127.0.0.1:9", flag, value])
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flag} {value} accepted");
        assert!(stderr.contains(flag), "{flag} {value}: {stderr}");
    }
}
