//! The WebSocket bridge `/ws`: the browser cannot open raw TCP, so each WebSocket session gets
//! its own TCP connection to the upstream (this server's echo, or `--upstream`), and the bridge
//! forwards both ways: client messages become lines, upstream lines become messages.
//!
//! One task per session, one event loop, no channels: while a send waits (a slow browser, a
//! slow upstream) nothing else is read, so backpressure reaches the other side through TCP and
//! no buffer grows without bound.
//!
//! Per message the loop polls only its two sockets ([`Bridge::poll_event`]): the one timer
//! (pings, silence, idleness: clock checks against deadlines, re-armed only when it fires) and
//! shutdown are polled only when they woke the task, a write's timeout is armed only when the
//! write cannot finish at once, and the clock is read once per event.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use socklab_protocol::events::HandshakeSize;
use socklab_protocol::framing::{LinePayload, line_payload, text_to_line};
use socklab_protocol::{LineFramer, SessionKind, close_code};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::WaitForCancellationFutureOwned;

use crate::http::access::{Admitted, BridgeQuery, ConnAddrs};
use crate::net::relay::drain_lines;
use crate::net::upstream::connect_upstream;
use crate::net::wake::{Gate, within, write_within};
use crate::registry::{Extra, LinkGuard, Session};
use crate::state::Shared;
use crate::ws::liveness::{Beat, Heartbeat, ping};
use crate::ws::socket::{CLOSE_TIMEOUT, answer_close, classify, close, tune};

