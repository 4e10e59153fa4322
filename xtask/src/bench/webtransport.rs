//! Section 6 of `cargo xtask bench`: datagram round trips through the WebTransport bridge
//! beside direct UDP to the same echo, one datagram in flight, in the same run.
//!
//! The measuring code is the ignored test `datagram_round_trip_benchmark` in
//! `tests/tests/webtransport.rs` (it needs wtransport's client, which xtask does not link);
//! it prints one `WT_BENCH {json}` line, read here.

use std::process::Stdio;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::ctx::Ctx;
use super::stats::{f, ratio_text};
use crate::cmd;

/// Runs the WebTransport benchmark (release build) and returns its figures.
pub fn section(ctx: &Ctx) -> Result<Value> {
    let n = if ctx.plan.quick { 1000 } else { 5000 };
    let mut test = cmd::cargo();
    test.args([
        "test",
        "--release",
        "-p",
        "socklab-tests",
        "--test",
        "webtransport",
        "--",
        "--ignored",
        "--nocapture",
        "--exact",
        "datagram_round_trip_benchmark",
    ])
    .env("SOCKLAB_WT_BENCH_N", n.to_string())
    .current_dir(cmd::root())
    .stdin(Stdio::null())
    .stderr(Stdio::inherit());
    println!("$ {}", cmd::display(&test));
    let out = test
        .output()
        .context("cannot run the WebTransport benchmark")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "the WebTransport benchmark failed ({}):\n{stdout}",
            out.status
        );
    }
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("WT_BENCH "))
        .context("the WebTransport benchmark printed no WT_BENCH line")?;
    let figures: Value = serde_json::from_str(line).context("WT_BENCH is not JSON")?;
    Ok(json!({ "round_trips_each": n, "figures": figures }))
}

/// The section's Markdown.
pub fn markdown(md: &mut String, s: &Value) {
    md.push_str("\n## 6. WebTransport datagrams vs direct UDP\n\n");
    if let Some(err) = s["error"].as_str() {
        md.push_str(&format!("Not measured: {err}\n"));
        return;
    }
    md.push_str(&format!(
        "One datagram in flight, {} round trips on each path, the same socklab server (release \
         build, in the measuring process): through the WebTransport bridge (QUIC datagram → \
         the session's own UDP socket → UDP echo and back) and straight to the UDP echo.\n\n\
         | path | round trips/s | × direct UDP | p50 µs | p99 µs | lost |\n\
         |---|---:|---:|---:|---:|---:|\n",
        s["round_trips_each"]
    ));
    let paths = s["figures"]["paths"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let direct = paths
        .iter()
        .find(|p| p["path"] == "udp")
        .and_then(|p| p["per_sec"].as_f64());
    for p in &paths {
        let ratio = ratio_text(p["per_sec"].as_f64(), direct);
        md.push_str(&format!(
            "| {} | {} | {ratio} | {} | {} | {} |\n",
            p["path"].as_str().unwrap_or("?"),
            f(&p["per_sec"], 0),
            f(&p["p50_us"], 0),
            f(&p["p99_us"], 0),
            p["lost"]
        ));
    }
}
