//! `socklab-client bench`: closed-loop load against the TCP echo and the WebSocket bridge.
//!
//! Each connection sends one message, waits for its whole reply, and repeats (pipeline depth
//! 1), so a reply's round-trip time is never hidden behind a queue of earlier messages. The
//! first `--warmup` seconds are not measured; throughput and RTT percentiles come from the
//! `--duration` seconds after them. Every connection stops after `--messages` messages or at
//! the end of the window, whichever comes first, and a reply that takes longer than
//! `--reply-timeout` ends that connection with an error: the run always ends by itself.
//!
//! Also here, for `cargo xtask bench`: `--hold` (open many sessions and keep them idle, for
//! memory per session) and the hidden `--serve-bare-echo` (the minimal tokio echo that socklab
//! is compared with).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::http::Uri;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Connection attempts in flight at once, so a burst of 10k does not overflow listen backlogs.
const CONNECTING: usize = 64;
/// How long one connection (TCP connect plus WebSocket handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Read buffer per load connection (replies are one short line).
const READ_BUF: usize = 4096;

/// `socklab-client bench` flags.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// A TCP echo to load, HOST:PORT (repeatable). With neither --tcp nor --ws: socklab's
    /// defaults, 127.0.0.1:21566 and ws://127.0.0.1:8080/ws, side by side.
    #[arg(long = "tcp", value_name = "HOST:PORT")]
    pub tcp: Vec<String>,

    /// A WebSocket bridge to load, e.g. ws://127.0.0.1:8080/ws (repeatable).
    #[arg(long = "ws", value_name = "URL")]
    pub ws: Vec<String>,

    /// How a bridge's replies arrive: `lines` (socklab's /ws: one message per reply line) or
    /// `stream` (a byte-stream bridge such as websocat or websockify: read up to the `\n`).
    #[arg(long, value_enum, value_name = "HOW", default_value_t = Replies::Lines)]
    pub ws_replies: Replies,

    /// Concurrent connections (or sessions) per target.
    #[arg(short = 'c', long, value_name = "N", default_value_t = 100)]
    pub connections: usize,

    /// Most messages per connection (the run also ends after --warmup + --duration).
    #[arg(short = 'n', long, value_name = "M", default_value_t = 1_000_000)]
    pub messages: u64,

    /// Bytes per message, its `\n` included.
    #[arg(long, value_name = "BYTES", default_value_t = 64)]
    pub size: usize,

    /// Send WebSocket binary messages instead of text (websockify takes binary only).
    #[arg(long)]
    pub binary: bool,

    /// Seconds of load before measuring starts.
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    pub warmup: f64,

    /// Seconds measured.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub duration: f64,

    /// Seconds any one reply may take; longer ends that connection with an error.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub reply_timeout: f64,

    /// Print one JSON object per target instead of the table.
    #[arg(long)]
    pub json: bool,

    /// Capacity instead of load: open --connections sessions to each target, exchange one
    /// message on each, report how long that took, then keep them idle until standard input
    /// closes or SECS pass.
    #[arg(long, value_name = "SECS")]
    pub hold: Option<f64>,

    /// Serve the comparison baseline on ADDR: a bare tokio echo (read, write back; no framing,
    /// no stamp), until standard input closes.
    #[arg(long, value_name = "ADDR", hide = true)]
    pub serve_bare_echo: Option<SocketAddr>,

    /// Serve the bridge floor on ADDR: a bare tokio TCP relay (each connection gets its own
    /// connection to --relay-to; bytes forwarded both ways, nothing else), until standard input
    /// closes. It makes the same four send/recv calls per message as any bridge.
    #[arg(long, value_name = "ADDR", hide = true, requires = "relay_to")]
    pub serve_bare_relay: Option<SocketAddr>,

    /// Where --serve-bare-relay forwards to.
    #[arg(long, value_name = "ADDR", hide = true)]
    pub relay_to: Option<SocketAddr>,
}

/// How a bridge's reply is recognised as complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Replies {
    /// One message is one reply line (socklab's bridge splits the upstream into lines).
    Lines,
    /// Messages carry the upstream's raw bytes; the reply ends at its `\n`.
    Stream,
}

/// What to load.
#[derive(Debug, Clone)]
enum Target {
    Tcp(String),
    Ws { url: String, replies: Replies },
}

impl Target {
    fn name(&self) -> String {
        match self {
            Target::Tcp(addr) => format!("tcp {addr}"),
            Target::Ws { url, .. } => format!("ws {url}"),
        }
    }
}

