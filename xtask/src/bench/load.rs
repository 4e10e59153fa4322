//! Sections 1 and 2: load. The TCP echo beside a bare tokio echo, and the `/ws` bridge beside
//! direct TCP, the bare relays (the floor), websocat and websockify; every target run by
//! `socklab-loadgen load`, interleaved, with the serving process's CPU time over each run.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::ctx::{Ctx, GOAL_CONNECTIONS, SIZE, server_flags};
use super::peers::Peers;
use super::procs::{Proc, free_port, local, tree_ticks, wait_port};
use super::stats::median;
use crate::cmd;

/// socklab's bridge with `--threads 1`.
pub const ONE_THREAD: &str = "socklab /ws --threads 1";

/// socklab's echo and bridge with `--capture` on (run as root only).
pub const CAPTURE_ECHO: &str = "socklab echo --capture";
pub const CAPTURE_BRIDGE: &str = "socklab /ws --capture";

/// The bridge section's floor target: `socklab-loadgen bare-relay`.
pub const RELAY: &str = "bare TCP relay (floor)";

/// The same relay on io_uring (`bench/uring-relay`), at the goals' cell only.
pub const URING_RELAY: &str = "io_uring relay (experiment)";

/// Another socklab-server binary's echo and bridge (`bench-load --compare PATH`).
pub const COMPARE_ECHO: &str = "socklab echo (--compare)";
pub const COMPARE_BRIDGE: &str = "socklab /ws (--compare)";

/// Which rows the load sections measure.
#[derive(Clone, Copy)]
pub struct Rows<'a> {
    /// Every row (the full bench), or only the rows issue 18's goals are read from (the bare
    /// echo, socklab, direct TCP, the floor, websocat): `cargo xtask bench-load`.
    pub all: bool,
    /// Another socklab-server binary, measured beside this one in the same rounds.
    pub compare: Option<&'a Path>,
}

impl Rows<'_> {
    /// The full bench's rows.
    pub const ALL: Rows<'static> = Rows {
        all: true,
        compare: None,
    };
}

/// One thing to load: where, how its replies arrive, and which process does its work.
pub struct LoadTarget {
    pub name: &'static str,
    /// `--tcp ADDR` or `--ws URL` (+ `--ws-replies`).
    pub args: Vec<String>,
    /// The process whose CPU time is the target's.
    pub pid: u32,
    /// Measured at this many connections only (a variant beside the goals' cell).
    pub only_at: Option<usize>,
}

/// A started process and where the load goes: `port` (TCP, or the peers' WebSocket port) and,
/// for a socklab-server, `http`.
pub struct Up {
    pub proc: Proc,
    pub port: u16,
    pub http: u16,
}

/// Every process the load sections measure, all started before the first run.
struct Servers {
    /// The bare tokio echo: section 1's baseline and every bridge's upstream.
    bare: Up,
    /// socklab: its TCP echo for section 1; its bridge, to the bare echo, for section 2.
    sock: Up,
    /// The same bridge with `--threads 1` (every row only).
    one_thread: Option<Up>,
    /// Another socklab-server binary's echo and bridge (`--compare`).
    compare: Option<Up>,
    /// The same echo and bridge with `--capture` (as root only).
    capture: Option<Up>,
    /// The floor: the bare TCP relay, and the same on io_uring when it built.
    relay: Up,
    uring: Option<Up>,
    websocat: Option<Up>,
    websockify: Option<Up>,
}

/// Sections 1 and 2 with `rows`: (TCP echo, bridge).
pub fn load_sections(ctx: &mut Ctx, peers: &Peers, rows: Rows) -> Result<(Value, Value)> {
    let mut s = Servers::start(ctx, peers, rows)?;
    let (tcp_targets, bridge_targets) = (s.tcp_targets(), s.bridge_targets());
    let mut tcp_alive: Vec<&mut Proc> = vec![&mut s.bare.proc, &mut s.sock.proc];
    for up in [&mut s.capture, &mut s.compare] {
        tcp_alive.extend(up.as_mut().map(|u| &mut u.proc));
    }
    let tcp = run_section(ctx, "tcp echo", &tcp_targets, &mut tcp_alive)?;
    let mut alive = s.all();
    let mut bridge = run_section(ctx, "bridge", &bridge_targets, &mut alive)?;
    bridge["skipped"] = skipped(ctx, peers, rows);
    Ok((tcp, bridge))
}

