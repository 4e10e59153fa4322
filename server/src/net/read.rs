//! Reading a socket without waiting: one buffer per worker thread, and a read that says when
//! the socket ran dry so the caller skips the `recv` that would only hear EAGAIN, and the one
//! loop ([`drain`]) with which the TCP echo and the `/ws` bridge (its client and its upstream)
//! read what a socket has ready.

use std::cell::RefCell;
use std::io;
use std::ops::ControlFlow;

use tokio::io::Interest;
use tokio::net::TcpStream;

/// Bytes read with one syscall, into a buffer each worker thread owns (see [`with_read_buf`]),
/// so an idle connection holds no read buffer at all.
const READ_CHUNK: usize = 16 * 1024;

thread_local! {
    /// The read buffer of every connection served on this thread: reused, so it is neither
    /// held by idle connections nor zeroed again for every read (a 16 KiB memset per message
    /// was 2% of the bridge's CPU).
    static READ_BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
}

/// Runs `f` with this thread's read buffer. `f` must not await (it cannot: it is sync) nor
/// call `with_read_buf` again.
pub fn with_read_buf<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    READ_BUF.with_borrow_mut(|buf| f(buf))
}

/// What one non-blocking read found.
pub enum ReadNow {
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
pub fn read_now(stream: &TcpStream, buf: &mut [u8]) -> io::Result<ReadNow> {
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

/// How [`drain`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// Nothing more was readable: the peer paused.
    Paused,
    /// The limit was reached or the caller said stop; more may be readable (tokio's readiness
    /// stays set, so the socket is polled again).
    Stopped,
    /// The peer closed its sending side.
    Eof,
}

/// Reads what `stream` has ready into this thread's buffer and hands each read's bytes to
/// `take`, until the socket ran dry, closed or failed, `limit` bytes were read, or `take`
/// breaks. A read that ran the socket dry reports [`Drained::Paused`] even if `take` broke
/// on it, so a caller answering what a paused peer sent does not miss the pause. `take` must
/// not call [`with_read_buf`].
pub fn drain(
    stream: &TcpStream,
    limit: usize,
    mut take: impl FnMut(&mut [u8]) -> ControlFlow<()>,
) -> io::Result<Drained> {
    with_read_buf(|buf| {
        let mut read = 0;
        loop {
            if read >= limit {
                return Ok(Drained::Stopped);
            }
            match read_now(stream, buf) {
                Ok(ReadNow::Data { n, drained }) => {
                    read += n;
                    let flow = take(buf.get_mut(..n).unwrap_or_default());
                    if drained {
                        return Ok(Drained::Paused);
                    }
                    if flow.is_break() {
                        return Ok(Drained::Stopped);
                    }
                }
                Ok(ReadNow::WouldBlock) => return Ok(Drained::Paused),
                Ok(ReadNow::Eof) => return Ok(Drained::Eof),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
    })
}