/// One target's figures, as printed with `--json`.
#[derive(Debug, Serialize)]
pub struct Outcome {
    pub target: String,
    pub connections: usize,
    pub connected: usize,
    pub connect_ms: f64,
    pub messages: u64,
    /// Every reply, warm-up included (for CPU time per message).
    pub total: u64,
    pub seconds: f64,
    pub msgs_per_s: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    pub errors: u64,
    pub first_error: Option<String>,
}

/// `--hold`'s figures.
#[derive(Debug, Serialize)]
pub struct Held {
    pub target: String,
    pub sessions: usize,
    pub failed: usize,
    pub open_ms: f64,
    pub first_error: Option<String>,
}

/// Runs the bench as the flags say.
pub async fn run(args: &BenchArgs) -> Result<()> {
    raise_fd_limit(args.connections);
    if let Some(addr) = args.serve_bare_echo {
        return serve_bare_echo(addr).await;
    }
    if let (Some(addr), Some(to)) = (args.serve_bare_relay, args.relay_to) {
        return serve_bare_relay(addr, to).await;
    }
    if args.size == 0 || args.size > 60_000 {
        bail!("--size must be between 1 and 60000 bytes");
    }
    if args.connections == 0 {
        bail!("--connections must be at least 1");
    }
    let mut targets: Vec<Target> = args.tcp.iter().cloned().map(Target::Tcp).collect();
    targets.extend(args.ws.iter().map(|url| Target::Ws {
        url: url.clone(),
        replies: args.ws_replies,
    }));
    if targets.is_empty() {
        targets.push(Target::Tcp("127.0.0.1:21566".into()));
        targets.push(Target::Ws {
            url: "ws://127.0.0.1:8080/ws".into(),
            replies: Replies::Lines,
        });
    }
    if let Some(secs) = args.hold {
        for target in &targets {
            hold(target, args, secs).await?;
        }
        return Ok(());
    }
    let mut outcomes = Vec::new();
    for target in &targets {
        let outcome = load(target, args).await?;
        if args.json {
            println!("{}", serde_json::to_string(&outcome)?);
        }
        outcomes.push(outcome);
    }
    if !args.json {
        print_table(args, &outcomes);
    }
    Ok(())
}

/// Raises the soft open-files limit to the hard one when `connections` need more.
fn raise_fd_limit(connections: usize) {
    let want = connections as u64 + 256;
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(got) if got < want => eprintln!(
            "socklab-client: warning: only {got} open files allowed; {connections} connections \
             may fail (raise the hard limit: ulimit -Hn)"
        ),
        Ok(_) => {}
        Err(err) => eprintln!("socklab-client: warning: cannot raise the open-files limit: {err}"),
    }
}

fn print_table(args: &BenchArgs, outcomes: &[Outcome]) {
    println!(
        "{} connections, closed loop (1 message in flight each), {}-byte messages, {}s warm-up, \
         {}s measured",
        args.connections, args.size, args.warmup, args.duration
    );
    println!(
        "{:<36} {:>9} {:>11} {:>9} {:>9} {:>9} {:>7}",
        "target", "connected", "msgs/s", "p50 µs", "p99 µs", "p99.9 µs", "errors"
    );
    for o in outcomes {
        println!(
            "{:<36} {:>9} {:>11.0} {:>9.1} {:>9.1} {:>9.1} {:>7}",
            o.target, o.connected, o.msgs_per_s, o.p50_us, o.p99_us, o.p999_us, o.errors
        );
        if let Some(err) = &o.first_error {
            println!("    first error: {err}");
        }
    }
    if let [first, .., last] = outcomes
        && first.msgs_per_s > 0.0
    {
        println!(
            "{} / {}: {:.2}x the throughput",
            last.target,
            first.target,
            last.msgs_per_s / first.msgs_per_s
        );
    }
}

