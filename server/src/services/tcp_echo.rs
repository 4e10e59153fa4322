//! The lesson's TCP server, done right: every line is answered with `[time]:line`, many clients
//! at once, bytes verbatim, bounded memory per connection.

use std::future::Future;
use std::io;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::task::Poll;

use socklab_protocol::{SessionKind, Stamper};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::clock::stamp_now;
use crate::net::listen::accept_loop;
use crate::net::read::{Drained, drain};
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
        let drained = drain_stamped(&stream, &session, &mut stamper, &mut out);
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
            Ok(Drained::Paused | Drained::Stopped) => {}
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

/// Reads everything readable right now without waiting, stamping as it goes, until the
/// replies fill [`WRITE_CHUNK`] (then they are written and reading goes on). When the client
/// paused (or closed, or failed) the unfinished line is answered too. One stamp (a clock
/// reading) for the whole pass: it has a second's resolution, and the pass takes microseconds.
fn drain_stamped(
    stream: &TcpStream,
    session: &Session,
    stamper: &mut Stamper,
    out: &mut Vec<u8>,
) -> io::Result<Drained> {
    let stamp = stamp_now();
    let drained = drain(stream, usize::MAX, |bytes| {
        session.received(bytes);
        stamper.push(bytes, &stamp, out);
        if out.len() >= WRITE_CHUNK {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    // Answer what arrived before an error too; it is lost only if writing fails as well.
    if !matches!(drained, Ok(Drained::Stopped)) {
        stamper.flush(&stamp, out);
    }
    drained
}
