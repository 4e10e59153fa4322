//! The PROXY protocol header a load balancer puts in front of a raw TCP connection (v1 text as
//! HAProxy's `send-proxy` and nginx's `proxy_protocol on` send it, v2 binary as
//! `send-proxy-v2`), sans-IO: how many bytes to read next ([`next_read`]), so no byte of the
//! client's own data is ever consumed with the header, and whom a whole header names
//! ([`parse`], by the `ppp` crate). The server does the reading
//! (`server/src/net/proxy_protocol.rs`); `fuzz/fuzz_targets/client_text.rs` drives both
//! functions with arbitrary bytes.
//!
//! Only with the `proxy-header` feature (the page has no use for it).

use std::net::SocketAddr;

/// The v2 signature: `\r\n\r\n\0\r\nQUIT\n`.
pub const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The v1 prefix.
const V1_PREFIX: &[u8] = b"PROXY ";
/// The shortest header of either version (`PROXY UNKNOWN\r\n`); read first, whole.
pub const FIRST_READ: usize = 15;
/// A v1 header is at most 107 bytes, `\r\n` included.
pub const V1_MAX: usize = 107;
/// The v2 fixed part: signature, version/command, family/protocol, length.
const V2_FIXED: usize = 16;
/// Address block plus TLVs we accept in a v2 header (HAProxy sends a few dozen bytes).
pub const V2_MAX_BODY: usize = 4096;

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

/// What to read next to complete a header of which `head` has arrived.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Read exactly this many more bytes.
    Read(usize),
    /// `head` is one whole header.
    Done,
}

/// Given the bytes of a header so far, how many more belong to it. Never asks for a byte past
/// its end (a v1 line is read a byte at a time, v2 exactly by its length field).
pub fn next_read(head: &[u8]) -> Result<Step, HeaderError> {
    if head.len() < FIRST_READ {
        return Ok(Step::Read(FIRST_READ - head.len()));
    }
    if head.starts_with(V2_SIGNATURE) {
        let Some(&[hi, lo]) = head.get(14..V2_FIXED) else {
            return Ok(Step::Read(V2_FIXED - head.len()));
        };
        let body = usize::from(u16::from_be_bytes([hi, lo]));
        if body > V2_MAX_BODY {
            return Err(HeaderError::TooLong);
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
            return Err(HeaderError::TooLong);
        }
        // The line's end is not known in advance: one byte at a time (v1 only; v2 is exact).
        return Ok(Step::Read(1));
    }
    Err(HeaderError::Missing)
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

/// Feeds `bytes` the way a reader following [`next_read`] would and returns the header it
/// takes (or why there is none). For tests and the fuzz target.
pub fn take(bytes: &[u8]) -> Result<&[u8], HeaderError> {
    let mut n = 0;
    loop {
        let head = bytes.get(..n).ok_or(HeaderError::Truncated)?;
        match next_read(head)? {
            Step::Done => return Ok(head),
            Step::Read(more) => n += more,
        }
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
        assert!(matches!(next_read(&huge), Err(HeaderError::TooLong)));
        assert!(matches!(
            parse(b"PROXY TCP4 nonsense\r\n"),
            Err(HeaderError::Malformed(_))
        ));
        assert!(matches!(
            parse("PROXY TCP4 1.2.3.4 é.6.7.8 1 2\r\n".as_bytes()),
            Err(HeaderError::Malformed(_))
        ));
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
