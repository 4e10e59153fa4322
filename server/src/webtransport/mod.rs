//! WebTransport: B/S over UDP. The browser has no raw UDP socket either; WebTransport (HTTP/3
//! over QUIC over UDP) is its datagram path, as WebSocket is its stream path.
//!
//! * Every WebTransport session gets its **own** UDP socket to the UDP echo (or
//!   `--udp-upstream`): each datagram from the browser is sent there as one UDP datagram, each
//!   reply comes back as one datagram. Nothing is retried, reordered or buffered: what UDP
//!   loses stays lost, which is the lesson.
//! * Every bidirectional stream the browser opens gets its own TCP connection to the TCP echo
//!   (or `--upstream`), exactly like a `/ws` session: bytes go up verbatim, replies come back
//!   line by line, the unfinished line when the upstream pauses.
//! * The certificate is self-signed ECDSA P-256, valid 13 days (browsers accept
//!   `serverCertificateHashes` only for certificates valid at most 14 days), and replaced at
//!   half its life without touching open sessions (`Endpoint::reload_config`). Its SHA-256 is
//!   what `GET /api/webtransport` gives the page. `--tls-cert`/`--tls-key` use a real one.
//!
//! Sessions close with the same codes as `/ws` (as QUIC application error codes): 1001 for idle
//! and shutdown, 1011 when the upstream fails; a stream whose upstream is unreachable or fails
//! is reset with 1011.

mod cert;
mod endpoint;
mod session;
mod stream;

pub use cert::WtError;
pub(crate) use endpoint::{WtListener, bind, serve};
