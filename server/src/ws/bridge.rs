//! The WebSocket bridge `/ws`: the browser cannot open raw TCP, so each WebSocket session gets
//! its own TCP connection to the upstream (this server's echo, or `--upstream`), and the bridge
//! forwards both ways: client messages become lines, upstream lines become messages.
//!
//! One task per session, one `select!` loop, no channels: while a send waits (a slow browser,
//! a slow upstream) nothing else is read, so backpressure reaches the other side through TCP and
//! no buffer grows without bound.

use std::io;
use std::sync::Arc;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::SinkExt;
use serde::Deserialize;
use socklab_protocol::client_text::sanitize_tag;
use socklab_protocol::events::HandshakeSize;
use socklab_protocol::framing::{LinePayload, line_payload, text_to_line};
use socklab_protocol::{LineFramer, SessionKind, close_code};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::http::access::{ConnAddrs, check_origin};
use crate::net::read::{ReadNow, read_now, with_read_buf};
use crate::net::upstream::connect_upstream;
use crate::registry::{Extra, Session};
use crate::state::Shared;
use crate::ws::liveness::{Beat, Liveness, ping};
use crate::ws::socket::{CLOSE_TIMEOUT, answer_close, classify, close, tune};

/// Upstream reply bytes turned into messages before they are sent, so a fast upstream is
/// forwarded in bounded batches.
const BATCH_BYTES: usize = 64 * 1024;
/// `?tag=`: a label the client picks to find its own session on the monitor. It is the only
/// parameter, and nothing a client sends can change where the bridge connects.
#[derive(Debug, Deserialize)]
pub(crate) struct BridgeQuery {
    tag: Option<String>,
}

/// `GET /ws`: checks Origin and the connection limit, then upgrades.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn handler(
    ws: WebSocketUpgrade,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<BridgeQuery>,
    Extension(addrs): Extension<ConnAddrs>,
    State(shared): State<Arc<Shared>>,
) -> Response {
    if let Err(refused) = check_origin(&headers, &shared) {
        return refused.into_response();
    }
    // Bridged to this server's own echo, a session needs two slots: its own and its upstream
    // connection's. With one left, refuse now (503) rather than close with a misleading
    // "upstream closed" when the echo turns the upstream away.
    let needed = if shared.config.upstream.is_none() {
        2
    } else {
        1
    };
    let permit = if shared.limit.available_permits() >= needed {
        Arc::clone(&shared.limit).try_acquire_owned().ok()
    } else {
        None
    };
    let Some(permit) = permit else {
        tracing::warn!(peer = %addrs.peer, "connection limit reached: WebSocket refused");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "socklab is at its --max-connections limit; try again later\n",
        )
            .into_response();
    };
    let tag = query.tag.map(|t| sanitize_tag(&t));
    let request = request_head_len(&method, &uri, &headers);
    let tracked = shared.tracker.token();
    let ws = tune(ws, &shared);
    let shared2 = Arc::clone(&shared);
    let response_size = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let response_size2 = Arc::clone(&response_size);
    let response = ws
        .on_failed_upgrade(|err| tracing::warn!(cause = %err, "WebSocket upgrade failed"))
        .on_upgrade(move |socket| async move {
            let handshake = HandshakeSize {
                request,
                response: response_size2.load(std::sync::atomic::Ordering::Relaxed),
            };
            let session = shared2.registry.open(
                SessionKind::Ws,
                addrs.peer,
                addrs.local,
                Extra {
                    tag,
                    handshake: Some(handshake),
                },
            );
            run(socket, session, shared2).await;
            drop(permit);
            drop(tracked);
        });
    response_size.store(
        response_head_len(&response),
        std::sync::atomic::Ordering::Relaxed,
    );
    response
}

/// The `101 Switching Protocols` head as hyper will write it (it adds `date`).
fn response_head_len(response: &Response) -> u64 {
    let status_line = "HTTP/1.1 101 Switching Protocols\r\n".len();
    let date = "date: Wed, 25 Nov 2026 22:04:35 GMT\r\n".len();
    (status_line + headers_len(response.headers()) + date + 2) as u64
}

