//! JSON into `socklab-protocol`'s types: the monitor feed's events, `/api/info` and
//! `/api/webtransport`. The browser parses the text (`JSON.parse`) and the page reads the
//! fields it needs from the parsed object, by name, as serde's derives would. The other way,
//! a downloaded [`Transcript`] is written into a browser object field by field, as serde's
//! derive would write it, and the browser writes the text (`JSON.stringify`).
//!
//! Why not serde_json in the page: its parser, its error messages (which pull in most of
//! `core::fmt`) and the derived visitors were some 25 KB of the page's wasm, gzipped, for
//! parsing the browser does anyway. The server keeps serde: the structs and their JSON are
//! the protocol crate's. The readers are written against [`Json`], so the unit tests run them
//! natively over `serde_json::Value` and check that they read what the derives read (and the
//! writer, through [`Write`], that it writes what the derive writes).
//!
//! Like the derives, a reader skips fields it does not know and reads an absent optional
//! field as `None` (or its default); unlike them it also reads `null` as absent. Whole numbers
//! are JavaScript numbers, exact up to 2^53 (9 PB as a byte count); a larger or fractional one
//! is malformed. The writer writes every number as a JavaScript number: a whole `rtt_ms` reads
//! `2` where serde_json wrote `2.0`, the same number.

use std::fmt;

use socklab_protocol::events::ClusterInfo;
use socklab_protocol::{
    CaptureStats, Direction, FeedStatus, HandshakeSize, MessageEvent, MonitorEvent, PacketEvent,
    ServerInfo, SessionClosed, SessionKind, SessionOpened, Transcript, TranscriptDir,
    TranscriptMessage, WebTransportInfo,
};

/// A parsed JSON value, read by the decoders below.
pub trait Json: Sized {
    /// The field `key` of an object; `None` when it is absent or `null`, or this is no object.
    fn field(&self, key: &str) -> Option<Self>;
    /// A string's text.
    fn text(self) -> Option<String>;
    /// A number's value.
    fn number(&self) -> Option<f64>;
    /// A boolean's value.
    fn boolean(&self) -> Option<bool>;
    /// An array's items.
    fn items(self) -> Option<Vec<Self>>;
}

/// A field that is missing, or not what the protocol says it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadField(pub &'static str);

impl fmt::Display for BadField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("field `")?;
        f.write_str(self.0)?;
        f.write_str("` is missing or malformed")
    }
}

/// The field `key` read by `read`; `Ok(None)` when absent.
fn opt<J: Json, T>(
    o: &J,
    key: &'static str,
    read: impl FnOnce(J) -> Option<T>,
) -> Result<Option<T>, BadField> {
    match o.field(key) {
        None => Ok(None),
        Some(v) => read(v).map(Some).ok_or(BadField(key)),
    }
}

/// The field `key` read by `read`, which must be there.
fn req<J: Json, T>(
    o: &J,
    key: &'static str,
    read: impl FnOnce(J) -> Option<T>,
) -> Result<T, BadField> {
    opt(o, key, read)?.ok_or(BadField(key))
}

/// A whole number from 0 to 2^53 (JavaScript's exact integers) that fits in `T`.
fn uint<J: Json, T: TryFrom<u64>>(v: J) -> Option<T> {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    let n = v.number()?;
    if !(0.0..=EXACT).contains(&n) || n.fract() != 0.0 {
        return None;
    }
    // Checked above: a whole number in u64's range.
    T::try_from(n as u64).ok()
}

fn text<J: Json>(v: J) -> Option<String> {
    v.text()
}

fn texts<J: Json>(v: J) -> Option<Vec<String>> {
    v.items()?.into_iter().map(J::text).collect()
}

fn kind<J: Json>(v: J) -> Option<SessionKind> {
    let name = v.text()?;
    SessionKind::ALL.into_iter().find(|k| k.as_str() == name)
}

fn direction<J: Json>(v: J) -> Option<Direction> {
    match v.text()?.as_str() {
        "in" => Some(Direction::In),
        "out" => Some(Direction::Out),
        _ => None,
    }
}

