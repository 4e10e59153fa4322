//! The C/S panel's state: the sessions the server sees, built from `/api/events`.

use std::collections::VecDeque;
use std::rc::Rc;

use litemap::LiteMap;
use socklab_protocol::{
    Direction, FeedStatus, HandshakeSize, MessageEvent, MonitorEvent, PacketEvent, SessionClosed,
    SessionCounts, SessionKind, SessionOpened,
};
use yew::Reducible;

use super::packets::Packets;

/// Messages kept per session.
pub const MAX_MESSAGES: usize = 20;
/// Closed sessions kept on screen (so a banner session, which closes at once, can be seen).
const MAX_CLOSED: usize = 8;

/// One message a session sent or received, as the monitor previewed it.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageView {
    /// Its place among the session's messages seen by this page (0, 1, …): the card keys its
    /// row by it, so a new message rewrites one row rather than the twenty shown.
    pub n: u64,
    /// `In`: from the client; `Out`: the server's reply.
    pub dir: Direction,
    /// Size in bytes.
    pub bytes: u64,
    /// The first characters, lossy UTF-8.
    pub preview: String,
    /// Local time.
    pub clock: String,
    /// The server's time of it (RFC 3339), for the downloaded transcript.
    pub at: String,
}

/// A session's identity on the feed: ids are unique per server instance, and a cluster's feed
/// (`--monitor-redis`) carries several instances, so the instance name is part of the key.
pub type SessionKey = (Option<String>, u64);

/// A session and what we saw of it.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionView {
    /// How it opened.
    pub opened: SessionOpened,
    /// Its newest messages, oldest first.
    pub messages: VecDeque<MessageView>,
    /// Bytes and messages each way: the snapshot's counts (for a session open before the page
    /// was), plus every message since, each counted once; replaced by the close's totals.
    pub counts: SessionCounts,
    /// How it closed, once it did.
    pub closed: Option<SessionClosed>,
    /// Messages this page has seen of it (the next one's [`MessageView::n`]).
    pub seen: u64,
}

/// The state of the feed connection itself.
#[derive(Debug, Clone, PartialEq)]
pub enum Feed {
    /// Connecting to `/api/events`.
    Connecting,
    /// Live.
    Live,
    /// Unreachable; the next attempt is at `retry_at_ms`.
    Down {
        /// `performance.now()` of the next attempt.
        retry_at_ms: f64,
    },
}

/// Everything the C/S panel shows.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorState {
    /// The feed's connection.
    pub feed: Feed,
    /// The tag this page gave its bridge session (`/ws?tag=`).
    pub my_tag: String,
    /// TCP, UDP and banner sessions, open and recently closed, by instance and id.
    pub sessions: LiteMap<SessionKey, Rc<SessionView>>,
    /// Open browser sessions (`ws`, `wt`) by instance and id, with their tag.
    pub browsers: LiteMap<SessionKey, Rc<SessionOpened>>,
    /// This page's newest `ws` session on the server.
    pub my_ws: Option<SessionKey>,
    /// The size of that session's HTTP upgrade, as the server saw it.
    pub my_handshake: Option<HandshakeSize>,
    /// Closed sessions still shown, oldest first.
    closed_order: VecDeque<SessionKey>,
    /// Events this page missed because it was too slow.
    pub lagged: u64,
    /// The feed's own health, when it reported any.
    pub status: Option<FeedStatus>,
    /// Whether the feed carries `packet` events (it asked `?packets=1`).
    pub packets_feed: bool,
    /// The newest captured packets of each session (`--capture`).
    pub packets: Packets,
}

/// Something that happened to the feed.
#[derive(Debug, Clone)]
pub enum MonitorAction {
    /// Connecting.
    Connecting,
    /// Connected: forget everything, the server sends a fresh snapshot now.
    Opened {
        /// Whether this feed carries `packet` events.
        packets: bool,
    },
    /// Lost; retry at this time.
    Down {
        /// `performance.now()` of the next attempt.
        retry_at_ms: f64,
    },
    /// Events, in order, with each one's local clock text.
    Events(Vec<(MonitorEvent, String)>),
}

/// Whether a session belongs in the C/S list (browser sessions are shown by the B/S side).
pub fn is_raw(kind: SessionKind) -> bool {
    matches!(
        kind,
        SessionKind::Tcp | SessionKind::Udp | SessionKind::Banner
    )
}

