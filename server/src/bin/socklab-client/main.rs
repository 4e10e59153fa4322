//! `socklab-client`: the lesson's `>>` client, done right — it reads the whole reply line,
//! notices when the server closes, and exits on an empty line or end of input. `--udp` speaks
//! UDP to the UDP echo; `--ws URL` goes through the WebSocket bridge. `socklab-client bench`
//! loads the echo and the bridge with many connections and prints throughput and RTT
//! percentiles side by side.

mod bench;
mod interactive;

use std::process::ExitCode;

use clap::Parser;

/// The lesson's `>>` client: type a line, see the server's `[time]:line` reply.
/// An empty line or end of input (Ctrl-D) exits.
#[derive(Debug, Parser)]
#[command(
    name = "socklab-client",
    version,
    about,
    max_term_width = 100,
    args_conflicts_with_subcommands = true
)]
pub struct Args {
    /// `bench`: load test instead of the prompt.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// The echo server, HOST:PORT.
    #[arg(value_name = "HOST:PORT", default_value = "127.0.0.1:21566")]
    pub addr: String,

    /// Use UDP: each line is one datagram, each reply one datagram (it may never come).
    #[arg(long, conflicts_with = "ws")]
    pub udp: bool,

    /// Go through socklab's WebSocket bridge instead, e.g. ws://127.0.0.1:8080/ws.
    #[arg(long, value_name = "URL")]
    pub ws: Option<String>,

    /// Seconds to wait for a reply before saying none came.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub timeout: u64,
}

/// What to do instead of the prompt.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// N connections x M messages against the TCP echo and the bridge, closed loop (each
    /// connection sends one message and waits for its reply); prints throughput and RTT
    /// percentiles side by side.
    Bench(bench::BenchArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let result = match &args.command {
        Some(Command::Bench(bench)) => bench::run(bench).await,
        None => interactive::run(&args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("socklab-client: {err:#}");
            ExitCode::FAILURE
        }
    }
}
