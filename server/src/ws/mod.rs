//! The browser's WebSocket endpoints: the bridge `/ws` (a TCP connection per session) and the
//! monitor feed `/api/events`, on one set of WebSocket helpers and one liveness timer.

pub mod bridge;
pub mod handshake;
pub mod liveness;
pub mod monitor;
pub mod socket;
