//! The one upstream-draining loop of the bridges: a `/ws` session's and a WebTransport
//! stream's upstream replies, read without waiting and cut into lines.

use std::io;

use socklab_protocol::LineFramer;
use tokio::net::TcpStream;

use crate::net::read::{ReadNow, read_now, with_read_buf};

/// Upstream reply bytes taken in one pass, so a fast upstream is forwarded in bounded batches.
pub const BATCH_BYTES: usize = 64 * 1024;

/// Reads what the upstream has ready (up to [`BATCH_BYTES`]) and hands each line to `line`,
/// without its `\n`; the unfinished line goes too when the upstream paused, closed or failed.
/// Returns whether the upstream closed.
pub fn drain_lines(
    upstream: &TcpStream,
    framer: &mut LineFramer,
    mut line: impl FnMut(&[u8]),
) -> io::Result<bool> {
    with_read_buf(|buf| {
        let mut batched = 0;
        loop {
            if batched >= BATCH_BYTES {
                return Ok(false);
            }
            match read_now(upstream, buf) {
                Ok(ReadNow::Eof) => {
                    framer.flush(&mut line);
                    return Ok(true);
                }
                Ok(ReadNow::Data { n, drained }) => {
                    batched += n;
                    framer.push(&buf[..n], &mut line);
                    if drained {
                        framer.flush(&mut line);
                        return Ok(false);
                    }
                }
                Ok(ReadNow::WouldBlock) => {
                    framer.flush(&mut line);
                    return Ok(false);
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    framer.flush(&mut line);
                    return Err(err);
                }
            }
        }
    })
}
