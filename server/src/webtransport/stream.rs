//! One bidirectional WebTransport stream bridged to its own TCP upstream connection, like a
//! `/ws` session; and the session's activity clock its streams keep alive.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use socklab_protocol::{LineFramer, close_code};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;
use wtransport::{RecvStream, SendStream, VarInt};

use crate::net::upstream::connect_upstream;
use crate::registry::Session;
use crate::state::Shared;

/// Stream bytes read with one call.
const STREAM_CHUNK: usize = 4096;
/// Upstream reply bytes gathered before they are written to the stream.
const BATCH_BYTES: usize = 64 * 1024;
/// How long a closing stream's upstream gets for its FIN.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Milliseconds since a session started, shared by its datagram loop and its streams so any
/// of them keeps the session from being idle.
pub struct Activity {
    started: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    pub fn new() -> Self {
        Activity {
            started: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    pub fn touch(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    pub fn last(&self) -> Instant {
        self.started + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// One bidirectional stream bridged to its own TCP upstream connection, like a `/ws` session:
/// the browser's bytes go up verbatim, the upstream's replies come back a line at a time (the
/// unfinished line when the upstream pauses). The browser finishing its side half-closes the
/// upstream; the upstream closing finishes the stream.
pub async fn bridge_stream(
    mut send: SendStream,
    mut recv: RecvStream,
    session: &Session,
    shared: &Shared,
    activity: &Activity,
) {
    let id = session.id();
    let (mut upstream, _link) = match connect_upstream(shared, id).await {
        Ok(pair) => pair,
        Err(err) => {
            tracing::warn!(id, "upstream {} unreachable: {err}", shared.upstream);
            reset(&mut send, recv);
            return;
        }
    };
    let write_timeout = shared.config.write_timeout();
    let mut framer = LineFramer::new(shared.config.max_message);
    let mut buf = vec![0u8; STREAM_CHUNK];
    let mut out = Vec::new();
    let mut ends = Vec::new();
    let mut client_done = false;
    loop {
        tokio::select! {
            read = recv.read(&mut buf), if !client_done => match read {
                Ok(Some(n)) => {
                    activity.touch();
                    let data = &buf[..n];
                    session.received(data);
                    match tokio::time::timeout(write_timeout, upstream.write_all(data)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(err)) => {
                            tracing::info!(id, "upstream failed: {err}");
                            reset(&mut send, recv);
                            return;
                        }
                        Err(_) => {
                            tracing::info!(id, "upstream stopped reading");
                            reset(&mut send, recv);
                            return;
                        }
                    }
                }
                Ok(None) => {
                    // The browser finished its side: so do we, and wait for the last replies.
                    client_done = true;
                    let _ = tokio::time::timeout(CLOSE_TIMEOUT, upstream.shutdown()).await;
                }
                Err(err) => {
                    tracing::debug!(id, cause = %err, "stream closed by the client");
                    break;
                }
            },
            ready = upstream.readable() => {
                let drained = match ready {
                    Ok(()) => drain_upstream(&upstream, &mut framer, &mut out, &mut ends),
                    Err(err) => Err(err),
                };
                if !out.is_empty() {
                    activity.touch();
                    match tokio::time::timeout(write_timeout, send.write_all(&out)).await {
                        Ok(Ok(())) => {
                            let mut start = 0;
                            for &end in &ends {
                                session.sent(&out[start..end]);
                                start = end;
                            }
                        }
                        Ok(Err(err)) => {
                            tracing::debug!(id, cause = %err, "stream closed by the client");
                            break;
                        }
                        Err(_) => {
                            tracing::info!(id, "client not reading its stream");
                            let _ = send.reset(VarInt::from_u32(u32::from(close_code::GOING_AWAY)));
                            break;
                        }
                    }
                    out.clear();
                    ends.clear();
                }
                match drained {
                    Ok(false) => {}
                    Ok(true) => {
                        let _ = tokio::time::timeout(write_timeout, send.finish()).await;
                        return;
                    }
                    Err(err) => {
                        tracing::info!(id, "upstream failed: {err}");
                        reset(&mut send, recv);
                        return;
                    }
                }
            }
        }
    }
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, upstream.shutdown()).await;
}

/// Resets the stream both ways with 1011 (upstream unreachable or failed).
fn reset(send: &mut SendStream, recv: RecvStream) {
    let code = VarInt::from_u32(u32::from(close_code::SERVER_ERROR));
    let _ = send.reset(code);
    recv.stop(code);
}

/// Reads everything the upstream has ready into `out`, noting where each line ends; the
/// unfinished line goes too when the upstream paused. Returns whether the upstream closed.
fn drain_upstream(
    upstream: &TcpStream,
    framer: &mut LineFramer,
    out: &mut Vec<u8>,
    ends: &mut Vec<usize>,
) -> io::Result<bool> {
    let mut chunk = [0u8; STREAM_CHUNK];
    let mut piece = |p: &[u8]| {
        out.extend_from_slice(p);
        ends.push(out.len());
    };
    let mut batched = 0;
    loop {
        if batched >= BATCH_BYTES {
            return Ok(false);
        }
        match upstream.try_read(&mut chunk) {
            Ok(0) => {
                framer.flush(&mut piece);
                return Ok(true);
            }
            Ok(n) => {
                batched += n;
                framer.push(&chunk[..n], &mut piece);
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                framer.flush(&mut piece);
                return Ok(false);
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => {
                framer.flush(&mut piece);
                return Err(err);
            }
        }
    }
}
