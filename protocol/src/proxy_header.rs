//! The PROXY protocol header a load balancer puts in front of a raw TCP connection (v1 text as
//! HAProxy's `send-proxy` and nginx's `proxy_protocol on` send it, v2 binary as
//! `send-proxy-v2`), sans-IO: how much of the bytes that have arrived is the header
//! ([`scan`]), so the reader (`server/src/net/proxy_protocol.rs`) can peek at the connection
//! and then read exactly the header, never a byte of the client's own data; and whom a whole
//! header names ([`parse`], by the `ppp` crate). `fuzz/fuzz_targets/client_text.rs` drives
//! both with arbitrary bytes.
//!
//! The header's end is found here (v1: its `\r\n`; v2: its length field), not by `ppp`'s
//! partial parse: that one calls some prefixes of a good v1 line malformed (`PROXY TCP4 1.2.3.4
//! 5.6.7.8 1 ` ends in an empty port), so a header split there by TCP would be refused.
//!
//! Only with the `proxy-header` feature (the page has no use for it).

use std::net::SocketAddr;

/// The v2 signature: `\r\n\r\n\0\r\nQUIT\n`.
pub const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The v1 prefix.
const V1_PREFIX: &[u8] = b"PROXY ";
/// A v1 header is at most 107 bytes, `\r\n` included.
pub const V1_MAX: usize = 107;
/// The v2 fixed part: signature, version/command, family/protocol, length.
const V2_FIXED: usize = 16;
/// Address block plus TLVs we accept in a v2 header (HAProxy sends a few dozen bytes).
pub const V2_MAX_BODY: usize = 4096;
/// The longest header of either version: a reader never needs to look further.
pub const MAX_HEADER: usize = V2_FIXED + V2_MAX_BODY;

/// Why the bytes are not a PROXY header.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    /// The first bytes are neither a v1 nor a v2 header.
    #[error("no PROXY protocol header (the connection did not come through the proxy)")]
    Missing,
    /// A v1 line too long, or a v2 header with a huge body.
    #[error("PROXY header too long")]
    TooLong,
    /// `ppp` could not parse it.
    #[error("malformed PROXY header: {0}")]
    Malformed(String),
    /// The bytes ended inside the header (only [`take`] says this; a reader waits for more).
    #[error("the bytes end inside the PROXY header")]
    Truncated,
}

/// How much of the bytes that have arrived on a connection is its header.
#[derive(Debug, PartialEq, Eq)]
pub enum Scan {
    /// The header is the first this many bytes.
    Whole(usize),
    /// Every byte so far belongs to the header, and it goes on.
    Part,
}

/// Given the first bytes of a connection (as many as have arrived, or more), how many of them
/// are its header. Never counts a byte past the header's end.
pub fn scan(bytes: &[u8]) -> Result<Scan, HeaderError> {
    if starts_like(bytes, V2_SIGNATURE) {
        let Some(&[hi, lo]) = bytes.get(14..V2_FIXED) else {
            return Ok(Scan::Part);
        };
        let body = usize::from(u16::from_be_bytes([hi, lo]));
        if body > V2_MAX_BODY {
            return Err(HeaderError::TooLong);
        }
        let total = V2_FIXED + body;
        return Ok(if bytes.len() >= total {
            Scan::Whole(total)
        } else {
            Scan::Part
        });
    }
    if !starts_like(bytes, V1_PREFIX) {
        return Err(HeaderError::Missing);
    }
    let window = bytes.get(..V1_MAX).unwrap_or(bytes);
    match window.windows(2).position(|w| w == b"\r\n") {
        Some(end) => Ok(Scan::Whole(end + 2)),
        None if window.len() >= V1_MAX => Err(HeaderError::TooLong),
        None => Ok(Scan::Part),
    }
}

/// Whether `bytes` and `prefix` agree as far as both go (either may be the shorter).
fn starts_like(bytes: &[u8], prefix: &[u8]) -> bool {
    let n = bytes.len().min(prefix.len());
    bytes.get(..n) == prefix.get(..n)
}

