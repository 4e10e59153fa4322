//! The monitor feed: what `/api/events` sends (one JSON object per WebSocket text frame, with
//! `"type"` first) and what `/api/sessions` answers. The server serialises these structs and the
//! page deserialises the same ones, so the two cannot drift apart.

use serde::{Deserialize, Serialize};

/// The kinds of session the server serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionKind {
    /// A raw TCP client of the echo service (`nc`, `client.py`, a bridge's upstream).
    Tcp,
    /// A UDP peer of the echo service (one "session" per peer address, idle-expired).
    Udp,
    /// A client of the banner service.
    Banner,
    /// A browser (or other) WebSocket client of the bridge.
    Ws,
    /// A WebTransport client.
    Wt,
}

impl SessionKind {
    /// The name used on the wire and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionKind::Tcp => "tcp",
            SessionKind::Udp => "udp",
            SessionKind::Banner => "banner",
            SessionKind::Ws => "ws",
            SessionKind::Wt => "wt",
        }
    }
}

impl std::fmt::Display for SessionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which way a message went, seen from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// From the client to the server.
    In,
    /// From the server to the client.
    Out,
}

/// One event of the monitor feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MonitorEvent {
    /// A session started.
    SessionOpened(SessionOpened),
    /// A session received or sent bytes.
    Message(MessageEvent),
    /// A session ended.
    SessionClosed(SessionClosed),
    /// This subscriber was too slow and missed `skipped` events (the echo path never waits).
    Lagged {
        /// How many events were dropped for this subscriber.
        skipped: u64,
    },
    /// The state of the feed itself (for example a cluster-wide feed that lost its bus).
    Status(FeedStatus),
}

/// `session_opened`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionOpened {
    /// The session's id, unique within one server instance.
    pub id: u64,
    /// What kind of session it is.
    pub kind: SessionKind,
    /// The client's address (`ip:port`).
    pub peer: String,
    /// The server's address the client reached.
    pub local: String,
    /// When it opened (RFC 3339).
    pub at: String,
    /// For a bridge's upstream `tcp` (or a WebTransport session's `udp`) session: the id of the
    /// `ws`/`wt` session it serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<u64>,
    /// For a `ws` session: the `tag` query parameter the client chose, so a page can find its
    /// own session (and through `via`, its upstream). It never affects where the bridge connects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// For a `ws` session: the sizes of its HTTP upgrade, as the server saw them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handshake: Option<HandshakeSize>,
    /// The server instance that serves the session, when several share one feed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

/// The bytes of a WebSocket session's HTTP upgrade: the client's `GET` with its headers and
/// the server's `101 Switching Protocols`, each with its blank line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandshakeSize {
    /// The request head, as received.
    pub request: u64,
    /// The response head, as sent.
    pub response: u64,
}

/// `message`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageEvent {
    /// The session's id.
    pub id: u64,
    /// The session's kind.
    pub kind: SessionKind,
    /// Which way the bytes went.
    pub dir: Direction,
    /// How many bytes.
    pub bytes: u64,
    /// The first [`crate::PREVIEW_CHARS`] characters, decoded as lossy UTF-8.
    pub preview: String,
    /// When (RFC 3339).
    pub at: String,
    /// The server instance, when several share one feed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

/// `session_closed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionClosed {
    /// The session's id.
    pub id: u64,
    /// The session's kind.
    pub kind: SessionKind,
    /// When it closed (RFC 3339).
    pub at: String,
    /// Bytes received from the client over the whole session.
    pub bytes_in: u64,
    /// Bytes sent to the client over the whole session.
    pub bytes_out: u64,
    /// Why it closed, in words (`client closed`, `idle timeout`, …).
    pub reason: String,
    /// The server instance, when several share one feed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

/// `status`: the health of the feed itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedStatus {
    /// `ok`, or `degraded` when only this instance's own events can be seen.
    pub state: String,
    /// Details for people.
    pub detail: String,
    /// The instance that reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

impl MonitorEvent {
    /// The session the event is about, if any.
    pub fn session_id(&self) -> Option<u64> {
        match self {
            MonitorEvent::SessionOpened(e) => Some(e.id),
            MonitorEvent::Message(e) => Some(e.id),
            MonitorEvent::SessionClosed(e) => Some(e.id),
            MonitorEvent::Lagged { .. } | MonitorEvent::Status(_) => None,
        }
    }
}

/// One open session in the `/api/sessions` snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The session's id.
    pub id: u64,
    /// Its kind.
    pub kind: SessionKind,
    /// The client's address.
    pub peer: String,
    /// The server's address the client reached.
    pub local: String,
    /// When it opened (RFC 3339).
    pub opened_at: String,
    /// Bytes received so far.
    pub bytes_in: u64,
    /// Bytes sent so far.
    pub bytes_out: u64,
    /// See [`SessionOpened::via`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<u64>,
    /// See [`SessionOpened::tag`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// See [`SessionOpened::handshake`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handshake: Option<HandshakeSize>,
}

/// `GET /api/sessions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionsSnapshot {
    /// The instance that answered, when named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Every open session, oldest first.
    pub sessions: Vec<SessionInfo>,
}

/// `GET /api/webtransport`: where the WebTransport endpoint is and how to trust it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebTransportInfo {
    /// The endpoint's URL, `https://127.0.0.1:4433/`.
    pub url: String,
    /// SHA-256 of the certificate's DER, for `serverCertificateHashes`.
    pub cert_sha256: Vec<u8>,
    /// The share of datagrams the UDP echo drops on purpose (`--udp-drop`), so the page can
    /// say why some do not come back.
    #[serde(default)]
    pub udp_drop: f64,
}

/// `GET /api/info`: what the page needs to draw itself (addresses to show in join commands).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerInfo {
    /// The server's version.
    pub version: String,
    /// The TCP echo listeners (`ip:port`).
    pub tcp: Vec<String>,
    /// The UDP echo sockets.
    pub udp: Vec<String>,
    /// The banner listeners.
    pub banner: Vec<String>,
    /// The bridge's upstream (`ip:port`).
    pub upstream: String,
    /// The largest message the bridge accepts, in bytes.
    pub max_message: usize,
    /// The instance name, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

/// The first `max_chars` characters of `bytes`, decoded as lossy UTF-8.
pub fn preview(bytes: &[u8], max_chars: usize) -> String {
    // Decode at most 4 bytes per wanted char, so a huge message costs little.
    let head = &bytes[..bytes.len().min(max_chars.saturating_mul(4))];
    String::from_utf8_lossy(head)
        .chars()
        .take(max_chars)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialise_with_type_first() {
        let e = MonitorEvent::Message(MessageEvent {
            id: 7,
            kind: SessionKind::Tcp,
            dir: Direction::In,
            bytes: 3,
            preview: "hi\n".into(),
            at: "2026-01-01T12:00:00+00:00".into(),
            instance: None,
        });
        let json = serde_json::to_string(&e).unwrap();
        assert!(
            json.starts_with(r#"{"type":"message","id":7,"kind":"tcp","dir":"in""#),
            "{json}"
        );
        let back: MonitorEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
        let lag = serde_json::to_string(&MonitorEvent::Lagged { skipped: 5 }).unwrap();
        assert_eq!(lag, r#"{"type":"lagged","skipped":5}"#);
    }

    #[test]
    fn preview_is_bounded_and_lossy() {
        assert_eq!(preview(b"abc", 2), "ab");
        assert_eq!(preview(b"\xffa", 10), "\u{fffd}a");
        assert_eq!(preview("你好".as_bytes(), 1), "你");
    }
}
