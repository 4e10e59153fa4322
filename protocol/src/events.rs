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
    /// Every kind, in declaration order.
    pub const ALL: [SessionKind; 5] = [
        SessionKind::Tcp,
        SessionKind::Udp,
        SessionKind::Banner,
        SessionKind::Ws,
        SessionKind::Wt,
    ];

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
    /// One captured IP packet of a session (`--capture`); sent only to subscribers of
    /// `/api/events?packets=1`.
    Packet(PacketEvent),
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
    /// Bytes received so far: present (with the three below) on the snapshot a new subscriber
    /// gets for sessions already open, so its counters start exact; absent on live opens.
    /// [`SessionOpened::counts`] reads the four together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_in: Option<u64>,
    /// Bytes sent so far (snapshot only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_out: Option<u64>,
    /// Messages received so far (snapshot only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages_in: Option<u64>,
    /// Messages sent so far (snapshot only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages_out: Option<u64>,
}

impl SessionOpened {
    /// The counts a snapshot carries; `None` on a live open. (Four plain fields rather than a
    /// flattened struct: serde's `flatten` costs the page several KB of wasm.)
    pub fn counts(&self) -> Option<SessionCounts> {
        Some(SessionCounts {
            bytes_in: self.bytes_in?,
            bytes_out: self.bytes_out?,
            messages_in: self.messages_in?,
            messages_out: self.messages_out?,
        })
    }

    /// Sets (`Some`) or clears (`None`) the snapshot counts.
    pub fn set_counts(&mut self, counts: Option<SessionCounts>) {
        self.bytes_in = counts.map(|c| c.bytes_in);
        self.bytes_out = counts.map(|c| c.bytes_out);
        self.messages_in = counts.map(|c| c.messages_in);
        self.messages_out = counts.map(|c| c.messages_out);
    }
}

/// Bytes and messages a session has carried so far, each way.
///
/// A subscriber that starts from a snapshot can see a message twice: counted in the snapshot
/// and again live (the server subscribes before it takes the snapshot, so nothing is missed).
/// [`SessionCounts::count`] tells the two apart by the message's [`MessageEvent::seq`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionCounts {
    /// Bytes received from the client.
    pub bytes_in: u64,
    /// Bytes sent to the client.
    pub bytes_out: u64,
    /// Messages (reads of the socket, datagrams) received from the client.
    pub messages_in: u64,
    /// Messages (writes, datagrams) sent to the client.
    pub messages_out: u64,
}

impl SessionCounts {
    /// Adds one message of `bytes` going `dir`, unless these counts already include it: a
    /// message whose `seq` is not past the messages counted so far was in the snapshot.
    /// Returns whether it was added. A message without `seq` (an older server) is always added.
    pub fn count(&mut self, dir: Direction, bytes: u64, seq: Option<u64>) -> bool {
        let (total, messages) = match dir {
            Direction::In => (&mut self.bytes_in, &mut self.messages_in),
            Direction::Out => (&mut self.bytes_out, &mut self.messages_out),
        };
        match seq {
            Some(seq) if seq <= *messages => false,
            // Saturating: the figures may come from another instance's events (Redis).
            Some(seq) => {
                *messages = seq;
                *total = total.saturating_add(bytes);
                true
            }
            None => {
                *messages = messages.saturating_add(1);
                *total = total.saturating_add(bytes);
                true
            }
        }
    }
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
    /// The message's number in its session and direction, 1 for the first: a subscriber that
    /// started from a snapshot's [`SessionCounts`] skips the messages it already counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
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

/// `packet`: one IP packet of a session, as the kernel saw it on the wire (`--capture`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PacketEvent {
    /// The session's id.
    pub id: u64,
    /// When socklab's capture thread read it (RFC 3339, microseconds): the kernel hands the
    /// packet over a few microseconds after it crossed the interface.
    pub at: String,
    /// `in`: towards the server; `out`: from it.
    pub dir: Direction,
    /// 4 or 6.
    pub ip: u8,
    /// `tcp` or `udp`.
    pub proto: String,
    /// TCP flags set, in the order SYN, FIN, RST, PSH, ACK, URG, ECE, CWR (empty for UDP).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    /// TCP sequence number relative to the first one seen this way (0 on the SYN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u32>,
    /// TCP acknowledgement number relative to the other way's first sequence number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack: Option<u32>,
    /// TCP receive window, as sent (not scaled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<u16>,
    /// The IP header's length in bytes (with IPv6 extension headers).
    pub ip_header: u16,
    /// The TCP or UDP header's length in bytes (TCP with its options).
    pub transport_header: u16,
    /// The payload's length in bytes.
    pub payload_len: u32,
    /// The first payload bytes (at most the capture's payload limit), in hex.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub payload_hex: String,
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
            MonitorEvent::Packet(e) => Some(e.id),
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
    /// Messages received so far.
    #[serde(default)]
    pub messages_in: u64,
    /// Messages sent so far.
    #[serde(default)]
    pub messages_out: u64,
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
    /// Whether packet capture runs (`--capture` and the privilege to open a raw socket):
    /// `/api/sessions/{id}/pcap` and the `packet` events exist only then.
    #[serde(default)]
    pub capture: bool,
    /// While capture runs: what happened to the packets so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_stats: Option<CaptureStats>,
    /// With `--monitor-redis`: what this instance keeps of the others, and what it refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterInfo>,
}

