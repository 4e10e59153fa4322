//! The capture's second thread: takes each queued packet apart, keeps it only if its addresses
//! are a session the registry knows, stores it and, if anyone asked, announces it.
//!
//! Two races with the registry are handled here. A connection's first packets (the SYN, the
//! HTTP upgrade of a WebSocket) cross the wire before the session is registered: they wait
//! in `pending`, a few seconds at most, until it is. Its last ones (the teardown, or all of
//! a short session's packets when this thread runs late) are looked at after the session
//! closed: the registry keeps a closed session's addresses for [`LINGER`].

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use socklab_protocol::{Direction, MonitorEvent, PacketEvent};
use tokio_util::sync::CancellationToken;

use super::frame::Frame;
use super::hub::Capture;
use super::parse::{Parsed, Transport, parse};
use crate::registry::{Registry, SessionRef};

/// How long a closed session still claims its packets.
const LINGER: Duration = Duration::from_secs(5);
/// How long a packet waits for its session to be registered.
const PENDING_FOR: Duration = Duration::from_secs(3);
/// Most packets waiting for their session, all connections together.
const MAX_PENDING: usize = 4096;
/// How often waiting packets are matched again, and closed sessions noticed.
const SWEEP: Duration = Duration::from_millis(100);

/// Both ends of a connection, in a fixed order (so both directions share one key).
type Pair = (SocketAddr, SocketAddr);

fn pair(a: SocketAddr, b: SocketAddr) -> Pair {
    if a <= b { (a, b) } else { (b, a) }
}

/// A packet that matched no session yet.
struct Waiting {
    frame: Frame,
    parsed: Parsed,
    since: Instant,
}

/// The matcher's own state; only its thread touches it.
pub(crate) struct Matcher {
    registry: Arc<Registry>,
    capture: Arc<Capture>,
    pending: HashMap<Pair, Vec<Waiting>>,
    pending_len: usize,
    /// When closed sessions were last dropped from the registry's address index.
    last_forget: Instant,
}

impl Matcher {
    pub(crate) fn new(registry: Arc<Registry>, capture: Arc<Capture>) -> Self {
        Matcher {
            registry,
            capture,
            pending: HashMap::new(),
            pending_len: 0,
            last_forget: Instant::now(),
        }
    }

