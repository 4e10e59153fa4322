//! `cargo xtask bench-capture`: what `--capture` costs. The same echo and bridge with capture
//! off and on, side by side in one run (rounds interleaved), at the goals' 100 connections:
//! server CPU per message (the capture's two threads are in the server's process, so their
//! time counts), and what the capture did with the packets meanwhile (its `/api/info`
//! counters: read, captured, dropped by the kernel and by its queue).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::ctx::{Ctx, GOAL_CONNECTIONS};
use super::load::{LoadTarget, helper, run_section, socklab, tcp, ws};
use super::lone::{lone_section_ctx, write_lone_section};
use super::procs::local;
use super::stats::f;
use crate::cmd;

/// `cargo xtask bench-capture [--quick]`: the section alone (it is not part of `bench`).
pub fn capture_only(quick: bool) -> Result<()> {
    let mut ctx = lone_section_ctx(quick)?;
    let started = std::time::Instant::now();
    let capture = section(&mut ctx)?;
    write_lone_section(
        "capture",
        "## 7. Packet capture: --capture off vs on (100 connections)\n\n",
        quick,
        started,
        capture,
        markdown,
    )
}

/// The section's report: the load cells and the capture's counters over the run.
pub(super) fn section(ctx: &mut Ctx) -> Result<Value> {
    let root = cmd::probe(cmd::command("id").arg("-u")).is_some_and(|uid| uid == "0");
    if !root {
        bail!("capturing needs root (or CAP_NET_RAW on the release binary): run it as root");
    }
    let mut echo = helper(ctx, "capture-bare-echo", &ctx.bins.loadgen, |c, port| {
        c.arg("bare-echo").arg(local(port).to_string());
    })?;
    let mut off = socklab(ctx, "capture-off", echo.port, |_| {})?;
    let mut on = socklab(ctx, "capture-on", echo.port, |c| {
        c.arg("--capture");
    })?;
    let before = capture_stats(on.http)?;
    if before.is_null() {
        bail!("the --capture server runs without capture; see target/bench/logs/capture-on.log");
    }
    let at = Some(GOAL_CONNECTIONS);
    let targets = [
        ("echo, capture off", tcp(off.port), off.proc.pid()),
        ("echo, capture on", tcp(on.port), on.proc.pid()),
        (
            "/ws bridge, capture off",
            ws(off.http, "/ws", "lines"),
            off.proc.pid(),
        ),
        (
            "/ws bridge, capture on",
            ws(on.http, "/ws", "lines"),
            on.proc.pid(),
        ),
    ]
    .map(|(name, args, pid)| LoadTarget {
        name,
        args,
        pid,
        only_at: at,
    });
    let procs = &mut [&mut echo.proc, &mut off.proc, &mut on.proc];
    let cells = run_section(ctx, "capture", &targets, procs)?;
    // The last packets of the last run reach the counters a moment later.
    std::thread::sleep(Duration::from_millis(500));
    let after = capture_stats(on.http)?;
    let delta = |key: &str| {
        after[key]
            .as_u64()
            .unwrap_or(0)
            .saturating_sub(before[key].as_u64().unwrap_or(0))
    };
    let counters: serde_json::Map<String, Value> = [
        "read",
        "kernel_dropped",
        "queue_dropped",
        "captured",
        "unstored",
    ]
    .into_iter()
    .map(|k| (k.to_owned(), json!(delta(k))))
    .collect();
    Ok(json!({ "cells": cells["cells"], "packets": counters }))
}

/// `/api/info`'s `capture_stats` (null when capture is off).
fn capture_stats(http: u16) -> Result<Value> {
    let mut s = TcpStream::connect(local(http)).context("connect for /api/info")?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET /api/info HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")?;
    let mut response = Vec::new();
    s.read_to_end(&mut response)?;
    let body = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| &response[i + 4..])
        .context("/api/info: no response head")?;
    let info: Value = serde_json::from_slice(body).context("/api/info: not JSON")?;
    Ok(info["capture_stats"].clone())
}

/// The section as markdown: the four rows, the on/off ratios, the packet counters.
pub(super) fn markdown(md: &mut String, v: &Value) {
    let cells = v["cells"].as_array().cloned().unwrap_or_default();
    md.push_str(
        "| target | msgs/s | p50 µs | p99 µs | server CPU µs/msg | errors |\n|---|---|---|---|---|---|\n",
    );
    for c in &cells {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            c["target"].as_str().unwrap_or("?"),
            f(&c["msgs_per_s"], 0),
            f(&c["p50_us"], 0),
            f(&c["p99_us"], 0),
            f(&c["cpu_us_per_msg"], 2),
            c["errors"]
        ));
    }
    let cpu = |name: &str| {
        cells
            .iter()
            .find(|c| c["target"] == name)
            .and_then(|c| c["cpu_us_per_msg"].as_f64())
    };
    for (what, off, on) in [
        ("echo", "echo, capture off", "echo, capture on"),
        (
            "bridge",
            "/ws bridge, capture off",
            "/ws bridge, capture on",
        ),
    ] {
        if let (Some(off), Some(on)) = (cpu(off), cpu(on)) {
            md.push_str(&format!(
                "\n{what}: CPU per message with capture on / off = {:.2}",
                on / off
            ));
        }
    }
    let p = &v["packets"];
    md.push_str(&format!(
        "\n\nPackets over the capture-on runs: read {}, captured {}, dropped by the kernel {}, \
         dropped by the queue {}, not stored {}.\n",
        p["read"], p["captured"], p["kernel_dropped"], p["queue_dropped"], p["unstored"]
    ));
}