/// One monitor event; `Ok(None)` for a type this build does not know (a newer server).
pub fn monitor_event<J: Json>(o: &J) -> Result<Option<MonitorEvent>, BadField> {
    let event = match req(o, "type", text)?.as_str() {
        "session_opened" => MonitorEvent::SessionOpened(session_opened(o)?),
        "message" => MonitorEvent::Message(MessageEvent {
            id: req(o, "id", uint)?,
            kind: req(o, "kind", kind)?,
            dir: req(o, "dir", direction)?,
            bytes: req(o, "bytes", uint)?,
            preview: req(o, "preview", text)?,
            at: req(o, "at", text)?,
            seq: opt(o, "seq", uint)?,
            instance: opt(o, "instance", text)?,
        }),
        "session_closed" => MonitorEvent::SessionClosed(SessionClosed {
            id: req(o, "id", uint)?,
            kind: req(o, "kind", kind)?,
            at: req(o, "at", text)?,
            bytes_in: req(o, "bytes_in", uint)?,
            bytes_out: req(o, "bytes_out", uint)?,
            reason: req(o, "reason", text)?,
            instance: opt(o, "instance", text)?,
        }),
        "lagged" => MonitorEvent::Lagged {
            skipped: req(o, "skipped", uint)?,
        },
        "status" => MonitorEvent::Status(FeedStatus {
            state: req(o, "state", text)?,
            detail: req(o, "detail", text)?,
            instance: opt(o, "instance", text)?,
        }),
        "packet" => MonitorEvent::Packet(packet(o)?),
        _ => return Ok(None),
    };
    Ok(Some(event))
}

fn session_opened<J: Json>(o: &J) -> Result<SessionOpened, BadField> {
    let handshake = |h: J| {
        Some(HandshakeSize {
            request: req(&h, "request", uint).ok()?,
            response: req(&h, "response", uint).ok()?,
        })
    };
    Ok(SessionOpened {
        id: req(o, "id", uint)?,
        kind: req(o, "kind", kind)?,
        peer: req(o, "peer", text)?,
        local: req(o, "local", text)?,
        at: req(o, "at", text)?,
        via: opt(o, "via", uint)?,
        tag: opt(o, "tag", text)?,
        handshake: opt(o, "handshake", handshake)?,
        instance: opt(o, "instance", text)?,
        bytes_in: opt(o, "bytes_in", uint)?,
        bytes_out: opt(o, "bytes_out", uint)?,
        messages_in: opt(o, "messages_in", uint)?,
        messages_out: opt(o, "messages_out", uint)?,
    })
}

fn packet<J: Json>(o: &J) -> Result<PacketEvent, BadField> {
    Ok(PacketEvent {
        id: req(o, "id", uint)?,
        at: req(o, "at", text)?,
        dir: req(o, "dir", direction)?,
        ip: req(o, "ip", uint)?,
        proto: req(o, "proto", text)?,
        flags: opt(o, "flags", texts)?.unwrap_or_default(),
        seq: opt(o, "seq", uint)?,
        ack: opt(o, "ack", uint)?,
        window: opt(o, "window", uint)?,
        ip_header: req(o, "ip_header", uint)?,
        transport_header: req(o, "transport_header", uint)?,
        payload_len: req(o, "payload_len", uint)?,
        payload_hex: opt(o, "payload_hex", text)?.unwrap_or_default(),
    })
}

/// `GET /api/info`.
pub fn server_info<J: Json>(o: &J) -> Result<ServerInfo, BadField> {
    let capture_stats = |s: J| {
        Some(CaptureStats {
            read: req(&s, "read", uint).ok()?,
            kernel_dropped: req(&s, "kernel_dropped", uint).ok()?,
            queue_dropped: req(&s, "queue_dropped", uint).ok()?,
            captured: req(&s, "captured", uint).ok()?,
            unstored: req(&s, "unstored", uint).ok()?,
        })
    };
    let cluster = |c: J| {
        Some(ClusterInfo {
            instances: req(&c, "instances", uint).ok()?,
            remote_sessions: req(&c, "remote_sessions", uint).ok()?,
            dropped_malformed: req(&c, "dropped_malformed", uint).ok()?,
            dropped_oversized: req(&c, "dropped_oversized", uint).ok()?,
            dropped_over_cap: req(&c, "dropped_over_cap", uint).ok()?,
        })
    };
    Ok(ServerInfo {
        version: req(o, "version", text)?,
        tcp: req(o, "tcp", texts)?,
        udp: req(o, "udp", texts)?,
        banner: req(o, "banner", texts)?,
        upstream: req(o, "upstream", text)?,
        max_message: req(o, "max_message", uint)?,
        instance: opt(o, "instance", text)?,
        capture: opt(o, "capture", |v| v.boolean())?.unwrap_or_default(),
        capture_stats: opt(o, "capture_stats", capture_stats)?,
        cluster: opt(o, "cluster", cluster)?,
    })
}

