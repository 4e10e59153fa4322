//! Section 7 of `cargo xtask bench`, also alone as `cargo xtask bench-metrics`: what recording
//! metrics (`/metrics`) costs per message. Issue 16's goal: it must not move the echo's or the
//! bridge's CPU per message by more than 3 %.
//!
//! Two socklab-server processes of the same release binary, side by side in the same run:
//! one as shipped (metrics on), one with `SOCKLAB_BENCH_METRICS_OFF` set (every metrics handle
//! a no-op; the bridge still reads the clock once per message, which is its own code). Both
//! bridges forward to one bare tokio echo. Every round starts a fresh pair and alternates which
//! is loaded first; a ratio is the median of the rounds' own on/off ratios, so a busy moment on
//! a shared machine weighs on both sides of a pair alike.

use std::time::Instant;

use anyhow::Result;
use serde_json::{Value, json};

use super::ctx::{Ctx, server_flags};
use super::load::{LoadTarget, load_once, tcp, ws};
use super::lone::{lone_section_ctx, write_lone_section};
use super::procs::{Proc, free_port, local, wait_port};
use super::stats::{f, median};

/// Connections per run: the goals' cell of the rest of the bench.
const CONNECTIONS: usize = 100;
/// The goal: on/off CPU per message at most this.
const GOAL: f64 = 1.03;

/// `cargo xtask bench-metrics [--quick]`: this section alone, written to
/// `target/bench/metrics.md` and `metrics.json`.
pub fn metrics_only(quick: bool) -> Result<()> {
    let mut ctx = lone_section_ctx(quick)?;
    let started = Instant::now();
    let section = section(&mut ctx)?;
    write_lone_section(
        "metrics",
        "# socklab: what recording metrics costs\n\n",
        quick,
        started,
        section,
        markdown,
    )
}

/// A socklab-server with its bridge pointed at `upstream`; metrics off when `off`.
fn server(ctx: &Ctx, upstream: u16, off: bool) -> Result<(Proc, u16, u16)> {
    let (tcp, http) = (free_port()?, free_port()?);
    let mut c = ctx.command(&ctx.bins.server);
    c.args(["--tcp", &local(tcp).to_string(), "--http"])
        .arg(local(http).to_string())
        .args(server_flags(&ctx.bins.server))
        .arg("--upstream")
        .arg(local(upstream).to_string())
        .env("RUST_LOG", "warn");
    if off {
        c.env("SOCKLAB_BENCH_METRICS_OFF", "1");
    }
    let name = if off {
        "socklab-metrics-off"
    } else {
        "socklab-metrics-on"
    };
    let mut p = Proc::spawn(name, c, &ctx.log_dir)?;
    wait_port(&mut p, http)?;
    wait_port(&mut p, tcp)?;
    Ok((p, tcp, http))
}

/// The section: echo and bridge, metrics on and off, `rounds` pairs. Each round starts a fresh
/// pair of servers (so no one process's luck — its threads' placement, its heap — sides with
/// one setting in every round) and alternates which goes first (on, off; then off, on).
pub fn section(ctx: &mut Ctx) -> Result<Value> {
    let bare_port = free_port()?;
    let mut bare = ctx.command(&ctx.bins.loadgen);
    bare.arg("bare-echo").arg(local(bare_port).to_string());
    let mut bare = Proc::spawn("metrics-bare-echo", bare, &ctx.log_dir)?;
    wait_port(&mut bare, bare_port)?;
    let rounds = if ctx.plan.quick { 3 } else { 9 };
    // runs[path][setting]: path 0 the echo, 1 the bridge; setting 0 on, 1 off.
    let mut runs: [[Vec<Value>; 2]; 2] = Default::default();
    for round in 0..rounds {
        let mut pair = [
            server(ctx, bare_port, false)?,
            server(ctx, bare_port, true)?,
        ];
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for (path, name) in ["tcp echo", "/ws bridge"].into_iter().enumerate() {
            for setting in order {
                let (_, port, http) = pair[setting];
                let args = if path == 0 {
                    tcp(port)
                } else {
                    ws(http, "/ws", "lines")
                };
                let target = LoadTarget {
                    name,
                    args,
                    pid: pair[setting].0.pid(),
                    only_at: None,
                };
                bare.check_alive()?;
                pair[setting].0.check_alive()?;
                let label = ["on", "off"][setting];
                println!(
                    "bench: metrics: {name}, metrics {label} (round {}/{rounds})",
                    round + 1
                );
                runs[path][setting].push(load_once(ctx, &target, CONNECTIONS)?);
            }
        }
    }
    let rows = vec![row("tcp echo", &runs[0]), row("/ws bridge", &runs[1])];
    Ok(json!({ "connections": CONNECTIONS, "rounds": rounds, "goal": GOAL, "rows": rows }))
}

