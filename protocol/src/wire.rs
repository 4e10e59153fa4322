//! Header sizes on the wire, for the teaching strip ("bytes on the wire") and for tests.
//! Sources: RFC 6455 §5.2 (WebSocket framing), RFC 9293 (TCP), RFC 768 (UDP), RFC 791 (IPv4),
//! RFC 8200 (IPv6).

/// TCP header without options.
pub const TCP_HEADER: usize = 20;
/// TCP header with the timestamp option Linux sends by default.
pub const TCP_HEADER_WITH_TIMESTAMPS: usize = 32;
/// UDP header.
pub const UDP_HEADER: usize = 8;
/// IPv4 header without options.
pub const IPV4_HEADER: usize = 20;
/// IPv6 fixed header.
pub const IPV6_HEADER: usize = 40;
/// The masking key a client adds to every frame it sends.
pub const WS_MASK_KEY: usize = 4;

/// Bytes of WebSocket framing around a payload of `payload_len` bytes: 2, plus 2 or 8 bytes
/// of extended length, plus the 4-byte mask when the client sends it.
pub fn ws_frame_overhead(payload_len: usize, masked: bool) -> usize {
    let len = match payload_len {
        0..=125 => 2,
        126..=65535 => 4,
        _ => 10,
    };
    len + if masked { WS_MASK_KEY } else { 0 }
}

/// A whole WebSocket frame's size: framing plus payload.
pub fn ws_frame_len(payload_len: usize, masked: bool) -> usize {
    ws_frame_overhead(payload_len, masked) + payload_len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_sizes_match_rfc_6455() {
        // "hi" from the browser: 2 + 4 + 2; the 24-byte stamped reply: 2 + 24.
        assert_eq!(ws_frame_len(2, true), 8);
        assert_eq!(ws_frame_len(24, false), 26);
        assert_eq!(ws_frame_overhead(125, false), 2);
        assert_eq!(ws_frame_overhead(126, false), 4);
        assert_eq!(ws_frame_overhead(65535, true), 8);
        assert_eq!(ws_frame_overhead(65536, false), 10);
    }
}