impl MonitorState {
    /// An empty state for a page whose bridge sessions carry `my_tag`.
    pub fn new(my_tag: String) -> Self {
        MonitorState {
            feed: Feed::Connecting,
            my_tag,
            sessions: LiteMap::new_vec(),
            browsers: LiteMap::new_vec(),
            my_ws: None,
            my_handshake: None,
            closed_order: VecDeque::new(),
            lagged: 0,
            status: None,
            packets_feed: false,
            packets: Packets::default(),
        }
    }

    /// The open upstream TCP session of this page's bridge connection.
    pub fn my_upstream(&self) -> Option<&Rc<SessionView>> {
        let (instance, ws) = self.my_ws.as_ref()?;
        self.sessions.values().find(|s| {
            s.opened.via == Some(*ws) && &s.opened.instance == instance && s.closed.is_none()
        })
    }

    fn apply(&mut self, event: MonitorEvent, clock: String) {
        match event {
            MonitorEvent::SessionOpened(opened) => self.session_opened(opened),
            MonitorEvent::Message(m) => self.message(m, clock),
            MonitorEvent::SessionClosed(c) => self.session_closed(c),
            MonitorEvent::Lagged { skipped } => self.lagged += skipped,
            MonitorEvent::Status(status) => self.status = Some(status),
            MonitorEvent::Packet(p) => self.packet(p),
        }
    }

    /// A session opened: a raw one is listed, a browser one counted apart.
    fn session_opened(&mut self, opened: SessionOpened) {
        if is_raw(opened.kind) {
            self.raw_opened(opened);
        } else {
            self.browser_opened(opened);
        }
    }

    /// A TCP, UDP or banner session opened: listed, with the snapshot's counts if it has any.
    fn raw_opened(&mut self, opened: SessionOpened) {
        let key = (opened.instance.clone(), opened.id);
        if self.sessions.get(&key).is_some_and(|s| s.closed.is_none()) {
            // Seen twice: in the snapshot, then live (opened while it was taken).
            return;
        }
        let view = SessionView {
            counts: opened.counts().unwrap_or_default(),
            opened,
            messages: VecDeque::new(),
            closed: None,
            seen: 0,
        };
        self.sessions.insert(key, Rc::new(view));
    }

    /// A `ws` or `wt` session opened: counted apart, and remembered if it is this page's own.
    fn browser_opened(&mut self, opened: SessionOpened) {
        if opened.tag.as_deref() == Some(self.my_tag.as_str()) {
            self.my_ws = Some((opened.instance.clone(), opened.id));
            self.my_handshake = opened.handshake;
        }
        self.browsers
            .insert((opened.instance.clone(), opened.id), Rc::new(opened));
    }

    /// A message of a listed session: counted, and shown among its newest [`MAX_MESSAGES`].
    fn message(&mut self, m: MessageEvent, clock: String) {
        if let Some(view) = self.sessions.get_mut(&(m.instance.clone(), m.id)) {
            let view = Rc::make_mut(view);
            view.counts.count(m.dir, m.bytes, m.seq);
            view.messages.push_back(MessageView {
                n: view.seen,
                dir: m.dir,
                bytes: m.bytes,
                preview: m.preview,
                clock,
                at: m.at,
            });
            view.seen += 1;
            while view.messages.len() > MAX_MESSAGES {
                view.messages.pop_front();
            }
        }
    }

    /// A session closed: a browser one is forgotten, a listed one keeps its close's totals and
    /// stays on screen among the newest closed.
    fn session_closed(&mut self, c: SessionClosed) {
        let key = (c.instance.clone(), c.id);
        if self.browsers.remove(&key).is_some() {
            return;
        }
        if let Some(view) = self.sessions.get_mut(&key) {
            let view = Rc::make_mut(view);
            view.counts.bytes_in = c.bytes_in;
            view.counts.bytes_out = c.bytes_out;
            view.closed = Some(c);
            self.closed_order.push_back(key);
            self.forget_old_closed();
        }
    }

    /// Drops the oldest closed sessions beyond the [`MAX_CLOSED`] kept on screen.
    fn forget_old_closed(&mut self) {
        while self.closed_order.len() > MAX_CLOSED {
            if let Some(old) = self.closed_order.pop_front() {
                self.sessions.remove(&old);
            }
        }
    }

