//! The lesson's TCP server, done right: every line is answered with `[time]:line`, many clients
//! at once, bytes verbatim, bounded memory per connection.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::task::Poll;

use socklab_protocol::{SessionKind, Stamp, Stamper};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::clock::stamp_now;
use crate::net::listen::accept_loop;
use crate::net::read::{ReadNow, read_now, with_read_buf};
use crate::net::wake::{Gate, write_within};
use crate::registry::Session;
use crate::state::Shared;

/// Reply bytes gathered before they are written, so a client that streams without pausing
/// is answered as it goes and the reply buffer stays bounded.
const WRITE_CHUNK: usize = 64 * 1024;

/// Accepts echo clients until shutdown.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    accept_loop(listener, shared, SessionKind::Tcp, handle).await;
}

/// How reading stopped for now.
enum Drained {
    /// Nothing more is readable: the client paused.
    Paused,
    /// The reply buffer is full: write it, then read on.
    Full,
    /// The client closed its sending side.
    Eof,
}

async fn handle(mut stream: TcpStream, mut session: Session, shared: Arc<Shared>) {
    let mut stamper = Stamper::new(shared.config.max_line);
    let mut out = Vec::new();
    let write_timeout = shared.config.write_timeout();
    // Once per connection, on the session's own token: a pending `cancelled()` locks its
    // token's waiter list each time it is polled, so it is polled only when it fired.
    let stop = shared.session_shutdown();
    let shutdown = stop.cancelled();
    tokio::pin!(shutdown);
    let mut shutdown_gate = Gate::default();
    loop {
        // Per message only the socket is polled; shutdown when it woke the task.
        let ready = std::future::poll_fn(|cx| match stream.poll_read_ready(cx) {
            Poll::Ready(ready) => Poll::Ready(Some(ready)),
            Poll::Pending => shutdown_gate.poll(cx, |cx| shutdown.as_mut().poll(cx).map(|()| None)),
        });
        match ready.await {
            Some(Ok(())) => {}
            Some(Err(err)) => {
                session.set_reason(format!("read error: {err}"));
                break;
            }
            None => {
                session.set_reason("server shutting down");
                break;
            }
        }
        let drained = drain(&stream, &session, &mut stamper, &mut out);
        if !out.is_empty() {
            match write_within(&mut stream, &out, write_timeout).await {
                Ok(Ok(())) => session.sent(&out),
                Ok(Err(err)) => {
                    session.set_reason(format!("write error: {err}"));
                    break;
                }
                Err(_) => {
                    session.set_reason(format!(
                        "client not reading: replies blocked for {}s",
                        write_timeout.as_secs()
                    ));
                    break;
                }
            }
            out.clear();
            if out.capacity() > WRITE_CHUNK * 2 {
                out = Vec::new();
            }
        }
        match drained {
            Ok(Drained::Paused | Drained::Full) => {}
            Ok(Drained::Eof) => {
                session.set_reason("client closed");
                // Half-close: the client may still read what we answered; say we are done.
                let _ = stream.shutdown().await;
                break;
            }
            Err(err) => {
                session.set_reason(match err.kind() {
                    io::ErrorKind::ConnectionReset => "client reset the connection".to_owned(),
                    _ => format!("read error: {err}"),
                });
                break;
            }
        }
        if stamper.pending() == 0 {
            stamper.shrink();
        }
    }
}

/// Reads everything readable right now without waiting, stamping as it goes. When the client
/// paused (or closed) the unfinished line is answered too. One stamp (a clock reading) for the
/// whole pass: it has a second's resolution, and the pass takes microseconds.
fn drain(
    stream: &TcpStream,
    session: &Session,
    stamper: &mut Stamper,
    out: &mut Vec<u8>,
) -> io::Result<Drained> {
    let stamp = stamp_now();
    with_read_buf(|buf| drain_into(stream, session, stamper, out, buf, &stamp))
}

fn drain_into(
    stream: &TcpStream,
    session: &Session,
    stamper: &mut Stamper,
    out: &mut Vec<u8>,
    buf: &mut [u8],
    stamp: &Stamp,
) -> io::Result<Drained> {
    loop {
        if out.len() >= WRITE_CHUNK {
            return Ok(Drained::Full);
        }
        match read_now(stream, buf) {
            Ok(ReadNow::Eof) => {
                stamper.flush(stamp, out);
                return Ok(Drained::Eof);
            }
            Ok(ReadNow::Data { n, drained }) => {
                session.received(&buf[..n]);
                stamper.push(&buf[..n], stamp, out);
                if drained {
                    stamper.flush(stamp, out);
                    return Ok(Drained::Paused);
                }
            }
            Ok(ReadNow::WouldBlock) => {
                stamper.flush(stamp, out);
                return Ok(Drained::Paused);
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => {
                // Answer what arrived before the error; it is lost only if writing fails too.
                stamper.flush(stamp, out);
                return Err(err);
            }
        }
    }
}
