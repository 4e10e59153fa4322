//! `socklab-loadgen load`: closed-loop load against TCP echoes and WebSocket bridges.
//!
//! Each connection sends one message, waits for its whole reply, and repeats (pipeline depth
//! 1), so a reply's round-trip time is never hidden behind a queue of earlier messages. The
//! first `--warmup` seconds are not measured; throughput and RTT percentiles come from the
//! `--duration` seconds after them. Every connection stops after `--messages` messages or at
//! the end of the window, whichever comes first, and a reply that takes longer than
//! `--reply-timeout` ends that connection with an error: the run always ends by itself.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use serde::Serialize;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use crate::conn::{self, Conn};
use crate::target::{Target, TargetArgs};

/// `socklab-loadgen load` flags.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// Most messages per connection (the run also ends after --warmup + --duration).
    #[arg(short = 'n', long, value_name = "M", default_value_t = 1_000_000)]
    pub messages: u64,

    /// Seconds of load before measuring starts.
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    pub warmup: f64,

    /// Seconds measured.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub duration: f64,

    /// Seconds any one reply may take; longer ends that connection with an error.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub reply_timeout: f64,
}

/// One target's figures, as printed with `--json`.
#[derive(Debug, Serialize)]
pub struct Outcome {
    pub target: String,
    pub connections: usize,
    pub connected: usize,
    pub connect_ms: f64,
    pub messages: u64,
    /// Every reply, warm-up included (for CPU time per message).
    pub total: u64,
    pub seconds: f64,
    pub msgs_per_s: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    pub errors: u64,
    pub first_error: Option<String>,
}

/// Loads each target in turn; prints a JSON line per target, or one table at the end.
pub async fn run(args: &LoadArgs) -> Result<()> {
    let mut outcomes = Vec::new();
    for target in &args.target.targets()? {
        let outcome = load(target, args).await?;
        if args.target.json {
            println!("{}", serde_json::to_string(&outcome)?);
        }
        outcomes.push(outcome);
    }
    if !args.target.json {
        print_table(args, &outcomes);
    }
    Ok(())
}

fn print_table(args: &LoadArgs, outcomes: &[Outcome]) {
    println!(
        "{} connections, closed loop (1 message in flight each), {}-byte messages, {}s warm-up, \
         {}s measured",
        args.target.connections, args.target.size, args.warmup, args.duration
    );
    println!(
        "{:<36} {:>9} {:>11} {:>9} {:>9} {:>9} {:>7}",
        "target", "connected", "msgs/s", "p50 µs", "p99 µs", "p99.9 µs", "errors"
    );
    for o in outcomes {
        println!(
            "{:<36} {:>9} {:>11.0} {:>9.1} {:>9.1} {:>9.1} {:>7}",
            o.target, o.connected, o.msgs_per_s, o.p50_us, o.p99_us, o.p999_us, o.errors
        );
        if let Some(err) = &o.first_error {
            println!("    first error: {err}");
        }
    }
    if let [first, .., last] = outcomes
        && first.msgs_per_s > 0.0
    {
        println!(
            "{} / {}: {:.2}x the throughput",
            last.target,
            first.target,
            last.msgs_per_s / first.msgs_per_s
        );
    }
}

/// When the run measures, and how long a reply may take.
#[derive(Clone, Copy)]
struct Window {
    measure_from: Instant,
    end: Instant,
    reply_timeout: Duration,
    /// Most messages per connection.
    limit: u64,
}

/// What one connection's loop measured.
#[derive(Default)]
struct Measured {
    /// Replies received, warm-up included.
    total: u64,
    /// RTTs of replies inside the window, in nanoseconds.
    rtts: Vec<u32>,
    /// When the last measured reply came.
    last: Option<Instant>,
    error: Option<String>,
}