/// The size of a request head as it came on the wire (request line, headers, blank line).
pub fn request_head_len(method: &Method, uri: &Uri, headers: &HeaderMap) -> u64 {
    let target = uri.path_and_query().map(|p| p.as_str().len()).unwrap_or(1);
    // "GET " + target + " HTTP/1.1\r\n"
    let line = method.as_str().len() + 1 + target + " HTTP/1.1\r\n".len();
    (line + headers_len(headers) + 2) as u64
}

/// The bytes of `name: value\r\n` for every header.
pub fn headers_len(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(k, v)| k.as_str().len() + 2 + v.len() + 2)
        .sum()
}

/// One bridged session, from upgrade to close.
async fn run(mut socket: WebSocket, mut session: Session, shared: Arc<Shared>) {
    let connecting = std::time::Instant::now();
    let (mut upstream, _link) = match connect_upstream(&shared, session.id()).await {
        Ok(pair) => {
            shared
                .registry
                .metrics()
                .upstream_connected(connecting.elapsed());
            pair
        }
        Err(err) => {
            let why = format!("upstream {} unreachable: {err}", shared.upstream);
            tracing::warn!(id = session.id(), "{why}");
            session.set_reason(why.clone());
            close(&mut socket, close_code::SERVER_ERROR, &why).await;
            return;
        }
    };
    let config = &shared.config;
    let mut framer = LineFramer::new(config.max_message);
    let mut line = Vec::new();
    let mut batch: Vec<Message> = Vec::new();
    let idle = config.idle_timeout();
    let write_timeout = config.write_timeout();
    let mut idle_deadline = Instant::now() + idle;
    let mut liveness = Liveness::new(config.ping_interval());
    // Made once per session, not once per message: a fresh `sleep_until` registers a timer and
    // a fresh `cancelled()` locks the shutdown token's waiter list on every pass of the loop.
    // The idle timer is only moved when it fires early.
    let idle_timer = tokio::time::sleep_until(idle_deadline);
    tokio::pin!(idle_timer);
    let shutdown = shared.shutdown.cancelled();
    tokio::pin!(shutdown);
    // When the oldest message not yet answered went upstream: the round trip's start.
    let mut awaiting: Option<std::time::Instant> = None;
    loop {
        tokio::select! {
            msg = socket.recv() => {
                liveness.heard();
                let data: &[u8] = match &msg {
                    Some(Ok(Message::Text(text))) => {
                        line.clear();
                        text_to_line(text.as_str(), &mut line);
                        session.received(text.as_bytes());
                        &line
                    }
                    Some(Ok(Message::Binary(bytes))) => {
                        session.received(bytes);
                        bytes
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(frame))) => {
                        session.set_reason(match frame {
                            Some(f) => format!("client closed ({} {})", f.code, f.reason),
                            None => "client closed".to_owned(),
                        });
                        answer_close(&mut socket).await;
                        break;
                    }
                    Some(Err(err)) => {
                        let (code, why) = classify(err, config.max_message);
                        session.set_reason(why.clone());
                        if let Some(code) = code {
                            tracing::info!(id = session.id(), code, "{why}");
                            close(&mut socket, code, &why).await;
                        }
                        break;
                    }
                    None => {
                        session.set_reason("client went away");
                        break;
                    }
                };
                idle_deadline = Instant::now() + idle;
                if data.is_empty() {
                    continue;
                }
                match tokio::time::timeout(write_timeout, upstream.write_all(data)).await {
                    Ok(Ok(())) => {
                        awaiting.get_or_insert_with(std::time::Instant::now);
                    }
                    Ok(Err(err)) => {
                        let why = format!("upstream failed: {err}");
                        session.set_reason(why.clone());
                        close(&mut socket, close_code::SERVER_ERROR, &why).await;
                        break;
                    }
                    Err(_) => {
                        let why = "upstream stopped reading".to_owned();
                        session.set_reason(why.clone());
                        close(&mut socket, close_code::SERVER_ERROR, &why).await;
                        break;
                    }
                }
            }
            ready = upstream.readable() => {
                let drained = match ready {
                    Ok(()) => drain_upstream(&upstream, &mut framer, &mut batch),
                    Err(err) => Err(err),
                };
                if !batch.is_empty() {
                    if let Some(sent) = awaiting.take() {
                        shared.registry.metrics().round_trip(sent);
                    }
                    idle_deadline = Instant::now() + idle;
                    let sent = tokio::time::timeout(write_timeout, send_batch(&mut socket, &session, &mut batch)).await;
                    match sent {
                        Ok(Ok(())) => {}
                        Ok(Err(err)) => {
                            session.set_reason(format!("client went away: {err}"));
                            break;
                        }
                        Err(_) => {
                            session.set_reason(format!(
                                "client not reading: messages blocked for {}s",
                                write_timeout.as_secs()
                            ));
                            break;
                        }
                    }
                }
                match drained {
                    Ok(false) => {}
                    // At shutdown the echo closes its side too: the client hears the real
                    // reason, 1001, not "upstream closed".
                    Ok(true) | Err(_) if shared.shutdown.is_cancelled() => {
                        session.set_reason("server shutting down");
                        close(&mut socket, close_code::GOING_AWAY, "server shutting down").await;
                        break;
                    }
                    Ok(true) => {
                        session.set_reason("upstream closed");
                        close(&mut socket, close_code::NORMAL, "upstream closed the connection").await;
                        break;
                    }
                    Err(err) => {
                        let why = format!("upstream failed: {err}");
                        session.set_reason(why.clone());
                        close(&mut socket, close_code::SERVER_ERROR, &why).await;
                        break;
                    }
                }
            }
            beat = liveness.due() => {
                if beat == Beat::Silent {
                    session.set_reason("peer stopped answering pings");
                    break;
                }
                if !ping(&mut socket, write_timeout).await {
                    session.set_reason("client went away");
                    break;
                }
            }
            () = &mut idle_timer => {
                if idle_deadline > Instant::now() {
                    idle_timer.as_mut().reset(idle_deadline);
                    continue;
                }
                let why = format!("idle for {}s", idle.as_secs());
                session.set_reason(why.clone());
                close(&mut socket, close_code::GOING_AWAY, &why).await;
                break;
            }
            () = &mut shutdown => {
                session.set_reason("server shutting down");
                close(&mut socket, close_code::GOING_AWAY, "server shutting down").await;
                break;
            }
        }
    }
    // Tell the upstream we are done; it sees a clean FIN, not a reset.
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, upstream.shutdown()).await;
}