/// One path's figures: medians each side, and the median of the rounds' on/off ratios.
fn row(path: &str, runs: &[Vec<Value>; 2]) -> Value {
    let cpu = |r: &Value| r["cpu_us_per_msg"].as_f64();
    let mut ratios: Vec<Value> = runs[0]
        .iter()
        .zip(&runs[1])
        .filter_map(|(a, b)| Some(json!(cpu(a)? / cpu(b)?)))
        .collect();
    ratios.retain(|r| r.as_f64().is_some_and(f64::is_finite));
    let ratio = median(
        &ratios.iter().map(|r| json!({ "r": r })).collect::<Vec<_>>(),
        "r",
    );
    json!({
        "path": path,
        "on": {
            "cpu_us_per_msg": median(&runs[0], "cpu_us_per_msg"),
            "msgs_per_s": median(&runs[0], "msgs_per_s"),
            "errors": runs[0].iter().map(|r| r["errors"].as_u64().unwrap_or(0)).sum::<u64>(),
        },
        "off": {
            "cpu_us_per_msg": median(&runs[1], "cpu_us_per_msg"),
            "msgs_per_s": median(&runs[1], "msgs_per_s"),
            "errors": runs[1].iter().map(|r| r["errors"].as_u64().unwrap_or(0)).sum::<u64>(),
        },
        "ratio": ratio,
        "round_ratios": ratios,
    })
}

/// The section as Markdown.
pub fn markdown(md: &mut String, s: &Value) {
    md.push_str(&format!(
        "\n## 7. Metrics: CPU per message with recording on and off\n\n\
         The same release binary twice, side by side: as shipped, and with \
         `SOCKLAB_BENCH_METRICS_OFF` set (every metrics handle a no-op; the bridge still reads \
         the clock once per message). {} connections, {} rounds, each with a fresh pair of \
         servers, loaded on/off then off/on in turn; on/off is the median of the rounds' own \
         ratios. Goal: ≤ {}×.\n\n\
         | path | CPU µs/msg, metrics on | metrics off | on/off | goal | msgs/s on | msgs/s off | errors |\n\
         |---|---:|---:|---:|---|---:|---:|---:|\n",
        s["connections"], s["rounds"], s["goal"]
    ));
    for r in s["rows"].as_array().into_iter().flatten() {
        let verdict = match r["ratio"].as_f64() {
            Some(x) if x <= GOAL => "met",
            Some(_) => "**missed**",
            None => "not measured",
        };
        md.push_str(&format!(
            "| {} | {} | {} | {} | {verdict} | {} | {} | {} |\n",
            r["path"].as_str().unwrap_or(""),
            f(&r["on"]["cpu_us_per_msg"], 2),
            f(&r["off"]["cpu_us_per_msg"], 2),
            f(&r["ratio"], 3),
            f(&r["on"]["msgs_per_s"], 0),
            f(&r["off"]["msgs_per_s"], 0),
            r["on"]["errors"].as_u64().unwrap_or(0) + r["off"]["errors"].as_u64().unwrap_or(0),
        ));
    }
    if let Some(err) = s["error"].as_str() {
        md.push_str(&format!("\nnot measured: {err}\n"));
    }
}
