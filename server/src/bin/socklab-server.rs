//! `socklab-server`: parses flags, binds, prints where to connect, runs until Ctrl-C/SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use socklab_server::{Config, bind, run, shutdown};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let config = Config::parse();
    // One thread: tokio's current-thread scheduler (no work stealing, no cross-thread wake-ups).
    let runtime = match config.threads {
        Some(1) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Some(n) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(usize::from(n))
            .enable_all()
            .build(),
        None => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    };
    match runtime {
        Ok(runtime) => runtime.block_on(serve(config)),
        Err(err) => {
            eprintln!("socklab-server: cannot start the async runtime: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    raise_open_files_limit(config.max_connections);
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

/// Each session holds a file descriptor (a bridged one two or three), and many systems start
/// processes with a soft limit of 1024: raise it to the hard limit, and say when even that is
/// too low for `--max-connections`.
fn raise_open_files_limit(max_connections: usize) {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            tracing::debug!(limit, "open-files limit");
            let wanted = (max_connections as u64)
                .saturating_mul(3)
                .saturating_add(64);
            if limit < wanted {
                tracing::info!(
                    limit,
                    max_connections,
                    "the open-files limit is below 3 x --max-connections: accepting will pause \
                     (logged) before the connection limit is reached"
                );
            }
        }
        Err(err) => tracing::warn!(cause = %err, "could not read or raise the open-files limit"),
    }
}