/// Opens the connections, runs them all for the window, and sums up.
async fn load(target: &Target, args: &LoadArgs) -> Result<Outcome> {
    let (line, msg) = args.target.message();
    let started = Instant::now();
    let opened = conn::open_all(target, args.target.connections, |c: Conn| async { Ok(c) }).await;
    let connect_ms = started.elapsed().as_secs_f64() * 1e3;
    let connected = opened.conns.len();
    let measure_from = Instant::now() + Duration::from_secs_f64(args.warmup.max(0.0));
    let window = Window {
        measure_from,
        end: measure_from + Duration::from_secs_f64(args.duration.max(0.0)),
        reply_timeout: Duration::from_secs_f64(args.reply_timeout.max(0.001)),
        limit: args.messages,
    };
    let mut set = JoinSet::new();
    for conn in opened.conns {
        set.spawn(drive(conn, line.clone(), msg.clone(), window));
    }
    let mut all = Measured::default();
    let mut errors = opened.failed as u64;
    let mut first_error = opened.first_error;
    let mut keep = Vec::with_capacity(connected);
    while let Some(joined) = set.join_next().await {
        let (m, conn) = joined.context("a load task panicked")?;
        all.rtts.extend_from_slice(&m.rtts);
        all.total += m.total;
        all.last = all.last.max(m.last);
        if let Some(err) = m.error {
            errors += 1;
            first_error.get_or_insert(err);
        }
        // Closed only after every task is done, so no connection's close disturbs the others.
        keep.push(conn);
    }
    drop(keep);
    let mut outcome = summarise(all, window);
    outcome.target = target.name();
    outcome.connections = args.target.connections;
    outcome.connected = connected;
    outcome.connect_ms = connect_ms;
    outcome.errors = errors;
    outcome.first_error = first_error;
    Ok(outcome)
}

/// One connection's closed loop: exchange, time, repeat until the window or `limit` ends or a
/// reply fails. Returns the connection so it is closed only when every loop is done.
async fn drive(mut conn: Conn, line: Bytes, msg: Message, w: Window) -> (Measured, Conn) {
    let mut m = Measured::default();
    let mut sent = 0;
    while sent < w.limit {
        let before = Instant::now();
        if before >= w.end {
            break;
        }
        sent += 1;
        match tokio::time::timeout(w.reply_timeout, conn.exchange(&line, &msg)).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                m.error = Some(format!("{err:#}"));
                break;
            }
            Err(_) => {
                m.error = Some(format!("no reply within {:?}", w.reply_timeout));
                break;
            }
        }
        let after = Instant::now();
        m.total += 1;
        if before >= w.measure_from && after <= w.end {
            let ns = after.duration_since(before).as_nanos();
            m.rtts.push(u32::try_from(ns).unwrap_or(u32::MAX));
            m.last = Some(after);
        }
    }
    (m, conn)
}

/// Throughput over the measured window (up to the last measured reply) and RTT percentiles;
/// the caller fills in who was loaded and how the connecting went.
fn summarise(mut all: Measured, w: Window) -> Outcome {
    let window_end = all.last.map_or(w.end, |l| l.min(w.end).max(w.measure_from));
    let seconds = window_end.duration_since(w.measure_from).as_secs_f64();
    all.rtts.sort_unstable();
    let rtts = &all.rtts;
    let pct = |q: f64| -> f64 {
        if rtts.is_empty() {
            return 0.0;
        }
        let rank = ((q * rtts.len() as f64).ceil() as usize).clamp(1, rtts.len());
        f64::from(rtts[rank - 1]) / 1e3
    };
    let messages = rtts.len() as u64;
    Outcome {
        target: String::new(),
        connections: 0,
        connected: 0,
        connect_ms: 0.0,
        messages,
        total: all.total,
        seconds,
        msgs_per_s: if seconds > 0.0 {
            messages as f64 / seconds
        } else {
            0.0
        },
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        p999_us: pct(0.999),
        max_us: pct(1.0),
        errors: 0,
        first_error: None,
    }
}