/// The rows of section 2 that could not run, and why.
fn skipped(ctx: &Ctx, peers: &Peers, rows: Rows) -> Value {
    let mut skipped: Vec<Value> = [
        ("websocat", &peers.websocat, true),
        ("websockify", &peers.websockify, rows.all),
    ]
    .iter()
    .filter(|(_, _, wanted)| *wanted)
    .filter_map(|(n, r, _)| {
        r.as_ref()
            .err()
            .map(|why| json!({ "target": n, "why": why }))
    })
    .collect();
    if let (true, Err(why)) = (rows.all, &ctx.bins.uring_relay) {
        skipped.push(json!({ "target": URING_RELAY, "why": why }));
    }
    Value::Array(skipped)
}

impl Servers {
    fn start(ctx: &Ctx, peers: &Peers, rows: Rows) -> Result<Servers> {
        let bare = helper(ctx, "bare-echo", &ctx.bins.loadgen, |c, port| {
            c.arg("bare-echo").arg(local(port).to_string());
        })?;
        let upstream = bare.port;
        let dist = cmd::root().join("dist");
        let sock = socklab(ctx, "socklab-server", upstream, |c| {
            c.arg("--static-dir").arg(&dist);
        })?;
        // At the goals' cell only: websocat is single-threaded, and the two cores are shared
        // with the load generator and the echo.
        let one_thread = rows
            .all
            .then(|| {
                socklab(ctx, "socklab-server-1-thread", upstream, |c| {
                    c.args(["--threads", "1"]);
                })
            })
            .transpose()?;
        let compare = rows
            .compare
            .map(|bin| socklab_bin(ctx, bin, "socklab-server-compare", upstream, |_| {}))
            .transpose()?;
        // As root only (elsewhere it could not capture), at the goals' cell: what reading and
        // keeping socklab's own packets costs per message.
        let root = cmd::probe(cmd::command("id").arg("-u")).is_some_and(|uid| uid == "0");
        let capture = if root && rows.all {
            Some(socklab(ctx, "socklab-server-capture", upstream, |c| {
                c.arg("--capture");
            })?)
        } else {
            None
        };
        // It makes the same four send/recv calls per message as any bridge: what the kernel and
        // tokio alone cost.
        let relay = helper(ctx, "bare-relay", &ctx.bins.loadgen, |c, port| {
            c.arg("bare-relay").arg(local(port).to_string());
            c.arg("--to").arg(local(upstream).to_string());
        })?;
        let (uring, websocat, websockify) = optional(ctx, peers, upstream, rows.all)?;
        Ok(Servers {
            bare,
            sock,
            one_thread,
            compare,
            capture,
            relay,
            uring,
            websocat,
            websockify,
        })
    }

    /// Section 1's targets.
    fn tcp_targets(&self) -> Vec<LoadTarget> {
        let mut targets = vec![
            target("bare tokio echo", tcp(self.bare.port), &self.bare, None),
            target("socklab echo", tcp(self.sock.port), &self.sock, None),
        ];
        if let Some(up) = &self.compare {
            targets.push(target(COMPARE_ECHO, tcp(up.port), up, None));
        }
        if let Some(up) = &self.capture {
            targets.push(target(
                CAPTURE_ECHO,
                tcp(up.port),
                up,
                Some(GOAL_CONNECTIONS),
            ));
        }
        targets
    }

