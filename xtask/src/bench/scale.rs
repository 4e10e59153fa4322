//! Section 5 of `cargo xtask bench`, also alone as `cargo xtask bench-scale`: throughput with
//! 1, 2 and 3 socklab-server instances behind HAProxy (the deployment of `deploy/`), beside one
//! instance reached directly, for the TCP echo and the `/ws` bridge.
//!
//! Every instance, HAProxy and the load generator share this machine's cores, so the figure
//! shows where the machine, not socklab, becomes the limit; `machine busy` (from `/proc/stat`)
//! says how much of every core the whole run used.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use super::ctx::{Ctx, SIZE};
use super::load::{LoadTarget, load_once, tcp, ws};
use super::lone::{lone_section_ctx, write_lone_section};
use super::procs::{Proc, free_port, local, tree_ticks, wait_port};
use super::stats::{f, median, ratio_text};
use crate::cmd;
use crate::tools::{self, Toolbox};

/// Where the instances are in one setup.
struct Setup {
    name: String,
    instances: Vec<Proc>,
    proxy: Option<Proc>,
    /// Where the load goes: (tcp, http).
    tcp: u16,
    http: u16,
}

/// `cargo xtask bench-scale [--quick]`: this section alone, written to
/// `target/bench/scale.md` and `scale.json`.
pub fn scale_only(quick: bool) -> Result<()> {
    let mut toolbox = Toolbox::default();
    let mut ctx = lone_section_ctx(quick)?;
    let started = Instant::now();
    let scale = section(&mut ctx, &mut toolbox)?;
    write_lone_section(
        "scale",
        "# socklab: scaling out behind HAProxy\n\n",
        quick,
        started,
        scale,
        markdown,
    )
}

/// The section: one instance direct, then 1, 2 and 3 behind HAProxy; TCP echo and `/ws`.
pub fn section(ctx: &mut Ctx, toolbox: &mut Toolbox) -> Result<Value> {
    // --quick installs nothing (as the rest of the bench).
    if !ctx.plan.quick {
        tools::cluster_tools(toolbox)?;
    }
    let haproxy = haproxy_bin().context("haproxy is not installed (apt-get install haproxy)")?;
    let connections = if ctx.plan.quick { 50 } else { 200 };
    let mut rows = Vec::new();
    for instances in [0usize, 1, 2, 3] {
        let mut setup = start(ctx, &haproxy, instances)?;
        for kind in ["tcp", "ws"] {
            let target = target(&setup, kind);
            let runs = rounds(ctx, &mut setup, &target, connections)?;
            let proxied = setup.proxy.is_some();
            rows.push(json!({
                "setup": setup.name,
                "instances": instances.max(1),
                "proxy": proxied,
                "kind": kind,
                "connections": connections,
                "msgs_per_s": median(&runs, "msgs_per_s"),
                "p50_us": median(&runs, "p50_us"),
                "p99_us": median(&runs, "p99_us"),
                "proxy_cpu_us_per_msg": if proxied { median(&runs, "cpu_us_per_msg") } else { Value::Null },
                "instances_cpu_us_per_msg": median(&runs, "instances_cpu_us_per_msg"),
                "machine_busy": median(&runs, "machine_busy"),
                "errors": runs.iter().map(|r| r["errors"].as_u64().unwrap_or(0)).sum::<u64>(),
                "rounds": runs,
            }));
        }
    }
    Ok(json!({
        "connections": connections,
        "message_bytes": SIZE,
        "duration_s": ctx.plan.duration,
        "rounds": ctx.plan.rounds,
        "rows": rows,
    }))
}

/// The load for `kind` (`tcp` or `ws`) on `setup`; its CPU is the proxy's, when there is one.
fn target(setup: &Setup, kind: &str) -> LoadTarget {
    let (name, args) = match kind {
        "tcp" => ("tcp echo", tcp(setup.tcp)),
        _ => ("/ws", ws(setup.http, "/ws", "lines")),
    };
    LoadTarget {
        name,
        args,
        pid: match &setup.proxy {
            Some(p) => p.pid(),
            None => setup.instances[0].pid(),
        },
        only_at: None,
    }
}

