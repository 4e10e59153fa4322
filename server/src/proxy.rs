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
//! How many bytes to read is decided by a sans-IO function ([`next_read`]) so no byte of the
//! client's own data is ever consumed with the header; the header itself is parsed by `ppp`.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::http::HeaderMap;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::config::Config;
use crate::shared::Shared;

/// The v2 signature: `\r\n\r\n\0\r\nQUIT\n`.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The v1 prefix.
const V1_PREFIX: &[u8] = b"PROXY ";
/// The shortest header of either version (`PROXY UNKNOWN\r\n`); read first, whole.
const FIRST_READ: usize = 15;
/// A v1 header is at most 107 bytes, `\r\n` included.
const V1_MAX: usize = 107;
/// The v2 fixed part: signature, version/command, family/protocol, length.
const V2_FIXED: usize = 16;
/// Address block plus TLVs we accept in a v2 header (HAProxy sends a few dozen bytes).
const V2_MAX_BODY: usize = 4096;

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
    /// The first bytes are neither a v1 nor a v2 header.
    #[error("no PROXY protocol header (the connection did not come through the proxy)")]
    Missing,
    /// A v1 line too long, or a v2 header with a huge body.
    #[error("PROXY header too long")]
    TooLong,
    /// `ppp` could not parse it.
    #[error("malformed PROXY header: {0}")]
    Malformed(String),
    /// Reading failed or the connection ended first.
    #[error("reading the PROXY header: {0}")]
    Io(#[from] io::Error),
}

/// What to read next to complete a header of which `head` has arrived.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Read exactly this many more bytes.
    Read(usize),
    /// `head` is one whole header.
    Done,
}

/// The sans-IO half of reading a header: given the bytes so far (at least [`FIRST_READ`]),
/// how many more belong to the header. Never asks for a byte past its end.
pub(crate) fn next_read(head: &[u8]) -> Result<Step, ProxyError> {
    if head.len() < FIRST_READ {
        return Ok(Step::Read(FIRST_READ - head.len()));
    }
    if head.starts_with(V2_SIGNATURE) {
        if head.len() < V2_FIXED {
            return Ok(Step::Read(V2_FIXED - head.len()));
        }
        let body = usize::from(u16::from_be_bytes([head[14], head[15]]));
        if body > V2_MAX_BODY {
            return Err(ProxyError::TooLong);
        }
        let total = V2_FIXED + body;
        return Ok(if head.len() < total {
            Step::Read(total - head.len())
        } else {
            Step::Done
        });
    }
    if head.starts_with(V1_PREFIX) {
        if head.ends_with(b"\r\n") {
            return Ok(Step::Done);
        }
        if head.len() >= V1_MAX {
            return Err(ProxyError::TooLong);
        }
        // The line's end is not known in advance: one byte at a time (v1 only; v2 is exact).
        return Ok(Step::Read(1));
    }
    Err(ProxyError::Missing)
}

/// The client a whole header names: `None` for `LOCAL` (the proxy's own health check) and
/// `UNKNOWN`/unix-socket sources, when the connection's own peer stands.
pub(crate) fn parse(header: &[u8]) -> Result<Option<SocketAddr>, ProxyError> {
    if header.starts_with(V2_SIGNATURE) {
        use ppp::v2::{Addresses, Header};
        // LOCAL (version 2, command 0): the proxy speaking for itself; whatever address block
        // follows is to be ignored, so it is not even parsed.
        if header.get(12) == Some(&0x20) {
            return Ok(None);
        }
        let h = Header::try_from(header).map_err(|e| ProxyError::Malformed(e.to_string()))?;
        return Ok(match h.addresses {
            Addresses::IPv4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
            Addresses::IPv6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
            Addresses::Unspecified | Addresses::Unix(_) => None,
        });
    }
    use ppp::v1::{Addresses, Header};
    let h = Header::try_from(header).map_err(|e| ProxyError::Malformed(e.to_string()))?;
    Ok(match h.addresses {
        Addresses::Tcp4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        Addresses::Tcp6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        Addresses::Unknown => None,
    })
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
        Ok(Ok(header)) => parse(&header),
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
        for entry in value.rsplit(',') {
            let Some(addr) = parse_forwarded(entry) else {
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

fn parse_forwarded(entry: &str) -> Option<SocketAddr> {
    let entry = entry.trim().trim_matches('"');
    if let Ok(addr) = entry.parse::<SocketAddr>() {
        return Some(addr);
    }
    let ip = entry.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = ip.parse().ok()?;
    Some(SocketAddr::new(ip, 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn v2(command: u8, body: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(0x20 | command);
        h.push(0x11); // IPv4, stream
        h.extend_from_slice(&(body.len() as u16).to_be_bytes());
        h.extend_from_slice(body);
        h
    }

    fn v2_ipv4() -> Vec<u8> {
        // 203.0.113.7:51000 -> 10.0.0.1:21566
        let mut body = vec![203, 0, 113, 7, 10, 0, 0, 1];
        body.extend_from_slice(&51000u16.to_be_bytes());
        body.extend_from_slice(&21566u16.to_be_bytes());
        v2(0x1, &body)
    }

    /// Feeds `bytes` the way `read_header` would and returns the header it takes.
    fn take(bytes: &[u8]) -> Result<&[u8], ProxyError> {
        let mut n = 0;
        loop {
            match next_read(&bytes[..n])? {
                Step::Done => return Ok(&bytes[..n]),
                Step::Read(more) => {
                    n += more;
                    assert!(n <= bytes.len(), "asked past the input");
                }
            }
        }
    }

    #[test]
    fn a_v2_header_is_taken_exactly_and_names_the_client() {
        let mut wire = v2_ipv4();
        let len = wire.len();
        wire.extend_from_slice(b"hello\n");
        let header = take(&wire).unwrap();
        assert_eq!(header.len(), len);
        assert_eq!(
            parse(header).unwrap(),
            Some("203.0.113.7:51000".parse().unwrap())
        );
    }

    #[test]
    fn a_v2_local_header_keeps_the_peer() {
        let wire = v2(0x0, &[]);
        assert_eq!(parse(take(&wire).unwrap()).unwrap(), None);
    }

    #[test]
    fn a_v1_header_is_taken_exactly() {
        let wire = b"PROXY TCP6 2001:db8::1 ::1 40000 21566\r\nPROXY-looking data\n";
        let header = take(wire).unwrap();
        assert!(header.ends_with(b"\r\n") && header.len() == 40);
        assert_eq!(
            parse(header).unwrap(),
            Some("[2001:db8::1]:40000".parse().unwrap())
        );
        assert_eq!(parse(take(b"PROXY UNKNOWN\r\n").unwrap()).unwrap(), None);
    }

    #[test]
    fn other_bytes_long_lines_and_huge_bodies_are_refused() {
        assert!(matches!(
            take(b"hello there, server\n"),
            Err(ProxyError::Missing)
        ));
        let long = [b"PROXY ".as_slice(), &[b'1'; 200]].concat();
        assert!(matches!(take(&long), Err(ProxyError::TooLong)));
        let mut huge = V2_SIGNATURE.to_vec();
        huge.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        assert!(matches!(next_read(&huge), Err(ProxyError::TooLong)));
        assert!(matches!(
            parse(b"PROXY TCP4 nonsense\r\n"),
            Err(ProxyError::Malformed(_))
        ));
    }

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