/// `GET /api/webtransport`.
pub fn webtransport_info<J: Json>(o: &J) -> Result<WebTransportInfo, BadField> {
    let bytes = |v: J| v.items()?.into_iter().map(uint).collect();
    Ok(WebTransportInfo {
        url: req(o, "url", text)?,
        cert_sha256: req(o, "cert_sha256", bytes)?,
        udp_drop: opt(o, "udp_drop", |v| v.number())?.unwrap_or_default(),
    })
}

/// A JSON object being written, by [`transcript`].
pub trait Write: Sized {
    /// An empty object.
    fn object() -> Self;
    /// Sets `key` to a string.
    fn text(&mut self, key: &str, value: &str);
    /// Sets `key` to a whole number.
    fn uint(&mut self, key: &str, value: u64);
    /// Sets `key` to a number.
    fn float(&mut self, key: &str, value: f64);
    /// Sets `key` to `true` or `false`.
    fn boolean(&mut self, key: &str, value: bool);
    /// Sets `key` to an array of strings.
    fn texts(&mut self, key: &str, values: &[String]);
    /// Sets `key` to an array of objects.
    fn objects(&mut self, key: &str, values: Vec<Self>);
    /// Sets `key` to an object.
    fn nested(&mut self, key: &str, value: Self);
}

/// A transcript as serde's derive writes it: the fields in their order, the optional ones only
/// when set.
pub fn transcript<W: Write>(t: &Transcript) -> W {
    let mut o = W::object();
    o.text("format", &t.format);
    o.text("recorder", &t.recorder);
    o.text("kind", t.kind.as_str());
    o.text("target", &t.target);
    if let Some(id) = t.session_id {
        o.uint("session_id", id);
    }
    o.text("written_at", &t.written_at);
    o.texts("notes", &t.notes);
    o.uint("omitted", t.omitted);
    if let Some(totals) = t.totals {
        let mut n = W::object();
        n.uint("bytes_sent", totals.bytes_sent);
        n.uint("bytes_received", totals.bytes_received);
        o.nested("totals", n);
    }
    o.objects("messages", t.messages.iter().map(message).collect());
    o
}

fn message<W: Write>(m: &TranscriptMessage) -> W {
    let mut o = W::object();
    o.text("at", &m.at);
    let dir = match m.dir {
        TranscriptDir::Sent => "sent",
        TranscriptDir::Received => "received",
    };
    o.text("dir", dir);
    o.uint("bytes", m.bytes);
    o.text("text", &m.text);
    if m.truncated {
        o.boolean("truncated", true);
    }
    if m.binary {
        o.boolean("binary", true);
    }
    if let Some(ms) = m.rtt_ms {
        o.float("rtt_ms", ms);
    }
    o
}

/// What the browser's `JSON.parse` made.
#[cfg(target_arch = "wasm32")]
impl Json for wasm_bindgen::JsValue {
    fn field(&self, key: &str) -> Option<Self> {
        if !self.is_object() {
            return None;
        }
        js_sys::Reflect::get(self, &wasm_bindgen::JsValue::from_str(key))
            .ok()
            .filter(|v| !v.is_undefined() && !v.is_null())
    }

    fn text(self) -> Option<String> {
        self.as_string()
    }

    fn number(&self) -> Option<f64> {
        self.as_f64()
    }

    fn boolean(&self) -> Option<bool> {
        self.as_bool()
    }

    fn items(self) -> Option<Vec<Self>> {
        js_sys::Array::is_array(&self).then(|| js_sys::Array::from(&self).iter().collect())
    }
}