    /// A captured packet, kept with its session's newest.
    fn packet(&mut self, p: PacketEvent) {
        let (sessions, browsers) = (&self.sessions, &self.browsers);
        // Logs of open sessions outlive those of closed ones.
        let open = |id: u64| {
            browsers.keys().any(|k| k.1 == id)
                || sessions
                    .iter()
                    .any(|(k, s)| k.1 == id && s.closed.is_none())
        };
        self.packets.push(p, open);
    }
}

impl Reducible for MonitorState {
    type Action = MonitorAction;

    fn reduce(self: Rc<Self>, action: MonitorAction) -> Rc<Self> {
        let mut s = Rc::unwrap_or_clone(self);
        match action {
            MonitorAction::Connecting => s.feed = Feed::Connecting,
            MonitorAction::Opened { packets } => {
                let tag = std::mem::take(&mut s.my_tag);
                s = MonitorState::new(tag);
                s.feed = Feed::Live;
                s.packets_feed = packets;
            }
            MonitorAction::Down { retry_at_ms } => s.feed = Feed::Down { retry_at_ms },
            MonitorAction::Events(events) => {
                for (event, clock) in events {
                    s.apply(event, clock);
                }
            }
        }
        Rc::new(s)
    }
}

#[cfg(test)]
mod tests {
    use socklab_protocol::{MessageEvent, SessionClosed};

    use super::*;

    fn opened(id: u64, kind: SessionKind, via: Option<u64>, tag: Option<&str>) -> MonitorEvent {
        MonitorEvent::SessionOpened(SessionOpened {
            id,
            kind,
            peer: "127.0.0.1:50000".into(),
            local: "127.0.0.1:21566".into(),
            at: "2026-01-01T12:00:00+00:00".into(),
            via,
            tag: tag.map(String::from),
            handshake: None,
            instance: None,
            bytes_in: None,
            bytes_out: None,
            messages_in: None,
            messages_out: None,
        })
    }

    fn closed(id: u64, kind: SessionKind) -> MonitorEvent {
        MonitorEvent::SessionClosed(SessionClosed {
            id,
            kind,
            at: "2026-01-01T12:00:01+00:00".into(),
            bytes_in: 3,
            bytes_out: 25,
            reason: "client closed".into(),
            instance: None,
        })
    }

    fn apply(events: Vec<MonitorEvent>) -> Rc<MonitorState> {
        let s = Rc::new(MonitorState::new("mytag".into()))
            .reduce(MonitorAction::Opened { packets: false });
        s.reduce(MonitorAction::Events(
            events.into_iter().map(|e| (e, String::new())).collect(),
        ))
    }

    fn on(instance: &str, event: MonitorEvent) -> MonitorEvent {
        let name = Some(instance.to_owned());
        match event {
            MonitorEvent::SessionOpened(mut o) => {
                o.instance = name;
                MonitorEvent::SessionOpened(o)
            }
            MonitorEvent::SessionClosed(mut c) => {
                c.instance = name;
                MonitorEvent::SessionClosed(c)
            }
            other => other,
        }
    }

    #[test]
    fn a_cluster_feed_keeps_instances_apart() {
        // Ids are per instance: the same id on two instances is two sessions.
        let s = apply(vec![
            on("a", opened(1, SessionKind::Ws, None, Some("mytag"))),
            on("b", opened(1, SessionKind::Ws, None, Some("other"))),
            on("a", opened(2, SessionKind::Tcp, None, None)),
            on("b", opened(2, SessionKind::Tcp, Some(1), None)),
            on("a", opened(3, SessionKind::Tcp, Some(1), None)),
            on("b", closed(2, SessionKind::Tcp)),
        ]);
        assert_eq!(s.browsers.len(), 2);
        assert_eq!(s.sessions.len(), 3);
        assert_eq!(s.my_ws, Some((Some("a".into()), 1)));
        let mine = s.my_upstream().expect("this page's upstream");
        assert_eq!(
            (mine.opened.instance.as_deref(), mine.opened.id),
            (Some("a"), 3)
        );
        assert!(s.sessions[&(Some("b".into()), 2)].closed.is_some());
        assert!(s.sessions[&(Some("a".into()), 2)].closed.is_none());
    }