/// One open connection of any kind.
enum Conn {
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
    async fn open(target: &Target) -> Result<Conn> {
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
            Target::Ws { url, replies } => {
                let uri: Uri = url.parse().with_context(|| format!("bad URL {url}"))?;
                let host = uri.host().with_context(|| format!("no host in {url}"))?;
                let port = uri.port_u16().unwrap_or(80);
                let stream = TcpStream::connect((host.trim_matches(['[', ']']), port))
                    .await
                    .with_context(|| format!("cannot connect to {host}:{port}"))?;
                stream.set_nodelay(true)?;
                // Small buffers: the load generator holds up to 10k of these.
                let config = WebSocketConfig::default()
                    .read_buffer_size(READ_BUF)
                    .write_buffer_size(0);
                let (ws, _) =
                    tokio_tungstenite::client_async_with_config(url.as_str(), stream, Some(config))
                        .await
                        .with_context(|| format!("WebSocket handshake with {url} failed"))?;
                Ok(Conn::Ws {
                    ws: Box::new(ws),
                    replies: *replies,
                })
            }
        }
    }

    /// Sends one message and waits for its whole reply.
    async fn exchange(&mut self, line: &[u8], msg: &Message) -> Result<()> {
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

/// The message every connection sends: `size - 1` letters and a `\n`.
fn message(size: usize, binary: bool) -> (Bytes, Message) {
    let mut line: Vec<u8> = (0..size - 1).map(|i| b'a' + (i % 26) as u8).collect();
    line.push(b'\n');
    let line = Bytes::from(line);
    let msg = if binary {
        Message::Binary(line.clone())
    } else {
        // Valid UTF-8 by construction.
        Message::Text(String::from_utf8_lossy(&line).into_owned().into())
    };
    (line, msg)
}

/// Waits for every opening task: the connections that opened, how many failed, the first
/// error.
async fn gather(set: &mut JoinSet<Result<Conn>>) -> (Vec<Conn>, usize, Option<String>) {
    let mut conns = Vec::with_capacity(set.len());
    let mut failed = 0;
    let mut first_error = None;
    while let Some(joined) = set.join_next().await {
        match joined.map_err(anyhow::Error::from).and_then(|r| r) {
            Ok(conn) => conns.push(conn),
            Err(err) => {
                failed += 1;
                first_error.get_or_insert_with(|| format!("{err:#}"));
            }
        }
    }
    (conns, failed, first_error)
}

/// Opens `n` connections, at most [`CONNECTING`] at a time. Returns those that opened, how
/// many failed, and the first error.
async fn open_all(target: &Target, n: usize) -> (Vec<Conn>, usize, Option<String>) {
    let gate = Arc::new(Semaphore::new(CONNECTING));
    let mut set = JoinSet::new();
    for _ in 0..n {
        let gate = Arc::clone(&gate);
        let target = target.clone();
        set.spawn(async move {
            let _permit = gate.acquire_owned().await?;
            tokio::time::timeout(CONNECT_TIMEOUT, Conn::open(&target))
                .await
                .context("connecting timed out")?
        });
    }
    gather(&mut set).await
}

/// What one connection's loop measured.
struct Measured {
    /// Replies received, warm-up included.
    total: u64,
    /// RTTs of replies inside the window, in nanoseconds.
    rtts: Vec<u32>,
    /// When the last measured reply came.
    last: Option<Instant>,
    error: Option<String>,
}

async fn load(target: &Target, args: &BenchArgs) -> Result<Outcome> {
    let (line, msg) = message(args.size, args.binary);
    let started = Instant::now();
    let (conns, failed, mut first_error) = open_all(target, args.connections).await;
    let connect_ms = started.elapsed().as_secs_f64() * 1e3;
    let connected = conns.len();
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(args.warmup.max(0.0));
    let end = measure_from + Duration::from_secs_f64(args.duration.max(0.0));
    let reply_timeout = Duration::from_secs_f64(args.reply_timeout.max(0.001));
    let mut set = JoinSet::new();
    for mut conn in conns {
        let (line, msg) = (line.clone(), msg.clone());
        let limit = args.messages;
        set.spawn(async move {
            let mut m = Measured {
                total: 0,
                rtts: Vec::new(),
                last: None,
                error: None,
            };
            let mut sent = 0;
            while sent < limit {
                let before = Instant::now();
                if before >= end {
                    break;
                }
                sent += 1;
                match tokio::time::timeout(reply_timeout, conn.exchange(&line, &msg)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => {
                        m.error = Some(format!("{err:#}"));
                        break;
                    }
                    Err(_) => {
                        m.error = Some(format!("no reply within {reply_timeout:?}"));
                        break;
                    }
                }
                let after = Instant::now();
                m.total += 1;
                if before >= measure_from && after <= end {
                    let ns = after.duration_since(before).as_nanos();
                    m.rtts.push(u32::try_from(ns).unwrap_or(u32::MAX));
                    m.last = Some(after);
                }
            }
            (m, conn)
        });
    }
    let mut rtts = Vec::new();
    let mut last = None::<Instant>;
    let mut errors = failed as u64;
    let mut total = 0;
    let mut keep = Vec::new();
    while let Some(joined) = set.join_next().await {
        let (m, conn) = joined.context("a load task panicked")?;
        rtts.extend_from_slice(&m.rtts);
        total += m.total;
        last = last.max(m.last);
        if let Some(err) = m.error {
            errors += 1;
            first_error.get_or_insert(err);
        }
        // Closed only after every task is done, so no connection's close disturbs the others.
        keep.push(conn);
    }
    drop(keep);
    let window_end = last.map_or(end, |l| l.min(end).max(measure_from));
    let seconds = window_end.duration_since(measure_from).as_secs_f64();
    rtts.sort_unstable();
    let pct = |q: f64| -> f64 {
        if rtts.is_empty() {
            return 0.0;
        }
        let rank = ((q * rtts.len() as f64).ceil() as usize).clamp(1, rtts.len());
        f64::from(rtts[rank - 1]) / 1e3
    };
    let messages = rtts.len() as u64;
    Ok(Outcome {
        target: target.name(),
        connections: args.connections,
        connected,
        connect_ms,
        messages,
        total,
        seconds,
        msgs_per_s: if seconds > 0.0 {
            messages as f64 / seconds
        } else {
            0.0
        },
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        p999_us: pct(0.999),
        max_us: pct(1.0),
        errors,
        first_error,
    })
}

/// Opens the sessions, exchanges one message on each, then keeps them idle.
async fn hold(target: &Target, args: &BenchArgs, secs: f64) -> Result<()> {
    let (line, msg) = message(args.size, args.binary);
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(CONNECTING));
    let mut set = JoinSet::new();
    for _ in 0..args.connections {
        let (gate, target, line, msg) =
            (Arc::clone(&gate), target.clone(), line.clone(), msg.clone());
        set.spawn(async move {
            let _permit = gate.acquire_owned().await?;
            tokio::time::timeout(CONNECT_TIMEOUT, async {
                let mut conn = Conn::open(&target).await?;
                conn.exchange(&line, &msg).await?;
                anyhow::Ok(conn)
            })
            .await
            .context("opening timed out")?
        });
    }
    let (conns, failed, first_error) = gather(&mut set).await;
    let held = Held {
        target: target.name(),
        sessions: conns.len(),
        failed,
        open_ms: started.elapsed().as_secs_f64() * 1e3,
        first_error,
    };
    if args.json {
        println!("{}", serde_json::to_string(&held)?);
    } else {
        println!(
            "{}: {} sessions open ({} failed) in {:.0} ms; holding them idle",
            held.target, held.sessions, held.failed, held.open_ms
        );
    }
    let mut stdin = tokio::io::stdin();
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(
        Duration::from_secs_f64(secs.max(0.0)),
        stdin.read_to_end(&mut sink),
    )
    .await;
    drop(conns);
    Ok(())
}

