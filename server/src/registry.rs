//! One session model for every kind (tcp, udp, banner, ws, wt): the registry hands out ids,
//! counts bytes, answers `/api/sessions`, and publishes monitor events on a broadcast channel.
//!
//! Publishing never waits: `tokio::sync::broadcast` overwrites the oldest event when a
//! subscriber falls behind (that subscriber is told it lagged), so a slow monitor can lose
//! events but can never slow an echo client. When nobody subscribes, a message costs one
//! uncontended lock (its session's counters), one atomic read and no allocation: nothing all
//! sessions share is written, so the `--threads` runtimes never contend for it.
//!
//! Counters are exact from a subscriber's first frame: the snapshot's `session_opened` events
//! carry each session's counts, and each `message` its number (`seq`) in its session and
//! direction, so a message both counted in the snapshot and received live is counted once.
//! Bytes and messages sit behind one lock (not two atomics) so a snapshot never sees a
//! message's number without its bytes.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;
use socklab_protocol::events::{
    HandshakeSize, MessageEvent, MonitorEvent, SessionClosed, SessionCounts, SessionInfo,
    SessionOpened, SessionsSnapshot, preview,
};
use socklab_protocol::{Direction, PREVIEW_CHARS, SessionKind};
use tokio::sync::broadcast;

use crate::clock::rfc3339_now;
use crate::metrics::{KINDS, Metrics, kind_index};

/// The shared session registry and event bus.
#[derive(Debug)]
pub struct Registry {
    /// The next session id; ids are never reused within one process.
    next_id: AtomicU64,
    /// Open sessions, by id (ordered, so snapshots list the oldest first).
    sessions: Mutex<BTreeMap<u64, Arc<SessionState>>>,
    /// The monitor bus; events are serialised once, here, and shared by every subscriber.
    events: broadcast::Sender<Utf8Bytes>,
    /// Whether the bus may have a subscriber: read for every message, on every runtime, so
    /// it is one atomic instead of the bus's own receiver count (behind a lock all sessions
    /// share). Set by [`Registry::subscribe`]; cleared, under `watch`, only when a publish
    /// found nobody and the bus still has no receiver.
    watched: AtomicBool,
    /// Orders setting and clearing `watched` (rare: a subscribe, the first publish after the
    /// last subscriber left).
    watch: Mutex<()>,
    /// Local addresses of the bridge's upstream sockets, so the echo service can tell which
    /// `ws`/`wt` session a connection it accepts belongs to.
    links: Mutex<HashMap<SocketAddr, u64>>,
    /// Open sessions by their (local, peer) addresses, so the packet capture can tell cheaply
    /// whether a packet is one of ours.
    by_addrs: Mutex<HashMap<(SocketAddr, SocketAddr), ByAddrs>>,
    /// Whether closed sessions stay in `by_addrs` a while (set by the capture, whose thread
    /// may look a packet up after its session closed).
    keep_closed: AtomicBool,
    /// The instance name carried on every event, if any.
    instance: Option<String>,
    /// `/metrics`: per-kind totals of closed sessions and what is counted once per session.
    metrics: Metrics,
}

/// What the registry knows of one open session.
#[derive(Debug)]
pub struct SessionState {
    /// The session's id.
    pub id: u64,
    /// Its kind.
    pub kind: SessionKind,
    /// The client's address.
    pub peer: SocketAddr,
    /// The local address the client reached.
    pub local: SocketAddr,
    /// When it opened, RFC 3339.
    pub opened_at: String,
    /// When it opened, for the duration in logs.
    pub opened: Instant,
    /// Bytes and messages each way so far.
    counts: Mutex<SessionCounts>,
    /// The `ws`/`wt` session this upstream connection serves.
    pub via: Option<u64>,
    /// The client's tag (WebSocket `?tag=`).
    pub tag: Option<String>,
    /// The HTTP upgrade's size, for WebSocket sessions.
    pub handshake: Option<HandshakeSize>,
}

impl SessionState {
    /// Bytes in, bytes out, messages in, messages out, for the metrics' totals.
    fn totals(&self) -> [u64; 4] {
        let c = self.counts();
        [c.bytes_in, c.bytes_out, c.messages_in, c.messages_out]
    }
}

/// What the packet capture needs to know of a session found by its addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionRef {
    /// The session's id.
    pub id: u64,
    /// Its kind.
    pub kind: SessionKind,
    /// The `ws`/`wt` session it serves, for a bridge's upstream.
    pub via: Option<u64>,
}

