//! The interactive `>>` loop over TCP, UDP or the WebSocket bridge.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UdpSocket};
use tokio_tungstenite::tungstenite::Message;

use crate::args::Args;
use crate::record::Recorder;
use socklab_protocol::SessionKind;

/// One way to reach the echo service.
enum Transport {
    Tcp {
        reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
        writer: tokio::net::tcp::OwnedWriteHalf,
    },
    Udp(UdpSocket),
    Ws(Box<tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>>),
}

/// What came back for one line.
enum Reply {
    /// The reply's bytes (a line with its `\n` over TCP), and whether it was a binary message.
    Data(Vec<u8>, bool),
    Closed(String),
    NoneInTime,
}

/// Runs the prompt until an empty line, end of input, or the server closes.
pub async fn run(args: &Args) -> Result<()> {
    let wait = Duration::from_secs(args.timeout.max(1));
    let mut transport = connect(args).await?;
    let mut record = match &args.record {
        Some(path) => Some(Recorder::create(path, kind(args), &target(args))?),
        None => None,
    };
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    loop {
        print!(">>");
        std::io::stdout().flush().ok();
        let Some(line) = stdin.next_line().await.context("reading standard input")? else {
            println!();
            break;
        };
        // Like the lesson's client: surrounding blanks go, an empty line ends the session.
        let line = line.trim();
        if line.is_empty() {
            break;
        }
        let reply = exchange(&mut transport, line, wait, record.as_mut()).await?;
        if let Some(record) = &mut record {
            if let Reply::Data(data, binary) = &reply {
                record.received(data, *binary);
            }
            record.save()?;
        }
        match reply {
            Reply::Data(data, _) => {
                let text = String::from_utf8_lossy(&data);
                println!("{}", text.strip_suffix('\n').unwrap_or(&text));
            }
            Reply::NoneInTime => println!("(no reply within {}s)", wait.as_secs()),
            Reply::Closed(why) => {
                println!("(the server closed the connection: {why})");
                break;
            }
        }
    }
    if let Transport::Ws(ws) = &mut transport {
        let _ = ws.send(Message::Close(None)).await;
    }
    Ok(())
}

/// The session's kind, for the record.
fn kind(args: &Args) -> SessionKind {
    match (&args.ws, args.udp) {
        (Some(_), _) => SessionKind::Ws,
        (None, true) => SessionKind::Udp,
        (None, false) => SessionKind::Tcp,
    }
}

/// Where the session goes, for the record.
fn target(args: &Args) -> String {
    args.ws.clone().unwrap_or_else(|| args.addr.clone())
}

async fn connect(args: &Args) -> Result<Transport> {
    if let Some(url) = &args.ws {
        let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .with_context(|| format!("cannot open the WebSocket {url}"))?;
        return Ok(Transport::Ws(Box::new(ws)));
    }
    if args.udp {
        let target = tokio::net::lookup_host(&args.addr)
            .await
            .with_context(|| format!("cannot resolve {}", args.addr))?
            .next()
            .with_context(|| format!("no address for {}", args.addr))?;
        let local = if target.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        let sock = UdpSocket::bind(local)
            .await
            .context("cannot open a UDP socket")?;
        sock.connect(target)
            .await
            .with_context(|| format!("cannot address {target}"))?;
        return Ok(Transport::Udp(sock));
    }
    let stream = TcpStream::connect(&args.addr)
        .await
        .with_context(|| format!("cannot connect to {}", args.addr))?;
    let (r, writer) = stream.into_split();
    Ok(Transport::Tcp {
        reader: BufReader::new(r),
        writer,
    })
}

/// Sends `line` and waits up to `wait` for its reply; what was sent goes into `record`.
async fn exchange(
    t: &mut Transport,
    line: &str,
    wait: Duration,
    record: Option<&mut Recorder>,
) -> Result<Reply> {
    let sending = |data: &[u8]| {
        if let Some(record) = record {
            record.sent(data, false);
        }
    };
    match t {
        Transport::Tcp { reader, writer } => {
            let data = format!("{line}\n");
            sending(data.as_bytes());
            writer.write_all(data.as_bytes()).await.context("sending")?;
            let mut reply = Vec::new();
            // The whole reply line, however many segments it takes.
            match tokio::time::timeout(wait, reader.read_until(b'\n', &mut reply)).await {
                Err(_) => Ok(Reply::NoneInTime),
                Ok(Err(err)) => Ok(Reply::Closed(err.to_string())),
                Ok(Ok(0)) => Ok(Reply::Closed("end of stream".into())),
                Ok(Ok(_)) => Ok(Reply::Data(reply, false)),
            }
        }
        Transport::Udp(sock) => {
            sending(line.as_bytes());
            sock.send(line.as_bytes()).await.context("sending")?;
            let mut buf = vec![0u8; 65_536];
            match tokio::time::timeout(wait, sock.recv(&mut buf)).await {
                Err(_) => Ok(Reply::NoneInTime),
                // ICMP port unreachable: nothing listens there.
                Ok(Err(err)) => bail!("no UDP echo there: {err}"),
                Ok(Ok(n)) => {
                    buf.truncate(n);
                    Ok(Reply::Data(buf, false))
                }
            }
        }
        Transport::Ws(ws) => {
            sending(line.as_bytes());
            ws.send(Message::text(line)).await.context("sending")?;
            loop {
                let next = match tokio::time::timeout(wait, ws.next()).await {
                    Err(_) => return Ok(Reply::NoneInTime),
                    Ok(next) => next,
                };
                return match next {
                    Some(Ok(Message::Text(t))) => Ok(Reply::Data(t.as_bytes().to_vec(), false)),
                    Some(Ok(Message::Binary(b))) => Ok(Reply::Data(b.to_vec(), true)),
                    Some(Ok(Message::Close(frame))) => Ok(Reply::Closed(match frame {
                        Some(f) => format!("close {} {}", u16::from(f.code), f.reason),
                        None => "close".into(),
                    })),
                    Some(Ok(_)) => continue,
                    Some(Err(err)) => Ok(Reply::Closed(err.to_string())),
                    None => Ok(Reply::Closed("end of stream".into())),
                };
            }
        }
    }
}