    /// Section 2's targets.
    fn bridge_targets(&self) -> Vec<LoadTarget> {
        let goal = Some(GOAL_CONNECTIONS);
        let mut targets = vec![
            target("direct TCP", tcp(self.bare.port), &self.bare, None),
            target(
                "socklab /ws",
                ws(self.sock.http, "/ws", "lines"),
                &self.sock,
                None,
            ),
        ];
        if let Some(up) = &self.compare {
            let url = ws(up.http, "/ws", "lines");
            targets.push(target(COMPARE_BRIDGE, url, up, None));
        }
        if let Some(one) = &self.one_thread {
            targets.push(target(ONE_THREAD, ws(one.http, "/ws", "lines"), one, goal));
        }
        targets.push(target(RELAY, tcp(self.relay.port), &self.relay, None));
        if let Some(up) = &self.capture {
            targets.push(target(
                CAPTURE_BRIDGE,
                ws(up.http, "/ws", "lines"),
                up,
                goal,
            ));
        }
        if let Some(up) = &self.uring {
            targets.push(target(URING_RELAY, tcp(up.port), up, goal));
        }
        if let Some(up) = &self.websocat {
            targets.push(target("websocat", ws(up.port, "/", "stream"), up, None));
        }
        if let Some(up) = &self.websockify {
            targets.push(target("websockify", ws(up.port, "/", "stream"), up, None));
        }
        targets
    }

    /// Every process, to check each is still alive before each run.
    fn all(&mut self) -> Vec<&mut Proc> {
        let mut all = vec![
            &mut self.bare.proc,
            &mut self.sock.proc,
            &mut self.relay.proc,
        ];
        for up in [
            &mut self.one_thread,
            &mut self.compare,
            &mut self.capture,
            &mut self.uring,
            &mut self.websocat,
            &mut self.websockify,
        ] {
            all.extend(up.as_mut().map(|u| &mut u.proc));
        }
        all
    }
}

/// A socklab-server with its TCP echo and HTTP on free ports, bridging to `upstream`, as
/// `tweak` adds; started and listening.
pub fn socklab(
    ctx: &Ctx,
    name: &str,
    upstream: u16,
    tweak: impl FnOnce(&mut Command),
) -> Result<Up> {
    socklab_bin(ctx, &ctx.bins.server, name, upstream, tweak)
}

/// [`socklab`] from the socklab-server binary at `server`.
fn socklab_bin(
    ctx: &Ctx,
    server: &Path,
    name: &str,
    upstream: u16,
    tweak: impl FnOnce(&mut Command),
) -> Result<Up> {
    let (port, http) = (free_port()?, free_port()?);
    let mut c = ctx.command(server);
    c.args(["--tcp", &local(port).to_string(), "--http"])
        .arg(local(http).to_string())
        .args(server_flags(server))
        .args(["--max-connections", "40000", "--upstream"])
        .arg(local(upstream).to_string())
        .env("RUST_LOG", "warn");
    tweak(&mut c);
    let mut proc = Proc::spawn(name, c, &ctx.log_dir)?;
    wait_port(&mut proc, http)?;
    wait_port(&mut proc, port)?;
    Ok(Up { proc, port, http })
}

/// `program` on a free port, started as `args(command, port)` says; listening.
pub fn helper(
    ctx: &Ctx,
    name: &str,
    program: &Path,
    args: impl FnOnce(&mut Command, u16),
) -> Result<Up> {
    let port = free_port()?;
    let mut c = ctx.command(program);
    args(&mut c, port);
    let mut proc = Proc::spawn(name, c, &ctx.log_dir)?;
    wait_port(&mut proc, port)?;
    Ok(Up {
        proc,
        port,
        http: 0,
    })
}

/// What may be missing here, in front of the echo on `upstream`: the io_uring relay (when it
/// built) and websockify (when installed; both with `all` rows only), websocat (when
/// installed).
fn optional(
    ctx: &Ctx,
    peers: &Peers,
    upstream: u16,
    all: bool,
) -> Result<(Option<Up>, Option<Up>, Option<Up>)> {
    let echo = local(upstream).to_string();
    let relay_args = |c: &mut Command, port: u16| {
        c.arg(local(port).to_string()).arg(&echo);
    };
    let uring = match &ctx.bins.uring_relay {
        Ok(bin) if all => Some(helper(ctx, "uring-relay", bin, relay_args)?),
        _ => None,
    };
    let websocat = match peers.websocat {
        Ok(()) => Some(helper(
            ctx,
            "websocat",
            Path::new("websocat"),
            |c, port| {
                c.args(["--binary", &format!("ws-l:{}", local(port))])
                    .arg(format!("tcp:{echo}"));
            },
        )?),
        Err(_) => None,
    };
    let websockify = match peers.websockify {
        Ok(()) if all => Some(helper(
            ctx,
            "websockify",
            Path::new("websockify"),
            relay_args,
        )?),
        _ => None,
    };
    Ok((uring, websocat, websockify))
}

