//! `socklab-server`: parses flags, binds, prints where to connect, runs until Ctrl-C/SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use socklab_server::{Config, bind, run, shutdown};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
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