    #[test]
    fn the_page_finds_its_upstream_through_tag_and_via() {
        let s = apply(vec![
            opened(1, SessionKind::Ws, None, Some("other")),
            opened(2, SessionKind::Tcp, Some(1), None),
            opened(3, SessionKind::Ws, None, Some("mytag")),
            opened(4, SessionKind::Tcp, Some(3), None),
            opened(5, SessionKind::Tcp, None, None),
        ]);
        assert_eq!(s.my_ws, Some((None, 3)));
        assert_eq!(s.my_upstream().map(|u| u.opened.id), Some(4));
        // Browser sessions are counted apart; raw and bridged TCP sessions are listed.
        assert_eq!(s.browsers.len(), 2);
        assert_eq!(
            s.sessions.keys().map(|k| k.1).collect::<Vec<_>>(),
            vec![2, 4, 5]
        );
    }

    #[test]
    fn messages_and_closes_update_their_session() {
        let s = apply(vec![
            opened(7, SessionKind::Tcp, None, None),
            MonitorEvent::Message(MessageEvent {
                id: 7,
                kind: SessionKind::Tcp,
                dir: Direction::In,
                bytes: 3,
                preview: "hi\n".into(),
                at: "2026-01-01T12:00:00+00:00".into(),
                seq: Some(1),
                instance: None,
            }),
            closed(7, SessionKind::Tcp),
        ]);
        let v = &s.sessions[&(None, 7)];
        assert_eq!(v.messages.len(), 1);
        assert_eq!((v.counts.bytes_in, v.counts.bytes_out), (3, 25));
        assert!(v.closed.is_some());
    }

    #[test]
    fn counters_start_from_the_snapshot_and_count_each_message_once() {
        let MonitorEvent::SessionOpened(mut snap) = opened(9, SessionKind::Tcp, None, None) else {
            unreachable!()
        };
        snap.set_counts(Some(SessionCounts {
            bytes_in: 6,
            bytes_out: 50,
            messages_in: 2,
            messages_out: 2,
        }));
        let live_open = opened(9, SessionKind::Tcp, None, None);
        let message = |seq: u64| {
            MonitorEvent::Message(MessageEvent {
                id: 9,
                kind: SessionKind::Tcp,
                dir: Direction::In,
                bytes: 3,
                preview: "hi\n".into(),
                at: "2026-01-01T12:00:00+00:00".into(),
                seq: Some(seq),
                instance: None,
            })
        };
        // The session opened while the snapshot was taken: its live open and its second
        // message come after the snapshot that already counted them.
        let s = apply(vec![
            MonitorEvent::SessionOpened(snap),
            live_open,
            message(2),
            message(3),
        ]);
        let v = &s.sessions[&(None, 9)];
        assert_eq!((v.counts.bytes_in, v.counts.bytes_out), (9, 50));
        assert_eq!(v.messages.len(), 2, "both are still shown");
    }

    #[test]
    fn each_message_keeps_its_own_number_as_older_ones_drop() {
        let message = |seq: u64| {
            MonitorEvent::Message(MessageEvent {
                id: 3,
                kind: SessionKind::Tcp,
                dir: Direction::In,
                bytes: 3,
                preview: "hi\n".into(),
                at: "2026-01-01T12:00:00+00:00".into(),
                seq: Some(seq),
                instance: None,
            })
        };
        let mut events = vec![opened(3, SessionKind::Tcp, None, None)];
        events.extend((1..=25).map(message));
        let s = apply(events);
        let v = &s.sessions[&(None, 3)];
        // The rows' keys: the newest twenty, numbered in arrival order, none reused.
        let keys: Vec<u64> = v.messages.iter().map(|m| m.n).collect();
        assert_eq!(keys, (5..25).collect::<Vec<u64>>());
        assert_eq!(v.seen, 25);
    }

    #[test]
    fn only_a_few_closed_sessions_stay_on_screen() {
        let mut events = Vec::new();
        for id in 0..20 {
            events.push(opened(id, SessionKind::Banner, None, None));
            events.push(closed(id, SessionKind::Banner));
        }
        events.push(opened(100, SessionKind::Tcp, None, None));
        let s = apply(events);
        assert_eq!(s.sessions.len(), MAX_CLOSED + 1);
        assert!(s.sessions.contains_key(&(None, 19)) && !s.sessions.contains_key(&(None, 0)));
    }
}
