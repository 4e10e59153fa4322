//! `cargo xtask bench`: every figure of issue 8 measured in one run, each beside its baseline,
//! on loopback only, written to `target/bench/report.md` and `target/bench/report.json`.
//!
//! Every server under test is its own process (release build), so its CPU time is read from
//! `/proc/PID/stat` (utime + stime, its children included) over each load run; the load is
//! `socklab-loadgen load` (bench/loadgen) in another process. Runs are interleaved (baseline,
//! subject, baseline, subject, …) and repeated `rounds` times; the report gives the median of
//! the rounds, so one noisy moment on a shared machine does not decide a ratio.
//!
//! Sections, in the order they run (capacity first, while no port is in TIME_WAIT):
//! 3. capacity (`capacity.rs`): RSS and fds of a fresh socklab-server at 1k and 10k idle
//!    bridged sessions;
//! 1. TCP echo (`load.rs`): socklab vs a bare tokio echo;
//! 2. bridge (`load.rs`): socklab's `/ws` vs direct TCP, the floor, websocat and websockify
//!    (`peers.rs`), all to one bare echo;
//! 4. page (`page.rs`): wasm + js size, first paint and RTT in headless Chromium;
//! 5. scale (`scale.rs`): 1, 2 and 3 instances behind HAProxy;
//! 6. WebTransport datagrams vs direct UDP (`webtransport.rs`);
//! 7. metrics (`metrics.rs`): echo and bridge CPU per message with metrics recording on and off.
//!
//! Run alone only: `--capture` off vs on (`capture.rs`), `cargo xtask bench-capture`.
//! Sections 1 and 2 alone, issue 18's rows at 100 and 1,000 sessions (`load_lone.rs`):
//! `cargo xtask bench-load`.
//!
//! Underneath: `ctx.rs` (the plan, the binaries, the context every section runs in),
//! `procs.rs` (the processes and what `/proc` says of them), `stats.rs` (medians, ratios),
//! `lone.rs` (a section run alone); `report.rs` draws the whole report. This file only runs
//! the sections in order and writes the report.

use std::fs;
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::json;

use crate::cmd::target_dir;
use crate::tools::Toolbox;
use ctx::{Bins, Ctx, Plan, build_bins, build_uring_relay, log_dir, machine};
use load::Rows;
use peers::Peers;

mod browser;
mod capacity;
mod capture;
mod ctx;
mod load;
mod load_lone;
mod lone;
mod metrics;
mod page;
mod page_drive;
mod page_floor;
mod peers;
mod procs;
mod report;
mod scale;
mod stats;
mod trace;
mod webtransport;
pub use capture::capture_only;
pub use load_lone::load_only;
pub use metrics::metrics_only;
pub use page::page_only;
pub use scale::scale_only;

/// `cargo xtask bench [--quick]`.
pub fn bench(quick: bool) -> Result<()> {
    let plan = Plan::new(quick);
    let out_dir = target_dir().join("bench");
    let log_dir = log_dir()?;

    let mut toolbox = Toolbox::default();
    let peers = Peers::ensure(&mut toolbox, quick);
    build_bins()?;
    let mut bins = Bins::new();
    bins.uring_relay = build_uring_relay();
    if let Err(why) = &bins.uring_relay {
        println!("bench: io_uring relay not measured: {why}");
    }

    let started = Instant::now();
    let mut ctx = Ctx::new(plan, bins, log_dir);
    let capacity = capacity::capacity(&mut ctx).context("capacity section")?;
    let (tcp, bridge) =
        load::load_sections(&mut ctx, &peers, Rows::ALL).context("load sections")?;
    let page = page::section(&ctx).unwrap_or_else(|err| json!({ "error": format!("{err:#}") }));
    let scale = scale::section(&mut ctx, &mut toolbox)
        .unwrap_or_else(|err| json!({ "error": format!("{err:#}") }));
    let webtransport =
        webtransport::section(&ctx).unwrap_or_else(|err| json!({ "error": format!("{err:#}") }));
    let metrics =
        metrics::section(&mut ctx).unwrap_or_else(|err| json!({ "error": format!("{err:#}") }));
    let secs = started.elapsed().as_secs_f64();

    let report = json!({
        "quick": ctx.plan.quick,
        "seconds": secs,
        "machine": machine(),
        "method": ctx.plan.method(),
        "peers": peers.json(),
        "tcp_echo": tcp,
        "bridge": bridge,
        "capacity": capacity,
        "page": page,
        "scale": scale,
        "webtransport": webtransport,
        "metrics": metrics,
    });
    let markdown = report::markdown(&report);
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
