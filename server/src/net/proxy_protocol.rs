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

use socklab_protocol::proxy_header::{HeaderError, MAX_HEADER, Scan, parse, scan};
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

/// Reads exactly one PROXY header from the start of `stream`: peeks at what has arrived,
/// then reads just the header's bytes. A header that came whole (as proxies send it) costs
/// one peek and one read; one that comes in pieces, a peek and a read per piece (what was
/// peeked is all header, so it is read, and the next peek waits for more).
async fn read_header(stream: &mut TcpStream) -> Result<Vec<u8>, ProxyError> {
    let mut buf = vec![0u8; MAX_HEADER];
    // Bytes of the header read so far; `scan` never asks for more than `MAX_HEADER`.
    let mut have = 0;
    loop {
        let peeked = stream.peek(&mut buf[have..]).await?;
        if peeked == 0 {
            let eof = "the connection ended inside its PROXY header";
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, eof).into());
        }
        let arrived = have + peeked;
        let header = scan(&buf[..arrived])?;
        let end = match header {
            Scan::Whole(n) => n,
            Scan::Part => arrived,
        };
        // The very bytes just peeked, now taken off the socket.
        stream.read_exact(&mut buf[have..end]).await?;
        have = end;
        if let Scan::Whole(_) = header {
            buf.truncate(have);
            return Ok(buf);
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    /// The header in pieces (however TCP delivers them), the client's data right behind it:
    /// the header is read exactly, and every byte of the data is left for the service.
    #[tokio::test]
    async fn a_header_in_pieces_is_read_exactly_and_the_data_behind_it_is_left() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let header = b"PROXY TCP4 198.51.100.5 127.0.0.1 40001 9001\r\n";
        let (first, rest) = header.split_at(20);
        client.write_all(first).await.unwrap();
        let reading = tokio::spawn(async move {
            let got = read_header(&mut server).await.unwrap();
            (got, server)
        });
        tokio::task::yield_now().await;
        client.write_all(rest).await.unwrap();
        client.write_all(b"PROXY but data\r\n").await.unwrap();
        drop(client);
        let (got, mut server) = reading.await.unwrap();
        assert_eq!(got, header);
        assert_eq!(
            parse(&got).unwrap(),
            Some("198.51.100.5:40001".parse().unwrap())
        );
        let mut data = Vec::new();
        server.read_to_end(&mut data).await.unwrap();
        assert_eq!(data, b"PROXY but data\r\n");
    }

    #[tokio::test]
    async fn a_connection_that_is_not_a_header_is_refused_at_its_first_bytes() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        // Short of the 15 bytes the old reader waited for, and the connection stays open.
        client.write_all(b"hi\n").await.unwrap();
        let err = read_header(&mut server).await.unwrap_err();
        assert!(
            matches!(err, ProxyError::Header(HeaderError::Missing)),
            "{err}"
        );
    }
}
