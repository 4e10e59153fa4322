//! The B/S panel's state: connection status, the message log, round-trip times, the last close.

use std::collections::VecDeque;
use std::rc::Rc;

use yew::Reducible;

use super::Shared;

/// How many log entries are kept (older ones are dropped, and the log says how many).
pub const MAX_LOG: usize = 500;
/// How many round-trip times feed the summary.
const MAX_RTTS: usize = 1000;

/// Where the bridge connection is.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// The handshake is under way.
    Connecting,
    /// Messages flow.
    Open,
    /// We asked to close and wait for the close frame.
    Closing,
    /// Closed; a reconnect is due at `retry_at_ms` (`performance.now()` time).
    Waiting {
        /// When the next attempt starts.
        retry_at_ms: f64,
        /// How many attempts failed in a row.
        attempt: u32,
    },
    /// Closed and staying closed until the user reconnects.
    Closed,
}

/// A close, as the browser reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct CloseInfo {
    /// The close code (1006: no close frame, the connection just dropped).
    pub code: u16,
    /// The server's reason, possibly empty.
    pub reason: String,
    /// Whether the closing handshake completed.
    pub clean: bool,
    /// Local time of the close.
    pub clock: String,
}

/// Who a log entry is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// This browser sent it.
    Sent,
    /// The bridge sent it (one upstream line).
    Received,
    /// A note about the connection itself.
    System,
}

/// A connection event worth a line in the log (translated when shown).
#[derive(Debug, Clone, PartialEq)]
pub enum Note {
    /// Connecting to this URL.
    Connecting(String),
    /// The WebSocket is open.
    Opened,
    /// It closed.
    Closed(CloseInfo),
    /// Next attempt in this many seconds.
    Retrying(u32),
    /// Sending failed (not connected).
    NotSent,
}

/// What a log entry carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// A text message.
    Text(String),
    /// A binary message (shown as hex + ASCII).
    Binary(Vec<u8>),
    /// A connection note.
    Note(Note),
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Position in the log (stable key for rendering).
    pub seq: u64,
    /// Sent, received or system.
    pub dir: Dir,
    /// Local time with milliseconds.
    pub clock: String,
    /// Payload size in bytes (UTF-8 for text).
    pub bytes: usize,
    /// The content.
    pub body: Body,
    /// For a reply: time since the message it answers was sent.
    pub rtt_ms: Option<f64>,
    /// For a message: when it was sent or received (`performance.now()`, the clock of
    /// `rtt_ms`), for the downloaded transcript.
    pub at_ms: Option<f64>,
}

impl Entry {
    /// Whether the log filter `query` (already lowercased) keeps this entry: messages whose
    /// text (or, for binary ones, hex dump or bytes read as text) contains it. Connection
    /// notes show only while no filter is set.
    pub fn matches(&self, query: &str) -> bool {
        if query.is_empty() {
            return true;
        }
        match &self.body {
            Body::Text(t) => crate::util::lowercase(t).contains(query),
            Body::Binary(b) => {
                let hex: String = b.iter().map(|x| format!("{x:02x} ")).collect();
                hex.contains(query)
                    || crate::util::lowercase(&String::from_utf8_lossy(b)).contains(query)
            }
            Body::Note(_) => false,
        }
    }
}

/// The newest message and its reply, for the teaching strip's "bytes on the wire".
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    /// What was sent: text (the bridge adds `\n`) or binary (forwarded verbatim).
    pub sent: Body,
    /// The first reply line, once it came.
    pub reply: Option<String>,
    /// Increases with every message sent (restarts the path animation).
    pub count: u64,
    /// Replies still owed to earlier messages when this one was sent (they come first).
    owed_before: usize,
}

impl Default for Exchange {
    fn default() -> Self {
        Exchange {
            sent: Body::Text(String::new()),
            reply: None,
            count: 0,
            owed_before: 0,
        }
    }
}