/// `text` parsed by the browser's `JSON.parse`, or its error message.
#[cfg(target_arch = "wasm32")]
pub fn parse(text: &str) -> Result<wasm_bindgen::JsValue, String> {
    js_sys::JSON::parse(text).map_err(|e| {
        js_sys::Error::from(e)
            .message()
            .as_string()
            .unwrap_or_default()
    })
}

/// A browser object, for `JSON.stringify`.
#[cfg(target_arch = "wasm32")]
impl Write for wasm_bindgen::JsValue {
    fn object() -> Self {
        js_sys::Object::new().into()
    }

    fn text(&mut self, key: &str, value: &str) {
        set(self, key, &value.into());
    }

    fn uint(&mut self, key: &str, value: u64) {
        // Exact up to 2^53 (9 PB): what JavaScript's numbers hold.
        set(self, key, &(value as f64).into());
    }

    fn float(&mut self, key: &str, value: f64) {
        set(self, key, &value.into());
    }

    fn boolean(&mut self, key: &str, value: bool) {
        set(self, key, &value.into());
    }

    fn texts(&mut self, key: &str, values: &[String]) {
        let array: js_sys::Array = values.iter().map(|v| Self::from_str(v)).collect();
        set(self, key, &array);
    }

    fn objects(&mut self, key: &str, values: Vec<Self>) {
        let array: js_sys::Array = values.into_iter().collect();
        set(self, key, &array);
    }

    fn nested(&mut self, key: &str, value: Self) {
        set(self, key, &value);
    }
}

#[cfg(target_arch = "wasm32")]
fn set(o: &wasm_bindgen::JsValue, key: &str, value: &wasm_bindgen::JsValue) {
    // Setting a property of a plain object cannot fail.
    let _ = js_sys::Reflect::set(o, &key.into(), value);
}

/// `value` as text, indented by two spaces (`JSON.stringify(value, null, 2)`), as
/// serde_json's `to_string_pretty` writes it.
#[cfg(target_arch = "wasm32")]
pub fn stringify_pretty(value: &wasm_bindgen::JsValue) -> Result<String, wasm_bindgen::JsValue> {
    js_sys::JSON::stringify_with_replacer_and_space(value, &wasm_bindgen::JsValue::NULL, &2.into())
        .map(String::from)
}

/// Natively (the unit tests), serde_json's reading of the same text.
#[cfg(not(target_arch = "wasm32"))]
impl Json for serde_json::Value {
    fn field(&self, key: &str) -> Option<Self> {
        self.get(key).filter(|v| !v.is_null()).cloned()
    }

    fn text(self) -> Option<String> {
        match self {
            serde_json::Value::String(s) => Some(s),
            _ => None,
        }
    }

    fn number(&self) -> Option<f64> {
        self.as_f64()
    }

    fn boolean(&self) -> Option<bool> {
        self.as_bool()
    }

    fn items(self) -> Option<Vec<Self>> {
        match self {
            serde_json::Value::Array(items) => Some(items),
            _ => None,
        }
    }
}

/// Natively (the unit tests), an object to compare with serde_json's writing.
#[cfg(not(target_arch = "wasm32"))]
impl Write for serde_json::Value {
    fn object() -> Self {
        serde_json::Value::Object(serde_json::Map::new())
    }

    fn text(&mut self, key: &str, value: &str) {
        self[key] = value.into();
    }

    fn uint(&mut self, key: &str, value: u64) {
        self[key] = value.into();
    }

    fn float(&mut self, key: &str, value: f64) {
        self[key] = value.into();
    }

    fn boolean(&mut self, key: &str, value: bool) {
        self[key] = value.into();
    }

    fn texts(&mut self, key: &str, values: &[String]) {
        self[key] = values.into();
    }

    fn objects(&mut self, key: &str, values: Vec<Self>) {
        self[key] = values.into();
    }

    fn nested(&mut self, key: &str, value: Self) {
        self[key] = value;
    }
}

/// Natively (the unit tests): serde_json's pretty text.
#[cfg(not(target_arch = "wasm32"))]
pub fn stringify_pretty(value: &serde_json::Value) -> Result<String, wasm_bindgen::JsValue> {
    serde_json::to_string_pretty(value).map_err(|e| e.to_string().into())
}

