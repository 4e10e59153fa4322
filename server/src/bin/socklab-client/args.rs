//! The client's flags (clap), in their own module so the prompt reads them without importing
//! from `main.rs`.

use clap::Parser;

/// The lesson's `>>` client: type a line, see the server's `[time]:line` reply.
/// An empty line or end of input (Ctrl-D) exits.
#[derive(Debug, Parser)]
#[command(name = "socklab-client", version, about, max_term_width = 100)]
pub struct Args {
    /// The echo server, HOST:PORT.
    #[arg(value_name = "HOST:PORT", default_value = "127.0.0.1:21566")]
    pub addr: String,

    /// Use UDP: each line is one datagram, each reply one datagram (it may never come).
    #[arg(long, conflicts_with = "ws")]
    pub udp: bool,

    /// Go through socklab's WebSocket bridge instead, e.g. ws://127.0.0.1:8080/ws.
    #[arg(long, value_name = "URL")]
    pub ws: Option<String>,

    /// Record the session in FILE as JSON (what was sent and received, when, how many bytes,
    /// each reply's round-trip time), rewritten after every exchange: the same schema the
    /// page's Download gives (socklab-transcript/1).
    #[arg(long, value_name = "FILE")]
    pub record: Option<std::path::PathBuf>,

    /// Seconds to wait for a reply before saying none came.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub timeout: u64,
}