/// The whole B/S state.
#[derive(Debug, Clone, PartialEq)]
pub struct BridgeState {
    /// Connection status.
    pub status: Status,
    /// When the current connection opened (`performance.now()`), while open.
    pub opened_at_ms: Option<f64>,
    /// How many times a connection opened since the page loaded.
    pub connections: u32,
    /// The most recent close.
    pub last_close: Option<CloseInfo>,
    /// The log, oldest first (at most [`MAX_LOG`] entries).
    pub log: Shared<VecDeque<Rc<Entry>>>,
    /// Entries dropped from the log's start to keep it at [`MAX_LOG`].
    pub log_dropped: u64,
    /// The next entry's `seq`.
    next_seq: u64,
    /// Send times of lines that wait for their reply, oldest first (the echo answers in order).
    pending: VecDeque<f64>,
    /// Recent round-trip times, in milliseconds.
    pub rtts: VecDeque<f64>,
    /// Their median and maximum, once there is one.
    pub rtt: Option<RttSummary>,
    /// The newest message and its reply.
    pub exchange: Exchange,
    /// Messages sent and received on all connections.
    pub sent_total: u64,
    /// Replies received on all connections.
    pub received_total: u64,
}

impl Default for BridgeState {
    fn default() -> Self {
        BridgeState {
            status: Status::Connecting,
            opened_at_ms: None,
            connections: 0,
            last_close: None,
            log: Shared::default(),
            log_dropped: 0,
            next_seq: 0,
            pending: VecDeque::new(),
            rtts: VecDeque::new(),
            rtt: None,
            exchange: Exchange::default(),
            sent_total: 0,
            received_total: 0,
        }
    }
}

/// Something that happened to the bridge connection.
#[derive(Debug, Clone)]
pub enum BridgeAction {
    /// A connection attempt started.
    Connecting { url: String, clock: String },
    /// It opened.
    Opened { clock: String, now_ms: f64 },
    /// The user sent `text`.
    Sent {
        text: String,
        clock: String,
        now_ms: f64,
    },
    /// The user sent these bytes as a binary message.
    SentBinary {
        data: Vec<u8>,
        clock: String,
        now_ms: f64,
    },
    /// Sending failed.
    NotSent { clock: String },
    /// A text message from the bridge.
    ReceivedText {
        text: String,
        clock: String,
        now_ms: f64,
    },
    /// A binary message from the bridge.
    ReceivedBinary {
        data: Vec<u8>,
        clock: String,
        now_ms: f64,
    },
    /// We started closing.
    Closing,
    /// It closed.
    Closed(CloseInfo),
    /// A retry is scheduled.
    Waiting {
        retry_at_ms: f64,
        attempt: u32,
        secs: u32,
        clock: String,
    },
    /// No retry: closed until the user reconnects.
    Stopped,
    /// Forget the log (keeps the connection).
    ClearLog,
    /// Several of the above, in order (one animation frame's worth).
    Batch(Vec<BridgeAction>),
}

/// How many reply lines the echo sends for a message: one per line (a text message gets a
/// `\n` unless it ends with one, so `a\nb` is two lines and `a\n` is one).
pub fn lines_in(text: &str) -> usize {
    let body = text.strip_suffix('\n').unwrap_or(text);
    body.split('\n').count()
}

/// How many reply lines the echo sends for a binary message, which the bridge forwards
/// verbatim: one per `\n`, plus one for an unfinished last line (the echo answers it when the
/// client pauses).
pub fn lines_in_bytes(data: &[u8]) -> usize {
    let newlines = data.iter().filter(|&&b| b == b'\n').count();
    newlines + usize::from(data.last().is_some_and(|&b| b != b'\n'))
}

/// The round-trip times in a few numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RttSummary {
    /// How many.
    pub count: usize,
    /// The median, in ms.
    pub p50: f64,
    /// The largest, in ms.
    pub max: f64,
}

/// Summary of round-trip times (`None` when there are none).
pub fn rtt_summary(rtts: &VecDeque<f64>) -> Option<RttSummary> {
    let mut sorted: Vec<f64> = rtts.iter().copied().collect();
    // Unstable (a total order: same result) and the same sort as `udp`: less wasm.
    sorted.sort_unstable_by(f64::total_cmp);
    Some(RttSummary {
        count: sorted.len(),
        p50: *sorted.get(sorted.len() / 2)?,
        max: *sorted.last()?,
    })
}

/// A log entry's times: when (`performance.now()`), and its round trip.
#[derive(Debug, Clone, Copy, Default)]
struct Times {
    at_ms: Option<f64>,
    rtt_ms: Option<f64>,
}

