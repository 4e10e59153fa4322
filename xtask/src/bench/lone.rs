//! A section run alone (`cargo xtask bench-page`, `bench-scale`, `bench-load`): its context, and its
//! report written beside the whole bench's.

use std::fs;
use std::time::Instant;

use anyhow::Result;
use serde_json::{Value, json};

use super::ctx::{Bins, Ctx, Plan, build_bins, log_dir, machine};
use crate::cmd::target_dir;

/// The release binaries built, and a context whose logs go under `target/bench/logs`.
pub fn lone_section_ctx(quick: bool) -> Result<Ctx> {
    lone_ctx(Plan::new(quick))
}

/// [`lone_section_ctx`] with its own `plan`.
pub fn lone_ctx(plan: Plan) -> Result<Ctx> {
    let log_dir = log_dir()?;
    build_bins()?;
    Ok(Ctx::new(plan, Bins::new(), log_dir))
}

/// Writes a section run alone as `target/bench/<name>.json` and `<name>.md` (starting with
/// `head`, drawn by `markdown`) and prints it.
pub fn write_lone_section(
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
