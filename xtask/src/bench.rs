//! `cargo xtask bench`: every figure of issue 8 measured in one run, each beside its baseline,
//! on loopback only, written to `target/bench/report.md` and `target/bench/report.json`.
//!
//! Every server under test is its own process (release build), so its CPU time is read from
//! `/proc/PID/stat` (utime + stime, its children included) over each load run; the load is
//! `socklab-loadgen load` (bench/loadgen) in another process. Runs are interleaved (baseline, subject,
//! baseline, subject, …) and repeated `rounds` times; the report gives the median of the
//! rounds, so one noisy moment on a shared machine does not decide a ratio.
//!
//! Sections, in the order they run (capacity first, while no port is in TIME_WAIT):
//! 3. capacity: RSS and fds of a fresh socklab-server at 1k and 10k idle bridged sessions;
//! 1. TCP echo: socklab vs a bare tokio echo;
//! 2. bridge: socklab's `/ws` vs direct TCP, websocat and websockify, all to one bare echo;
//! 4. page: wasm + js size, and navigation to first contentful paint in headless Chromium.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::cmd::{self, command, probe, target_dir};
use crate::tools::{Lock, Toolbox};

mod page;
mod scale;
mod webtransport;
pub use page::page_only;
pub use scale::scale_only;

/// Pinned peers (issue 8: "install the peers in the bench script at pinned versions").
pub const WEBSOCAT_VERSION: &str = "1.14.1";
pub const WEBSOCKIFY_VERSION: &str = "0.13.0";
/// Bytes per message, `\n` included (the issue's 64-byte messages).
const SIZE: usize = 64;
/// Open files for every process of the bench: 10k bridged sessions are 30k sockets in one
/// socklab-server (browser side, upstream side, and the echo's end of the upstream).
const NOFILE: u64 = 65_536;

/// The goals are stated at 100 connections (sessions).
const GOAL_CONNECTIONS: usize = 100;

/// How much to measure.
struct Plan {
    quick: bool,
    connections: Vec<usize>,
    rounds: usize,
    /// Rounds for the 100-connection cells the goals are read from: more rounds, steadier
    /// medians on a shared machine.
    goal_rounds: usize,
    warmup: f64,
    duration: f64,
    capacity: Vec<usize>,
    page_runs: usize,
}

impl Plan {
    /// Rounds at `connections`.
    fn rounds_at(&self, connections: usize) -> usize {
        if connections == GOAL_CONNECTIONS {
            self.goal_rounds
        } else {
            self.rounds
        }
    }

    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                quick,
                connections: vec![1, 100],
                rounds: 1,
                goal_rounds: 1,
                warmup: 0.3,
                duration: 1.0,
                capacity: vec![1000],
                page_runs: 1,
            }
        } else {
            Plan {
                quick,
                connections: vec![1, 100, 1000],
                rounds: 3,
                goal_rounds: 5,
                warmup: 1.0,
                duration: 3.0,
                capacity: vec![1000, 10_000],
                page_runs: 3,
            }
        }
    }
}

/// `cargo xtask bench [--quick]`.
pub fn bench(quick: bool) -> Result<()> {
    let plan = Plan::new(quick);
    let out_dir = target_dir().join("bench");
    let log_dir = out_dir.join("logs");
    fs::create_dir_all(&log_dir).with_context(|| format!("cannot create {}", log_dir.display()))?;

    let mut toolbox = Toolbox::default();
    let peers = Peers::ensure(&mut toolbox, quick);
    build_bins()?;
    let mut bins = Bins::new();
    bins.uring_relay = build_uring_relay();
    if let Err(why) = &bins.uring_relay {
        println!("bench: io_uring relay not measured: {why}");
    }

    let started = Instant::now();
    let mut ctx = Ctx {
        plan,
        bins,
        log_dir,
        nofile: nofile_wrapper(),
        hz: clock_ticks(),
    };
    let capacity = capacity(&mut ctx).context("capacity section")?;
    let (tcp, bridge) = load_sections(&mut ctx, &peers).context("load sections")?;
    let page = page::section(&ctx).unwrap_or_else(|err| json!({ "error": format!("{err:#}") }));
    let scale = scale::section(&mut ctx, &mut toolbox)
        .unwrap_or_else(|err| json!({ "error": format!("{err:#}") }));
    let webtransport =
        webtransport::section(&ctx).unwrap_or_else(|err| json!({ "error": format!("{err:#}") }));
    let secs = started.elapsed().as_secs_f64();

    let report = json!({
        "quick": ctx.plan.quick,
        "seconds": secs,
        "machine": machine(),
        "method": {
            "message_bytes": SIZE,
            "pipeline_depth": 1,
            "rounds": ctx.plan.rounds,
            "goal_rounds": ctx.plan.goal_rounds,
            "warmup_s": ctx.plan.warmup,
            "measured_s": ctx.plan.duration,
            "figures": "median of the rounds; goal ratios are the median of per-round ratios",
        },
        "peers": peers.json(),
        "tcp_echo": tcp,
        "bridge": bridge,
        "capacity": capacity,
        "page": page,
        "scale": scale,
        "webtransport": webtransport,
    });
    let markdown = markdown(&report);
    let json_path = out_dir.join("report.json");
    let md_path = out_dir.join("report.md");
    fs::write(&json_path, serde_json::to_string_pretty(&report)?)?;
    fs::write(&md_path, &markdown)?;
    println!("{markdown}");
    println!(
        "bench: wrote {} and {} ({secs:.0} s measured; {})",
        md_path.display(),
        json_path.display(),
        toolbox.summary()
    );
    Ok(())
}

