//! The WebSocket bridge `/ws`: the browser cannot open raw TCP, so each WebSocket session gets
//! its own TCP connection to the upstream (this server's echo, or `--upstream`), and the bridge
//! forwards both ways: client messages become lines, upstream lines become messages.
//!
//! One task per session, one event loop, no channels: while a send to the browser waits
//! nothing else is read, and while lines wait for the upstream to take them the client is not
//! read (its replies still are: an upstream that answers as it reads, like the echo, is never
//! waiting on us while we wait on it). So backpressure reaches the other side through TCP and
//! no buffer grows without bound.
//!
//! Both sides are plain `TcpStream`s read without waiting into the thread's read buffer: the
//! upstream's bytes are cut into lines, the client's into WebSocket frames
//! ([`socklab_protocol::ws_frames`], on the connection [`Handshake::accept`] hands back). Per message
//! the loop polls only its two sockets ([`Bridge::poll_event`]): the one timer (pings,
//! silence, idleness: clock checks against deadlines, re-armed only when it fires) and
//! shutdown are polled only when they woke the task, a write's timeout is armed only when the
//! write cannot finish at once, and the clock is read once per event.

use std::future::Future;
use std::io;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{Extension, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use socklab_protocol::events::HandshakeSize;
use socklab_protocol::framing::{LinePayload, line_payload, text_to_line};
use socklab_protocol::ws_frames::{
    ClientFrames, FrameError, Received, put_binary, put_close, put_frame, put_text,
};
use socklab_protocol::{LineFramer, SessionKind, close_code};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, OpCode};
use tokio_util::sync::WaitForCancellationFutureOwned;

use crate::http::access::{Admitted, BridgeQuery, ConnAddrs};
use crate::net::read::{Drained, ReadNow, drain, read_now, with_read_buf};
use crate::net::relay::{BATCH_BYTES, drain_lines};
use crate::net::upstream::connect_upstream;
use crate::net::wake::{Gate, write_now, write_within};
use crate::registry::{Extra, LinkGuard, Session};
use crate::state::Shared;
use crate::ws::handshake::Handshake;
use crate::ws::liveness::{Beat, Heartbeat};
use crate::ws::socket::CLOSE_TIMEOUT;

/// What a server ping carries.
const PING: &[u8] = b"socklab";

