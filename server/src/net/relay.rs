//! The one upstream-draining loop of the bridges: a `/ws` session's and a WebTransport
//! stream's upstream replies, read without waiting and cut into lines.

use std::io;
use std::ops::ControlFlow;

use socklab_protocol::LineFramer;
use tokio::net::TcpStream;

use crate::net::read::{Drained, drain};

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
    let drained = drain(upstream, BATCH_BYTES, |bytes| {
        framer.push(bytes, &mut line);
        ControlFlow::Continue(())
    });
    // What is left of a line goes too, unless more is coming at once.
    if !matches!(drained, Ok(Drained::Stopped)) {
        framer.flush(&mut line);
    }
    Ok(drained? == Drained::Eof)
}
