//! `socklab-client`: the lesson's `>>` client, done right — it reads the whole reply line,
//! notices when the server closes, and exits on an empty line or end of input. `--udp` speaks
//! UDP to the UDP echo; `--ws URL` goes through the WebSocket bridge. (The bench's load
//! generator is not here: it is `bench/loadgen`, `socklab-loadgen`.) `--record FILE` keeps the
//! session as JSON (`record.rs`).

mod args;
mod interactive;
mod record;

use std::process::ExitCode;

use clap::Parser;

use args::Args;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match interactive::run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("socklab-client: {err:#}");
            ExitCode::FAILURE
        }
    }
}
