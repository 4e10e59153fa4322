//! What every section of the bench shares: the plan (how much to measure), the release
//! binaries, and the context a section runs in (log folder, open-files limit, clock ticks).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::cmd::{self, command, probe, target_dir};

/// Bytes per message, `\n` included (the issue's 64-byte messages).
pub const SIZE: usize = 64;
/// Open files for every process of the bench: 10k bridged sessions are 30k sockets in one
/// socklab-server (browser side, upstream side, and the echo's end of the upstream).
pub const NOFILE: u64 = 65_536;

/// The goals are stated at 100 connections (sessions).
pub const GOAL_CONNECTIONS: usize = 100;

/// Messages typed into the page before the measured ones (`bench-page --long-log`: more).
pub const PAGE_WARM_UP: usize = 3;

/// How much to measure.
pub struct Plan {
    /// `--quick`: a smoke run.
    pub quick: bool,
    /// Connection counts of the load sections.
    pub connections: Vec<usize>,
    pub rounds: usize,
    /// Rounds for the 100-connection cells the goals are read from: more rounds, steadier
    /// medians on a shared machine.
    pub goal_rounds: usize,
    /// Seconds of load before and while measuring.
    pub warmup: f64,
    pub duration: f64,
    /// Idle-session counts of the capacity section.
    pub capacity: Vec<usize>,
    /// First-paint runs of the page section.
    pub page_runs: usize,
    /// Messages typed into the page (and the floor page) before the measured ones.
    pub page_warm_up: usize,
}

impl Plan {
    /// Rounds at `connections`.
    pub fn rounds_at(&self, connections: usize) -> usize {
        if connections == GOAL_CONNECTIONS {
            self.goal_rounds
        } else {
            self.rounds
        }
    }

    /// How the load sections measure, for the report.
    pub fn method(&self) -> Value {
        json!({
            "message_bytes": SIZE,
            "pipeline_depth": 1,
            "rounds": self.rounds,
            "goal_rounds": self.goal_rounds,
            "warmup_s": self.warmup,
            "measured_s": self.duration,
            "figures": "median of the rounds; goal ratios are the median of per-round ratios",
        })
    }

    /// `cargo xtask bench-load`'s: the load sections' plan at the goals' two sizes, 100 and
    /// 1,000 sessions (the same rounds as the full bench; `--quick`: one short round each).
    pub fn load(quick: bool) -> Plan {
        Plan {
            connections: vec![GOAL_CONNECTIONS, 1000],
            ..Plan::new(quick)
        }
    }

    /// The full plan, or `--quick`'s.
    pub fn new(quick: bool) -> Plan {
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
                page_warm_up: PAGE_WARM_UP,
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
                page_warm_up: PAGE_WARM_UP,
            }
        }
    }
}

/// Flags that keep a bench server to what it measures: no UDP echo, no banner, and no
/// WebTransport listener (on a fixed port by default, so two bench servers would collide)
/// when this build has one.
pub fn server_flags(server: &Path) -> Vec<&'static str> {
    let mut flags = vec!["--no-udp", "--no-banner"];
    let help = probe(command(server).arg("--help")).unwrap_or_default();
    if help.contains("--no-webtransport") {
        flags.push("--no-webtransport");
    }
    flags
}

/// `target/bench/logs`, created if need be: each process's output goes there.
pub fn log_dir() -> Result<PathBuf> {
    let dir = target_dir().join("bench").join("logs");
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// Builds what the bench runs (release): socklab-server and socklab-loadgen.
pub fn build_bins() -> Result<()> {
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
pub struct Bins {
    /// `socklab-loadgen` (bench/loadgen): the load generator and the bare echo and relay.
    pub loadgen: PathBuf,
    pub server: PathBuf,
    /// `bench/uring-relay`, or why it is not there.
    pub uring_relay: std::result::Result<PathBuf, String>,
}

impl Bins {
    /// The release binaries' paths (`uring_relay`: not built yet).
    pub fn new() -> Bins {
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
pub fn build_uring_relay() -> std::result::Result<PathBuf, String> {
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

/// What a section runs with.
pub struct Ctx {
    pub plan: Plan,
    pub bins: Bins,
    /// Each process's output goes to `<name>.log` here.
    pub log_dir: PathBuf,
    /// `prlimit --nofile=N:N --`, when it works here (it needs root to raise the hard limit).
    nofile: Option<Vec<String>>,
    /// Clock ticks per second (`getconf CLK_TCK`), the unit of `/proc/PID/stat` times.
    pub hz: f64,
}

impl Ctx {
    /// The context of a run with `plan` and `bins`, its logs in `log_dir`.
    pub fn new(plan: Plan, bins: Bins, log_dir: PathBuf) -> Ctx {
        Ctx {
            plan,
            bins,
            log_dir,
            nofile: nofile_wrapper(),
            hz: clock_ticks(),
        }
    }

    /// A command for `program`, with the open-files limit raised when possible.
    pub fn command(&self, program: &Path) -> Command {
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

/// The machine the report was measured on.
pub fn machine() -> Value {
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
