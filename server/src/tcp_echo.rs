//! The lesson's TCP server, done right: every line is answered with `[time]:line`, many clients
//! at once, bytes verbatim, bounded memory per connection.

use std::cell::RefCell;
use std::io;
use std::sync::Arc;

use socklab_protocol::{SessionKind, Stamper};
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::{TcpListener, TcpStream};

use crate::clock::stamp_now;
use crate::registry::Session;
use crate::shared::{Shared, accept_loop};

/// Bytes read with one syscall, into a buffer each worker thread owns (see [`with_read_buf`]),
/// so an idle connection holds no read buffer at all.
const READ_CHUNK: usize = 16 * 1024;
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
    // Once per connection: a fresh `cancelled()` each pass would lock the shutdown token's
    // waiter list, shared by every session, once per message.
    let shutdown = shared.shutdown.cancelled();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            ready = stream.readable() => if let Err(err) = ready {
                session.set_reason(format!("read error: {err}"));
                break;
            },
            () = &mut shutdown => {
                session.set_reason("server shutting down");
                break;
            }
        }
        let drained = drain(&stream, &session, &mut stamper, &mut out);
        if !out.is_empty() {
            match tokio::time::timeout(write_timeout, stream.write_all(&out)).await {
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

thread_local! {
    /// The read buffer of every connection served on this thread: reused, so it is neither
    /// held by idle connections nor zeroed again for every read (a 16 KiB memset per message
    /// was 2% of the bridge's CPU).
    static READ_BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
}

/// Runs `f` with this thread's read buffer. `f` must not await (it cannot: it is sync) nor
/// call `with_read_buf` again.
pub(crate) fn with_read_buf<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    READ_BUF.with_borrow_mut(|buf| f(buf))
}

/// What one non-blocking read found.
pub(crate) enum ReadNow {
    /// `n` bytes; `drained` when they were fewer than the buffer holds, so nothing more was
    /// readable: the peer paused.
    Data { n: usize, drained: bool },
    /// The peer closed its sending side.
    Eof,
    /// Nothing was readable.
    WouldBlock,
}

/// Reads what is ready without waiting. A short read means the socket's buffer is now empty:
/// it says so and clears tokio's readiness, so the caller does not make one more `recv` only
/// to hear EAGAIN (one syscall fewer per message). Readiness is cleared with the event seen
/// *before* the read, so bytes that arrive after it wake the task again as usual.
pub(crate) fn read_now(stream: &TcpStream, buf: &mut [u8]) -> io::Result<ReadNow> {
    let len = buf.len();
    let mut got = 0;
    let read = stream.try_io(Interest::READABLE, || {
        let n = stream.try_read(buf)?;
        got = n;
        if n > 0 && n < len {
            Err(io::ErrorKind::WouldBlock.into())
        } else {
            Ok(n)
        }
    });
    match read {
        Ok(0) => Ok(ReadNow::Eof),
        Ok(n) => Ok(ReadNow::Data { n, drained: false }),
        Err(err) if err.kind() == io::ErrorKind::WouldBlock && got > 0 => Ok(ReadNow::Data {
            n: got,
            drained: true,
        }),
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(ReadNow::WouldBlock),
        Err(err) => Err(err),
    }
}

/// Reads everything readable right now without waiting, stamping as it goes. When the client
/// paused (or closed) the unfinished line is answered too.
fn drain(
    stream: &TcpStream,
    session: &Session,
    stamper: &mut Stamper,
    out: &mut Vec<u8>,
) -> io::Result<Drained> {
    with_read_buf(|buf| drain_into(stream, session, stamper, out, buf))
}

fn drain_into(
    stream: &TcpStream,
    session: &Session,
    stamper: &mut Stamper,
    out: &mut Vec<u8>,
    buf: &mut [u8],
) -> io::Result<Drained> {
    loop {
        if out.len() >= WRITE_CHUNK {
            return Ok(Drained::Full);
        }
        match read_now(stream, buf) {
            Ok(ReadNow::Eof) => {
                stamper.flush(&stamp_now(), out);
                return Ok(Drained::Eof);
            }
            Ok(ReadNow::Data { n, drained }) => {
                session.received(&buf[..n]);
                stamper.push(&buf[..n], &stamp_now(), out);
                if drained {
                    stamper.flush(&stamp_now(), out);
                    return Ok(Drained::Paused);
                }
            }
            Ok(ReadNow::WouldBlock) => {
                stamper.flush(&stamp_now(), out);
                return Ok(Drained::Paused);
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => {
                // Answer what arrived before the error; it is lost only if writing fails too.
                stamper.flush(&stamp_now(), out);
                return Err(err);
            }
        }
    }
}