/// Natively (the unit tests): serde_json's parse.
#[cfg(not(target_arch = "wasm32"))]
pub fn parse(text: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use socklab_protocol::SessionCounts;

    use super::*;

    fn read(json: &str) -> Result<Option<MonitorEvent>, BadField> {
        monitor_event(&parse(json).expect("JSON"))
    }

    fn opened(counts: Option<SessionCounts>) -> MonitorEvent {
        let mut o = SessionOpened {
            id: 3,
            kind: SessionKind::Ws,
            peer: "[::1]:5".into(),
            local: "127.0.0.1:6".into(),
            at: "2026-01-01T12:00:00+00:00".into(),
            via: Some(2),
            tag: Some("t".into()),
            handshake: Some(HandshakeSize {
                request: 400,
                response: 129,
            }),
            instance: Some("a".into()),
            bytes_in: None,
            bytes_out: None,
            messages_in: None,
            messages_out: None,
        };
        o.set_counts(counts);
        MonitorEvent::SessionOpened(o)
    }

    #[test]
    fn the_page_reads_every_event_as_the_derive_does() {
        let counts = SessionCounts {
            bytes_in: 3,
            bytes_out: 25,
            messages_in: 1,
            messages_out: 1,
        };
        let bare = MonitorEvent::SessionOpened(SessionOpened {
            id: 1,
            kind: SessionKind::Tcp,
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
        });
        let message = MonitorEvent::Message(MessageEvent {
            id: 7,
            kind: SessionKind::Udp,
            dir: Direction::Out,
            bytes: 3,
            preview: "h\"i\n你\u{1}".into(),
            at: "2026-01-01T12:00:00+00:00".into(),
            seq: Some(9),
            instance: Some("a".into()),
        });
        let closed = MonitorEvent::SessionClosed(SessionClosed {
            id: 3,
            kind: SessionKind::Banner,
            at: "2026-01-01T12:00:01+00:00".into(),
            bytes_in: 1,
            bytes_out: 2,
            reason: "client closed".into(),
            instance: None,
        });
        let status = MonitorEvent::Status(FeedStatus {
            state: "degraded".into(),
            detail: "no bus".into(),
            instance: Some("b".into()),
        });
        let packet = |flags: Vec<String>, hex: &str| {
            MonitorEvent::Packet(PacketEvent {
                id: 3,
                at: "2026-01-01T12:00:00.000001+00:00".into(),
                dir: Direction::In,
                ip: 6,
                proto: "tcp".into(),
                flags,
                seq: Some(0),
                ack: None,
                window: Some(65535),
                ip_header: 40,
                transport_header: 40,
                payload_len: 2,
                payload_hex: hex.into(),
            })
        };
        let events = [
            bare,
            opened(None),
            opened(Some(counts)),
            message,
            closed,
            MonitorEvent::Lagged { skipped: 5 },
            status,
            packet(vec!["SYN".into(), "ACK".into()], "6869"),
            packet(Vec::new(), ""),
        ];
        for event in events {
            let json = serde_json::to_string(&event).expect("serialises");
            assert_eq!(read(&json), Ok(Some(event.clone())), "{json}");
            let derived: MonitorEvent = serde_json::from_str(&json).expect("derive");
            assert_eq!(derived, event);
        }
    }

    #[test]
    fn unknown_fields_and_types_are_skipped_and_bad_fields_named() {
        // The type need not come first, and unknown fields are skipped, as with the derive.
        let late = r#"{"skipped":2,"new":[1],"type":"lagged"}"#;
        assert_eq!(read(late), Ok(Some(MonitorEvent::Lagged { skipped: 2 })));
        assert_eq!(
            serde_json::from_str::<MonitorEvent>(late).ok(),
            Some(MonitorEvent::Lagged { skipped: 2 })
        );
        // A newer server's event: skipped, not an error.
        assert_eq!(read(r#"{"type":"newer","x":1}"#), Ok(None));
        // What the derive refuses, named.
        assert_eq!(read(r#"{"type":"lagged"}"#), Err(BadField("skipped")));
        assert_eq!(
            read(r#"{"type":"lagged","skipped":-1}"#),
            Err(BadField("skipped"))
        );
        assert_eq!(
            read(r#"{"type":"lagged","skipped":1.5}"#),
            Err(BadField("skipped"))
        );
        let wide = r#"{"type":"packet","id":1,"at":"t","dir":"in","ip":256,"proto":"udp",
            "ip_header":20,"transport_header":8,"payload_len":0}"#;
        assert_eq!(read(wide), Err(BadField("ip")));
        assert!(serde_json::from_str::<MonitorEvent>(wide).is_err());
        let kind = r#"{"type":"session_closed","id":1,"kind":"sctp","at":"t","bytes_in":0,
            "bytes_out":0,"reason":"r"}"#;
        assert_eq!(read(kind), Err(BadField("kind")));
        assert_eq!(read("[1]"), Err(BadField("type")));
        assert_eq!(
            BadField("peer").to_string(),
            "field `peer` is missing or malformed"
        );
    }

    #[test]
    fn server_info_and_webtransport_read_as_the_derive_does() {
        let info = ServerInfo {
            version: "0.1.0".into(),
            tcp: vec!["0.0.0.0:21566".into(), "[::]:21566".into()],
            udp: vec!["0.0.0.0:21566".into()],
            banner: Vec::new(),
            upstream: "127.0.0.1:21566".into(),
            max_message: 65536,
            instance: Some("a".into()),
            capture: true,
            capture_stats: Some(CaptureStats {
                read: 1,
                kernel_dropped: 2,
                queue_dropped: 3,
                captured: 4,
                unstored: 5,
            }),
            cluster: Some(ClusterInfo {
                instances: 2,
                remote_sessions: 3,
                dropped_malformed: 4,
                dropped_oversized: 5,
                dropped_over_cap: 6,
            }),
        };
        let json = serde_json::to_string(&info).expect("serialises");
        assert_eq!(server_info(&parse(&json).expect("JSON")), Ok(info));
        let plain = r#"{"version":"1","tcp":[],"udp":[],"banner":["127.0.0.1:21567"],
            "upstream":"127.0.0.1:1","max_message":1}"#;
        let derived: ServerInfo = serde_json::from_str(plain).expect("derive");
        assert_eq!(server_info(&parse(plain).expect("JSON")), Ok(derived));
        assert_eq!(
            server_info(&parse(r#"{"version":"1"}"#).expect("JSON")),
            Err(BadField("tcp"))
        );

        let wt = WebTransportInfo {
            url: "https://127.0.0.1:4433/".into(),
            cert_sha256: vec![0, 1, 255],
            udp_drop: 0.25,
        };
        let json = serde_json::to_string(&wt).expect("serialises");
        assert_eq!(webtransport_info(&parse(&json).expect("JSON")), Ok(wt));
        let bad = r#"{"url":"u","cert_sha256":[256]}"#;
        assert_eq!(
            webtransport_info(&parse(bad).expect("JSON")),
            Err(BadField("cert_sha256"))
        );
        let no_drop = r#"{"url":"u","cert_sha256":[]}"#;
        let derived: WebTransportInfo = serde_json::from_str(no_drop).expect("derive");
        assert_eq!(
            webtransport_info(&parse(no_drop).expect("JSON")),
            Ok(derived)
        );
    }

    #[test]
    fn a_transcript_is_written_as_the_derive_writes_it() {
        use socklab_protocol::transcript::Totals;
        let mut t = Transcript::new("page", SessionKind::Tcp, "a → b", "now");
        let bare = serde_json::to_value(&t).expect("serialises");
        assert_eq!(transcript::<serde_json::Value>(&t), bare);
        t.session_id = Some(4);
        t.notes = vec!["exact sizes".into(), "二".into()];
        t.omitted = 2;
        t.totals = Some(Totals {
            bytes_sent: 3,
            bytes_received: 27,
        });
        let sent = TranscriptMessage {
            at: "2026-11-30T12:00:00.000Z".into(),
            dir: TranscriptDir::Sent,
            bytes: 3,
            text: "hi\n".into(),
            truncated: false,
            binary: false,
            rtt_ms: None,
        };
        let received = TranscriptMessage {
            dir: TranscriptDir::Received,
            truncated: true,
            binary: true,
            rtt_ms: Some(1.5),
            ..sent.clone()
        };
        t.messages = vec![sent, received];
        let full = serde_json::to_value(&t).expect("serialises");
        assert_eq!(transcript::<serde_json::Value>(&t), full);
    }
}
