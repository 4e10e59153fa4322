//! Section 3: capacity, RSS and fds of a fresh socklab-server at 1k and 10k idle bridged
//! sessions (`socklab-loadgen hold`).

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use super::ctx::{Ctx, NOFILE, SIZE, server_flags};
use super::procs::{Proc, fd_count, free_port, local, nofile_hard, rss_kib, wait_port};
use super::stats::f;

/// One row per size of the plan.
pub fn capacity(ctx: &mut Ctx) -> Result<Value> {
    let mut rows = Vec::new();
    // The bridge holds two sockets per session; without a raisable hard limit (no
    // CAP_SYS_RESOURCE, as in some containers) the largest size is what the limit allows.
    let hard = nofile_hard().unwrap_or(NOFILE);
    let budget = usize::try_from(hard.saturating_sub(200) / 2).unwrap_or(usize::MAX);
    for &asked in &ctx.plan.capacity.clone() {
        let n = asked.min(budget);
        println!("bench: capacity: {n} idle bridged sessions (asked {asked})");
        let mut row = one_size(ctx, n)?;
        row["asked"] = json!(asked);
        row["nofile_limit"] = json!(hard.to_string());
        rows.push(row);
    }
    Ok(Value::Array(rows))
}

/// RSS and fds of a fresh bridge before and with `n` idle sessions. Its upstream is a socklab
/// echo in its own process, so each process stays within its open-files limit; the row gives
/// the bridge's RSS per session and the bridge's plus the echo's.
fn one_size(ctx: &Ctx, n: usize) -> Result<Value> {
    let (echo_tcp, echo_http) = (free_port()?, free_port()?);
    let echo = server(
        ctx,
        &format!("capacity-{n}-echo"),
        echo_tcp,
        echo_http,
        None,
    )?;
    let (tcp, http) = (free_port()?, free_port()?);
    let bridge = server(
        ctx,
        &format!("capacity-{n}-server"),
        tcp,
        http,
        Some(echo_tcp),
    )?;
    std::thread::sleep(Duration::from_millis(300));
    let before = Usage::of(&bridge, &echo);
    let mut client = ctx.command(&ctx.bins.loadgen);
    client
        .args(["hold", "--json", "--binary", "--secs", "300"])
        .args(["-c", &n.to_string(), "--size", &SIZE.to_string()])
        .arg("--ws")
        .arg(format!("ws://{}/ws", local(http)));
    client.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = client
        .spawn()
        .context("could not start socklab-loadgen hold")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let held: Value = serde_json::from_str(line.trim())
        .with_context(|| format!("socklab-loadgen hold said {line:?}"))?;
    // Let the last sessions settle (their first reply sent, buffers released).
    std::thread::sleep(Duration::from_millis(1000));
    let after = Usage::of(&bridge, &echo);
    drop(child.stdin.take());
    let _ = child.wait();
    let sessions = held["sessions"].as_u64().unwrap_or(0);
    let per = |grew: u64| match sessions {
        0 => 0.0,
        n => grew as f64 / n as f64,
    };
    let rss = after.rss.saturating_sub(before.rss);
    Ok(json!({
        "sessions": n,
        "kib_per_session_with_echo": per(rss + after.echo_rss.saturating_sub(before.echo_rss)),
        "opened": sessions,
        "failed": held["failed"],
        "first_error": held["first_error"],
        "open_ms": held["open_ms"],
        "rss_before_kib": before.rss,
        "rss_kib": after.rss,
        "kib_per_session": per(rss),
        "fds_before": before.fds,
        "fds": after.fds,
        "fds_per_session": per(after.fds.saturating_sub(before.fds)),
    }))
}

/// The bridge's RSS (KiB) and fds, and the echo's RSS.
struct Usage {
    rss: u64,
    fds: u64,
    echo_rss: u64,
}

impl Usage {
    fn of(bridge: &Proc, echo: &Proc) -> Usage {
        Usage {
            rss: rss_kib(bridge.pid()),
            fds: fd_count(bridge.pid()),
            echo_rss: rss_kib(echo.pid()),
        }
    }
}

/// A socklab-server on `tcp` and `http`, bridging to `upstream` when given; listening.
fn server(ctx: &Ctx, name: &str, tcp: u16, http: u16, upstream: Option<u16>) -> Result<Proc> {
    let mut c = ctx.command(&ctx.bins.server);
    c.args(["--tcp", &local(tcp).to_string(), "--http"])
        .arg(local(http).to_string())
        .args(server_flags(&ctx.bins.server))
        .args(["--max-connections", "40000"])
        .env("RUST_LOG", "warn");
    if let Some(up) = upstream {
        c.arg("--upstream").arg(local(up).to_string());
    }
    let mut proc = Proc::spawn(name, c, &ctx.log_dir)?;
    wait_port(&mut proc, if upstream.is_some() { http } else { tcp })?;
    Ok(proc)
}

/// The section's table.
pub fn markdown(md: &mut String, rows: &Value) {
    md.push_str(
        "\n## 3. Capacity: idle bridged sessions\n\n\
         A fresh socklab-server bridge per size, its upstream a socklab echo in another process; \
         each session opens, exchanges one message, then stays idle. KiB/session = (bridge RSS \
         with the sessions − before) / sessions; \"+ echo\" adds the echo process's growth (both \
         halves of a bridged session). fds are the bridge's.\n\n\
         | sessions | asked | opened | time to open | bridge RSS before | after | KiB/session | KiB/session + echo | fds | fds/session | NOFILE hard |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for c in rows.as_array().into_iter().flatten() {
        md.push_str(&format!(
            "| {} | {} | {} | {} ms | {} KiB | {} KiB | {} | {} | {} | {} | {} |\n",
            c["sessions"],
            c["asked"],
            c["opened"],
            f(&c["open_ms"], 0),
            c["rss_before_kib"],
            c["rss_kib"],
            f(&c["kib_per_session"], 1),
            f(&c["kib_per_session_with_echo"], 1),
            c["fds"],
            f(&c["fds_per_session"], 2),
            c["nofile_limit"].as_str().unwrap_or("?"),
        ));
        if let Some(err) = c["first_error"].as_str() {
            md.push_str(&format!("\nfirst error: {err}\n"));
        }
    }
}