/// A session in the address index, and when it closed.
#[derive(Debug, Clone, Copy)]
struct ByAddrs {
    session: SessionRef,
    closed: Option<Instant>,
}

/// How a session is introduced to the registry, beyond its kind and addresses.
#[derive(Debug, Default, Clone)]
pub struct Extra {
    /// The client's tag (WebSocket `?tag=`).
    pub tag: Option<String>,
    /// The HTTP upgrade's size.
    pub handshake: Option<HandshakeSize>,
}

impl Registry {
    /// A registry whose bus keeps `capacity` events for slow subscribers.
    pub fn new(capacity: usize, instance: Option<String>) -> Arc<Self> {
        let (events, _) = broadcast::channel(capacity.max(16));
        Arc::new(Registry {
            next_id: AtomicU64::new(1),
            sessions: Mutex::new(BTreeMap::new()),
            events,
            watched: AtomicBool::new(false),
            watch: Mutex::new(()),
            links: Mutex::new(HashMap::new()),
            metrics: Metrics::new(instance.as_deref()),
            by_addrs: Mutex::new(HashMap::new()),
            keep_closed: AtomicBool::new(false),
            instance,
        })
    }

    /// Registers a new session and announces it.
    pub fn open(
        self: &Arc<Self>,
        kind: SessionKind,
        peer: SocketAddr,
        local: SocketAddr,
        extra: Extra,
    ) -> Session {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let via = if matches!(kind, SessionKind::Tcp | SessionKind::Udp) {
            self.linked(peer)
        } else {
            None
        };
        let state = Arc::new(SessionState {
            id,
            kind,
            peer,
            local,
            opened_at: rfc3339_now(),
            opened: Instant::now(),
            counts: Mutex::new(SessionCounts::default()),
            via,
            tag: extra.tag,
            handshake: extra.handshake,
        });
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, Arc::clone(&state));
        self.metrics.opened(kind);
        let by_addrs = ByAddrs {
            session: SessionRef { id, kind, via },
            closed: None,
        };
        lock(&self.by_addrs).insert((local, peer), by_addrs);
        tracing::info!(id, %kind, %peer, %local, via, "session opened");
        if self.has_subscribers() {
            self.publish(&MonitorEvent::SessionOpened(
                self.opened_event(&state, None),
            ));
        }
        Session {
            state,
            registry: Arc::clone(self),
            reason: None,
        }
    }

    /// Notes that a bridge's upstream socket bound to `local` serves session `id`, before it
    /// connects (TCP) or sends (UDP), so the echo service sees the link when it accepts.
    /// `local` must be the exact source address the echo will see (never `0.0.0.0:port`).
    pub fn link(self: &Arc<Self>, local: SocketAddr, id: u64) -> LinkGuard {
        self.links
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(local, id);
        LinkGuard {
            registry: Arc::clone(self),
            local,
        }
    }

    /// The `ws`/`wt` session whose bridge connects from `peer`, if it is one of ours: only an
    /// exact (address, port) match counts (a link's address is never the unspecified one, and
    /// another host may well use the same source port).
    pub fn linked(&self, peer: SocketAddr) -> Option<u64> {
        self.links
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&peer)
            .copied()
    }

    /// The session between `local` (this server's address) and `peer`: an open one, or one
    /// closed less than `linger` ago (see [`Registry::keep_closed_addrs`]).
    pub fn by_addrs(
        &self,
        local: SocketAddr,
        peer: SocketAddr,
        linger: Duration,
    ) -> Option<SessionRef> {
        lock(&self.by_addrs)
            .get(&(local, peer))
            .filter(|e| e.closed.is_none_or(|at| at.elapsed() < linger))
            .map(|e| e.session)
    }

    /// From now on, closed sessions stay in the address index until
    /// [`Registry::forget_closed_addrs`]: a packet's lookup may come after its session closed.
    pub fn keep_closed_addrs(&self) {
        self.keep_closed.store(true, Ordering::Relaxed);
    }

    /// Removes sessions closed more than `linger` ago from the address index.
    pub fn forget_closed_addrs(&self, linger: Duration) {
        lock(&self.by_addrs).retain(|_, e| e.closed.is_none_or(|at| at.elapsed() < linger));
    }

    /// Whether session `id` is still open.
    pub fn is_open(&self, id: u64) -> bool {
        lock(&self.sessions).contains_key(&id)
    }

    /// Subscribes to the monitor bus.
    pub fn subscribe(&self) -> broadcast::Receiver<Utf8Bytes> {
        let _watch = lock(&self.watch);
        let rx = self.events.subscribe();
        self.watched.store(true, Ordering::SeqCst);
        rx
    }

    /// Whether anyone may listen; when nobody does, message events are not even built. Called
    /// after counting: the fence orders the count before this read, so a subscriber that this
    /// read misses finds the message in its snapshot's counts instead.
    pub fn has_subscribers(&self) -> bool {
        fence(Ordering::SeqCst);
        self.watched.load(Ordering::Relaxed)
    }

    /// Serialises an event once and hands it to every subscriber; never waits.
    pub fn publish(&self, event: &MonitorEvent) {
        match serde_json::to_string(event) {
            Ok(json) => {
                if self.events.send(Utf8Bytes::from(json)).is_err() {
                    self.unwatch();
                }
            }
            Err(err) => tracing::error!(cause = %err, "could not serialise a monitor event"),
        }
    }

    /// Nobody got the last event: unless someone subscribed meanwhile, stop building them.
    fn unwatch(&self) {
        let _watch = lock(&self.watch);
        if self.events.receiver_count() == 0 {
            self.watched.store(false, Ordering::SeqCst);
        }
    }

    /// A `session_opened` event for every open session, oldest first: what a new subscriber
    /// is sent before the live events.
    pub fn opened_events(&self) -> Vec<MonitorEvent> {
        self.open_sessions()
            .iter()
            .map(|s| MonitorEvent::SessionOpened(self.opened_event(s, Some(s.counts()))))
            .collect()
    }

    /// The `/api/sessions` snapshot.
    pub fn snapshot(&self) -> SessionsSnapshot {
        let sessions = self
            .open_sessions()
            .iter()
            .map(|s| {
                let counts = s.counts();
                SessionInfo {
                    id: s.id,
                    kind: s.kind,
                    peer: s.peer.to_string(),
                    local: s.local.to_string(),
                    opened_at: s.opened_at.clone(),
                    bytes_in: counts.bytes_in,
                    bytes_out: counts.bytes_out,
                    messages_in: counts.messages_in,
                    messages_out: counts.messages_out,
                    via: s.via,
                    tag: s.tag.clone(),
                    handshake: s.handshake,
                }
            })
            .collect();
        SessionsSnapshot {
            instance: self.instance.clone(),
            sessions,
        }
    }

    /// How many sessions are open.
    pub fn len(&self) -> usize {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The instance name, if any.
    pub fn instance(&self) -> Option<&str> {
        self.instance.as_deref()
    }

    /// What `/metrics` counts once per session or handshake.
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The `/metrics` exposition: sessions open, bytes and messages by kind (closed sessions'
    /// totals plus the open ones', read now), the connections each runtime `accepted`, and
    /// the rest of [`Metrics`].
    pub(crate) fn render_metrics(&self, accepted: &[u64]) -> String {
        let mut open = [0u64; 5];
        let mut totals = [[0u64; 4]; 5];
        {
            let sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
            for (i, closed) in self.metrics.closed_totals.iter().enumerate() {
                totals[i] = closed.get();
            }
            for s in sessions.values() {
                let i = kind_index(s.kind);
                open[i] += 1;
                for (t, c) in totals[i].iter_mut().zip(s.totals()) {
                    *t += c;
                }
            }
        }
        debug_assert_eq!(KINDS.len(), open.len());
        self.metrics.render(open, totals, accepted)
    }

    fn open_sessions(&self) -> Vec<Arc<SessionState>> {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// `counts` is `None` for a live open, the counts so far in a snapshot.
    fn opened_event(&self, s: &SessionState, counts: Option<SessionCounts>) -> SessionOpened {
        let mut opened = SessionOpened {
            id: s.id,
            kind: s.kind,
            peer: s.peer.to_string(),
            local: s.local.to_string(),
            at: s.opened_at.clone(),
            via: s.via,
            tag: s.tag.clone(),
            handshake: s.handshake,
            instance: self.instance.clone(),
            bytes_in: None,
            bytes_out: None,
            messages_in: None,
            messages_out: None,
        };
        opened.set_counts(counts);
        opened
    }
}

impl SessionState {
    /// The counts so far, all four read at one instant.
    pub fn counts(&self) -> SessionCounts {
        *self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one message; returns its number in its direction.
    fn count(&self, dir: Direction, bytes: usize) -> u64 {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.count(dir, bytes as u64, None);
        match dir {
            Direction::In => counts.messages_in,
            Direction::Out => counts.messages_out,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Removes a bridge link when the upstream connection attempt is over.
#[derive(Debug)]
pub struct LinkGuard {
    registry: Arc<Registry>,
    local: SocketAddr,
}

impl Drop for LinkGuard {
    fn drop(&mut self) {
        self.registry
            .links
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.local);
    }
}

/// An open session. Dropping it closes it: it leaves the registry, the close is logged and
/// announced with the reason given by [`Session::set_reason`] (or "dropped").
#[derive(Debug)]
pub struct Session {
    state: Arc<SessionState>,
    registry: Arc<Registry>,
    reason: Option<String>,
}

impl Session {
    /// The session's id.
    pub fn id(&self) -> u64 {
        self.state.id
    }

    /// The session's kind.
    pub fn kind(&self) -> SessionKind {
        self.state.kind
    }

    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        self.state.peer
    }

    /// Counts bytes received from the client (one message) and, if anyone watches, announces
    /// them.
    pub fn received(&self, data: &[u8]) {
        self.carried(Direction::In, data);
    }

    /// Counts bytes sent to the client (one message) and, if anyone watches, announces them.
    pub fn sent(&self, data: &[u8]) {
        self.carried(Direction::Out, data);
    }

    /// Why the session is closing, for the log and the `session_closed` event. The first
    /// reason given wins: it is the cause, later ones are consequences.
    pub fn set_reason(&mut self, reason: impl Into<String>) {
        if self.reason.is_none() {
            self.reason = Some(reason.into());
        }
    }

    /// Counts first, then checks for subscribers: one that subscribes in between finds the
    /// message in its snapshot's counts.
    fn carried(&self, dir: Direction, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let seq = self.state.count(dir, data.len());
        if !self.registry.has_subscribers() {
            return;
        }
        self.registry.publish(&MonitorEvent::Message(MessageEvent {
            id: self.state.id,
            kind: self.state.kind,
            dir,
            bytes: data.len() as u64,
            preview: preview(data, PREVIEW_CHARS),
            at: rfc3339_now(),
            seq: Some(seq),
            instance: self.registry.instance.clone(),
        }));
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let s = &self.state;
        let (bytes_in, bytes_out) = {
            let mut sessions = self
                .registry
                .sessions
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            // Under the lock: a scrape sees this session's counts as open or as closed, once.
            let totals = s.totals();
            self.registry.metrics.closed_totals[kind_index(s.kind)].add(totals);
            sessions.remove(&s.id);
            (totals[0], totals[1])
        };
        {
            let mut by_addrs = lock(&self.registry.by_addrs);
            let keep = self.registry.keep_closed.load(Ordering::Relaxed);
            // A later session may have taken the same addresses (a UDP peer back after idling).
            if let Some(e) = by_addrs.get_mut(&(s.local, s.peer))
                && e.session.id == s.id
            {
                if keep {
                    e.closed = Some(Instant::now());
                } else {
                    by_addrs.remove(&(s.local, s.peer));
                }
            }
        }
        let reason = self.reason.take().unwrap_or_else(|| "dropped".to_owned());
        self.registry.metrics.closed(s.kind, &reason);
        tracing::info!(
            id = s.id,
            kind = %s.kind,
            peer = %s.peer,
            bytes_in,
            bytes_out,
            duration_ms = s.opened.elapsed().as_millis() as u64,
            reason = %reason,
            "session closed"
        );
        if self.registry.has_subscribers() {
            self.registry
                .publish(&MonitorEvent::SessionClosed(SessionClosed {
                    id: s.id,
                    kind: s.kind,
                    at: rfc3339_now(),
                    bytes_in,
                    bytes_out,
                    reason,
                    instance: self.registry.instance.clone(),
                }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[tokio::test]
    async fn sessions_are_announced_counted_and_removed() {
        let reg = Registry::new(64, None);
        let mut rx = reg.subscribe();
        let mut s = reg.open(SessionKind::Tcp, addr(1), addr(2), Extra::default());
        s.received(b"hi\n");
        s.sent(b"[t]:hi\n");
        assert_eq!(reg.snapshot().sessions[0].bytes_in, 3);
        s.set_reason("client closed");
        s.set_reason("later");
        drop(s);
        assert!(reg.is_empty());
        let events: Vec<MonitorEvent> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|b| serde_json::from_str(b.as_str()).unwrap())
            .collect();
        assert_eq!(events.len(), 4);
        match &events[3] {
            MonitorEvent::SessionClosed(c) => {
                assert_eq!((c.bytes_in, c.bytes_out), (3, 7));
                assert_eq!(c.reason, "client closed");
            }
            other => panic!("expected session_closed, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_late_subscriber_counts_each_message_once() {
        let reg = Registry::new(64, None);
        let s = reg.open(SessionKind::Tcp, addr(1), addr(2), Extra::default());
        s.received(b"one\n");
        // Subscribed, then two more messages, then the snapshot: those two are both in the
        // snapshot's counts and on the bus.
        let mut rx = reg.subscribe();
        s.received(b"two\n");
        s.sent(b"[t]:two\n");
        let MonitorEvent::SessionOpened(snap) = &reg.opened_events()[0] else {
            panic!("expected session_opened");
        };
        let mut counts = snap.counts().expect("a snapshot carries counts");
        assert_eq!(
            counts,
            SessionCounts {
                bytes_in: 8,
                bytes_out: 8,
                messages_in: 2,
                messages_out: 1,
            }
        );
        s.received(b"three\n");
        for json in std::iter::from_fn(|| rx.try_recv().ok()) {
            if let MonitorEvent::Message(m) = serde_json::from_str(json.as_str()).unwrap() {
                counts.count(m.dir, m.bytes, m.seq);
            }
        }
        let info = &reg.snapshot().sessions[0];
        assert_eq!((counts.bytes_in, counts.bytes_out), (14, 8));
        assert_eq!((info.bytes_in, info.bytes_out), (14, 8));
        assert_eq!((info.messages_in, info.messages_out), (3, 1));
    }

    #[tokio::test]
    async fn links_tag_the_upstream_session() {
        let reg = Registry::new(64, Some("a".into()));
        let ws = reg.open(
            SessionKind::Ws,
            addr(1),
            addr(2),
            Extra {
                tag: Some("t".into()),
                ..Extra::default()
            },
        );
        let guard = reg.link(addr(3), ws.id());
        let up = reg.open(SessionKind::Tcp, addr(3), addr(4), Extra::default());
        drop(guard);
        let later = reg.open(SessionKind::Tcp, addr(3), addr(4), Extra::default());
        let snap = reg.snapshot();
        assert_eq!(snap.sessions[1].via, Some(ws.id()));
        assert_eq!(snap.sessions[2].via, None);
        assert_eq!(snap.instance.as_deref(), Some("a"));
        drop((up, later));
    }

    #[test]
    fn links_match_the_exact_address_never_the_port_alone() {
        let reg = Registry::new(16, None);
        let _guard = reg.link(SocketAddr::from(([0, 0, 0, 0], 40000)), 7);
        let _exact = reg.link(addr(40001), 8);
        assert_eq!(reg.linked(SocketAddr::from(([127, 0, 0, 2], 40000))), None);
        assert_eq!(reg.linked(SocketAddr::from(([127, 0, 0, 2], 40001))), None);
        assert_eq!(reg.linked(addr(40001)), Some(8));
    }

    #[tokio::test]
    async fn events_are_built_only_while_someone_subscribes() {
        let reg = Registry::new(16, None);
        let s = reg.open(SessionKind::Tcp, addr(1), addr(2), Extra::default());
        assert!(!reg.has_subscribers());
        let rx = reg.subscribe();
        assert!(reg.has_subscribers());
        drop(rx);
        // The first event nobody receives turns building them off.
        s.received(b"unseen\n");
        assert!(!reg.has_subscribers());
        let mut rx = reg.subscribe();
        s.received(b"seen\n");
        let json = rx.try_recv().unwrap();
        assert!(json.as_str().contains("\"seq\":2"), "{}", json.as_str());
    }

    #[tokio::test]
    async fn a_subscriber_that_never_reads_only_lags() {
        let reg = Registry::new(16, None);
        let mut rx = reg.subscribe();
        let s = reg.open(SessionKind::Tcp, addr(1), addr(2), Extra::default());
        for _ in 0..1000 {
            s.received(b"x");
        }
        assert!(matches!(
            rx.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(_))
        ));
    }
}
