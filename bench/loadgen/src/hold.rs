//! `socklab-loadgen hold`: open the sessions, exchange one message on each, then keep them
//! idle (for `cargo xtask bench`'s memory per session).

use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;
use tokio::io::AsyncReadExt;

use crate::conn::{self, Conn};
use crate::target::{Target, TargetArgs};

/// `socklab-loadgen hold` flags.
#[derive(Debug, clap::Args)]
pub struct HoldArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// Seconds to keep the sessions open (standard input closing ends it sooner).
    #[arg(long, value_name = "SECS", default_value_t = 300.0)]
    pub secs: f64,
}

/// What opening the sessions gave, as printed with `--json`.
#[derive(Debug, Serialize)]
pub struct Held {
    pub target: String,
    pub sessions: usize,
    pub failed: usize,
    pub open_ms: f64,
    pub first_error: Option<String>,
}

/// Holds `--connections` sessions on each target in turn.
pub async fn run(args: &HoldArgs) -> Result<()> {
    for target in &args.target.targets()? {
        hold(target, args).await?;
    }
    Ok(())
}

async fn hold(target: &Target, args: &HoldArgs) -> Result<()> {
    let (line, msg) = args.target.message();
    let started = Instant::now();
    let opened = conn::open_all(target, args.target.connections, move |mut conn: Conn| {
        let (line, msg) = (line.clone(), msg.clone());
        async move {
            conn.exchange(&line, &msg).await?;
            Ok(conn)
        }
    })
    .await;
    let held = Held {
        target: target.name(),
        sessions: opened.conns.len(),
        failed: opened.failed,
        open_ms: started.elapsed().as_secs_f64() * 1e3,
        first_error: opened.first_error,
    };
    if args.target.json {
        println!("{}", serde_json::to_string(&held)?);
    } else {
        println!(
            "{}: {} sessions open ({} failed) in {:.0} ms; holding them idle",
            held.target, held.sessions, held.failed, held.open_ms
        );
    }
    let mut stdin = tokio::io::stdin();
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(
        Duration::from_secs_f64(args.secs.max(0.0)),
        stdin.read_to_end(&mut sink),
    )
    .await;
    drop(opened.conns);
    Ok(())
}