fn target(name: &'static str, args: Vec<String>, up: &Up, only_at: Option<usize>) -> LoadTarget {
    LoadTarget {
        name,
        args,
        pid: up.proc.pid(),
        only_at,
    }
}

/// `socklab-loadgen load` flags for a TCP target.
pub fn tcp(port: u16) -> Vec<String> {
    vec!["--tcp".into(), local(port).to_string()]
}

/// `socklab-loadgen load` flags for a WebSocket target (binary messages: websockify takes
/// binary only).
pub fn ws(port: u16, path: &str, replies: &str) -> Vec<String> {
    vec![
        "--ws".to_owned(),
        format!("ws://{}{path}", local(port)),
        "--ws-replies".to_owned(),
        replies.to_owned(),
        "--binary".to_owned(),
    ]
}

/// Every target at every connection count, `rounds` times interleaved; medians per cell.
pub fn run_section(
    ctx: &Ctx,
    section: &str,
    targets: &[LoadTarget],
    procs: &mut [&mut Proc],
) -> Result<Value> {
    let mut cells = Vec::new();
    for &n in &ctx.plan.connections {
        let mut runs: Vec<Vec<Value>> = vec![Vec::new(); targets.len()];
        let rounds = ctx.plan.rounds_at(n);
        let here = |t: &LoadTarget| t.only_at.is_none_or(|only| only == n);
        for round in 0..rounds {
            for (i, t) in targets.iter().enumerate().filter(|(_, t)| here(t)) {
                for p in procs.iter_mut() {
                    p.check_alive()?;
                }
                println!(
                    "bench: {section}: {} x{n} (round {}/{})",
                    t.name,
                    round + 1,
                    rounds
                );
                runs[i].push(load_once(ctx, t, n)?);
            }
        }
        for (t, runs) in targets.iter().zip(runs) {
            if runs.is_empty() {
                continue;
            }
            cells.push(json!({
                "target": t.name,
                "connections": n,
                "msgs_per_s": median(&runs, "msgs_per_s"),
                "p50_us": median(&runs, "p50_us"),
                "p99_us": median(&runs, "p99_us"),
                "p999_us": median(&runs, "p999_us"),
                "cpu_us_per_msg": median(&runs, "cpu_us_per_msg"),
                "errors": runs.iter().map(|r| r["errors"].as_u64().unwrap_or(0)).sum::<u64>(),
                "first_error": runs.iter().find_map(|r| r["first_error"].as_str().map(str::to_owned)),
                "connect_ms": median(&runs, "connect_ms"),
                "rounds": runs,
            }));
        }
    }
    Ok(json!({ "cells": cells }))
}

/// One `socklab-loadgen load --json` run, with the target process's CPU time over it.
pub fn load_once(ctx: &Ctx, target: &LoadTarget, connections: usize) -> Result<Value> {
    let before = tree_ticks(target.pid);
    let mut client = ctx.command(&ctx.bins.loadgen);
    client
        .args(["load", "--json", "-c", &connections.to_string()])
        .args(["--size", &SIZE.to_string()])
        .args(["--warmup", &ctx.plan.warmup.to_string()])
        .args(["--duration", &ctx.plan.duration.to_string()])
        .args(&target.args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    let out = client
        .output()
        .context("could not run socklab-loadgen load")?;
    if !out.status.success() {
        bail!("socklab-loadgen load failed ({})", out.status);
    }
    // websockify's children finish and are reaped a moment after their clients close.
    std::thread::sleep(Duration::from_millis(200));
    let after = tree_ticks(target.pid);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_default();
    let mut v: Value = serde_json::from_str(line)
        .with_context(|| format!("socklab-loadgen load printed {text:?}"))?;
    let total = v["total"].as_u64().unwrap_or(0);
    let cpu_us = after.saturating_sub(before) as f64 * 1e6 / ctx.hz;
    v["cpu_us"] = json!(cpu_us);
    v["cpu_us_per_msg"] = if total > 0 {
        json!(cpu_us / total as f64)
    } else {
        Value::Null
    };
    Ok(v)
}
