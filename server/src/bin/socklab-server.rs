//! `socklab-server`: parses flags, binds, prints where to connect, runs until Ctrl-C/SIGTERM.

use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};
use socklab_server::{Config, bind, run, shutdown};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let matches = Config::command().get_matches();
    let config = Config::from_arg_matches(&matches).unwrap_or_else(|err| err.exit());
    // The open-files warning is for a --max-connections the user chose, not the default.
    let chose_max = matches.value_source("max_connections") != Some(ValueSource::DefaultValue);
    // The first of the `--threads` runtimes, on this thread; `bind` starts the others.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(serve(config, chose_max)),
        Err(err) => {
            eprintln!("socklab-server: cannot start the async runtime: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config, chose_max: bool) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    raise_open_files_limit(config.max_connections, chose_max);
    let listeners = match bind(&config).await {
        Ok(l) => l,
        Err(err) => {
            eprintln!("socklab-server: {err}");
            return ExitCode::FAILURE;
        }
    };
    // Listen for Ctrl-C/SIGTERM before saying we run: a stop right after is a clean one.
    let stop = shutdown::signal();
    let a = listeners.addrs();
    let page = a
        .http
        .first()
        .map(|h| format!("http://{h}/"))
        .unwrap_or_default();
    println!("socklab is running — open {page}");
    for t in &a.tcp {
        println!("  TCP echo  {t:<22} try: nc {} {}", t.ip(), t.port());
    }
    for u in &a.udp {
        println!("  UDP echo  {u:<22} try: nc -u {} {}", u.ip(), u.port());
    }
    for b in &a.banner {
        println!("  banner    {b:<22} try: nc {} {}", b.ip(), b.port());
    }
    for h in &a.http {
        println!("  HTTP      {h:<22} page, /ws bridge, /api/events monitor");
    }
    if let Some(w) = &a.webtransport {
        println!("  WebTrans. {w:<22} UDP (QUIC): datagrams to the UDP echo; /api/webtransport");
    }
    println!("Stop with Ctrl-C.");
    match run(config, listeners, stop).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("socklab-server: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Each session holds a file descriptor, a bridged one or a WebTransport one a second (the
/// bridge's upstream socket, the session's UDP socket), and many systems start processes with
/// a soft limit of 1024: raise it to the hard limit. Only when the user chose a
/// `--max-connections` that even the hard limit cannot carry is it worth a line at start; at
/// run time a full descriptor table shows as "accept failed" warnings anyway.
fn raise_open_files_limit(max_connections: usize, chose_max: bool) {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            let wanted = (max_connections as u64)
                .saturating_mul(2)
                .saturating_add(64);
            if chose_max && limit < wanted {
                tracing::warn!(
                    limit,
                    max_connections,
                    "the open-files limit is below 2 x --max-connections + 64: accepting will \
                     pause (logged) before the connection limit is reached; raise `ulimit -n`"
                );
            } else {
                tracing::debug!(limit, wanted, "open-files limit");
            }
        }
        Err(err) => tracing::warn!(cause = %err, "could not read or raise the open-files limit"),
    }
}