/// Flags that keep a bench server to what it measures: no UDP echo, no banner, and no
/// WebTransport listener (on a fixed port by default, so two bench servers would collide)
/// when this build has one.
fn server_flags(server: &Path) -> Vec<&'static str> {
    let mut flags = vec!["--no-udp", "--no-banner"];
    let help = probe(command(server).arg("--help")).unwrap_or_default();
    if help.contains("--no-webtransport") {
        flags.push("--no-webtransport");
    }
    flags
}

/// Builds what the bench runs (release): socklab-server and socklab-loadgen.
fn build_bins() -> Result<()> {
    cmd::run(
        cmd::cargo()
            .args([
                "build",
                "--release",
                "-p",
                "socklab-server",
                "-p",
                "socklab-loadgen",
            ])
            .arg("--bins")
            .current_dir(cmd::root()),
    )
}

/// What the bench runs: paths to the release binaries.
struct Bins {
    /// `socklab-loadgen` (bench/loadgen): the load generator and the bare echo and relay.
    loadgen: PathBuf,
    server: PathBuf,
    /// `bench/uring-relay`, or why it is not there.
    uring_relay: std::result::Result<PathBuf, String>,
}

impl Bins {
    fn new() -> Bins {
        let release = target_dir().join("release");
        Bins {
            loadgen: release.join("socklab-loadgen"),
            server: release.join("socklab-server"),
            uring_relay: Err("not built".to_owned()),
        }
    }
}