/// The plan's rounds of `target` on `setup`, each with the instances' CPU per message and how
/// busy the whole machine was.
fn rounds(
    ctx: &Ctx,
    setup: &mut Setup,
    target: &LoadTarget,
    connections: usize,
) -> Result<Vec<Value>> {
    let mut runs = Vec::new();
    for round in 0..ctx.plan.rounds {
        for p in setup.instances.iter_mut().chain(setup.proxy.as_mut()) {
            p.check_alive()?;
        }
        println!(
            "bench: scale: {} {} x{connections} (round {}/{})",
            setup.name,
            target.name,
            round + 1,
            ctx.plan.rounds
        );
        let pids: Vec<u32> = setup.instances.iter().map(Proc::pid).collect();
        let ticks = |pids: &[u32]| pids.iter().map(|&p| tree_ticks(p)).sum::<u64>();
        let (before, busy_before) = (ticks(&pids), cpu_times());
        let mut v = load_once(ctx, target, connections)?;
        let (after, busy_after) = (ticks(&pids), cpu_times());
        let total = v["total"].as_u64().unwrap_or(0).max(1) as f64;
        let instances_us = after.saturating_sub(before) as f64 * 1e6 / ctx.hz;
        v["instances_cpu_us_per_msg"] = json!(instances_us / total);
        v["machine_busy"] = json!(busy(busy_before, busy_after));
        runs.push(v);
    }
    Ok(runs)
}

fn haproxy_bin() -> Option<PathBuf> {
    cmd::which("haproxy").or_else(|| {
        let p = PathBuf::from("/usr/sbin/haproxy");
        p.is_file().then_some(p)
    })
}

/// `instances` socklab-servers (0: one, reached directly) and, when proxied, HAProxy.
fn start(ctx: &Ctx, haproxy: &Path, instances: usize) -> Result<Setup> {
    let proxied = instances > 0;
    let mut procs = Vec::new();
    let mut servers = Vec::new();
    for i in 0..instances.max(1) {
        let (tcp, http) = (free_port()?, free_port()?);
        let mut c = ctx.command(&ctx.bins.server);
        c.args(["--tcp", &local(tcp).to_string(), "--http"])
            .arg(local(http).to_string())
            .args(["--no-udp", "--no-banner", "--no-webtransport"])
            .args(["--max-connections", "40000"])
            .env("RUST_LOG", "warn");
        if proxied {
            c.args(["--proxy-protocol", "--forwarded-for"])
                .args(["--trusted-proxy", "127.0.0.1"])
                .args(["--instance", &format!("i{}", i + 1)]);
        }
        let mut p = Proc::spawn(&format!("scale-{instances}-i{}", i + 1), c, &ctx.log_dir)?;
        wait_port(&mut p, http)?;
        wait_port(&mut p, tcp)?;
        procs.push(p);
        servers.push((tcp, http));
    }
    if !proxied {
        let (tcp, http) = servers[0];
        return Ok(Setup {
            name: "1 instance, direct".into(),
            instances: procs,
            proxy: None,
            tcp,
            http,
        });
    }
    let (tcp, http) = (free_port()?, free_port()?);
    let cfg = ctx.log_dir.join(format!("scale-{instances}-haproxy.cfg"));
    fs::write(&cfg, haproxy_config(&servers, tcp, http))?;
    let mut c = ctx.command(haproxy);
    c.arg("-db").arg("-f").arg(&cfg);
    let mut proxy = Proc::spawn(&format!("scale-{instances}-haproxy"), c, &ctx.log_dir)?;
    wait_port(&mut proxy, tcp)?;
    wait_port(&mut proxy, http)?;
    Ok(Setup {
        name: format!(
            "{instances} instance{} behind HAProxy",
            if instances == 1 { "" } else { "s" }
        ),
        instances: procs,
        proxy: Some(proxy),
        tcp,
        http,
    })
}