/// The packet capture's counters in `/api/info` (`--capture`), since the server started. Every
/// packet the kernel passed to socklab's filter is read or dropped by the kernel; every packet
/// read is queued for matching or dropped there; every packet matched to a session is kept or
/// not stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureStats {
    /// Packets the capture thread read from its socket.
    pub read: u64,
    /// Packets the kernel dropped because the socket's buffer was full (its `SO_RXQ_OVFL`
    /// count, as of the last packet read: the kernel reports it with each packet).
    pub kernel_dropped: u64,
    /// Packets read but dropped because the matching thread fell behind.
    pub queue_dropped: u64,
    /// Packets matched to a socklab session.
    pub captured: u64,
    /// Matched packets not kept: `--capture-sessions` sessions were already kept.
    pub unstored: u64,
}

/// The cluster monitor's state in `/api/info` (`--monitor-redis`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterInfo {
    /// Other instances tracked now.
    pub instances: usize,
    /// Their open sessions kept for the monitor now.
    pub remote_sessions: usize,
    /// Messages from Redis dropped as not socklab's (bad JSON, unknown kind, fields too long).
    pub dropped_malformed: u64,
    /// Messages from Redis dropped as larger than `--monitor-redis-max-event`.
    pub dropped_oversized: u64,
    /// Sessions or instances dropped beyond the `--monitor-redis-max-*` caps.
    pub dropped_over_cap: u64,
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
            seq: Some(1),
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

    fn opened(counts: Option<SessionCounts>) -> MonitorEvent {
        let mut o = SessionOpened {
            id: 3,
            kind: SessionKind::Udp,
            peer: "127.0.0.1:5".into(),
            local: "127.0.0.1:6".into(),
            at: "2026-01-01T12:00:00+00:00".into(),
            via: None,
            tag: None,
            handshake: None,
            instance: None,
            bytes_in: None,
            bytes_out: None,
            messages_in: None,
            messages_out: None,
        };
        o.set_counts(counts);
        MonitorEvent::SessionOpened(o)
    }

    #[test]
    fn counts_are_absent_on_live_opens_and_present_on_snapshots() {
        let live = serde_json::to_string(&opened(None)).unwrap();
        for field in ["bytes_in", "bytes_out", "messages_in", "messages_out"] {
            assert!(!live.contains(field), "{live}");
        }
        let back: MonitorEvent = serde_json::from_str(&live).unwrap();
        assert_eq!(back, opened(None));

        let counts = SessionCounts {
            bytes_in: 3,
            bytes_out: 25,
            messages_in: 1,
            messages_out: 1,
        };
        let snap = serde_json::to_string(&opened(Some(counts))).unwrap();
        assert!(
            snap.ends_with(r#""bytes_in":3,"bytes_out":25,"messages_in":1,"messages_out":1}"#),
            "{snap}"
        );
        let back: MonitorEvent = serde_json::from_str(&snap).unwrap();
        assert_eq!(back, opened(Some(counts)));
        let MonitorEvent::SessionOpened(back) = back else {
            unreachable!()
        };
        assert_eq!(back.counts(), Some(counts));
    }

    #[test]
    fn counting_skips_what_a_snapshot_already_counted() {
        let mut c = SessionCounts {
            bytes_in: 6,
            messages_in: 2,
            ..SessionCounts::default()
        };
        assert!(!c.count(Direction::In, 3, Some(2)), "in the snapshot");
        assert!(c.count(Direction::In, 4, Some(3)));
        assert!(c.count(Direction::Out, 5, Some(1)));
        assert!(c.count(Direction::Out, 5, None));
        assert_eq!(
            c,
            SessionCounts {
                bytes_in: 10,
                bytes_out: 10,
                messages_in: 3,
                messages_out: 2,
            }
        );
    }

    #[test]
    fn preview_is_bounded_and_lossy() {
        assert_eq!(preview(b"abc", 2), "ab");
        assert_eq!(preview(b"\xffa", 10), "\u{fffd}a");
        assert_eq!(preview("你好".as_bytes(), 1), "你");
    }
}
