//! `socklab-loadgen`: the load generator and baselines of `cargo xtask bench`, kept out of the
//! product (`socklab-client` is the lesson's client only).
//!
//! * `load`: closed-loop load against TCP echoes and WebSocket bridges; throughput and RTT
//!   percentiles side by side (`load.rs`).
//! * `hold`: many sessions opened and kept idle, for memory per session (`hold.rs`).
//! * `bare-echo`, `bare-relay`: the minimal tokio echo and TCP relay socklab is compared with
//!   (`baseline.rs`).
//!
//! Layers: `main.rs` → `load.rs`, `hold.rs`, `baseline.rs` → `conn.rs` → `target.rs`.

mod baseline;
mod conn;
mod hold;
mod load;
mod target;

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

/// socklab's bench load generator and baselines (used by `cargo xtask bench`).
#[derive(Debug, Parser)]
#[command(name = "socklab-loadgen", version, about, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// N connections x M messages against each target, closed loop (each connection sends one
    /// message and waits for its reply); prints throughput and RTT percentiles side by side.
    Load(load::LoadArgs),
    /// Capacity instead of load: open --connections sessions to each target, exchange one
    /// message on each, report how long that took, then keep them idle until standard input
    /// closes or --secs pass.
    Hold(hold::HoldArgs),
    /// The comparison baseline: a bare tokio echo on ADDR (read, write back; no framing, no
    /// stamp), until standard input closes. Prints `bare echo on ADDR` once listening.
    BareEcho {
        /// Where to listen, e.g. 127.0.0.1:0.
        #[arg(value_name = "ADDR")]
        addr: SocketAddr,
    },
    /// The bridge floor: a bare tokio TCP relay on ADDR (each connection gets its own
    /// connection to --to; bytes forwarded both ways, nothing else), until standard input
    /// closes. It makes the same four send/recv calls per message as any bridge.
    BareRelay {
        /// Where to listen, e.g. 127.0.0.1:0.
        #[arg(value_name = "ADDR")]
        addr: SocketAddr,
        /// Where each connection is forwarded to.
        #[arg(long, value_name = "ADDR")]
        to: SocketAddr,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse().command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("socklab-loadgen: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<()> {
    match command {
        Command::Load(args) => {
            raise_fd_limit(args.target.connections);
            load::run(&args).await
        }
        Command::Hold(args) => {
            raise_fd_limit(args.target.connections);
            hold::run(&args).await
        }
        Command::BareEcho { addr } => {
            raise_fd_limit(0);
            baseline::serve_bare_echo(addr).await
        }
        Command::BareRelay { addr, to } => {
            raise_fd_limit(0);
            baseline::serve_bare_relay(addr, to).await
        }
    }
}

/// Raises the soft open-files limit to the hard one, and warns when that is less than
/// `connections` need.
fn raise_fd_limit(connections: usize) {
    let want = connections as u64 + 256;
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(got) if got < want => eprintln!(
            "socklab-loadgen: warning: only {got} open files allowed; {connections} connections \
             may fail (raise the hard limit: ulimit -Hn)"
        ),
        Ok(_) => {}
        Err(err) => eprintln!("socklab-loadgen: warning: cannot raise the open-files limit: {err}"),
    }
}
