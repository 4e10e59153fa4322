//! Raw-socket helpers for the abuse and fault tests: hand-made WebSocket handshakes and frames,
//! so a test can send exactly the bytes a broken or hostile client would (plain HTTP requests
//! are in [`crate::http`]).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::TIMEOUT;
use crate::http::status_of;

/// A TCP socket bound to a free loopback port but not listening: connections to it are
/// refused, and no other test (nor a server's port-0 listener) can take the port while the
/// socket lives. Listen on it to open the port later.
pub fn reserved_port() -> socket2::Socket {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        .expect("a TCP socket");
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .expect("a free loopback port");
    socket
}

/// The loopback address a [`reserved_port`] socket holds.
pub fn reserved_addr(socket: &socket2::Socket) -> SocketAddr {
    socket
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .expect("a bound address")
}

/// A WebSocket handshake request for `path` with `extra` header lines (each ending `\r\n`).
pub fn ws_request(addr: SocketAddr, path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// A raw TCP connection that has completed the WebSocket handshake `request`; panics unless
/// the server answered 101.
pub async fn ws_upgraded(addr: SocketAddr, request: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(request.as_bytes()).await.expect("send");
    let head = read_head(&mut s).await;
    assert_eq!(status_of(&head), 101, "{}", String::from_utf8_lossy(&head));
    s
}

/// Reads a response head byte by byte (so nothing after it is consumed).
pub async fn read_head(s: &mut TcpStream) -> Vec<u8> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        match tokio::time::timeout(TIMEOUT, s.read(&mut b)).await {
            Ok(Ok(1)) => head.push(b[0]),
            _ => break,
        }
    }
    head
}

/// A client frame (masked, as RFC 6455 requires) with first byte `first` (FIN, RSV, opcode).
pub fn masked_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37u8, 0xfa, 0x21, 0x3d];
    let mut f = vec![first];
    push_len(&mut f, 0x80, payload.len() as u64);
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// A frame header that only *announces* `len` payload bytes (masked), with no payload.
pub fn frame_header(first: u8, len: u64) -> Vec<u8> {
    let mut f = vec![first];
    push_len(&mut f, 0x80, len);
    f.extend_from_slice(&[1, 2, 3, 4]);
    f
}

fn push_len(f: &mut Vec<u8>, mask_bit: u8, len: u64) {
    if len < 126 {
        f.push(mask_bit | len as u8);
    } else if len <= u64::from(u16::MAX) {
        f.push(mask_bit | 126);
        f.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        f.push(mask_bit | 127);
        f.extend_from_slice(&len.to_be_bytes());
    }
}

/// How a raw WebSocket connection ended, seen from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsEnd {
    /// A close frame with this code arrived.
    Close(u16),
    /// The server closed the TCP connection without a close frame.
    Dropped,
}

/// Reads server frames until a close frame or the end of the connection.
pub async fn read_ws_end(s: &mut TcpStream) -> WsEnd {
    let mut buf = Vec::new();
    tokio::time::timeout(TIMEOUT, async {
        loop {
            // Parse what we have: unmasked server frames.
            let mut i = 0;
            while i + 2 <= buf.len() {
                let opcode = buf[i] & 0x0f;
                let (len, hdr) = match buf[i + 1] & 0x7f {
                    126 if i + 4 <= buf.len() => {
                        (u16::from_be_bytes([buf[i + 2], buf[i + 3]]) as usize, 4)
                    }
                    127 if i + 10 <= buf.len() => {
                        let mut b = [0u8; 8];
                        b.copy_from_slice(&buf[i + 2..i + 10]);
                        (u64::from_be_bytes(b) as usize, 10)
                    }
                    126 | 127 => break,
                    n => (n as usize, 2),
                };
                if i + hdr + len > buf.len() {
                    break;
                }
                if opcode == 0x8 {
                    return if len >= 2 {
                        WsEnd::Close(u16::from_be_bytes([buf[i + hdr], buf[i + hdr + 1]]))
                    } else {
                        WsEnd::Close(1005)
                    };
                }
                i += hdr + len;
            }
            buf.drain(..i);
            let mut chunk = [0u8; 4096];
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return WsEnd::Dropped,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .expect("the server ends the connection in time")
}

/// Polls `cond` every 20 ms until it holds, failing after `within`.
pub async fn wait_until(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
