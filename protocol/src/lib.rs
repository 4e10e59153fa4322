//! socklab's shared core: everything the server and the page must agree on, with no sockets,
//! no clock and no async runtime, so it builds for `wasm32-unknown-unknown` too.
//!
//! # Layout
//! * [`framing`] — the line framer ([`LineFramer`]) and the lesson's stamp
//!   ([`Stamp`], [`Stamper`]): bytes in, stamped reply bytes out. The TCP echo, the UDP echo
//!   and the WebSocket bridge all use it, so "stamping" exists exactly once.
//! * [`events`] — the monitor feed's JSON events (`/api/events`) and the `/api/sessions`
//!   snapshot; the page deserialises the very same structs.
//! * [`wire`] — sizes of headers on the wire (WebSocket frames, TCP/UDP/IP), for the page's
//!   teaching strip and for tests.
//! * [`client_text`] — parsers of text a client chooses (Origin, Host/`:authority`, `?tag=`,
//!   `X-Forwarded-For`): total functions that never slice a client's string at a computed
//!   offset, property-tested and fuzzed.
//! * [`transcript`] — session records: the JSON the page downloads and `socklab-client
//!   --record` writes, and their text in the lesson's look (`→ hi` / `← [time]:hi`).
//! * `proxy_header` (feature `proxy-header`) — the PROXY protocol header, sans-IO: how much to
//!   read, and whom it names.
//! * `ws_frames` (feature `ws-frames`) — the server side of a WebSocket's frames, sans-IO:
//!   the client's bytes in, messages and control frames out (or the close code they earned);
//!   the server's frames written into a buffer.
//! * Constants below: default ports, the lesson's banner text, close codes.

pub mod client_text;
pub mod events;
pub mod framing;
#[cfg(any(test, feature = "proxy-header"))]
pub mod proxy_header;
pub mod transcript;
pub mod wire;
#[cfg(any(test, feature = "ws-frames"))]
pub mod ws_frames;

pub use events::{
    CaptureStats, Direction, FeedStatus, HandshakeSize, MessageEvent, MonitorEvent, PacketEvent,
    ServerInfo, SessionClosed, SessionCounts, SessionInfo, SessionKind, SessionOpened,
    SessionsSnapshot, WebTransportInfo,
};
pub use framing::{LineFramer, STAMP_LEN, Stamp, Stamper};
pub use transcript::{TRANSCRIPT_FORMAT, Transcript, TranscriptDir, TranscriptMessage};

/// The lesson's TCP server port (`server.py`), used for the TCP and the UDP echo.
pub const DEFAULT_ECHO_PORT: u16 = 21566;
/// The lesson's banner server port.
pub const DEFAULT_BANNER_PORT: u16 = 9001;
/// Where the HTTP side (page, `/ws`, `/api/*`) listens by default.
pub const DEFAULT_HTTP_PORT: u16 = 8080;
/// Where the WebTransport (HTTP/3, UDP) side listens by default.
pub const DEFAULT_WEBTRANSPORT_PORT: u16 = 4433;
/// The lesson's welcome text; the server appends `\r\n`.
pub const DEFAULT_BANNER_TEXT: &str = "欢迎访问菜鸟教程!";
/// How many characters of a message the monitor feed previews.
pub const PREVIEW_CHARS: usize = 200;

/// WebSocket close codes socklab uses (RFC 6455 §7.4.1), with the names the page shows.
pub mod close_code {
    /// Normal closure: the upstream closed its side.
    pub const NORMAL: u16 = 1000;
    /// Going away: idle timeout or server shutdown.
    pub const GOING_AWAY: u16 = 1001;
    /// Protocol error: a malformed frame.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// No close frame was received (never sent on the wire; reported by the browser).
    pub const ABNORMAL: u16 = 1006;
    /// Invalid data: a text frame that is not UTF-8.
    pub const INVALID_DATA: u16 = 1007;
    /// Message too big: over `--max-message`.
    pub const TOO_BIG: u16 = 1009;
    /// Internal error: the upstream is unreachable or failed.
    pub const SERVER_ERROR: u16 = 1011;

    /// The standard name of a close code, in English.
    pub fn name(code: u16) -> &'static str {
        match code {
            1000 => "normal closure",
            1001 => "going away",
            1002 => "protocol error",
            1003 => "unsupported data",
            1005 => "no status received",
            1006 => "abnormal closure (no close frame)",
            1007 => "invalid data",
            1008 => "policy violation",
            1009 => "message too big",
            1010 => "missing extension",
            1011 => "server error",
            1012 => "service restart",
            1013 => "try again later",
            1015 => "TLS handshake failed",
            _ => "unknown",
        }
    }
}