/// deploy/haproxy.cfg's echo and web parts, on the given ports.
fn haproxy_config(servers: &[(u16, u16)], tcp: u16, http: u16) -> String {
    let mut cfg = format!(
        "global\n    maxconn 5000\n\
         defaults\n    retries 2\n    option redispatch 1\n    timeout connect 3s\n\
         \x20   timeout client 300s\n    timeout server 300s\n    timeout tunnel 1h\n\
         frontend echo\n    mode tcp\n    bind 127.0.0.1:{tcp}\n    default_backend echo\n\
         backend echo\n    mode tcp\n    balance leastconn\n    option httpchk GET /healthz\n"
    );
    for (i, (t, h)) in servers.iter().enumerate() {
        cfg += &format!(
            "    server i{} 127.0.0.1:{t} send-proxy-v2 check port {h}\n",
            i + 1
        );
    }
    cfg += &format!(
        "frontend web\n    mode http\n    bind 127.0.0.1:{http}\n    option forwardfor\n\
         \x20   default_backend web\n\
         backend web\n    mode http\n    balance leastconn\n    option httpchk GET /healthz\n"
    );
    for (i, (_, h)) in servers.iter().enumerate() {
        cfg += &format!("    server i{} 127.0.0.1:{h} check\n", i + 1);
    }
    cfg
}

/// (busy, total) jiffies of all cores, from `/proc/stat`.
fn cpu_times() -> (u64, u64) {
    let stat = fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = fields.iter().sum();
    // idle + iowait
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}

/// The share of every core that was busy between two [`cpu_times`].
fn busy(before: (u64, u64), after: (u64, u64)) -> f64 {
    let total = after.1.saturating_sub(before.1);
    if total == 0 {
        return 0.0;
    }
    after.0.saturating_sub(before.0) as f64 / total as f64
}

/// The section's table.
pub fn markdown(md: &mut String, s: &Value) {
    md.push_str(&format!(
        "\n## 5. Scaling out: 1, 2 and 3 instances behind HAProxy\n\n\
         The deployment of `deploy/haproxy.cfg` on this machine: N socklab-server processes \
         (`--proxy-protocol`, `--forwarded-for`), HAProxy 2.6 in front (TCP echo in `mode tcp` \
         with `send-proxy-v2`, `/ws` in `mode http`, `balance leastconn`), {} connections of \
         `socklab-loadgen load` ({} B messages, closed loop), beside one instance reached \
         directly. CPU µs/msg is HAProxy's and all instances' together; machine busy is the \
         share of all cores in use (load generator included). Why it flattens, and how it \
         scales past one host: docs/scaling.md.\n\n\
         | setup | path | msgs/s | × direct | p50 µs | p99 µs | HAProxy CPU µs/msg | instances CPU µs/msg | machine busy | errors |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        s["connections"], s["message_bytes"],
    ));
    if let Some(err) = s["error"].as_str() {
        md.push_str(&format!("\nnot measured: {err}\n"));
        return;
    }
    let rows = s["rows"].as_array().cloned().unwrap_or_default();
    for r in &rows {
        let kind = r["kind"].as_str().unwrap_or("");
        let direct = rows
            .iter()
            .find(|d| d["proxy"] == json!(false) && d["kind"] == r["kind"])
            .and_then(|d| d["msgs_per_s"].as_f64());
        let ratio = ratio_text(r["msgs_per_s"].as_f64(), direct);
        md.push_str(&format!(
            "| {} | {} | {} | {ratio} | {} | {} | {} | {} | {} | {} |\n",
            r["setup"].as_str().unwrap_or(""),
            if kind == "tcp" {
                "TCP echo"
            } else {
                "/ws bridge"
            },
            f(&r["msgs_per_s"], 0),
            f(&r["p50_us"], 0),
            f(&r["p99_us"], 0),
            f(&r["proxy_cpu_us_per_msg"], 1),
            f(&r["instances_cpu_us_per_msg"], 1),
            r["machine_busy"]
                .as_f64()
                .map_or("–".to_owned(), |b| format!("{:.0} %", b * 100.0)),
            r["errors"].as_u64().unwrap_or(0),
        ));
    }
}