/// The client a whole header names: `None` for `LOCAL` (the proxy's own health check) and
/// `UNKNOWN`/unix-socket sources, when the connection's own peer stands.
pub fn parse(header: &[u8]) -> Result<Option<SocketAddr>, HeaderError> {
    let malformed = |e: &dyn std::fmt::Display| HeaderError::Malformed(e.to_string());
    if header.starts_with(V2_SIGNATURE) {
        use ppp::v2::{Addresses, Header};
        // LOCAL (version 2, command 0): the proxy speaking for itself; whatever address block
        // follows is to be ignored, so it is not even parsed.
        if header.get(12) == Some(&0x20) {
            return Ok(None);
        }
        let h = Header::try_from(header).map_err(|e| malformed(&e))?;
        return Ok(match h.addresses {
            Addresses::IPv4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
            Addresses::IPv6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
            Addresses::Unspecified | Addresses::Unix(_) => None,
        });
    }
    use ppp::v1::{Addresses, Header};
    let h = Header::try_from(header).map_err(|e| malformed(&e))?;
    Ok(match h.addresses {
        Addresses::Tcp4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        Addresses::Tcp6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        Addresses::Unknown => None,
    })
}

/// The header at the start of `bytes`, all of which have arrived (or why there is none).
/// For tests and the fuzz target.
pub fn take(bytes: &[u8]) -> Result<&[u8], HeaderError> {
    match scan(bytes)? {
        Scan::Whole(n) => bytes.get(..n).ok_or(HeaderError::Truncated),
        Scan::Part => Err(HeaderError::Truncated),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
            Err(HeaderError::Missing)
        ));
        let long = [b"PROXY ".as_slice(), &[b'1'; 200]].concat();
        assert!(matches!(take(&long), Err(HeaderError::TooLong)));
        let mut huge = V2_SIGNATURE.to_vec();
        huge.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        assert!(matches!(scan(&huge), Err(HeaderError::TooLong)));
        // Refused at the first byte that cannot begin a header, not after 15 bytes.
        assert!(matches!(scan(b"GET"), Err(HeaderError::Missing)));
        assert!(matches!(scan(b"PROXX"), Err(HeaderError::Missing)));
        assert!(matches!(
            parse(b"PROXY TCP4 nonsense\r\n"),
            Err(HeaderError::Malformed(_))
        ));
        assert!(matches!(
            parse("PROXY TCP4 1.2.3.4 é.6.7.8 1 2\r\n".as_bytes()),
            Err(HeaderError::Malformed(_))
        ));
    }

    #[test]
    fn every_prefix_of_a_header_is_part_of_it_and_the_whole_is_found_exactly() {
        let v1 = b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n".to_vec();
        for header in [v1, v2_ipv4(), v2(0x0, &[])] {
            let mut wire = header.clone();
            wire.extend_from_slice(b"PROXY data\r\n");
            for cut in 1..header.len() {
                assert_eq!(scan(&wire[..cut]).unwrap(), Scan::Part, "cut at {cut}");
            }
            for cut in header.len()..=wire.len() {
                assert_eq!(scan(&wire[..cut]).unwrap(), Scan::Whole(header.len()));
            }
        }
    }

    proptest! {
        /// Any text after `PROXY ` (non-ASCII included): the header taken is a prefix of the
        /// input no longer than a v1 line, and parsing it never panics.
        #[test]
        fn v1_text_never_panics(line in any::<String>(), tail in any::<String>()) {
            let wire = format!("PROXY {line}\r\n{tail}");
            if let Ok(header) = take(wire.as_bytes()) {
                prop_assert!(header.len() <= V1_MAX && wire.as_bytes().starts_with(header));
                let _ = parse(header);
            }
        }

        /// Any bytes, and any bytes behind the v2 signature: same.
        #[test]
        fn any_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..300), v2 in any::<bool>()) {
            let wire = if v2 { [V2_SIGNATURE.as_slice(), &raw].concat() } else { raw };
            if let Ok(header) = take(&wire) {
                prop_assert!(header.len() <= 16 + V2_MAX_BODY);
                let _ = parse(header);
            }
        }

        /// A well-formed v1 header names exactly the client it carries.
        #[test]
        fn v1_headers_round_trip(client in any::<std::net::SocketAddrV4>(), port in any::<u16>()) {
            let wire = format!("PROXY TCP4 {} 10.0.0.1 {} {port}\r\nhello", client.ip(), client.port());
            let header = take(wire.as_bytes()).unwrap();
            prop_assert_eq!(parse(header).unwrap(), Some(SocketAddr::V4(client)));
        }
    }
}
