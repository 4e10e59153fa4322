//! The monitor feed's WebSocket plumbing (axum's `WebSocket` over tungstenite): small buffers
//! and the message limit, and the close handshake. The bridge `/ws` speaks WebSocket on its
//! own connection instead ([`socklab_protocol::ws_frames`]).

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use futures_util::SinkExt;

use crate::state::Shared;
use socklab_protocol::ws_frames::truncate_reason;

/// tungstenite's read buffer: its 128 KiB default would cost gigabytes at 10k sessions. It is
/// also what tungstenite zeroes before *every* read (`BytesMut::resize`), a message's and the
/// one that finds the socket empty, and the most one read takes: 4 KiB was 8 KiB of `memset`
/// per message, half the bridge's user-space instructions, and at 1,000 sessions a cold 4 KiB
/// per session that evicted everything else (most of its cache misses). 1 KiB takes a
/// typical message in one read; a 64 KiB one takes 64 reads instead of 16.
pub const READ_BUFFER: usize = 1024;
/// The least a WebSocket may queue unsent before sends wait (see [`tune`]).
const MIN_WRITE_BUFFER: usize = 16 * 1024;
/// How long a closing peer gets to answer our close frame.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// The most a WebSocket queues unsent before its sends wait: twice `--max-message`, at least
/// [`MIN_WRITE_BUFFER`]. A frame larger than this cannot be sent at all.
pub fn write_buffer(shared: &Shared) -> usize {
    shared
        .config
        .max_message
        .saturating_mul(2)
        .max(MIN_WRITE_BUFFER)
}

/// Small buffers and the message limit for one WebSocket.
pub fn tune(ws: WebSocketUpgrade, shared: &Shared) -> WebSocketUpgrade {
    let max = shared.config.max_message;
    ws.read_buffer_size(READ_BUFFER)
        // Write frames out at once rather than gathering 128 KiB first.
        .write_buffer_size(0)
        // A browser that stops reading makes sends wait, not this buffer grow.
        .max_write_buffer_size(write_buffer(shared))
        .max_message_size(max)
        .max_frame_size(max)
}

/// Sends a close frame and waits briefly for the peer's answer, so the close is clean.
pub async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from(truncate_reason(reason)),
    };
    if tokio::time::timeout(CLOSE_TIMEOUT, socket.send(Message::Close(Some(frame))))
        .await
        .map_or(true, |r| r.is_err())
    {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        while let Some(Ok(msg)) = socket.recv().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// Sends the close frame tungstenite queued in reply to the client's close (it goes out only
/// with the next write or flush), so the client sees a clean close, not a dropped connection.
pub async fn answer_close(socket: &mut WebSocket) {
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, socket.flush()).await;
}
