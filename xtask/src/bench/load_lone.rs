//! `cargo xtask bench-load [--quick] [--compare PATH]`: sections 1 and 2 alone, with only the
//! rows issue 18's goals are read from (socklab's echo beside the bare echo; its bridge beside
//! direct TCP, the floor and websocat), at 100 and 1,000 sessions, in the full bench's
//! interleaved rounds. Written to `target/bench/load.md` and `load.json`, each goal with its
//! verdict: the goals checked in minutes, not the whole bench's quarter of an hour.

use std::path::Path;
use std::time::Instant;

use anyhow::{Result, bail};
use serde_json::json;

use super::ctx::Plan;
use super::load::{Rows, load_sections};
use super::lone::{lone_ctx, write_lone_section};
use super::peers::Peers;
use super::report::load_only_markdown;
use crate::tools::Toolbox;

/// `cargo xtask bench-load`: `compare`, another socklab-server binary (say, `main`'s), is
/// measured beside this build in the same rounds.
pub fn load_only(quick: bool, compare: Option<&Path>) -> Result<()> {
    if let Some(bin) = compare.filter(|bin| !bin.is_file()) {
        bail!("--compare {}: no such file", bin.display());
    }
    let mut toolbox = Toolbox::default();
    let peers = Peers::ensure_websocat(&mut toolbox, quick);
    let mut ctx = lone_ctx(Plan::load(quick))?;
    let started = Instant::now();
    let rows = Rows {
        all: false,
        compare,
    };
    let (tcp, bridge) = load_sections(&mut ctx, &peers, rows)?;
    let section = json!({
        "method": ctx.plan.method(),
        "peers": peers.json(),
        "compare": compare.map(|bin| bin.display().to_string()),
        "tcp_echo": tcp,
        "bridge": bridge,
    });
    write_lone_section(
        "load",
        "# socklab: the load sections alone (issue 18's goals)\n\n",
        quick,
        started,
        section,
        load_only_markdown,
    )
}