/// `GET /ws` (Origin rule and connection slot: [`Admitted`]): upgrades, then bridges.
pub(crate) async fn handler(
    handshake: Handshake,
    head: Parts,
    Query(query): Query<BridgeQuery>,
    Extension(addrs): Extension<ConnAddrs>,
    State(shared): State<Arc<Shared>>,
    Admitted { permit }: Admitted<true>,
) -> Response {
    let tag = query.tag();
    let request = request_head_len(&head.method, &head.uri, &head.headers);
    let tracked = shared.tracker.token();
    let response_size = Arc::new(AtomicU64::new(0));
    let response_size2 = Arc::clone(&response_size);
    let response = handshake.accept(move |(stream, early)| async move {
        let handshake = HandshakeSize {
            request,
            response: response_size2.load(Ordering::Relaxed),
        };
        let session = shared.registry.open(
            SessionKind::Ws,
            addrs.peer,
            addrs.local,
            Extra {
                tag,
                handshake: Some(handshake),
            },
        );
        run(Client::new(stream, &shared), &early, session, shared).await;
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

/// One bridged session, from upgrade to close: connect the upstream, take the frames that came
/// with the handshake, then hand each event to [`Bridge`] until one ends the session, and end
/// it in [`Bridge::finish`].
async fn run(mut client: Client, early: &[u8], mut session: Session, shared: Arc<Shared>) {
    let connecting = std::time::Instant::now();
    let (upstream, link) = match connect_upstream(&shared, session.id()).await {
        Ok(pair) => pair,
        Err(err) => {
            let why = format!("upstream {} unreachable: {err}", shared.upstream);
            tracing::warn!(id = session.id(), "{why}");
            // Past the frames that came with the handshake, so the close's answer is found.
            let _ = client
                .frames
                .feed(&mut early.to_vec(), |_| ControlFlow::Continue(()));
            let end = End::closing(close_code::SERVER_ERROR, why);
            return farewell(&mut client, &mut session, end).await;
        }
    };
    let metrics = shared.registry.metrics();
    metrics.upstream_connected(connecting.elapsed());
    let mut bridge = Bridge::new(client, upstream, link, session, &shared);
    let mut flow = Flow::Continue;
    if !early.is_empty() {
        let heard = bridge.take_client_bytes(&mut early.to_vec());
        flow = bridge.after_client(heard).await;
    }
    let end = loop {
        if let Flow::End(end) = flow {
            break end;
        }
        flow = match std::future::poll_fn(|cx| bridge.poll_event(cx)).await {
            Event::Client(ready) => bridge.on_client(ready).await,
            Event::Upstream(ready) => bridge.on_upstream(ready).await,
            Event::UpstreamWritable(ready) => bridge.on_upstream_writable(ready),
            Event::Tick => bridge.on_tick().await,
            Event::Shutdown => End::shutting_down().into(),
        };
    };
    bridge.finish(end).await;
}

/// What woke a session.
enum Event {
    /// The client is readable (or failed).
    Client(io::Result<()>),
    /// The upstream is readable (or failed).
    Upstream(io::Result<()>),
    /// The upstream can take more of the lines it could not take before (or failed).
    UpstreamWritable(io::Result<()>),
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
    /// The client closed first: its close frame goes back (RFC 6455 §5.5.1).
    Answer(Option<(u16, String)>),
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
async fn farewell(client: &mut Client, session: &mut Session, end: End) {
    session.set_reason(end.reason);
    match end.farewell {
        Farewell::Close(code, text) => client.close(code, &text).await,
        Farewell::Answer(close) => client.answer_close(close).await,
        Farewell::Nothing => {}
    }
}

/// The client's side of a session: its connection, the frames read from it so far, and the
/// frames being written to it (empty between events).
struct Client {
    stream: TcpStream,
    frames: ClientFrames,
    out: Vec<u8>,
}

impl Client {
    fn new(stream: TcpStream, shared: &Shared) -> Self {
        Client {
            stream,
            frames: ClientFrames::new(shared.config.max_message),
            out: Vec::new(),
        }
    }

    /// Writes the frames in `out` (within the write timeout), then empties it. `Err` says why
    /// the client cannot take them.
    async fn flush(&mut self, limit: Duration) -> Result<(), String> {
        let written = write_within(&mut self.stream, &self.out, limit).await;
        self.out.clear();
        if self.out.capacity() > 2 * BATCH_BYTES {
            self.out = Vec::new();
        }
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(format!("client went away: {err}")),
            Err(_) => Err(format!(
                "client not reading: messages blocked for {}s",
                limit.as_secs()
            )),
        }
    }

    /// Sends a close frame and waits briefly for the client's answer, so the close is clean.
    async fn close(&mut self, code: u16, reason: &str) {
        put_close(&mut self.out, code, reason);
        if self.flush(CLOSE_TIMEOUT).await.is_err() {
            return;
        }
        let answered = async {
            loop {
                if self.stream.readable().await.is_err() || self.heard_close() {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, answered).await;
    }

    /// Reads what is there; true once the client's close (or its end) came. After bytes that
    /// were not frames nothing more can be parsed: they are drained until the client closes,
    /// so the connection ends with a FIN rather than a reset that could lose our close frame.
    fn heard_close(&mut self) -> bool {
        let Client { stream, frames, .. } = self;
        with_read_buf(|buf| match read_now(stream, buf) {
            Ok(ReadNow::Data { .. }) if frames.is_broken() => false,
            Ok(ReadNow::Data { n, .. }) => {
                let bytes = buf.get_mut(..n).unwrap_or_default();
                let close = |r: Received<'_>| match r {
                    Received::Close(_) => ControlFlow::Break(()),
                    _ => ControlFlow::Continue(()),
                };
                // Bytes that are not frames break the parser: from then on they are drained.
                matches!(frames.feed(bytes, close), Ok(ControlFlow::Break(())))
            }
            Ok(ReadNow::WouldBlock) => false,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => false,
            Ok(ReadNow::Eof) | Err(_) => true,
        })
    }

    /// Answers the client's close with its own code and reason (an empty close for an empty
    /// one); the connection then closes.
    async fn answer_close(&mut self, close: Option<(u16, String)>) {
        match close {
            Some((code, reason)) => put_close(&mut self.out, code, &reason),
            None => put_frame(&mut self.out, OpCode::Control(Control::Close), &[]),
        }
        let _ = self.flush(CLOSE_TIMEOUT).await;
    }
}

/// What one pass over the client's bytes found, beside the lines and pongs it queued.
enum Heard {
    /// Nothing that ends the session.
    Open,
    /// The client's close frame (code and reason, if any).
    Closed(Option<(u16, String)>),
    /// Bytes that are not a WebSocket conversation.
    Broken(FrameError),
    /// The connection ended or failed: why.
    Gone(String),
}

/// One bridged session between events: both connections and what is in flight.
struct Bridge<'a> {
    shared: &'a Shared,
    client: Client,
    upstream: TcpStream,
    link: LinkGuard,
    session: Session,
    framer: LineFramer,
    /// Client messages as the lines to send upstream (reused); the first `lines_sent` bytes
    /// have gone. While some have not, the client is not read.
    lines: Vec<u8>,
    lines_sent: usize,
    /// Since when the upstream has taken none of `lines`: it is dropped after `write_timeout`.
    upstream_full_since: Option<Instant>,
    /// A text or binary message came since the last event (even an empty one): the session
    /// is active.
    heard_data: bool,
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
        client: Client,
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
            client,
            upstream,
            link,
            session,
            framer: LineFramer::new(config.max_reply_line()),
            lines: Vec::new(),
            lines_sent: 0,
            upstream_full_since: None,
            heard_data: false,
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
        let lines_wait = self.lines_sent < self.lines.len();
        for client in [first, !first] {
            let event = if client {
                if lines_wait {
                    continue;
                }
                let stream = &self.client.stream;
                let ready = |cx: &mut Context<'_>| stream.poll_read_ready(cx);
                self.client_gate.poll(cx, ready).map(Event::Client)
            } else {
                let upstream = &self.upstream;
                let ready = |cx: &mut Context<'_>| {
                    if lines_wait && let Poll::Ready(r) = upstream.poll_write_ready(cx) {
                        return Poll::Ready(Event::UpstreamWritable(r));
                    }
                    upstream.poll_read_ready(cx).map(Event::Upstream)
                };
                self.upstream_gate.poll(cx, ready)
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

    /// The client is readable: its messages go upstream as lines, its pings are answered.
    async fn on_client(&mut self, ready: io::Result<()>) -> Flow {
        let heard = match ready {
            Ok(()) => self.read_client(),
            Err(err) => Heard::Gone(format!("client went away: {err}")),
        };
        self.after_client(heard).await
    }

    /// Reads what the client has ready, up to [`BATCH_BYTES`] (so what it queues, lines and
    /// pongs, stays bounded and other sessions get their turn), and takes its frames.
    fn read_client(&mut self) -> Heard {
        let (mut inbox, frames, stream) = self.inbox();
        let mut heard = Heard::Open;
        let drained = drain(stream, BATCH_BYTES, |bytes| {
            heard = inbox.take(frames, bytes);
            match heard {
                Heard::Open => ControlFlow::Continue(()),
                _ => ControlFlow::Break(()),
            }
        });
        match (heard, drained) {
            (Heard::Open, Ok(Drained::Eof)) => Heard::Gone("client went away".to_owned()),
            (Heard::Open, Err(err)) => Heard::Gone(format!("client went away: {err}")),
            // Stopped with readiness still set: the gate polls the client again next time.
            (heard, _) => heard,
        }
    }

    /// Takes bytes from the client that did not come through [`Bridge::read_client`] (those
    /// that came with the handshake).
    fn take_client_bytes(&mut self, bytes: &mut [u8]) -> Heard {
        let (mut inbox, frames, _) = self.inbox();
        inbox.take(frames, bytes)
    }

    /// Where the client's frames go, its frame reader, and its connection, borrowed apart.
    fn inbox(&mut self) -> (Inbox<'_>, &mut ClientFrames, &TcpStream) {
        let Client {
            stream,
            frames,
            out,
        } = &mut self.client;
        let inbox = Inbox {
            session: &self.session,
            lines: &mut self.lines,
            out,
            heard_data: &mut self.heard_data,
        };
        (inbox, frames, stream)
    }

    /// Sends what the client's bytes queued (pongs to it, lines upstream), then ends the
    /// session if they closed it.
    async fn after_client(&mut self, heard: Heard) -> Flow {
        let now = Instant::now();
        self.heartbeat.heard(now);
        if !self.client.out.is_empty()
            && let Err(why) = self.client.flush(self.write_timeout).await
        {
            return End::quietly(why).into();
        }
        if std::mem::take(&mut self.heard_data) {
            self.active = now;
        }
        if let Err(end) = self.send_lines(now) {
            return end.into();
        }
        match heard {
            Heard::Open => Flow::Continue,
            Heard::Closed(close) => {
                let reason = match &close {
                    Some((code, reason)) => format!("client closed ({code} {reason})"),
                    None => "client closed".to_owned(),
                };
                let farewell = Farewell::Answer(close);
                End { reason, farewell }.into()
            }
            Heard::Broken(err) => {
                let (code, why) = (err.close_code(), err.to_string());
                tracing::info!(id = self.session.id(), code, "{why}");
                End::closing(code, why).into()
            }
            Heard::Gone(why) => End::quietly(why).into(),
        }
    }

    /// Sends what the upstream takes now of the lines queued for it, never waiting: the rest
    /// stays queued (and the client unread) until it can take more, while its replies are
    /// still read. `Err` ends the session: the upstream failed.
    fn send_lines(&mut self, now: Instant) -> Result<(), End> {
        let rest = self.lines.get(self.lines_sent..).unwrap_or_default();
        match write_now(&self.upstream, rest) {
            Ok(0) => {}
            Ok(n) => {
                self.lines_sent += n;
                self.upstream_full_since = None;
                self.awaiting.get_or_insert(now);
            }
            Err(err) => return Err(self.upstream_lost(&format!("failed: {err}"))),
        }
        if self.lines_sent < self.lines.len() {
            self.upstream_full_since.get_or_insert(now);
            // The timer (it keeps its waker when moved) also ends the wait.
            if let Some(give_up) = self.upstream_give_up()
                && give_up < self.timer.deadline()
            {
                self.timer.as_mut().reset(give_up);
            }
            return Ok(());
        }
        self.lines.clear();
        self.lines_sent = 0;
        Ok(())
    }

    /// When the session ends if the upstream goes on taking none of the queued lines.
    fn upstream_give_up(&self) -> Option<Instant> {
        self.upstream_full_since
            .map(|since| since + self.write_timeout)
    }

    /// The upstream can take more of the queued lines.
    fn on_upstream_writable(&mut self, ready: io::Result<()>) -> Flow {
        let sent = match ready {
            Ok(()) => self.send_lines(Instant::now()),
            Err(err) => Err(self.upstream_lost(&format!("failed: {err}"))),
        };
        match sent {
            Ok(()) => Flow::Continue,
            Err(end) => end.into(),
        }
    }

    /// The upstream is readable: its lines go to the client as messages, then its close (or
    /// failure) ends the session.
    async fn on_upstream(&mut self, ready: io::Result<()>) -> Flow {
        let drained = match ready {
            Ok(()) => {
                let (out, session) = (&mut self.client.out, &self.session);
                drain_lines(&self.upstream, &mut self.framer, |line| {
                    put_line(out, session, line)
                })
            }
            Err(err) => Err(err),
        };
        if !self.client.out.is_empty() {
            let now = Instant::now();
            if let Some(sent) = self.awaiting.take() {
                self.shared.registry.metrics().round_trip(now - sent);
            }
            self.active = now;
            if let Err(why) = self.client.flush(self.write_timeout).await {
                return End::quietly(why).into();
            }
        }
        match drained {
            Ok(false) => Flow::Continue,
            // At shutdown the echo closes its side too: the client hears the real reason,
            // 1001, not "upstream closed".
            Ok(true) if self.shared.shutdown.is_cancelled() => End::shutting_down().into(),
            Ok(true) => End {
                reason: "upstream closed".to_owned(),
                farewell: Farewell::Close(
                    close_code::NORMAL,
                    "upstream closed the connection".to_owned(),
                ),
            }
            .into(),
            Err(err) => self.upstream_lost(&format!("failed: {err}")).into(),
        }
    }

    /// How a session ends when its upstream fails (`why`): 1011 naming the upstream, or 1001
    /// at shutdown, when the echo closing first is what failed a write or a read.
    fn upstream_lost(&self, why: &str) -> End {
        if self.shared.shutdown.is_cancelled() {
            End::shutting_down()
        } else {
            let why = format!("upstream {} {why}", self.shared.upstream);
            End::closing(close_code::SERVER_ERROR, why)
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
        let give_up = self.upstream_give_up();
        if give_up.is_some_and(|at| now >= at) {
            return self.upstream_lost("stopped reading").into();
        }
        if beat == Some(Beat::Ping) {
            put_frame(&mut self.client.out, OpCode::Control(Control::Ping), PING);
            if self.client.flush(self.write_timeout).await.is_err() {
                return End::quietly("client went away").into();
            }
        }
        let next = self.heartbeat.next_check().min(idle_at);
        let next = give_up.map_or(next, |at| next.min(at));
        // The gate polls the timer again: it was ready last time.
        self.timer.as_mut().reset(next);
        Flow::Continue
    }

    /// Ends the session as `end` says, then tells the upstream we are done: it sees a clean
    /// FIN, not a reset.
    async fn finish(mut self, end: End) {
        farewell(&mut self.client, &mut self.session, end).await;
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.upstream.shutdown()).await;
        drop(self.link);
    }
}

/// Where a client's frames go: each text or binary message becomes upstream bytes (a text
/// message a line) in `lines`, each ping a pong in `out`.
struct Inbox<'a> {
    session: &'a Session,
    lines: &'a mut Vec<u8>,
    out: &'a mut Vec<u8>,
    /// Set when a text or binary message came (even an empty one).
    heard_data: &'a mut bool,
}

impl Inbox<'_> {
    /// Takes bytes from the client with its frame reader.
    fn take(&mut self, frames: &mut ClientFrames, bytes: &mut [u8]) -> Heard {
        let mut closed = None;
        let fed = frames.feed(bytes, |received| {
            match received {
                Received::Text(text) => {
                    self.session.received(text.as_bytes());
                    text_to_line(text, self.lines);
                    *self.heard_data = true;
                }
                Received::Binary(data) => {
                    self.session.received(data);
                    self.lines.extend_from_slice(data);
                    *self.heard_data = true;
                }
                Received::Ping(payload) => {
                    put_frame(self.out, OpCode::Control(Control::Pong), payload);
                }
                Received::Pong => {}
                Received::Close(close) => {
                    closed = Some(close.map(|(code, reason)| (code, reason.to_owned())));
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        });
        match (fed, closed) {
            (Err(err), _) => Heard::Broken(err),
            (Ok(_), Some(close)) => Heard::Closed(close),
            (Ok(_), None) => Heard::Open,
        }
    }
}

/// One upstream line, without its `\n`, as a frame for the client: text when it is UTF-8,
/// binary otherwise.
fn put_line(out: &mut Vec<u8>, session: &Session, piece: &[u8]) {
    match line_payload(piece) {
        LinePayload::Text(text) => {
            session.sent(text.as_bytes());
            put_text(out, text);
        }
        LinePayload::Binary(bytes) => {
            session.sent(bytes);
            put_binary(out, bytes);
        }
    }
}
