//! Behind a load balancer: who the real client is.
//!
//! A proxy in front of several instances hides the client's address; it can pass it on, and
//! this module believes it only from the proxies the operator lists (`--trusted-proxy`, default
//! loopback):
//! * raw TCP (echo, banner) — with `--proxy-protocol` every connection starts with a PROXY
//!   protocol header, v1 (text) or v2 (binary) as HAProxy's `send-proxy[-v2]` and nginx's
//!   `proxy_protocol on` send it. A header from any other peer, or a connection without one, is
//!   refused with a log line. The bridge's own upstream connections need none.
//! * HTTP — with `--forwarded-for`, `X-Forwarded-For` from a trusted peer names the client of a
//!   WebSocket session (the port is 0 when the proxy sends only the IP, as most do).
//!
//! How many bytes to read, and whom a header names, is decided by the sans-IO
//! `socklab_protocol::proxy_header` (so no byte of the client's own data is ever consumed with
//! the header; the header itself is parsed by `ppp`); this module reads and decides whom to
//! believe.

use std::io;
use std::net::SocketAddr;

use socklab_protocol::proxy_header::{HeaderError, Step, next_read, parse};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::state::Shared;

/// Why a connection's PROXY header was not accepted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyError {
    /// The bytes are not a (well-formed, short enough) header.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// Reading failed or the connection ended first.
    #[error("reading the PROXY header: {0}")]
    Io(#[from] io::Error),
}

/// Reads exactly one PROXY header from the start of `stream`.
async fn read_header(stream: &mut TcpStream) -> Result<Vec<u8>, ProxyError> {
    let mut head = Vec::with_capacity(64);
    while let Step::Read(n) = next_read(&head)? {
        let start = head.len();
        head.resize(start + n, 0);
        stream.read_exact(&mut head[start..]).await?;
    }
    Ok(head)
}

/// With `--proxy-protocol`: reads the connection's header and returns the client it names
/// (or the peer itself for a health check), or `None` when the connection must be refused —
/// the reason is logged here.
pub(crate) async fn accept_header(
    stream: &mut TcpStream,
    peer: SocketAddr,
    shared: &Shared,
) -> Option<SocketAddr> {
    if !shared.config.is_trusted_proxy(peer.ip()) {
        tracing::warn!(
            %peer,
            "refused: --proxy-protocol is on and this peer is not a --trusted-proxy"
        );
        return None;
    }
    let read = tokio::select! {
        read = tokio::time::timeout(shared.config.header_timeout(), read_header(stream)) => read,
        () = shared.shutdown.cancelled() => return None,
    };
    let parsed = match read {
        Ok(Ok(header)) => parse(&header).map_err(ProxyError::from),
        Ok(Err(err)) => Err(err),
        Err(_) => Err(ProxyError::Io(io::Error::new(
            io::ErrorKind::TimedOut,
            "no header in time",
        ))),
    };
    match parsed {
        Ok(client) => Some(client.unwrap_or(peer)),
        Err(err) => {
            tracing::warn!(%peer, cause = %err, "refused: bad PROXY protocol header");
            None
        }
    }
}
