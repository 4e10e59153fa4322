//! One load connection of either kind (TCP or WebSocket): opening many at once without
//! overflowing listen backlogs, and one message's exchange.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::http::Uri;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::target::{Replies, Target};

/// Connection attempts in flight at once, so a burst of 10k does not overflow listen backlogs.
pub const CONNECTING: usize = 64;
/// How long one connection (TCP connect plus WebSocket handshake) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Read buffer per load connection (replies are one short line).
pub const READ_BUF: usize = 4096;

/// One open connection of any kind.
pub enum Conn {
    Tcp {
        stream: TcpStream,
        buf: Box<[u8]>,
    },
    Ws {
        ws: Box<WebSocketStream<TcpStream>>,
        replies: Replies,
    },
}

impl Conn {
    /// Connects to `target` (and, for a bridge, completes the WebSocket handshake).
    pub async fn open(target: &Target) -> Result<Conn> {
        match target {
            Target::Tcp(addr) => {
                let stream = TcpStream::connect(addr.as_str())
                    .await
                    .with_context(|| format!("cannot connect to {addr}"))?;
                stream.set_nodelay(true)?;
                Ok(Conn::Tcp {
                    stream,
                    buf: vec![0; READ_BUF].into_boxed_slice(),
                })
            }
            Target::Ws { url, replies } => Ok(Conn::Ws {
                ws: Box::new(open_ws(url).await?),
                replies: *replies,
            }),
        }
    }

    /// Sends one message and waits for its whole reply.
    pub async fn exchange(&mut self, line: &[u8], msg: &Message) -> Result<()> {
        match self {
            Conn::Tcp { stream, buf } => {
                stream.write_all(line).await.context("sending")?;
                loop {
                    let n = stream.read(buf).await.context("reading the reply")?;
                    if n == 0 {
                        bail!("the server closed the connection");
                    }
                    // One message in flight: the reply is complete at its `\n`.
                    if buf[..n].contains(&b'\n') {
                        return Ok(());
                    }
                }
            }
            Conn::Ws { ws, replies } => {
                ws.send(msg.clone()).await.context("sending")?;
                loop {
                    let ends_line = match ws.next().await {
                        Some(Ok(Message::Text(t))) => t.as_bytes().last() == Some(&b'\n'),
                        Some(Ok(Message::Binary(b))) => b.last() == Some(&b'\n'),
                        Some(Ok(Message::Close(frame))) => bail!("the bridge closed: {frame:?}"),
                        Some(Ok(_)) => continue,
                        Some(Err(err)) => bail!("reading the reply: {err}"),
                        None => bail!("the bridge went away"),
                    };
                    if *replies == Replies::Lines || ends_line {
                        return Ok(());
                    }
                }
            }
        }
    }
}

/// A WebSocket client connection to `url`, with small buffers: the load generator holds up to
/// 10k of these.
async fn open_ws(url: &str) -> Result<WebSocketStream<TcpStream>> {
    let uri: Uri = url.parse().with_context(|| format!("bad URL {url}"))?;
    let host = uri.host().with_context(|| format!("no host in {url}"))?;
    let port = uri.port_u16().unwrap_or(80);
    let stream = TcpStream::connect((host.trim_matches(['[', ']']), port))
        .await
        .with_context(|| format!("cannot connect to {host}:{port}"))?;
    stream.set_nodelay(true)?;
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUF)
        .write_buffer_size(0);
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config))
        .await
        .with_context(|| format!("WebSocket handshake with {url} failed"))?;
    Ok(ws)
}

/// What opening many connections gave.
pub struct Opened {
    pub conns: Vec<Conn>,
    pub failed: usize,
    pub first_error: Option<String>,
}

/// Opens `n` connections to `target`, at most [`CONNECTING`] at a time, each within
/// [`CONNECT_TIMEOUT`]; `then` runs on each one as part of its opening (`hold` exchanges one
/// message there).
pub async fn open_all<F, Fut>(target: &Target, n: usize, then: F) -> Opened
where
    F: Fn(Conn) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<Conn>> + Send,
{
    let gate = Arc::new(Semaphore::new(CONNECTING));
    let mut set = JoinSet::new();
    for _ in 0..n {
        let (gate, target, then) = (Arc::clone(&gate), target.clone(), then.clone());
        set.spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let open = async move {
                let conn = Conn::open(&target).await?;
                let opened = then(conn);
                opened.await
            };
            tokio::time::timeout(CONNECT_TIMEOUT, open)
                .await
                .context("connecting timed out")?
        });
    }
    gather(&mut set).await
}

/// Waits for every opening task: the connections that opened, how many failed, the first
/// error.
async fn gather(set: &mut JoinSet<Result<Conn>>) -> Opened {
    let mut opened = Opened {
        conns: Vec::with_capacity(set.len()),
        failed: 0,
        first_error: None,
    };
    while let Some(joined) = set.join_next().await {
        match joined.map_err(anyhow::Error::from).and_then(|r| r) {
            Ok(conn) => opened.conns.push(conn),
            Err(err) => {
                opened.failed += 1;
                opened.first_error.get_or_insert_with(|| format!("{err:#}"));
            }
        }
    }
    opened
}