/// Builds `bench/uring-relay` (its own workspace: it needs `unsafe` and Linux) into
/// target/uring-relay; the reason when it cannot be.
fn build_uring_relay() -> std::result::Result<PathBuf, String> {
    let manifest = cmd::root().join("bench/uring-relay/Cargo.toml");
    let dir = target_dir().join("uring-relay");
    let mut build = cmd::cargo();
    build
        .args(["build", "--release", "--locked", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&dir);
    cmd::run(&mut build).map_err(|err| format!("{err:#}"))?;
    Ok(dir.join("release/socklab-uring-relay"))
}

/// A section run alone (`cargo xtask bench-page`, `bench-scale`): the release binaries built
/// and a context whose logs go under `target/bench/logs`.
fn lone_section_ctx(quick: bool) -> Result<Ctx> {
    let log_dir = target_dir().join("bench").join("logs");
    fs::create_dir_all(&log_dir).with_context(|| format!("cannot create {}", log_dir.display()))?;
    build_bins()?;
    Ok(Ctx {
        plan: Plan::new(quick),
        bins: Bins::new(),
        log_dir,
        nofile: nofile_wrapper(),
        hz: clock_ticks(),
    })
}

/// Writes a section run alone as `target/bench/<name>.json` and `<name>.md` (starting with
/// `head`, drawn by `markdown`) and prints it.
fn write_lone_section(
    name: &str,
    head: &str,
    quick: bool,
    started: Instant,
    section: Value,
    markdown: fn(&mut String, &Value),
) -> Result<()> {
    let out_dir = target_dir().join("bench");
    let report = json!({
        "quick": quick,
        "seconds": started.elapsed().as_secs_f64(),
        "machine": machine(),
        name: section,
    });
    let mut md = head.to_owned();
    markdown(&mut md, &report[name]);
    fs::write(
        out_dir.join(format!("{name}.json")),
        serde_json::to_string_pretty(&report)?,
    )?;
    let md_path = out_dir.join(format!("{name}.md"));
    fs::write(&md_path, &md)?;
    println!("{md}");
    println!(
        "bench-{name}: wrote {} ({:.0} s)",
        md_path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

struct Ctx {
    plan: Plan,
    bins: Bins,
    log_dir: PathBuf,
    /// `prlimit --nofile=N:N --`, when it works here (it needs root to raise the hard limit).
    nofile: Option<Vec<String>>,
    /// Clock ticks per second (`getconf CLK_TCK`), the unit of `/proc/PID/stat` times.
    hz: f64,
}

impl Ctx {
    /// A command for `program`, with the open-files limit raised when possible.
    fn command(&self, program: &Path) -> Command {
        match &self.nofile {
            Some(prefix) => {
                let mut c = command(&prefix[0]);
                c.args(&prefix[1..]).arg(program);
                c
            }
            None => command(program),
        }
    }
}

fn nofile_wrapper() -> Option<Vec<String>> {
    let limit = format!("--nofile={NOFILE}:{NOFILE}");
    probe(command("prlimit").args([limit.as_str(), "--", "true"]))?;
    Some(vec!["prlimit".into(), limit, "--".into()])
}

fn clock_ticks() -> f64 {
    probe(command("getconf").arg("CLK_TCK"))
        .and_then(|s| s.parse().ok())
        .unwrap_or(100.0)
}

fn machine() -> Value {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = probe(command("uname").arg("-r")).unwrap_or_default();
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    json!({ "cores": cores, "cpu": cpu, "kernel": kernel })
}

// ---------------------------------------------------------------------------------------------
// Peers

/// websocat and websockify: installed at pinned versions, or the reason they are not.
struct Peers {
    websocat: std::result::Result<(), String>,
    websockify: std::result::Result<(), String>,
}

impl Peers {
    /// Full runs install what is missing; `--quick` only uses what is already there.
    fn ensure(toolbox: &mut Toolbox, quick: bool) -> Peers {
        let websocat = if quick {
            present("websocat", WEBSOCAT_VERSION)
        } else {
            // No TLS (loopback ws:// only), so it needs no OpenSSL headers.
            toolbox
                .ensure_cargo_bin_with(
                    "websocat",
                    "websocat",
                    WEBSOCAT_VERSION,
                    Lock::Locked,
                    &[
                        "--no-default-features",
                        "--features",
                        "signal_handler,unix_stdio",
                    ],
                )
                .map_err(|e| format!("{e:#}"))
        };
        let websockify = if quick {
            present("websockify", WEBSOCKIFY_VERSION)
        } else {
            toolbox
                .ensure_pip("websockify", WEBSOCKIFY_VERSION)
                .map_err(|e| format!("{e:#}"))
        };
        for (name, r) in [("websocat", &websocat), ("websockify", &websockify)] {
            if let Err(why) = r {
                println!("bench: {name} is not available, its rows are skipped: {why}");
            }
        }
        Peers {
            websocat,
            websockify,
        }
    }

    fn json(&self) -> Value {
        let state = |r: &std::result::Result<(), String>, v: &str| match r {
            Ok(()) => json!({ "version": v }),
            Err(why) => json!({ "version": v, "missing": why }),
        };
        json!({
            "websocat": state(&self.websocat, WEBSOCAT_VERSION),
            "websockify": state(&self.websockify, WEBSOCKIFY_VERSION),
        })
    }
}

fn present(bin: &str, version: &str) -> std::result::Result<(), String> {
    let out = probe(command(bin).arg("--version"));
    match out {
        Some(_) if bin == "websockify" => Ok(()),
        Some(out) if out.contains(version) => Ok(()),
        Some(out) => Err(format!(
            "{bin} reports {out:?}, not {version}; run the full bench once to install it"
        )),
        None if bin == "websockify" && cmd::which(bin).is_some() => Ok(()),
        None => Err(format!(
            "{bin} is not installed; run the full bench once to install it"
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Processes

/// A process the bench started, in its own process group; killed (group and all) when dropped.
struct Proc {
    name: String,
    child: Child,
    /// Held open: the bare echo and `--hold` exit when it closes.
    stdin: Option<ChildStdin>,
}

impl Proc {
    fn spawn(name: &str, mut cmd: Command, log_dir: &Path) -> Result<Proc> {
        let log = fs::File::create(log_dir.join(format!("{name}.log")))?;
        cmd.stdin(Stdio::piped())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0);
        let line = cmd::display(&cmd);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("could not start `{line}`"))?;
        let stdin = child.stdin.take();
        Ok(Proc {
            name: name.to_owned(),
            child,
            stdin,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails if the process has already exited (it could not bind, say).
    fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited early ({status}); see target/bench/logs/{}.log",
                self.name,
                self.name
            );
        }
        Ok(())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let group = format!("-{}", self.child.id());
        let _ = command("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Waits until something accepts on `port`.
fn wait_port(proc: &mut Proc, port: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        proc.check_alive()?;
        if TcpStream::connect_timeout(&local(port), Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{} does not listen on port {port} after 15 s", proc.name);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// utime + stime of `pid` and all its descendants, plus what its reaped children used
/// (cutime + cstime): websockify forks one process per connection.
fn tree_ticks(pid: u32) -> u64 {
    let mut procs = Vec::new();
    if let Ok(dir) = fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(p) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some((ppid, ticks)) = stat(p) {
                procs.push((p, ppid, ticks));
            }
        }
    }
    let mut tree = vec![pid];
    let mut total = 0;
    let mut i = 0;
    while i < tree.len() {
        let p = tree[i];
        for &(child, ppid, ticks) in &procs {
            if child == p {
                total += ticks;
            }
            if ppid == p && !tree.contains(&child) {
                tree.push(child);
            }
        }
        i += 1;
    }
    total
}

/// (ppid, utime + stime + cutime + cstime) from `/proc/PID/stat`.
fn stat(pid: u32) -> Option<(u32, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; fields are counted after its closing parenthesis.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // rest starts at field 3 (state): ppid is field 4, utime..cstime are fields 14..17.
    let ppid = fields.get(1)?.parse().ok()?;
    let ticks = (11..15)
        .filter_map(|i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    Some((ppid, ticks))
}

fn rss_kib(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn fd_count(pid: u32) -> u64 {
    fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64)
}

// ---------------------------------------------------------------------------------------------
// Section 3: capacity

fn capacity(ctx: &mut Ctx) -> Result<Value> {
    let mut rows = Vec::new();
    // The bridge holds two sockets per session; without a raisable hard limit (no
    // CAP_SYS_RESOURCE, as in some containers) the largest size is what the limit allows.
    let hard = nofile_hard().unwrap_or(NOFILE);
    let budget = usize::try_from(hard.saturating_sub(200) / 2).unwrap_or(usize::MAX);
    for &asked in &ctx.plan.capacity.clone() {
        let n = asked.min(budget);
        println!("bench: capacity: {n} idle bridged sessions (asked {asked})");
        // A fresh bridge per size, whose upstream is a socklab echo in its own process, so each
        // process stays within its open-files limit; the report gives the bridge's RSS per
        // session and the bridge's plus the echo's.
        let (echo_tcp, echo_http) = (free_port()?, free_port()?);
        let mut echo = ctx.command(&ctx.bins.server);
        echo.args(["--tcp", &local(echo_tcp).to_string(), "--http"])
            .arg(local(echo_http).to_string())
            .args(server_flags(&ctx.bins.server))
            .args(["--max-connections", "40000"])
            .env("RUST_LOG", "warn");
        let mut echo = Proc::spawn(&format!("capacity-{n}-echo"), echo, &ctx.log_dir)?;
        wait_port(&mut echo, echo_tcp)?;
        let (tcp, http) = (free_port()?, free_port()?);
        let mut server = ctx.command(&ctx.bins.server);
        server
            .args(["--tcp", &local(tcp).to_string(), "--http"])
            .arg(local(http).to_string())
            .args(server_flags(&ctx.bins.server))
            .args(["--max-connections", "40000", "--upstream"])
            .arg(local(echo_tcp).to_string())
            .env("RUST_LOG", "warn");
        let mut server = Proc::spawn(&format!("capacity-{n}-server"), server, &ctx.log_dir)?;
        wait_port(&mut server, http)?;
        std::thread::sleep(Duration::from_millis(300));
        let pid = server.pid();
        let (rss0, fds0, echo_rss0) = (rss_kib(pid), fd_count(pid), rss_kib(echo.pid()));
        let limit = hard.to_string();
        let mut client = ctx.command(&ctx.bins.loadgen);
        client
            .args(["hold", "--json", "--binary", "--secs", "300"])
            .args(["-c", &n.to_string(), "--size", &SIZE.to_string()])
            .arg("--ws")
            .arg(format!("ws://{}/ws", local(http)));
        client.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = client.spawn().context("could not start the hold client")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let held: Value = serde_json::from_str(line.trim())
            .with_context(|| format!("the hold client said {line:?}"))?;
        // Let the last sessions settle (their first reply sent, buffers released).
        std::thread::sleep(Duration::from_millis(1000));
        let (rss1, fds1, echo_rss1) = (rss_kib(pid), fd_count(pid), rss_kib(echo.pid()));
        drop(child.stdin.take());
        let _ = child.wait();
        let sessions = held["sessions"].as_u64().unwrap_or(0);
        let per = if sessions > 0 {
            rss1.saturating_sub(rss0) as f64 / sessions as f64
        } else {
            0.0
        };
        let with_echo = if sessions > 0 {
            (rss1.saturating_sub(rss0) + echo_rss1.saturating_sub(echo_rss0)) as f64
                / sessions as f64
        } else {
            0.0
        };
        rows.push(json!({
            "sessions": n,
            "asked": asked,
            "kib_per_session_with_echo": with_echo,
            "opened": sessions,
            "failed": held["failed"],
            "first_error": held["first_error"],
            "open_ms": held["open_ms"],
            "rss_before_kib": rss0,
            "rss_kib": rss1,
            "kib_per_session": per,
            "fds_before": fds0,
            "fds": fds1,
            "fds_per_session": if sessions > 0 { fds1.saturating_sub(fds0) as f64 / sessions as f64 } else { 0.0 },
            "nofile_limit": limit,
        }));
        drop(server);
        drop(echo);
    }
    Ok(Value::Array(rows))
}

/// This process's hard open-files limit (what children can raise their soft limit to).
fn nofile_hard() -> Option<u64> {
    let limits = fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(4)?.parse().ok()
}

// ---------------------------------------------------------------------------------------------
// Sections 1 and 2: load

/// socklab's bridge with `--threads 1`.
const ONE_THREAD: &str = "socklab /ws --threads 1";

/// socklab's echo and bridge with `--capture` on (run as root only).
const CAPTURE_ECHO: &str = "socklab echo --capture";
const CAPTURE_BRIDGE: &str = "socklab /ws --capture";

/// The bridge section's floor target: `socklab-loadgen bare-relay`.
const RELAY: &str = "bare TCP relay (floor)";

/// The same relay on io_uring (`bench/uring-relay`), at the goals' cell only.
const URING_RELAY: &str = "io_uring relay (experiment)";

/// One thing to load: where, how its replies arrive, and which process does its work.
struct LoadTarget {
    name: &'static str,
    /// `--tcp ADDR` or `--ws URL` (+ `--ws-replies`).
    args: Vec<String>,
    pid: u32,
    /// Measured at this many connections only (a variant beside the goals' cell).
    only_at: Option<usize>,
}

fn load_sections(ctx: &mut Ctx, peers: &Peers) -> Result<(Value, Value)> {
    let bare_port = free_port()?;
    let mut bare = ctx.command(&ctx.bins.loadgen);
    bare.arg("bare-echo").arg(local(bare_port).to_string());
    let mut bare = Proc::spawn("bare-echo", bare, &ctx.log_dir)?;
    wait_port(&mut bare, bare_port)?;

    // socklab: its TCP echo for section 1; its bridge, pointed at the bare echo, for section 2.
    let (tcp, http) = (free_port()?, free_port()?);
    let mut sock = ctx.command(&ctx.bins.server);
    sock.args(["--tcp", &local(tcp).to_string(), "--http"])
        .arg(local(http).to_string())
        .args(server_flags(&ctx.bins.server))
        .args(["--max-connections", "40000"])
        .arg("--upstream")
        .arg(local(bare_port).to_string())
        .arg("--static-dir")
        .arg(cmd::root().join("dist"))
        .env("RUST_LOG", "warn");
    let mut sock = Proc::spawn("socklab-server", sock, &ctx.log_dir)?;
    wait_port(&mut sock, http)?;
    wait_port(&mut sock, tcp)?;

    // The same bridge on one thread (`--threads 1`), at the goals' cell only: websocat is
    // single-threaded, and the two cores are shared with the load generator and the echo.
    let http1 = free_port()?;
    let mut sock1 = ctx.command(&ctx.bins.server);
    sock1
        .args(["--tcp", "127.0.0.1:0", "--http"])
        .arg(local(http1).to_string())
        .args(server_flags(&ctx.bins.server))
        .args(["--threads", "1", "--max-connections", "40000"])
        .arg("--upstream")
        .arg(local(bare_port).to_string())
        .env("RUST_LOG", "warn");
    let mut sock1 = Proc::spawn("socklab-server-1-thread", sock1, &ctx.log_dir)?;
    wait_port(&mut sock1, http1)?;

    // The same echo and bridge with `--capture` (as root only: elsewhere it could not capture),
    // at the goals' cell: what reading and keeping socklab's own packets costs per message.
    let mut sock_cap = None;
    if cmd::probe(cmd::command("id").arg("-u")).is_some_and(|uid| uid == "0") {
        let (tcp_c, http_c) = (free_port()?, free_port()?);
        let mut c = ctx.command(&ctx.bins.server);
        c.args(["--tcp", &local(tcp_c).to_string(), "--http"])
            .arg(local(http_c).to_string())
            .args(server_flags(&ctx.bins.server))
            .args(["--capture", "--max-connections", "40000"])
            .arg("--upstream")
            .arg(local(bare_port).to_string())
            .env("RUST_LOG", "warn");
        let mut p = Proc::spawn("socklab-server-capture", c, &ctx.log_dir)?;
        wait_port(&mut p, http_c)?;
        wait_port(&mut p, tcp_c)?;
        sock_cap = Some((p, tcp_c, http_c));
    }

    // The floor: a bare TCP relay (no WebSocket) in front of the same echo. It makes the same
    // four send/recv calls per message as any bridge: what the kernel and tokio alone cost.
    let relay_port = free_port()?;
    let mut relay = ctx.command(&ctx.bins.loadgen);
    relay
        .arg("bare-relay")
        .arg(local(relay_port).to_string())
        .arg("--to")
        .arg(local(bare_port).to_string());
    let mut relay = Proc::spawn("bare-relay", relay, &ctx.log_dir)?;
    wait_port(&mut relay, relay_port)?;

    // The same relay on io_uring, when it built.
    let mut uring = None;
    if let Ok(bin) = &ctx.bins.uring_relay {
        let port = free_port()?;
        let mut c = ctx.command(bin);
        c.arg(local(port).to_string())
            .arg(local(bare_port).to_string());
        let mut p = Proc::spawn("uring-relay", c, &ctx.log_dir)?;
        wait_port(&mut p, port)?;
        uring = Some((p, port));
    }

    let mut websocat = None;
    if peers.websocat.is_ok() {
        let port = free_port()?;
        let mut c = ctx.command(Path::new("websocat"));
        c.args(["--binary", &format!("ws-l:{}", local(port))])
            .arg(format!("tcp:{}", local(bare_port)));
        let mut p = Proc::spawn("websocat", c, &ctx.log_dir)?;
        wait_port(&mut p, port)?;
        websocat = Some((p, port));
    }
    let mut websockify = None;
    if peers.websockify.is_ok() {
        let port = free_port()?;
        let mut c = ctx.command(Path::new("websockify"));
        c.arg(local(port).to_string())
            .arg(local(bare_port).to_string());
        let mut p = Proc::spawn("websockify", c, &ctx.log_dir)?;
        wait_port(&mut p, port)?;
        websockify = Some((p, port));
    }

    let tcp_targets = vec![
        LoadTarget {
            name: "bare tokio echo",
            args: vec!["--tcp".into(), local(bare_port).to_string()],
            pid: bare.pid(),
            only_at: None,
        },
        LoadTarget {
            name: "socklab echo",
            args: vec!["--tcp".into(), local(tcp).to_string()],
            pid: sock.pid(),
            only_at: None,
        },
    ];
    let mut tcp_targets = tcp_targets;
    if let Some((p, port, _)) = &sock_cap {
        tcp_targets.push(LoadTarget {
            name: CAPTURE_ECHO,
            args: vec!["--tcp".into(), local(*port).to_string()],
            pid: p.pid(),
            only_at: Some(GOAL_CONNECTIONS),
        });
    }
    let ws = |port: u16, path: &str, replies: &str| {
        vec![
            "--ws".to_owned(),
            format!("ws://{}{path}", local(port)),
            "--ws-replies".to_owned(),
            replies.to_owned(),
            "--binary".to_owned(),
        ]
    };
    let mut bridge_targets = vec![
        LoadTarget {
            name: "direct TCP",
            args: vec!["--tcp".into(), local(bare_port).to_string()],
            pid: bare.pid(),
            only_at: None,
        },
        LoadTarget {
            name: "socklab /ws",
            args: ws(http, "/ws", "lines"),
            pid: sock.pid(),
            only_at: None,
        },
    ];
    bridge_targets.push(LoadTarget {
        name: ONE_THREAD,
        args: ws(http1, "/ws", "lines"),
        pid: sock1.pid(),
        only_at: Some(GOAL_CONNECTIONS),
    });
    bridge_targets.push(LoadTarget {
        name: RELAY,
        args: vec!["--tcp".into(), local(relay_port).to_string()],
        pid: relay.pid(),
        only_at: None,
    });
    if let Some((p, _, http_c)) = &sock_cap {
        bridge_targets.push(LoadTarget {
            name: CAPTURE_BRIDGE,
            args: ws(*http_c, "/ws", "lines"),
            pid: p.pid(),
            only_at: Some(GOAL_CONNECTIONS),
        });
    }
    if let Some((p, port)) = &uring {
        bridge_targets.push(LoadTarget {
            name: URING_RELAY,
            args: vec!["--tcp".into(), local(*port).to_string()],
            pid: p.pid(),
            only_at: Some(GOAL_CONNECTIONS),
        });
    }
    if let Some((p, port)) = &websocat {
        bridge_targets.push(LoadTarget {
            name: "websocat",
            args: ws(*port, "/", "stream"),
            pid: p.pid(),
            only_at: None,
        });
    }
    if let Some((p, port)) = &websockify {
        bridge_targets.push(LoadTarget {
            name: "websockify",
            args: ws(*port, "/", "stream"),
            pid: p.pid(),
            only_at: None,
        });
    }

    let mut tcp_alive: Vec<&mut Proc> = vec![&mut bare, &mut sock];
    if let Some((p, _, _)) = sock_cap.as_mut() {
        tcp_alive.push(p);
    }
    let tcp = run_section(ctx, "tcp echo", &tcp_targets, &mut tcp_alive)?;
    let mut alive: Vec<&mut Proc> = vec![&mut bare, &mut sock, &mut sock1, &mut relay];
    if let Some((p, _, _)) = sock_cap.as_mut() {
        alive.push(p);
    }
    if let Some((p, _)) = uring.as_mut() {
        alive.push(p);
    }
    if let Some((p, _)) = websocat.as_mut() {
        alive.push(p);
    }
    if let Some((p, _)) = websockify.as_mut() {
        alive.push(p);
    }
    let mut bridge = run_section(ctx, "bridge", &bridge_targets, &mut alive)?;
    let mut skipped: Vec<Value> = [
        ("websocat", &peers.websocat),
        ("websockify", &peers.websockify),
    ]
    .iter()
    .filter_map(|(n, r)| {
        r.as_ref()
            .err()
            .map(|why| json!({ "target": n, "why": why }))
    })
    .collect();
    if let Err(why) = &ctx.bins.uring_relay {
        skipped.push(json!({ "target": URING_RELAY, "why": why }));
    }
    bridge["skipped"] = Value::Array(skipped);
    Ok((tcp, bridge))
}

/// Every target at every connection count, `rounds` times interleaved; medians per cell.
fn run_section(
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
fn load_once(ctx: &Ctx, target: &LoadTarget, connections: usize) -> Result<Value> {
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

fn median(runs: &[Value], key: &str) -> Value {
    let mut xs: Vec<f64> = runs.iter().filter_map(|r| r[key].as_f64()).collect();
    if xs.is_empty() {
        return Value::Null;
    }
    xs.sort_by(f64::total_cmp);
    let mid = xs.len() / 2;
    let m = if xs.len() % 2 == 1 {
        xs[mid]
    } else {
        (xs[mid - 1] + xs[mid]) / 2.0
    };
    json!(m)
}

// ---------------------------------------------------------------------------------------------
// The report

fn f(v: &Value, digits: usize) -> String {
    match v.as_f64() {
        Some(x) => format!("{x:.digits$}"),
        None => "–".to_owned(),
    }
}

/// `x ÷ base` to two places for a table, `–` when either is unknown or `base` is not positive.
fn ratio_text(x: Option<f64>, base: Option<f64>) -> String {
    match (x, base) {
        (Some(x), Some(b)) if b > 0.0 => format!("{:.2}", x / b),
        _ => "–".to_owned(),
    }
}

fn cell<'a>(section: &'a Value, target: &str, n: u64) -> Option<&'a Value> {
    section["cells"]
        .as_array()?
        .iter()
        .find(|c| c["target"].as_str() == Some(target) && c["connections"].as_u64() == Some(n))
}

/// `a ÷ b` for `key`: the median of the per-round ratios (each round runs the targets back to
/// back, so a drift in the machine's load moves both sides of a ratio alike), or the ratio of
/// the medians when the rounds do not pair up.
fn ratio(section: &Value, a: &str, b: &str, n: u64, key: &str) -> Option<f64> {
    let (ca, cb) = (cell(section, a, n)?, cell(section, b, n)?);
    let pairs = |c: &Value| -> Vec<Option<f64>> {
        c["rounds"]
            .as_array()
            .map(|runs| runs.iter().map(|r| r[key].as_f64()).collect())
            .unwrap_or_default()
    };
    let (ra, rb) = (pairs(ca), pairs(cb));
    if !ra.is_empty() && ra.len() == rb.len() {
        let per_round: Vec<Value> = ra
            .iter()
            .zip(&rb)
            .filter_map(|(x, y)| x.zip(*y).filter(|&(_, y)| y > 0.0).map(|(x, y)| x / y))
            .map(|r| json!({ "r": r }))
            .collect();
        if per_round.len() == ra.len() {
            return median(&per_round, "r").as_f64();
        }
    }
    let x = ca[key].as_f64()?;
    let y = cb[key].as_f64()?;
    (y > 0.0).then(|| x / y)
}

fn load_table(md: &mut String, section: &Value, baseline: &str) {
    md.push_str(
        "| target | conns | msgs/s | × baseline | p50 µs | p99 µs | p99.9 µs | CPU µs/msg | errors |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for c in section["cells"].as_array().into_iter().flatten() {
        let name = c["target"].as_str().unwrap_or("");
        let n = c["connections"].as_u64().unwrap_or(0);
        let r = ratio(section, name, baseline, n, "msgs_per_s")
            .map_or("–".to_owned(), |r| format!("{r:.2}"));
        md.push_str(&format!(
            "| {name} | {n} | {} | {r} | {} | {} | {} | {} | {} |\n",
            f(&c["msgs_per_s"], 0),
            f(&c["p50_us"], 0),
            f(&c["p99_us"], 0),
            f(&c["p999_us"], 0),
            f(&c["cpu_us_per_msg"], 1),
            c["errors"].as_u64().unwrap_or(0),
        ));
    }
    for c in section["cells"].as_array().into_iter().flatten() {
        if let Some(err) = c["first_error"].as_str() {
            md.push_str(&format!(
                "\n{} ×{}: first error: {err}\n",
                c["target"].as_str().unwrap_or(""),
                c["connections"]
            ));
        }
    }
}

/// (goal, measured, met?) lines.
fn goals(r: &Value) -> Vec<(String, String, Option<bool>)> {
    let mut g = Vec::new();
    let mut add =
        |goal: &str, value: Option<f64>, fmt: &dyn Fn(f64) -> String, ok: &dyn Fn(f64) -> bool| {
            g.push((
                goal.to_owned(),
                value.map_or("not measured".to_owned(), fmt),
                value.map(ok),
            ));
        };
    let x = |v: f64| format!("{v:.2}×");
    let tcp = &r["tcp_echo"];
    let br = &r["bridge"];
    add(
        "TCP echo ≥ 0.8× bare tokio echo (100 conns, msgs/s)",
        ratio(tcp, "socklab echo", "bare tokio echo", 100, "msgs_per_s"),
        &x,
        &|v| v >= 0.8,
    );
    add(
        "bridge ≥ 0.5× direct TCP (100 sessions, msgs/s; issue 4)",
        ratio(br, "socklab /ws", "direct TCP", 100, "msgs_per_s"),
        &x,
        &|v| v >= 0.5,
    );
    add(
        "bridge ≥ 1.2× websocat (100 sessions, msgs/s)",
        ratio(br, "socklab /ws", "websocat", 100, "msgs_per_s"),
        &x,
        &|v| v >= 1.2,
    );
    add(
        "bridge ≥ 4× websockify (100 sessions, msgs/s)",
        ratio(br, "socklab /ws", "websockify", 100, "msgs_per_s"),
        &x,
        &|v| v >= 4.0,
    );
    // Against the better peer (the lower p99): the larger of the two paired ratios.
    let better_p99 = ["websocat", "websockify"]
        .iter()
        .filter_map(|p| ratio(br, "socklab /ws", p, 100, "p99_us"))
        .reduce(f64::max);
    add(
        "bridge p99 RTT ≤ 1.25× the better peer's (100 sessions)",
        better_p99,
        &x,
        &|v| v <= 1.25,
    );
    add(
        "bridge CPU per message ≤ 0.8× websocat's (100 sessions)",
        ratio(br, "socklab /ws", "websocat", 100, "cpu_us_per_msg"),
        &x,
        &|v| v <= 0.8,
    );
    let per_session = r["capacity"].as_array().and_then(|rows| {
        rows.iter()
            .filter_map(|c| c["kib_per_session"].as_f64())
            .reduce(f64::max)
    });
    add(
        "≤ 40 KiB RSS per idle bridged session (bridge process, worst size measured)",
        per_session,
        &|v| format!("{v:.1} KiB"),
        &|v| v <= 40.0,
    );
    let [(rtt_goal, rtt), (ms_goal, ms)] = page::goals(&r["page"]);
    add(
        "page RTT p50 ≤ 1.5× a plain JS WebSocket's, same tab",
        rtt,
        &x,
        &|v| v <= rtt_goal,
    );
    add(
        "page main thread ≤ 5 ms per echoed message",
        ms,
        &|v| format!("{v:.2} ms"),
        &|v| v <= ms_goal,
    );
    let gz = r["page"]["gzip_bytes"].as_f64();
    add(
        "page ≤ 200 KB gzip (wasm + js)",
        gz,
        &|v| format!("{:.1} KB", v / 1000.0),
        &|v| v <= 200_000.0,
    );
    g
}

/// What the bare relay, which does no WebSocket work at all, reaches on the bridge goals: a
/// goal the floor itself misses is out of reach for any bridge that forwards over TCP here.
fn floor(md: &mut String, br: &Value) {
    let rows = [
        (
            "msgs/s vs direct TCP (goal ≥ 0.5×)",
            "direct TCP",
            "msgs_per_s",
            0.5,
        ),
        (
            "msgs/s vs websocat (goal ≥ 1.2×)",
            "websocat",
            "msgs_per_s",
            1.2,
        ),
        // A negative goal: lower is better.
        (
            "CPU per message vs websocat (goal ≤ 0.8×)",
            "websocat",
            "cpu_us_per_msg",
            -0.8,
        ),
    ];
    let meets = |v: f64, goal: f64| if goal > 0.0 { v >= goal } else { v <= -goal };
    let cell_text = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| format!("{v:.2}×"));
    let mut lines = String::new();
    for (what, peer, key, goal) in rows {
        let ours = ratio(br, "socklab /ws", peer, 100, key);
        let Some(epoll) = ratio(br, RELAY, peer, 100, key) else {
            continue;
        };
        let uring = ratio(br, URING_RELAY, peer, 100, key);
        let one = ratio(br, ONE_THREAD, peer, 100, key);
        let verdict = match (meets(epoll, goal), uring.map(|u| meets(u, goal))) {
            (true, _) => "reachable",
            (false, Some(true)) => "**beyond the epoll floor**; reached on io_uring",
            (false, Some(false)) => "**beyond both floors**",
            (false, None) => "**beyond the epoll floor**",
        };
        lines.push_str(&format!(
            "| {what} | {} | {} | {epoll:.2}× | {} | {verdict} |\n",
            cell_text(ours),
            cell_text(one),
            cell_text(uring),
        ));
    }
    if lines.is_empty() {
        return;
    }
    md.push_str(
        "\n### The floor\n\n\
         Two relays forward bytes between the load generator and the same echo with no \
         WebSocket work at all (and a plain TCP load generator, cheaper than a WebSocket \
         client). `bare TCP relay (floor)` (`socklab-loadgen bare-relay`) runs on \
         tokio, that is epoll: the same `epoll_wait` plus one `recv` and one `send` syscall per \
         hop as socklab's bridge and websocat. A goal it misses is out of reach for a bridge \
         built that way on this machine. `io_uring relay (experiment)` (`bench/uring-relay`) \
         is the same relay on io_uring, one thread queueing every `recv` and `send` and \
         submitting them together: how far a bridge whose I/O layer were rewritten for \
         io_uring could go. 100 sessions:\n\n\
         | figure | socklab /ws | socklab /ws --threads 1 | epoll relay | io_uring relay | goal |\n\
         |---|---:|---:|---:|---:|---|\n",
    );
    md.push_str(&lines);
    let over = ratio(br, "socklab /ws", RELAY, 100, "cpu_us_per_msg");
    let over_one = ratio(br, ONE_THREAD, RELAY, 100, "cpu_us_per_msg");
    if let Some(over) = over {
        let one = over_one.map_or_else(String::new, |v| format!(" ({v:.2}× with `--threads 1`)"));
        md.push_str(&format!(
            "\nsocklab's bridge costs **{over:.2}×** the epoll relay's CPU per message{one}: that \
             is what its WebSocket work (framing, masking, UTF-8 checks, lines) and its \
             scheduling add.\n"
        ));
    }
}

fn markdown(r: &Value) -> String {
    let mut md = String::new();
    let m = &r["method"];
    md.push_str(&format!(
        "# socklab benchmark report\n\n\
         Machine: {} cores, {}, Linux {}. Loopback only. Whole measured run: {:.0} s{}.\n\n\
         Method: closed loop, pipeline depth 1 (each connection sends one {}-byte message, \
         `\\n` included, and waits for the whole reply); {} s warm-up, then {} s measured; \
         {} round(s) ({} at 100 connections, where the goals are read), interleaved; figures \
         are the {}. CPU µs/msg is the serving process's own \
         utime + stime (children included) over the whole run divided by every reply in it. \
         Every server is a separate release-build process; the load generator is \
         `socklab-loadgen load` in another.\n\n",
        r["machine"]["cores"],
        r["machine"]["cpu"].as_str().unwrap_or("?"),
        r["machine"]["kernel"].as_str().unwrap_or("?"),
        r["seconds"].as_f64().unwrap_or(0.0),
        if r["quick"].as_bool() == Some(true) {
            " (--quick: a smoke run, not for conclusions)"
        } else {
            ""
        },
        m["message_bytes"],
        m["warmup_s"],
        m["measured_s"],
        m["rounds"],
        m["goal_rounds"],
        m["figures"].as_str().unwrap_or(""),
    ));

    md.push_str(
        "The optimisations made so far and their measured effect are in docs/benchmarks.md.\n\n",
    );
    md.push_str("## Goals\n\n| goal | measured | verdict |\n|---|---:|---|\n");
    for (goal, value, ok) in goals(r) {
        let verdict = match ok {
            Some(true) => "met",
            Some(false) => "**missed**",
            None => "not measured",
        };
        md.push_str(&format!("| {goal} | {value} | {verdict} |\n"));
    }

    floor(&mut md, &r["bridge"]);

    md.push_str(
        "\n## 1. TCP echo: socklab vs a bare tokio echo\n\n\
         The bare echo (`socklab-loadgen bare-echo`) reads and writes back, no \
         framing, no stamp; socklab stamps every line.\n\n",
    );
    load_table(&mut md, &r["tcp_echo"], "bare tokio echo");

    md.push_str(
        "\n## 2. Bridge: socklab /ws vs direct TCP, websocat and websockify\n\n\
         Every bridge forwards to the same bare tokio echo; binary WebSocket messages \
         (websockify takes binary only). `direct TCP` is the load generator talking TCP to \
         that echo; its CPU is the echo's. `bare TCP relay (floor)` is a byte relay in front \
         of that echo with no WebSocket at all, loaded over plain TCP, and `io_uring relay \
         (experiment)` the same on io_uring, at 100 sessions only (see \"The floor\").\n\n",
    );
    load_table(&mut md, &r["bridge"], "direct TCP");
    for s in r["bridge"]["skipped"].as_array().into_iter().flatten() {
        md.push_str(&format!(
            "\n{} not measured: {}\n",
            s["target"].as_str().unwrap_or(""),
            s["why"].as_str().unwrap_or("")
        ));
    }
    let peers = &r["peers"];
    md.push_str(&format!(
        "\nPeers: websocat {} (`websocat --binary ws-l:ADDR tcp:ECHO`), websockify {} \
         (`websockify ADDR ECHO`).\n",
        peers["websocat"]["version"].as_str().unwrap_or("?"),
        peers["websockify"]["version"].as_str().unwrap_or("?"),
    ));

    md.push_str(
        "\n## 3. Capacity: idle bridged sessions\n\n\
         A fresh socklab-server bridge per size, its upstream a socklab echo in another process; \
         each session opens, exchanges one message, then stays idle. KiB/session = (bridge RSS \
         with the sessions − before) / sessions; \"+ echo\" adds the echo process's growth (both \
         halves of a bridged session). fds are the bridge's.\n\n\
         | sessions | asked | opened | time to open | bridge RSS before | after | KiB/session | KiB/session + echo | fds | fds/session | NOFILE hard |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for c in r["capacity"].as_array().into_iter().flatten() {
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

    page::markdown(&mut md, &r["page"]);
    scale::markdown(&mut md, &r["scale"]);
    webtransport::markdown(&mut md, &r["webtransport"]);
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(cells: &[(&str, &[f64])]) -> Value {
        let cells: Vec<Value> = cells
            .iter()
            .map(|(target, rounds)| {
                let runs: Vec<Value> = rounds.iter().map(|v| json!({ "msgs_per_s": v })).collect();
                json!({
                    "target": target,
                    "connections": 100,
                    "msgs_per_s": median(&runs, "msgs_per_s"),
                    "rounds": runs,
                })
            })
            .collect();
        json!({ "cells": cells })
    }

    #[test]
    fn goal_ratios_pair_up_rounds() {
        // Per round: 2, 0.5, 2 → 2; the medians alone (20 vs 40) would say 0.5.
        let s = section(&[("a", &[10.0, 20.0, 100.0]), ("b", &[5.0, 40.0, 50.0])]);
        assert_eq!(ratio(&s, "a", "b", 100, "msgs_per_s"), Some(2.0));
    }

    #[test]
    fn unpaired_rounds_fall_back_to_the_medians() {
        let s = section(&[("a", &[10.0, 20.0, 100.0]), ("b", &[40.0])]);
        assert_eq!(ratio(&s, "a", "b", 100, "msgs_per_s"), Some(0.5));
        assert_eq!(ratio(&s, "a", "missing", 100, "msgs_per_s"), None);
    }
}