/// The bridge floor: accept, connect to `to`, then copy bytes both ways, nothing else.
async fn serve_bare_relay(addr: SocketAddr, to: SocketAddr) -> Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    println!("bare relay on {} to {to}", listener.local_addr()?);
    let accept = async {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            tokio::spawn(async move {
                let Ok(upstream) = TcpStream::connect(to).await else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = upstream.set_nodelay(true);
                let (cr, cw) = client.into_split();
                let (ur, uw) = upstream.into_split();
                tokio::join!(pump(cr, uw), pump(ur, cw));
            });
        }
    };
    until_stdin_closes(accept).await;
    Ok(())
}

/// Runs `serve` until standard input closes: `cargo xtask bench` stops its helpers that way.
/// What arrives on standard input is read and dropped.
async fn until_stdin_closes(serve: impl Future<Output = ()>) {
    let drain = async {
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 256];
        while let Ok(1..) = stdin.read(&mut buf).await {}
    };
    tokio::select! {
        () = serve => {}
        () = drain => {}
    }
}

/// One direction of the bare relay.
async fn pump(mut from: tokio::net::tcp::OwnedReadHalf, mut to: tokio::net::tcp::OwnedWriteHalf) {
    let mut buf = [0u8; READ_BUF];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown().await;
}

/// The baseline: accept, then read and write back the same bytes, nothing else.
async fn serve_bare_echo(addr: SocketAddr) -> Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    println!("bare echo on {}", listener.local_addr()?);
    let accept = async {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                // Out of file descriptors, usually: let some close.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = [0u8; READ_BUF];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
    };
    until_stdin_closes(accept).await;
    Ok(())
}
