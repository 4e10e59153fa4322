//! The WebSocket bridge `/ws`: the browser cannot open raw TCP, so each WebSocket session gets
//! its own TCP connection to the upstream (this server's echo, or `--upstream`), and the bridge
//! forwards both ways: client messages become lines, upstream lines become messages.
//!
//! One task per session, one `select!` loop, no channels: while a send waits (a slow browser,
//! a slow upstream) nothing else is read, so backpressure reaches the other side through TCP and
//! no buffer grows without bound.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
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
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite;

use crate::http::{ConnAddrs, check_origin, headers_len, request_head_len};
use crate::liveness::{Beat, Liveness, ping};
use crate::registry::{Extra, LinkGuard, Session};
use crate::shared::Shared;
use crate::tcp_echo::{ReadNow, read_now, with_read_buf};

/// tungstenite's read buffer; its 128 KiB default would cost gigabytes at 10k sessions.
pub(crate) const READ_BUFFER: usize = 4 * 1024;
/// Upstream reply bytes turned into messages before they are sent, so a fast upstream is
/// forwarded in bounded batches.
const BATCH_BYTES: usize = 64 * 1024;
/// How long the upstream may take to accept the bridge's connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a closing peer gets to answer our close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

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

/// Small buffers and the message limit for one WebSocket.
pub(crate) fn tune(ws: WebSocketUpgrade, shared: &Shared) -> WebSocketUpgrade {
    let max = shared.config.max_message;
    ws.read_buffer_size(READ_BUFFER)
        // Write frames out at once rather than gathering 128 KiB first.
        .write_buffer_size(0)
        // A browser that stops reading makes sends wait, not this buffer grow.
        .max_write_buffer_size(max.saturating_mul(2).max(READ_BUFFER * 4))
        .max_message_size(max)
        .max_frame_size(max)
}

/// The `101 Switching Protocols` head as hyper will write it (it adds `date`).
fn response_head_len(response: &Response) -> u64 {
    let status_line = "HTTP/1.1 101 Switching Protocols\r\n".len();
    let date = "date: Wed, 25 Nov 2026 22:04:35 GMT\r\n".len();
    (status_line + headers_len(response.headers()) + date + 2) as u64
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

/// Opens the session's own connection to the upstream, linked to the session so the monitor
/// can show which echo connection serves which browser.
pub(crate) async fn connect_upstream(
    shared: &Shared,
    id: u64,
) -> io::Result<(TcpStream, LinkGuard)> {
    let addr = tokio::net::lookup_host(&shared.upstream)
        .await?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address for that name"))?;
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // Bound to the exact source address the route gives (not the unspecified one), so the
    // link names the very (address, port) pair the echo's accept will see, and it exists
    // before the echo can accept us: with `--proxy-protocol` the echo skips the header check
    // only for that pair, never for a mere port match.
    socket.bind(SocketAddr::new(source_ip(addr)?, 0))?;
    let local = socket.local_addr()?;
    let mut link = shared.registry.link(local, id);
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(addr))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    let connected = stream.local_addr()?;
    if connected != local {
        // Not expected (the socket was bound to one address); keep the link true anyway.
        tracing::debug!(%local, %connected, "upstream socket's address changed on connect");
        link = shared.registry.link(connected, id);
    }
    let _ = stream.set_nodelay(true);
    Ok((stream, link))
}

/// The source address the kernel would use to reach `dest`, found by connecting a UDP socket
/// (which sends nothing). For a loopback or unspecified `dest` (`0.0.0.0` reaches this host)
/// it is a loopback address.
fn source_ip(dest: SocketAddr) -> io::Result<IpAddr> {
    let any = match dest {
        SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
    };
    let probe = std::net::UdpSocket::bind(any)?;
    probe.connect(dest)?;
    Ok(probe.local_addr()?.ip())
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

/// Maps a WebSocket read error to the close code the client should get (None: the peer is
/// gone, there is nobody to tell) and a reason in words.
pub(crate) fn classify(err: &axum::Error, max_message: usize) -> (Option<u16>, String) {
    let inner = std::error::Error::source(err)
        .and_then(|e| e.downcast_ref::<tungstenite::Error>())
        .or_else(|| {
            let e: &(dyn std::error::Error + 'static) = err;
            e.downcast_ref::<tungstenite::Error>()
        });
    match inner {
        Some(tungstenite::Error::Capacity(_)) => (
            Some(close_code::TOO_BIG),
            format!("message too big: the limit is {max_message} bytes"),
        ),
        Some(tungstenite::Error::Utf8(_)) => (
            Some(close_code::INVALID_DATA),
            "invalid UTF-8 in a text message".to_owned(),
        ),
        Some(tungstenite::Error::Protocol(p)) => (
            Some(close_code::PROTOCOL_ERROR),
            format!("protocol error: {p}"),
        ),
        Some(tungstenite::Error::Io(e)) => (None, format!("client went away: {e}")),
        Some(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
            (None, "client went away".to_owned())
        }
        _ => (None, format!("client error: {err}")),
    }
}

/// Sends a close frame and waits briefly for the peer's answer, so the close is clean.
pub(crate) async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
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
pub(crate) async fn answer_close(socket: &mut WebSocket) {
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, socket.flush()).await;
}

/// A close reason may hold at most 123 bytes (RFC 6455 §5.5); cut at a character boundary.
fn truncate_reason(reason: &str) -> &str {
    let end = reason
        .char_indices()
        .map(|(at, c)| at + c.len_utf8())
        .take_while(|&end| end <= 123)
        .last()
        .unwrap_or(0);
    reason.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_fit_in_a_close_frame() {
        assert_eq!(truncate_reason("short"), "short");
        let long = "é".repeat(100);
        let cut = truncate_reason(&long);
        assert!(cut.len() <= 123 && cut.len().is_multiple_of(2));
    }

    #[test]
    fn lines_become_text_or_binary() {
        assert!(matches!(to_message(b"[t]:hi\n"), Message::Text(t) if t.as_str() == "[t]:hi"));
        assert!(matches!(to_message(b"\xff\n"), Message::Binary(b) if &b[..] == b"\xff"));
    }
}
