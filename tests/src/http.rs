//! HTTP/1.1 as the black-box tests speak it: requests written as raw bytes (so a test can send
//! exactly what a broken or hostile client would, and the target is never normalised), and
//! responses parsed by `httparse`, never by hand.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::TIMEOUT;

/// Most response headers a test expects (socklab sends a dozen).
const MAX_HEADERS: usize = 64;

/// A parsed HTTP/1.x response.
#[derive(Debug)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body, as sent (not decompressed), chunked encoding undone.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header called `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `GET target` (sent verbatim) with `Connection: close` and extra request headers, over a
/// fresh connection; panics unless a whole response comes within [`TIMEOUT`].
pub async fn get(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> HttpResponse {
    let mut req = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let (raw, response, _) = exchange(addr, req.as_bytes()).await.expect("connect");
    response.unwrap_or_else(|| {
        panic!(
            "GET {target}: no whole HTTP response within {TIMEOUT:?}: {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

/// Sends `request` verbatim on a new connection and reads until a whole response has come or
/// the server closes. Returns the status code (0 when the server sent no response head) and
/// every byte it sent. Panics when neither happens within [`TIMEOUT`]: a request held open
/// was neither answered nor refused.
pub async fn send(addr: SocketAddr, request: &[u8]) -> (u16, Vec<u8>) {
    let (raw, response, closed) = exchange(addr, request).await.expect("connect");
    // A server that holds a request open has neither answered nor refused it.
    assert!(
        closed || response.is_some(),
        "{addr}: neither a whole response nor a close within {TIMEOUT:?}; got {:?}",
        String::from_utf8_lossy(&raw)
    );
    (status_of(&raw), raw)
}

/// Sends `request` verbatim on a new connection: the whole response, or `None` when the
/// connection fails or no whole response comes within [`TIMEOUT`] (for waiting until a
/// server is up).
pub async fn fetch(addr: SocketAddr, request: &[u8]) -> Option<HttpResponse> {
    exchange(addr, request).await.ok()?.1
}

/// Sends `request`; every byte received, the response when it is whole, and whether the
/// server closed the connection (rather than [`TIMEOUT`] running out).
async fn exchange(
    addr: SocketAddr,
    request: &[u8],
) -> std::io::Result<(Vec<u8>, Option<HttpResponse>, bool)> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(request).await?;
    let mut got = Vec::new();
    let closed = tokio::time::timeout(TIMEOUT, async {
        let mut chunk = [0u8; 4096];
        loop {
            if parse(&got, false).is_some() {
                return false;
            }
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return true,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .unwrap_or(false);
    let response = parse(&got, closed);
    Ok((got, response, closed))
}

/// The status code of the response head at the start of `raw`, 0 if there is none.
pub fn status_of(raw: &[u8]) -> u16 {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(raw) {
        Ok(_) => response.code.unwrap_or(0),
        Err(_) => 0,
    }
}

/// The whole response at the start of `raw`, or `None` while it is incomplete (or is not
/// HTTP). `closed`: the server has closed, which ends a body sent without a length.
pub fn parse(raw: &[u8], closed: bool) -> Option<HttpResponse> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(head_len) = response.parse(raw).ok()? else {
        return None;
    };
    let status = response.code?;
    let headers: Vec<(String, String)> = response
        .headers
        .iter()
        .map(|h| {
            let value = String::from_utf8_lossy(h.value).trim().to_owned();
            (h.name.to_ascii_lowercase(), value)
        })
        .collect();
    let rest = &raw[head_len..];
    let find = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let body = if (100..200).contains(&status) || status == 204 || status == 304 {
        Vec::new()
    } else if find("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        dechunk(rest)?
    } else if let Some(len) = find("content-length") {
        let len: usize = len.parse().ok()?;
        rest.get(..len)?.to_vec()
    } else if closed {
        rest.to_vec()
    } else {
        return None;
    };
    Some(HttpResponse {
        status,
        headers,
        body,
    })
}

/// A chunked body's data, or `None` until its last chunk has come.
fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let httparse::Status::Complete((start, size)) = httparse::parse_chunk_size(rest).ok()?
        else {
            return None;
        };
        if size == 0 {
            return Some(out);
        }
        let size = usize::try_from(size).ok()?;
        out.extend_from_slice(rest.get(start..start + size)?);
        // The chunk's data is followed by CRLF.
        rest = rest.get(start + size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_is_whole_only_with_its_whole_body() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello";
        let r = parse(raw, false).unwrap();
        assert_eq!((r.status, r.text().as_str()), (200, "hello"));
        assert_eq!(r.header("x-a"), Some("b"));
        assert!(parse(&raw[..raw.len() - 1], false).is_none());
        assert!(parse(&raw[..10], true).is_none());
        assert_eq!(status_of(&raw[..20]), 200);
        assert_eq!(status_of(b"\x16\x03\x01"), 0);
    }

    #[test]
    fn chunked_and_unframed_bodies() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse(raw, false).unwrap().body, b"abcde");
        assert!(parse(&raw[..raw.len() - 7], false).is_none());
        let raw = b"HTTP/1.0 404 Not Found\r\n\r\ngone";
        assert!(parse(raw, false).is_none());
        assert_eq!(parse(raw, true).unwrap().body, b"gone");
        let raw = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x02hi";
        assert!(parse(raw, false).unwrap().body.is_empty());
    }
}