/// Reads everything the upstream has ready and turns it into messages, one per line; the
/// unfinished line goes too when the upstream paused. Returns whether the upstream closed.
fn drain_upstream(
    upstream: &TcpStream,
    framer: &mut LineFramer,
    batch: &mut Vec<Message>,
) -> io::Result<bool> {
    with_read_buf(|buf| {
        let mut batched = 0;
        loop {
            if batched >= BATCH_BYTES {
                return Ok(false);
            }
            match read_now(upstream, buf) {
                Ok(ReadNow::Eof) => {
                    framer.flush(|piece| batch.push(to_message(piece)));
                    return Ok(true);
                }
                Ok(ReadNow::Data { n, drained }) => {
                    batched += n;
                    framer.push(&buf[..n], |piece| batch.push(to_message(piece)));
                    if drained {
                        framer.flush(|piece| batch.push(to_message(piece)));
                        return Ok(false);
                    }
                }
                Ok(ReadNow::WouldBlock) => {
                    framer.flush(|piece| batch.push(to_message(piece)));
                    return Ok(false);
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    framer.flush(|piece| batch.push(to_message(piece)));
                    return Err(err);
                }
            }
        }
    })
}

/// One upstream line, without its `\n`: text when it is UTF-8, binary otherwise.
fn to_message(piece: &[u8]) -> Message {
    match line_payload(piece) {
        LinePayload::Text(text) => Message::Text(Utf8Bytes::from(text)),
        LinePayload::Binary(bytes) => Message::Binary(Bytes::copy_from_slice(bytes)),
    }
}

/// Sends a batch with one flush at the end (one write for many small frames).
async fn send_batch(
    socket: &mut WebSocket,
    session: &Session,
    batch: &mut Vec<Message>,
) -> Result<(), axum::Error> {
    for msg in batch.drain(..) {
        match &msg {
            Message::Text(t) => session.sent(t.as_bytes()),
            Message::Binary(b) => session.sent(b),
            _ => {}
        }
        socket.feed(msg).await?;
    }
    socket.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_text_or_binary() {
        assert!(matches!(to_message(b"[t]:hi\n"), Message::Text(t) if t.as_str() == "[t]:hi"));
        assert!(matches!(to_message(b"\xff\n"), Message::Binary(b) if &b[..] == b"\xff"));
    }
}
