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

use crate::net::relay::drain_lines;
use crate::net::upstream::connect_upstream;
use crate::net::wake::write_now;
use crate::registry::Session;
use crate::state::Shared;

/// Stream bytes read with one call.
const STREAM_CHUNK: usize = 4096;
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
    let mut down = Down {
        framer: LineFramer::new(shared.config.max_reply_line()),
        out: Vec::new(),
        ends: Vec::new(),
        write_timeout,
    };
    let mut buf = vec![0u8; STREAM_CHUNK];
    let mut up = Up::default();
    let mut client_done = false;
    loop {
        // While the upstream has not taken the last chunk, the browser is not read but the
        // upstream's replies are: an upstream that answers as it reads (the echo) is never
        // waiting on us while we wait on it.
        let waiting = up.waiting();
        let give_up = up.full_since.map(|since| since + write_timeout);
        let next = tokio::select! {
            read = recv.read(&mut buf), if !client_done && !waiting => match read {
                Ok(Some(n)) => {
                    activity.touch();
                    let data = &buf[..n];
                    session.received(data);
                    up.queue(data);
                    up.send(&upstream, id, &shared.upstream)
                }
                Ok(None) => {
                    // The browser finished its side: so do we, and wait for the last replies.
                    client_done = true;
                    let _ = tokio::time::timeout(CLOSE_TIMEOUT, upstream.shutdown()).await;
                    Next::Continue
                }
                Err(err) => {
                    tracing::debug!(id, cause = %err, "stream closed by the client");
                    Next::Stop
                }
            },
            ready = upstream.writable(), if waiting => match ready {
                Ok(()) => up.send(&upstream, id, &shared.upstream),
                Err(err) => {
                    tracing::info!(id, upstream = %shared.upstream, "upstream failed: {err}");
                    Next::Reset
                }
            },
            () = tokio::time::sleep_until(give_up.unwrap_or_else(Instant::now)), if give_up.is_some() => {
                tracing::info!(id, upstream = %shared.upstream, "upstream stopped reading");
                Next::Reset
            }
            ready = upstream.readable() => {
                down.on_upstream(ready, &upstream, &mut send, session, activity).await
            }
        };
        match next {
            Next::Continue => {}
            Next::Stop => break,
            Next::Reset => return reset(&mut send, recv),
            Next::Finish => {
                let _ = tokio::time::timeout(write_timeout, send.finish()).await;
                return;
            }
        }
    }
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, upstream.shutdown()).await;
}

/// What a stream does after an event.
enum Next {
    Continue,
    /// Stop, and shut the upstream down.
    Stop,
    /// Reset the stream both ways with 1011 (the upstream failed).
    Reset,
    /// The upstream closed: finish the stream.
    Finish,
}

/// The browser's bytes on their way to the upstream, verbatim: at most one chunk, sent without
/// waiting, the rest kept until the upstream can take it.
#[derive(Default)]
struct Up {
    data: Vec<u8>,
    sent: usize,
    /// Since when the upstream has taken none of `data`: the stream is reset after the write
    /// timeout.
    full_since: Option<Instant>,
}

impl Up {
    fn waiting(&self) -> bool {
        self.sent < self.data.len()
    }

    fn queue(&mut self, data: &[u8]) {
        self.data.clear();
        self.sent = 0;
        self.data.extend_from_slice(data);
    }

    /// Sends what the upstream (`to`) takes now.
    fn send(&mut self, upstream: &TcpStream, id: u64, to: &str) -> Next {
        let rest = self.data.get(self.sent..).unwrap_or_default();
        match write_now(upstream, rest) {
            Ok(0) => {}
            Ok(n) => {
                self.sent += n;
                self.full_since = None;
            }
            Err(err) => {
                tracing::info!(id, upstream = %to, "upstream failed: {err}");
                return Next::Reset;
            }
        }
        if self.waiting() {
            self.full_since.get_or_insert_with(Instant::now);
        }
        Next::Continue
    }
}

/// The upstream-to-browser half of a stream: replies framed into lines, written in batches.
struct Down {
    framer: LineFramer,
    /// The batch of lines to write.
    out: Vec<u8>,
    /// Where each line of `out` ends (each is counted as one message).
    ends: Vec<usize>,
    write_timeout: Duration,
}

impl Down {
    /// The upstream is readable: its lines go to the browser, then its close (or failure)
    /// ends the stream.
    async fn on_upstream(
        &mut self,
        ready: io::Result<()>,
        upstream: &TcpStream,
        send: &mut SendStream,
        session: &Session,
        activity: &Activity,
    ) -> Next {
        let id = session.id();
        let drained = match ready {
            Ok(()) => {
                let (out, ends) = (&mut self.out, &mut self.ends);
                drain_lines(upstream, &mut self.framer, |line| {
                    out.extend_from_slice(line);
                    ends.push(out.len());
                })
            }
            Err(err) => Err(err),
        };
        if !self.out.is_empty() {
            activity.touch();
            match tokio::time::timeout(self.write_timeout, send.write_all(&self.out)).await {
                Ok(Ok(())) => {
                    let mut start = 0;
                    for &end in &self.ends {
                        session.sent(&self.out[start..end]);
                        start = end;
                    }
                }
                Ok(Err(err)) => {
                    tracing::debug!(id, cause = %err, "stream closed by the client");
                    return Next::Stop;
                }
                Err(_) => {
                    tracing::info!(id, "client not reading its stream");
                    let _ = send.reset(VarInt::from_u32(u32::from(close_code::GOING_AWAY)));
                    return Next::Stop;
                }
            }
            self.out.clear();
            self.ends.clear();
        }
        match drained {
            Ok(false) => Next::Continue,
            Ok(true) => Next::Finish,
            Err(err) => {
                tracing::info!(id, "upstream failed: {err}");
                Next::Reset
            }
        }
    }
}

/// Resets the stream both ways with 1011 (upstream unreachable or failed).
fn reset(send: &mut SendStream, recv: RecvStream) {
    let code = VarInt::from_u32(u32::from(close_code::SERVER_ERROR));
    let _ = send.reset(code);
    recv.stop(code);
}
