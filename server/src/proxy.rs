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

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::http::HeaderMap;
use socklab_protocol::client_text::forwarded_entries;
use socklab_protocol::proxy_header::{HeaderError, Step, next_read, parse};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::config::Config;
use crate::shared::Shared;

/// An IP network: `10.0.0.0/8`, `::1/128`, or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// Why a `--trusted-proxy` value is not a network.
#[derive(Debug, thiserror::Error)]
#[error("not an IP address or CIDR network (like 10.0.0.0/8 or 127.0.0.1): {0}")]
pub struct CidrError(String);

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || CidrError(s.to_owned());
        let (ip, prefix) = match s.split_once('/') {
            Some((ip, prefix)) => (ip, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = ip.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Cidr {
    /// Whether `ip` is in this network (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let bits = usize::from(bits);
    let (whole, rest) = (bits / 8, bits % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    a[whole] & mask == b[whole] & mask
}

/// Whether the peer is a proxy whose word about the client is believed: one listed with
/// `--trusted-proxy`, or, when none is listed, a loopback address.
pub(crate) fn is_trusted(config: &Config, ip: IpAddr) -> bool {
    if config.trusted_proxy.is_empty() {
        ip.to_canonical().is_loopback()
    } else {
        config.trusted_proxy.iter().any(|net| net.contains(ip))
    }
}

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
    if !is_trusted(&shared.config, peer.ip()) {
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

/// With `--forwarded-for`: the client named by `X-Forwarded-For` when the request comes from a
/// trusted proxy, else `peer`. The list is read right to left (the right-most entry was
/// added by the proxy nearest to us), skipping trusted proxies; the first other address is
/// the client. Entries may carry a port (`1.2.3.4:5678`, `[::1]:5678`); without one the port
/// is 0.
pub(crate) fn forwarded_client(
    headers: &HeaderMap,
    peer: SocketAddr,
    config: &Config,
) -> SocketAddr {
    if !is_trusted(config, peer.ip()) {
        return peer;
    }
    let mut client = peer;
    for value in headers.get_all("x-forwarded-for").iter().rev() {
        let Ok(value) = value.to_str() else {
            return client;
        };
        for entry in forwarded_entries(value) {
            let Some(addr) = entry else {
                return client;
            };
            client = addr;
            if !is_trusted(config, addr.ip()) {
                return client;
            }
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn cidrs_parse_and_match() {
        let net: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()));
        let one: Cidr = "::1".parse().unwrap();
        assert_eq!(one.to_string(), "::1/128");
        assert!(one.contains(std::net::Ipv6Addr::LOCALHOST.into()));
        let odd: Cidr = "192.168.0.0/23".parse().unwrap();
        assert!(odd.contains("192.168.1.255".parse().unwrap()));
        assert!(!odd.contains("192.168.2.0".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("lab".parse::<Cidr>().is_err());
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let config = Config::parse_from(["s", "--trusted-proxy", "10.0.0.0/8"]);
        let proxy: SocketAddr = "10.0.0.2:40000".parse().unwrap();
        let stranger: SocketAddr = "198.51.100.1:40000".parse().unwrap();
        // A client's own fake entry to the left is not believed: the right-most untrusted wins.
        let h = headers(&["6.6.6.6, 203.0.113.7", "10.0.0.9"]);
        assert_eq!(
            forwarded_client(&h, proxy, &config),
            "203.0.113.7:0".parse().unwrap()
        );
        assert_eq!(forwarded_client(&h, stranger, &config), stranger);
        let with_port = headers(&["[2001:db8::7]:5555"]);
        assert_eq!(
            forwarded_client(&with_port, proxy, &config),
            "[2001:db8::7]:5555".parse().unwrap()
        );
        assert_eq!(
            forwarded_client(&headers(&["unknown"]), proxy, &config),
            proxy
        );
        // No --trusted-proxy: loopback is trusted, nothing else.
        let config = Config::parse_from(["s"]);
        let local: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(
            forwarded_client(&headers(&["203.0.113.7"]), local, &config),
            "203.0.113.7:0".parse().unwrap()
        );
        assert!(!is_trusted(&config, "10.0.0.2".parse().unwrap()));
    }
}
