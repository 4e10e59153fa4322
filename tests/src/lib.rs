//! Shared helpers for socklab's black-box tests: every test starts the real server on
//! `127.0.0.1:0` ports and talks to it over real sockets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use socklab_protocol::MonitorEvent;
use socklab_server::{Config, RunningServer};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub use socklab_server;

pub mod http;
pub mod raw;
pub mod skip;

/// A WebSocket client connection as tests use it.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a test waits for anything before it fails.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Logs to the test's output when `RUST_LOG` is set.
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Starts the real server with every listener on a free loopback port.
pub async fn start_server() -> RunningServer {
    start_server_with(|_| {}).await
}

/// Starts the real server on free loopback ports after `tweak` adjusts its configuration.
pub async fn start_server_with(tweak: impl FnOnce(&mut Config)) -> RunningServer {
    init_logging();
    let mut config = Config::for_tests();
    config.static_dir = std::env::temp_dir().join("socklab-no-page-here");
    tweak(&mut config);
    socklab_server::start(config).await.expect("server starts")
}

/// A line-oriented TCP client.
pub struct LineClient {
    /// Buffered reading side.
    pub reader: BufReader<OwnedReadHalf>,
    /// Writing side.
    pub writer: OwnedWriteHalf,
}

impl LineClient {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (r, w) = stream.into_split();
        LineClient {
            reader: BufReader::new(r),
            writer: w,
        }
    }

    /// Sends raw bytes.
    pub async fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.expect("send");
    }

    /// Reads one line (up to and including `\n`), failing after [`TIMEOUT`].
    pub async fn line(&mut self) -> Vec<u8> {
        let mut line = Vec::new();
        tokio::time::timeout(TIMEOUT, self.reader.read_until(b'\n', &mut line))
            .await
            .expect("reply in time")
            .expect("read");
        line
    }
}

/// Checks that `reply` is `[%Y-%m-%d %H:%M:%S]:` followed by `rest`.
pub fn assert_stamped(reply: &[u8], rest: &[u8]) {
    let stamp_len = socklab_protocol::STAMP_LEN;
    assert!(reply.len() >= stamp_len, "reply too short: {reply:?}");
    let stamp = std::str::from_utf8(&reply[..stamp_len]).expect("ascii stamp");
    assert!(
        chrono_like(stamp),
        "not a stamp: {stamp:?} (reply {:?})",
        String::from_utf8_lossy(reply)
    );
    assert_eq!(
        &reply[stamp_len..],
        rest,
        "payload of {:?}",
        String::from_utf8_lossy(reply)
    );
}

/// `[YYYY-MM-DD HH:MM:SS]:`
fn chrono_like(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 22
        && b[0] == b'['
        && b[20] == b']'
        && b[21] == b':'
        && b[5] == b'-'
        && b[8] == b'-'
        && b[11] == b' '
        && b[14] == b':'
        && b[17] == b':'
        && [1, 2, 3, 4, 6, 7, 9, 10, 12, 13, 15, 16, 18, 19]
            .iter()
            .all(|&i| b[i].is_ascii_digit())
}

/// Opens a WebSocket to `path` on the server's HTTP listener, with extra request headers.
pub async fn ws_connect(
    server: &RunningServer,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let url = format!("ws://{}{}", server.addrs.http[0], path);
    let mut req = url.into_client_request()?;
    for (k, v) in headers {
        req.headers_mut().insert(
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    let (ws, _) = tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(req))
        .await
        .expect("handshake in time")?;
    Ok(ws)
}

/// The next data message (text or binary), skipping pings; `None` when the socket closed,
/// with the close frame's code and reason in `Err`.
pub async fn next_message(ws: &mut Ws) -> Result<Message, Option<(u16, String)>> {
    loop {
        let msg = tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .expect("message in time");
        match msg {
            Some(Ok(Message::Close(frame))) => {
                return Err(frame.map(|f| (u16::from(f.code), f.reason.to_string())));
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(m)) => return Ok(m),
            Some(Err(_)) | None => return Err(None),
        }
    }
}

/// Sends a text message.
pub async fn send_text(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).await.expect("ws send");
}

/// Reads `rx` (the read half of a client whose other half may still be sending) past other
/// messages until the server's close frame: its code and reason, or `None` for an empty one.
/// Panics on an error, an end without a close frame, or none within [`TIMEOUT`].
pub async fn close_of<S>(rx: &mut S) -> Option<(u16, String)>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let frame = tokio::time::timeout(TIMEOUT, async {
        loop {
            match rx.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => {}
                other => panic!("no close frame: {other:?}"),
            }
        }
    })
    .await
    .expect("a close frame in time");
    frame.map(|f| (u16::from(f.code), f.reason.to_string()))
}

/// A monitor subscriber: connects to `/api/events` and parses events.
pub struct Monitor {
    ws: Ws,
}

impl Monitor {
    /// Subscribes.
    pub async fn connect(server: &RunningServer) -> Self {
        Self::connect_to(server, "/api/events").await
    }

    /// Subscribes at `path` (e.g. `/api/events?packets=1`).
    pub async fn connect_to(server: &RunningServer, path: &str) -> Self {
        Monitor {
            ws: ws_connect(server, path, &[]).await.expect("monitor"),
        }
    }

    /// The next event, failing after [`TIMEOUT`].
    pub async fn next(&mut self) -> MonitorEvent {
        match next_message(&mut self.ws).await {
            Ok(Message::Text(t)) => serde_json::from_str(t.as_str()).expect("valid event"),
            other => panic!("expected an event, got {other:?}"),
        }
    }

    /// Waits for the first event that `pred` accepts, failing after [`TIMEOUT`].
    pub async fn wait_for(&mut self, mut pred: impl FnMut(&MonitorEvent) -> bool) -> MonitorEvent {
        tokio::time::timeout(TIMEOUT, async {
            loop {
                let e = self.next().await;
                if pred(&e) {
                    return e;
                }
            }
        })
        .await
        .expect("event in time")
    }
}