impl Times {
    fn received(now_ms: f64, rtt_ms: Option<f64>) -> Times {
        Times {
            at_ms: Some(now_ms),
            rtt_ms,
        }
    }
}

impl BridgeState {
    fn push(&mut self, dir: Dir, clock: String, bytes: usize, body: Body, times: Times) {
        let log = self.log.make_mut();
        log.push_back(Rc::new(Entry {
            seq: self.next_seq,
            dir,
            clock,
            bytes,
            body,
            rtt_ms: times.rtt_ms,
            at_ms: times.at_ms,
        }));
        self.next_seq += 1;
        while log.len() > MAX_LOG {
            log.pop_front();
            self.log_dropped += 1;
        }
    }

    fn note(&mut self, clock: String, note: Note) {
        self.push(Dir::System, clock, 0, Body::Note(note), Times::default());
    }

    /// A message went out: it owes `lines` replies, and the teaching strip shows it.
    fn sent(&mut self, body: Body, bytes: usize, lines: usize, clock: String, now_ms: f64) {
        self.exchange = Exchange {
            sent: body.clone(),
            reply: None,
            count: self.exchange.count + 1,
            owed_before: self.pending.len(),
        };
        for _ in 0..lines {
            self.pending.push_back(now_ms);
        }
        self.sent_total += 1;
        let times = Times {
            at_ms: Some(now_ms),
            rtt_ms: None,
        };
        self.push(Dir::Sent, clock, bytes, body, times);
    }

    fn take_rtt(&mut self, now_ms: f64) -> Option<f64> {
        let sent = self.pending.pop_front()?;
        let rtt = (now_ms - sent).max(0.0);
        self.rtts.push_back(rtt);
        while self.rtts.len() > MAX_RTTS {
            self.rtts.pop_front();
        }
        Some(rtt)
    }
}

impl Reducible for BridgeState {
    type Action = BridgeAction;

    fn reduce(self: Rc<Self>, action: BridgeAction) -> Rc<Self> {
        let mut s = Rc::unwrap_or_clone(self);
        let replies = s.received_total;
        s.apply(action);
        if s.received_total != replies {
            s.rtt = rtt_summary(&s.rtts);
        }
        Rc::new(s)
    }
}

impl BridgeState {
    fn apply(&mut self, action: BridgeAction) {
        match action {
            BridgeAction::Connecting { url, clock } => self.connecting(url, clock),
            BridgeAction::Opened { clock, now_ms } => self.opened(clock, now_ms),
            BridgeAction::Sent {
                text,
                clock,
                now_ms,
            } => self.sent_text(text, clock, now_ms),
            BridgeAction::SentBinary {
                data,
                clock,
                now_ms,
            } => self.sent_binary(data, clock, now_ms),
            BridgeAction::NotSent { clock } => self.note(clock, Note::NotSent),
            BridgeAction::ReceivedText {
                text,
                clock,
                now_ms,
            } => self.received_text(text, clock, now_ms),
            BridgeAction::ReceivedBinary {
                data,
                clock,
                now_ms,
            } => self.received_binary(data, clock, now_ms),
            BridgeAction::Closing => self.status = Status::Closing,
            BridgeAction::Closed(info) => self.closed(info),
            BridgeAction::Waiting {
                retry_at_ms,
                attempt,
                secs,
                clock,
            } => self.waiting(retry_at_ms, attempt, secs, clock),
            BridgeAction::Stopped => self.status = Status::Closed,
            BridgeAction::ClearLog => self.clear_log(),
            BridgeAction::Batch(actions) => {
                for action in actions {
                    self.apply(action);
                }
            }
        }
    }

    /// A connection attempt started.
    fn connecting(&mut self, url: String, clock: String) {
        self.status = Status::Connecting;
        self.note(clock, Note::Connecting(url));
    }

    /// The connection opened: nothing is owed on it yet.
    fn opened(&mut self, clock: String, now_ms: f64) {
        self.status = Status::Open;
        self.opened_at_ms = Some(now_ms);
        self.connections += 1;
        self.pending.clear();
        self.note(clock, Note::Opened);
    }

