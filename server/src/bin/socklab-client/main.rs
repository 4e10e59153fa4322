//! `socklab-client`: the lesson's `>>` client, done right — it reads the whole reply line,
//! notices when the server closes, and exits on an empty line or end of input. `--udp` speaks
//! UDP to the UDP echo; `--ws URL` goes through the WebSocket bridge. `socklab-client bench`
//! loads the echo and the bridge with many connections and prints throughput and RTT
//! percentiles side by side.

mod args;
mod bench;
mod interactive;

use std::process::ExitCode;

use clap::Parser;

use args::{Args, Command};

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
