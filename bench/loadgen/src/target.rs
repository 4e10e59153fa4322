//! What to load and with what: the target flags shared by `load` and `hold`, and the one
//! message every connection sends.

use anyhow::{Result, bail};
use bytes::Bytes;
use tokio_tungstenite::tungstenite::Message;

/// Where to connect and what to send: the flags `load` and `hold` share.
#[derive(Debug, clap::Args)]
pub struct TargetArgs {
    /// A TCP echo to load, HOST:PORT (repeatable). With neither --tcp nor --ws: socklab's
    /// defaults, 127.0.0.1:21566 and ws://127.0.0.1:8080/ws, side by side.
    #[arg(long = "tcp", value_name = "HOST:PORT")]
    pub tcp: Vec<String>,

    /// A WebSocket bridge to load, e.g. ws://127.0.0.1:8080/ws (repeatable).
    #[arg(long = "ws", value_name = "URL")]
    pub ws: Vec<String>,

    /// How a bridge's replies arrive: `lines` (socklab's /ws: one message per reply line) or
    /// `stream` (a byte-stream bridge such as websocat or websockify: read up to the `\n`).
    #[arg(long, value_enum, value_name = "HOW", default_value_t = Replies::Lines)]
    pub ws_replies: Replies,

    /// Concurrent connections (or sessions) per target.
    #[arg(short = 'c', long, value_name = "N", default_value_t = 100)]
    pub connections: usize,

    /// Bytes per message, its `\n` included (1 to 60000).
    #[arg(long, value_name = "BYTES", default_value_t = 64)]
    pub size: usize,

    /// Send WebSocket binary messages instead of text (websockify takes binary only).
    #[arg(long)]
    pub binary: bool,

    /// Print one JSON object per target instead of text.
    #[arg(long)]
    pub json: bool,
}

impl TargetArgs {
    /// The targets in the order given (TCP first), or socklab's defaults; an error names a
    /// flag out of range.
    pub fn targets(&self) -> Result<Vec<Target>> {
        if self.size == 0 || self.size > 60_000 {
            bail!("--size must be between 1 and 60000 bytes");
        }
        if self.connections == 0 {
            bail!("--connections must be at least 1");
        }
        let mut targets: Vec<Target> = self.tcp.iter().cloned().map(Target::Tcp).collect();
        targets.extend(self.ws.iter().map(|url| Target::Ws {
            url: url.clone(),
            replies: self.ws_replies,
        }));
        if targets.is_empty() {
            targets.push(Target::Tcp("127.0.0.1:21566".into()));
            targets.push(Target::Ws {
                url: "ws://127.0.0.1:8080/ws".into(),
                replies: Replies::Lines,
            });
        }
        Ok(targets)
    }

    /// The message every connection sends: `size - 1` letters and a `\n`, as raw bytes (TCP)
    /// and as a WebSocket message.
    pub fn message(&self) -> (Bytes, Message) {
        let mut line: Vec<u8> = (0..self.size.saturating_sub(1))
            .map(|i| b'a' + (i % 26) as u8)
            .collect();
        line.push(b'\n');
        let line = Bytes::from(line);
        let msg = if self.binary {
            Message::Binary(line.clone())
        } else {
            // Valid UTF-8 by construction.
            Message::Text(String::from_utf8_lossy(&line).into_owned().into())
        };
        (line, msg)
    }
}

/// How a bridge's reply is recognised as complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Replies {
    /// One message is one reply line (socklab's bridge splits the upstream into lines).
    Lines,
    /// Messages carry the upstream's raw bytes; the reply ends at its `\n`.
    Stream,
}

/// One thing to load.
#[derive(Debug, Clone)]
pub enum Target {
    /// A TCP echo, HOST:PORT.
    Tcp(String),
    /// A WebSocket bridge.
    Ws { url: String, replies: Replies },
}

impl Target {
    /// `tcp ADDR` or `ws URL`, as printed.
    pub fn name(&self) -> String {
        match self {
            Target::Tcp(addr) => format!("tcp {addr}"),
            Target::Ws { url, .. } => format!("ws {url}"),
        }
    }
}