    /// A text message went out: one reply owed per line.
    fn sent_text(&mut self, text: String, clock: String, now_ms: f64) {
        let (bytes, lines) = (text.len(), lines_in(&text));
        self.sent(Body::Text(text), bytes, lines, clock, now_ms);
    }

    /// A binary message went out: one reply owed per line it holds.
    fn sent_binary(&mut self, data: Vec<u8>, clock: String, now_ms: f64) {
        let (bytes, lines) = (data.len(), lines_in_bytes(&data));
        self.sent(Body::Binary(data), bytes, lines, clock, now_ms);
    }

    /// A reply arrived: counted, and timed against the oldest message still owed one.
    fn reply_times(&mut self, now_ms: f64) -> Times {
        let rtt = self.take_rtt(now_ms);
        self.received_total += 1;
        Times::received(now_ms, rtt)
    }

    /// A text reply: the teaching strip shows it if it is the first reply to the newest message.
    fn received_text(&mut self, text: String, clock: String, now_ms: f64) {
        let times = self.reply_times(now_ms);
        if self.exchange.owed_before > 0 {
            self.exchange.owed_before -= 1;
        } else if self.exchange.reply.is_none() && self.exchange.count > 0 {
            self.exchange.reply = Some(text.clone());
        }
        self.push(Dir::Received, clock, text.len(), Body::Text(text), times);
    }

    /// A binary reply (the teaching strip shows text replies only).
    fn received_binary(&mut self, data: Vec<u8>, clock: String, now_ms: f64) {
        let times = self.reply_times(now_ms);
        self.exchange.owed_before = self.exchange.owed_before.saturating_sub(1);
        self.push(Dir::Received, clock, data.len(), Body::Binary(data), times);
    }

    /// It closed: nothing in flight will be answered, and the close is remembered.
    fn closed(&mut self, info: CloseInfo) {
        self.status = Status::Closed;
        self.opened_at_ms = None;
        self.pending.clear();
        self.exchange.owed_before = 0;
        self.last_close = Some(info.clone());
        self.note(info.clock.clone(), Note::Closed(info));
    }

    /// A retry is scheduled `secs` from now.
    fn waiting(&mut self, retry_at_ms: f64, attempt: u32, secs: u32, clock: String) {
        self.status = Status::Waiting {
            retry_at_ms,
            attempt,
        };
        self.note(clock, Note::Retrying(secs));
    }