    /// Handles queued packets until `shutdown` (or until the reader is gone).
    pub(crate) fn run(mut self, queue: Receiver<Frame>, shutdown: &CancellationToken) {
        let mut last_sweep = Instant::now();
        while !shutdown.is_cancelled() {
            match queue.recv_timeout(SWEEP) {
                Ok(frame) => self.handle(frame),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if last_sweep.elapsed() >= SWEEP {
                self.sweep();
                last_sweep = Instant::now();
            }
        }
        let s = self.capture.stats.snapshot();
        tracing::info!(
            read = s.read,
            kernel_dropped = s.kernel_dropped,
            queue_dropped = s.queue_dropped,
            captured = s.captured,
            unstored = s.unstored,
            "packet capture stopped"
        );
    }

    fn handle(&mut self, frame: Frame) {
        let Some(parsed) = parse(&frame.data) else {
            return;
        };
        match self.find(parsed.src, parsed.dst) {
            Some((session, local)) => {
                self.release(pair(parsed.src, parsed.dst), session, local);
                self.keep(session, direction(&parsed, local), &frame, &parsed);
            }
            None => self.wait(frame, parsed),
        }
    }

    /// The session a packet from `src` to `dst` belongs to, and which end is the server's.
    fn find(&self, src: SocketAddr, dst: SocketAddr) -> Option<(SessionRef, SocketAddr)> {
        [(dst, src), (src, dst)]
            .into_iter()
            .find_map(|(local, peer)| {
                self.registry
                    .by_addrs(local, peer, LINGER)
                    // A UDP socket bound to 0.0.0.0 knows its sessions by port alone.
                    .or_else(|| self.registry.by_addrs(unspecified(local), peer, LINGER))
                    .map(|session| (session, local))
            })
    }

    fn wait(&mut self, frame: Frame, parsed: Parsed) {
        if self.pending_len >= MAX_PENDING {
            return;
        }
        self.pending_len += 1;
        self.pending
            .entry(pair(parsed.src, parsed.dst))
            .or_default()
            .push(Waiting {
                frame,
                parsed,
                since: Instant::now(),
            });
    }

    /// Stores the packets that waited for `session` (whose server end is `local`), in the
    /// order they came.
    fn release(&mut self, key: Pair, session: SessionRef, local: SocketAddr) {
        let Some(waiting) = self.pending.remove(&key) else {
            return;
        };
        self.pending_len -= waiting.len();
        for w in waiting {
            self.keep(session, direction(&w.parsed, local), &w.frame, &w.parsed);
        }
    }

    /// Matches waiting packets again, forgets stale ones, and tells the store which sessions
    /// closed.
    fn sweep(&mut self) {
        let now = Instant::now();
        let keys: Vec<Pair> = self.pending.keys().copied().collect();
        for key in keys {
            if let Some((session, local)) = self.find(key.0, key.1) {
                self.release(key, session, local);
            }
        }
        let mut expired = 0;
        self.pending.retain(|_, waiting| {
            let before = waiting.len();
            waiting.retain(|w| now.duration_since(w.since) < PENDING_FOR);
            expired += before - waiting.len();
            !waiting.is_empty()
        });
        self.pending_len -= expired;
        if now.duration_since(self.last_forget) >= LINGER {
            self.registry.forget_closed_addrs(LINGER);
            self.last_forget = now;
        }
        let registry = &self.registry;
        self.capture.lock_store().sweep(|id| registry.is_open(id));
    }

    fn keep(&mut self, session: SessionRef, dir: Direction, frame: &Frame, parsed: &Parsed) {
        let capture = &self.capture;
        capture.stats.captured.fetch_add(1, Ordering::Relaxed);
        let headers = parsed.ip_header + parsed.transport_header;
        let relative = {
            let mut store = capture.lock_store();
            let Ok(entry) = store.keep(session, frame.at, &frame.data, headers) else {
                capture.stats.unstored.fetch_add(1, Ordering::Relaxed);
                return;
            };
            // Always, so the numbers are relative to the SYN's even if nobody watched it.
            match parsed.transport {
                Transport::Tcp { seq, ack, .. } => Some(entry.relative(dir, seq, ack)),
                Transport::Udp => None,
            }
        };
        if capture.wants_packets() {
            let payload = frame.data.get(headers..).unwrap_or_default();
            let payload = &payload[..payload.len().min(capture.payload)];
            let event = packet_event(session.id, dir, frame.at, parsed, payload, relative);
            capture.publish(&MonitorEvent::Packet(event));
        }
    }
}

/// Which way a packet went, given the server's end of its connection.
fn direction(parsed: &Parsed, local: SocketAddr) -> Direction {
    if parsed.dst == local {
        Direction::In
    } else {
        Direction::Out
    }
}

/// The `packet` event of a kept packet; `relative` is its TCP (seq, ack).
fn packet_event(
    id: u64,
    dir: Direction,
    at: Duration,
    parsed: &Parsed,
    payload: &[u8],
    relative: Option<(u32, Option<u32>)>,
) -> PacketEvent {
    let mut event = PacketEvent {
        id,
        at: rfc3339_micros(at),
        dir,
        ip: parsed.ip,
        proto: "udp".to_owned(),
        flags: Vec::new(),
        seq: None,
        ack: None,
        window: None,
        ip_header: u16::try_from(parsed.ip_header).unwrap_or(u16::MAX),
        transport_header: u16::try_from(parsed.transport_header).unwrap_or(u16::MAX),
        payload_len: u32::try_from(parsed.payload_len).unwrap_or(u32::MAX),
        payload_hex: hex(payload),
    };
    if let Transport::Tcp { window, flags, .. } = parsed.transport {
        let (seq, ack) = relative.unwrap_or((0, None));
        event.proto = "tcp".to_owned();
        event.flags = flags.names();
        event.seq = Some(seq);
        event.ack = if flags.ack { ack } else { None };
        event.window = Some(window);
    }
    event
}

fn unspecified(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(_) => IpAddr::from([0u8; 4]),
        IpAddr::V6(_) => IpAddr::from([0u16; 8]),
    };
    SocketAddr::new(ip, addr.port())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn rfc3339_micros(since_epoch: Duration) -> String {
    let at = std::time::UNIX_EPOCH + since_epoch;
    chrono::DateTime::<chrono::Local>::from(at)
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lowercase_pairs() {
        assert_eq!(hex(b"hi\n"), "68690a");
        assert_eq!(hex(b""), "");
    }

    #[test]
    fn a_pair_is_the_same_both_ways() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        assert_eq!(pair(a, b), pair(b, a));
    }
}