/// `GET /ws` (Origin rule and connection slot: [`Admitted`]): upgrades, then bridges.
pub(crate) async fn handler(
    ws: WebSocketUpgrade,
    head: Parts,
    Query(query): Query<BridgeQuery>,
    Extension(addrs): Extension<ConnAddrs>,
    State(shared): State<Arc<Shared>>,
    Admitted { permit }: Admitted<true>,
) -> Response {
    let tag = query.tag();
    let request = request_head_len(&head.method, &head.uri, &head.headers);
    let tracked = shared.tracker.token();
    let ws = tune(ws, &shared);
    let shared2 = Arc::clone(&shared);
    let response_size = Arc::new(AtomicU64::new(0));
    let response_size2 = Arc::clone(&response_size);
    let response = ws
        .on_failed_upgrade(|err| tracing::warn!(cause = %err, "WebSocket upgrade failed"))
        .on_upgrade(move |socket| async move {
            let handshake = HandshakeSize {
                request,
                response: response_size2.load(Ordering::Relaxed),
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
    response_size.store(response_head_len(&response), Ordering::Relaxed);
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

/// One bridged session, from upgrade to close: connect the upstream, then hand each event to
/// [`Bridge`] until one ends the session, and end it in [`Bridge::finish`].
async fn run(mut socket: WebSocket, mut session: Session, shared: Arc<Shared>) {
    let connecting = std::time::Instant::now();
    let (upstream, link) = match connect_upstream(&shared, session.id()).await {
        Ok(pair) => pair,
        Err(err) => {
            let why = format!("upstream {} unreachable: {err}", shared.upstream);
            tracing::warn!(id = session.id(), "{why}");
            let end = End::closing(close_code::SERVER_ERROR, why);
            return farewell(&mut socket, &mut session, end).await;
        }
    };
    let metrics = shared.registry.metrics();
    metrics.upstream_connected(connecting.elapsed());
    let mut bridge = Bridge::new(socket, upstream, link, session, &shared);
    let end = loop {
        let flow = match std::future::poll_fn(|cx| bridge.poll_event(cx)).await {
            Event::Client(msg) => bridge.on_client(msg).await,
            Event::Upstream(ready) => bridge.on_upstream(ready).await,
            Event::Tick => bridge.on_tick().await,
            Event::Shutdown => End::shutting_down().into(),
        };
        if let Flow::End(end) = flow {
            break end;
        }
    };
    bridge.finish(end).await;
}

/// What woke a session.
enum Event {
    /// A message (or error, or the end) from the client.
    Client(Option<Result<Message, axum::Error>>),
    /// The upstream is readable (or failed).
    Upstream(io::Result<()>),
    /// The session's timer fired: see [`Bridge::on_tick`].
    Tick,
    /// The server is shutting down.
    Shutdown,
}

/// What a session does after an event: go on, or end.
#[derive(Debug)]
enum Flow {
    Continue,
    End(End),
}

/// How a session ends: the reason the monitor shows, and what the client is told.
#[derive(Debug)]
struct End {
    reason: String,
    farewell: Farewell,
}

/// What the client is told as its session ends.
#[derive(Debug)]
enum Farewell {
    /// A close frame with this code and text; its answer is awaited briefly.
    Close(u16, String),
    /// The client closed first: the answer tungstenite queued goes out.
    Answer,
    /// Nothing: the client is gone, or not reading.
    Nothing,
}

impl End {
    /// A close frame whose text is the reason.
    fn closing(code: u16, reason: String) -> End {
        End {
            farewell: Farewell::Close(code, reason.clone()),
            reason,
        }
    }

    fn shutting_down() -> End {
        End::closing(close_code::GOING_AWAY, "server shutting down".to_owned())
    }

    fn quietly(reason: impl Into<String>) -> End {
        End {
            reason: reason.into(),
            farewell: Farewell::Nothing,
        }
    }
}

impl From<End> for Flow {
    fn from(end: End) -> Flow {
        Flow::End(end)
    }
}

/// The one way a session ends: its reason recorded, then the client told.
async fn farewell(socket: &mut WebSocket, session: &mut Session, end: End) {
    session.set_reason(end.reason);
    match end.farewell {
        Farewell::Close(code, text) => close(socket, code, &text).await,
        Farewell::Answer => answer_close(socket).await,
        Farewell::Nothing => {}
    }
}

/// One bridged session between events: both connections and what is in flight.
struct Bridge<'a> {
    shared: &'a Shared,
    socket: WebSocket,
    upstream: TcpStream,
    link: LinkGuard,
    session: Session,
    framer: LineFramer,
    /// A text message as the line sent upstream (reused).
    line: Vec<u8>,
    /// Upstream lines as messages, not yet sent (reused).
    batch: Vec<Message>,
    idle: Duration,
    write_timeout: Duration,
    /// When data last went either way: the idle deadline is `idle` after it.
    active: Instant,
    heartbeat: Heartbeat,
    /// The one timer: at the earliest of the idle deadline and the heartbeat's next check as
    /// they were when it was armed; moved only when it fires, so a message costs plain stores,
    /// not a timer registration.
    timer: Pin<Box<Sleep>>,
    /// This session's shutdown signal (a child token: its waiter list is the session's own).
    shutdown: Pin<Box<WaitForCancellationFutureOwned>>,
    /// Each socket, and `timer` with `shutdown`, polled only when it woke the task (or was
    /// ready last time): a wake-up for one socket does not poll the other.
    client_gate: Gate,
    upstream_gate: Gate,
    timer_gate: Gate,
    /// Which socket [`Bridge::poll_event`] polls first: the one that did not bring the last
    /// event, so a busy side cannot starve the other, and in the usual ping-pong the socket
    /// polled first is the one that is ready.
    client_first: bool,
    /// When the oldest message not yet answered went upstream: the round trip's start.
    awaiting: Option<Instant>,
}

impl<'a> Bridge<'a> {
    fn new(
        socket: WebSocket,
        upstream: TcpStream,
        link: LinkGuard,
        session: Session,
        shared: &'a Shared,
    ) -> Self {
        let config = &shared.config;
        let idle = config.idle_timeout();
        let now = Instant::now();
        let heartbeat = Heartbeat::new(config.ping_interval(), now);
        let timer = tokio::time::sleep_until(heartbeat.next_check().min(now + idle));
        Bridge {
            shared,
            socket,
            upstream,
            link,
            session,
            framer: LineFramer::new(config.max_message),
            line: Vec::new(),
            batch: Vec::new(),
            idle,
            write_timeout: config.write_timeout(),
            active: now,
            heartbeat,
            timer: Box::pin(timer),
            shutdown: Box::pin(shared.session_shutdown().cancelled_owned()),
            client_gate: Gate::default(),
            upstream_gate: Gate::default(),
            timer_gate: Gate::default(),
            client_first: true,
            awaiting: None,
        }
    }

    /// The next event: a socket's (the one that did not bring the last event first), else the
    /// timer's or shutdown's; each polled only if it woke the task or was ready last time.
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Event> {
        let first = self.client_first;
        for client in [first, !first] {
            let event = if client {
                let socket = &mut self.socket;
                let next = |cx: &mut Context<'_>| socket.poll_next_unpin(cx);
                self.client_gate.poll(cx, next).map(Event::Client)
            } else {
                let upstream = &self.upstream;
                let ready = |cx: &mut Context<'_>| upstream.poll_read_ready(cx);
                self.upstream_gate.poll(cx, ready).map(Event::Upstream)
            };
            if event.is_ready() {
                self.client_first = !client;
                return event;
            }
        }
        let (timer, shutdown) = (&mut self.timer, &mut self.shutdown);
        self.timer_gate.poll(cx, |cx| {
            if shutdown.as_mut().poll(cx).is_ready() {
                Poll::Ready(Event::Shutdown)
            } else {
                timer.as_mut().poll(cx).map(|()| Event::Tick)
            }
        })
    }

    /// A message (or error, or the end) from the client: data goes upstream as a line.
    async fn on_client(&mut self, msg: Option<Result<Message, axum::Error>>) -> Flow {
        let now = Instant::now();
        self.heartbeat.heard(now);
        let data: &[u8] = match &msg {
            Some(Ok(Message::Text(text))) => {
                self.line.clear();
                text_to_line(text.as_str(), &mut self.line);
                self.session.received(text.as_bytes());
                &self.line
            }
            Some(Ok(Message::Binary(bytes))) => {
                self.session.received(bytes);
                bytes
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => return Flow::Continue,
            Some(Ok(Message::Close(frame))) => {
                let reason = match frame {
                    Some(f) => format!("client closed ({} {})", f.code, f.reason),
                    None => "client closed".to_owned(),
                };
                let farewell = Farewell::Answer;
                return End { reason, farewell }.into();
            }
            Some(Err(err)) => {
                let (code, why) = classify(err, self.shared.config.max_message);
                let Some(code) = code else {
                    return End::quietly(why).into();
                };
                tracing::info!(id = self.session.id(), code, "{why}");
                return End::closing(code, why).into();
            }
            None => return End::quietly("client went away").into(),
        };
        self.active = now;
        if data.is_empty() {
            return Flow::Continue;
        }
        match write_within(&mut self.upstream, data, self.write_timeout).await {
            Ok(Ok(())) => {
                self.awaiting.get_or_insert(now);
                Flow::Continue
            }
            Ok(Err(err)) => {
                End::closing(close_code::SERVER_ERROR, format!("upstream failed: {err}")).into()
            }
            Err(_) => {
                let why = "upstream stopped reading".to_owned();
                End::closing(close_code::SERVER_ERROR, why).into()
            }
        }
    }

    /// The upstream is readable: its lines go to the client as messages, then its close (or
    /// failure) ends the session.
    async fn on_upstream(&mut self, ready: io::Result<()>) -> Flow {
        let drained = match ready {
            Ok(()) => {
                let batch = &mut self.batch;
                drain_lines(&self.upstream, &mut self.framer, |l| {
                    batch.push(to_message(l))
                })
            }
            Err(err) => Err(err),
        };
        if !self.batch.is_empty() {
            let now = Instant::now();
            if let Some(sent) = self.awaiting.take() {
                self.shared.registry.metrics().round_trip(now - sent);
            }
            self.active = now;
            let send = send_batch(&mut self.socket, &self.session, &mut self.batch);
            match within(self.write_timeout, send).await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => return End::quietly(format!("client went away: {err}")).into(),
                Err(_) => {
                    let secs = self.write_timeout.as_secs();
                    let why = format!("client not reading: messages blocked for {secs}s");
                    return End::quietly(why).into();
                }
            }
        }
        match drained {
            Ok(false) => Flow::Continue,
            // At shutdown the echo closes its side too: the client hears the real reason,
            // 1001, not "upstream closed".
            Ok(true) | Err(_) if self.shared.shutdown.is_cancelled() => End::shutting_down().into(),
            Ok(true) => End {
                reason: "upstream closed".to_owned(),
                farewell: Farewell::Close(
                    close_code::NORMAL,
                    "upstream closed the connection".to_owned(),
                ),
            }
            .into(),
            Err(err) => {
                End::closing(close_code::SERVER_ERROR, format!("upstream failed: {err}")).into()
            }
        }
    }

    /// The timer fired: drop a silent peer, end an idle session, or ping; then re-arm the
    /// timer at the next deadline.
    async fn on_tick(&mut self) -> Flow {
        let now = Instant::now();
        let beat = self.heartbeat.check(now);
        if beat == Some(Beat::Silent) {
            return End::quietly("peer stopped answering pings").into();
        }
        let idle_at = self.active + self.idle;
        if now >= idle_at {
            let why = format!("idle for {}s", self.idle.as_secs());
            return End::closing(close_code::GOING_AWAY, why).into();
        }
        if beat == Some(Beat::Ping) && !ping(&mut self.socket, self.write_timeout).await {
            return End::quietly("client went away").into();
        }
        let next = self.heartbeat.next_check().min(idle_at);
        // The gate polls the timer again: it was ready last time.
        self.timer.as_mut().reset(next);
        Flow::Continue
    }

    /// Ends the session as `end` says, then tells the upstream we are done: it sees a clean
    /// FIN, not a reset.
    async fn finish(mut self, end: End) {
        farewell(&mut self.socket, &mut self.session, end).await;
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.upstream.shutdown()).await;
        drop(self.link);
    }
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