    /// Forgets the log, and what it dropped.
    fn clear_log(&mut self) {
        self.log = Shared::default();
        self.log_dropped = 0;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_log_filter_finds_text_and_binary_and_hides_notes() {
        let entry = |body| Entry {
            seq: 0,
            dir: Dir::Received,
            clock: String::new(),
            bytes: 0,
            body,
            rtt_ms: None,
            at_ms: None,
        };
        let text = entry(Body::Text("[2026-01-01 12:00:00]:Hello".into()));
        assert!(text.matches(""));
        assert!(text.matches("hello"));
        assert!(!text.matches("bye"));
        let bin = entry(Body::Binary(vec![0xff, b'h', b'i']));
        assert!(bin.matches("ff 68"));
        assert!(bin.matches("hi"));
        let note = entry(Body::Note(Note::Opened));
        assert!(note.matches(""));
        assert!(!note.matches("open"));
    }

    use super::*;

    fn run(actions: Vec<BridgeAction>) -> Rc<BridgeState> {
        actions
            .into_iter()
            .fold(Rc::new(BridgeState::default()), |s, a| s.reduce(a))
    }

    fn sent(text: &str, now_ms: f64) -> BridgeAction {
        BridgeAction::Sent {
            text: text.into(),
            clock: String::new(),
            now_ms,
        }
    }

    fn received(text: &str, now_ms: f64) -> BridgeAction {
        BridgeAction::ReceivedText {
            text: text.into(),
            clock: String::new(),
            now_ms,
        }
    }

    #[test]
    fn a_binary_message_owes_one_reply_per_line_and_none_for_no_newline_added() {
        assert_eq!(lines_in_bytes(b"hi\n"), 1);
        assert_eq!(lines_in_bytes(b"hi"), 1);
        assert_eq!(lines_in_bytes(b"a\nb\n"), 2);
        assert_eq!(lines_in_bytes(b"a\nb"), 2);
        assert_eq!(lines_in_bytes(b"\n"), 1);
        let s = run(vec![
            BridgeAction::SentBinary {
                data: b"a\nb".to_vec(),
                clock: String::new(),
                now_ms: 100.0,
            },
            received("[t]:a", 130.0),
            received("[t]:b", 150.0),
        ]);
        let sent = s.log.iter().find(|e| e.dir == Dir::Sent).unwrap();
        assert_eq!(
            (sent.bytes, &sent.body),
            (3, &Body::Binary(b"a\nb".to_vec()))
        );
        assert_eq!(
            s.rtt,
            Some(RttSummary {
                count: 2,
                p50: 50.0,
                max: 50.0
            })
        );
        assert_eq!(s.exchange.sent, Body::Binary(b"a\nb".to_vec()));
        assert_eq!(s.exchange.reply.as_deref(), Some("[t]:a"));
        assert_eq!(s.sent_total, 1);
    }

    #[test]
    fn one_reply_per_line() {
        assert_eq!(lines_in("hi"), 1);
        assert_eq!(lines_in("hi\n"), 1);
        assert_eq!(lines_in("a\nb"), 2);
        assert_eq!(lines_in("a\n\nb\n"), 3);
        assert_eq!(lines_in(""), 1);
    }

    #[test]
    fn replies_are_matched_to_sends_in_order() {
        let s = run(vec![
            BridgeAction::Opened {
                clock: String::new(),
                now_ms: 0.0,
            },
            sent("a\nb", 100.0),
            sent("c", 150.0),
            received("[t]:a", 110.0),
            received("[t]:b", 120.0),
            received("[t]:c", 190.0),
            // An unexpected extra line has no round trip.
            received("[t]:?", 200.0),
        ]);
        let rtts: Vec<Option<f64>> = s
            .log
            .iter()
            .filter(|e| e.dir == Dir::Received)
            .map(|e| e.rtt_ms)
            .collect();
        assert_eq!(rtts, vec![Some(10.0), Some(20.0), Some(40.0), None]);
        assert_eq!(
            s.rtt,
            Some(RttSummary {
                count: 3,
                p50: 20.0,
                max: 40.0
            })
        );
        assert_eq!(s.exchange.sent, Body::Text("c".into()));
        assert_eq!(s.exchange.reply.as_deref(), Some("[t]:c"));
    }

    #[test]
    fn a_close_forgets_what_was_in_flight_and_is_remembered() {
        let s = run(vec![
            sent("lost", 0.0),
            BridgeAction::Closed(CloseInfo {
                code: 1011,
                reason: "upstream unreachable".into(),
                clean: true,
                clock: String::new(),
            }),
            BridgeAction::Opened {
                clock: String::new(),
                now_ms: 10.0,
            },
            received("[t]:late", 20.0),
        ]);
        assert_eq!(s.log.back().and_then(|e| e.rtt_ms), None);
        assert_eq!(s.last_close.as_ref().map(|c| c.code), Some(1011));
        assert_eq!(s.status, Status::Open);
        assert_eq!(s.connections, 1);
    }

    #[test]
    fn the_log_is_bounded_and_counts_what_it_dropped() {
        let s = run((0..MAX_LOG + 10).map(|i| sent("x", i as f64)).collect());
        assert_eq!(s.log.len(), MAX_LOG);
        assert_eq!(s.log_dropped, 10);
        assert_eq!(s.log.back().map(|e| e.seq), Some((MAX_LOG + 9) as u64));
        let s = s.reduce(BridgeAction::ClearLog);
        assert_eq!((s.log.len(), s.log_dropped), (0, 0));
    }

    #[test]
    fn a_batch_is_the_same_as_its_actions_one_by_one() {
        let actions = || vec![sent("a", 1.0), received("[t]:a", 3.5), sent("b", 4.0)];
        let one_by_one = run(actions());
        let batched = run(vec![BridgeAction::Batch(actions())]);
        assert_eq!(batched.sent_total, 2);
        assert_eq!(batched.rtt, one_by_one.rtt);
        assert_eq!(batched.rtt.map(|r| r.p50), Some(2.5));
        let seqs = |s: &BridgeState| s.log.iter().map(|e| e.seq).collect::<Vec<_>>();
        assert_eq!(seqs(&batched), seqs(&one_by_one));
    }
}
