//! The page's sessions as transcripts (`socklab_protocol::transcript`, the schema
//! `socklab-client --record` writes too): this browser's B/S session from its log, and a C/S
//! session from what the monitor showed of it. Pure: the clock readings come in as arguments.

use socklab_protocol::{
    Direction, PREVIEW_CHARS, SessionKind, Transcript, TranscriptDir, TranscriptMessage,
    transcript::Totals,
};

use super::bridge::{Body, BridgeState, Dir, MAX_LOG};
use super::monitor::{MAX_MESSAGES, SessionView};

/// This browser's B/S session: every message its log still holds. `target` is the bridge's
/// URL, `written_at` now (RFC 3339), and `at` turns a `performance.now()` reading into an
/// RFC 3339 time.
pub fn bs_transcript(
    state: &BridgeState,
    target: &str,
    written_at: &str,
    at: impl Fn(f64) -> String,
) -> Transcript {
    let mut t = Transcript::new(
        "page: B/S (WebSocket bridge)",
        SessionKind::Ws,
        target,
        written_at,
    );
    t.notes = vec![
        "at: this browser's clock, read in the WebSocket callbacks (performance.timeOrigin + performance.now()); rtt_ms: from handing a message to the WebSocket to the reply line it owes (the echo answers in order), on the same clock.".into(),
        "bytes: the WebSocket message's payload (UTF-8 for text), no frame header; on its TCP hop the bridge adds \\n to a text message that lacks one.".into(),
        format!("Only what the page's log still holds: its newest {MAX_LOG} rows (connection notes included); omitted counts rows dropped before the first one here. Clearing the log starts it over."),
    ];
    t.omitted = state.log_dropped;
    t.messages = state
        .log
        .iter()
        .filter_map(|e| {
            let dir = match e.dir {
                Dir::Sent => TranscriptDir::Sent,
                Dir::Received => TranscriptDir::Received,
                Dir::System => return None,
            };
            let (text, binary) = match &e.body {
                Body::Text(text) => (text.clone(), false),
                Body::Binary(data) => (String::from_utf8_lossy(data).into_owned(), true),
                Body::Note(_) => return None,
            };
            Some(TranscriptMessage {
                at: e.at_ms.map(&at).unwrap_or_default(),
                dir,
                bytes: e.bytes as u64,
                text,
                truncated: false,
                binary,
                rtt_ms: e.rtt_ms,
            })
        })
        .collect();
    t
}

/// A C/S session card: the messages the monitor showed this page, seen from the client.
pub fn cs_transcript(view: &SessionView, written_at: &str) -> Transcript {
    let o = &view.opened;
    let target = format!("{} → {}", o.peer, o.local);
    let mut t = Transcript::new("page: C/S card (monitor feed)", o.kind, &target, written_at);
    t.session_id = Some(o.id);
    t.notes = vec![
        format!("Only what the monitor showed this page: the card's newest {MAX_MESSAGES} messages; omitted counts the messages the server counted that are not listed (before this page opened, trimmed from the card, or skipped when the page fell behind)."),
        format!("text: the monitor's preview, the first {PREVIEW_CHARS} characters (invalid UTF-8 replaced); truncated marks a longer message. bytes is always the message's true size, as the server counted it, and totals the whole session's."),
        "at: the server's clock when it read or wrote the bytes; a TCP message is one read or write of the socket, not necessarily one line. No rtt_ms: the monitor does not see the client's round trip.".into(),
    ];
    let c = &view.counts;
    let counted = c.messages_in + c.messages_out;
    t.omitted = counted.saturating_sub(view.messages.len() as u64);
    t.totals = Some(Totals {
        bytes_sent: c.bytes_in,
        bytes_received: c.bytes_out,
    });
    t.messages = view
        .messages
        .iter()
        .map(|m| TranscriptMessage {
            at: m.at.clone(),
            dir: match m.dir {
                Direction::In => TranscriptDir::Sent,
                Direction::Out => TranscriptDir::Received,
            },
            bytes: m.bytes,
            text: m.preview.clone(),
            // Lossy decoding never shortens: a preview shorter than the message was cut.
            truncated: (m.preview.len() as u64) < m.bytes,
            binary: false,
            rtt_ms: None,
        })
        .collect();
    t
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::rc::Rc;

    use socklab_protocol::{SessionCounts, SessionOpened};
    use yew::Reducible;

    use super::*;
    use crate::state::bridge::BridgeAction;
    use crate::state::monitor::MessageView;

    #[test]
    fn the_bs_transcript_lists_messages_with_times_and_round_trips() {
        let s = [
            BridgeAction::Opened {
                clock: String::new(),
                now_ms: 0.0,
            },
            BridgeAction::Sent {
                text: "hi".into(),
                clock: String::new(),
                now_ms: 10.0,
            },
            BridgeAction::ReceivedText {
                text: "[2026-11-30 12:00:00]:hi".into(),
                clock: String::new(),
                now_ms: 12.5,
            },
        ]
        .into_iter()
        .fold(Rc::new(BridgeState::default()), |s, a| s.reduce(a));
        let t = bs_transcript(&s, "ws://h/ws", "now", |ms| format!("t{ms}"));
        assert_eq!(t.to_text(), "→ hi\n← [2026-11-30 12:00:00]:hi\n");
        let m = &t.messages;
        assert_eq!(
            (m[0].at.as_str(), m[0].bytes, m[0].rtt_ms),
            ("t10", 2, None)
        );
        assert_eq!((m[1].at.as_str(), m[1].bytes), ("t12.5", 24));
        assert_eq!(m[1].rtt_ms, Some(2.5));
    }

    #[test]
    fn the_cs_transcript_is_the_clients_view_and_says_what_was_cut() {
        let message = |dir, bytes, preview: &str| MessageView {
            n: 0,
            dir,
            bytes,
            preview: preview.into(),
            clock: String::new(),
            at: "2026-11-30T12:00:00.000+00:00".into(),
        };
        let view = SessionView {
            opened: SessionOpened {
                id: 7,
                kind: SessionKind::Tcp,
                peer: "127.0.0.1:5000".into(),
                local: "127.0.0.1:21566".into(),
                at: String::new(),
                via: None,
                tag: None,
                handshake: None,
                instance: None,
                bytes_in: None,
                bytes_out: None,
                messages_in: None,
                messages_out: None,
            },
            messages: VecDeque::from([
                message(Direction::In, 3, "hi\n"),
                message(Direction::Out, 25, "[2026-11-30 12:00:00]:hi\n"),
                message(Direction::In, 500, "long"),
            ]),
            counts: SessionCounts {
                bytes_in: 600,
                bytes_out: 25,
                messages_in: 3,
                messages_out: 1,
            },
            closed: None,
            seen: 3,
        };
        let t = cs_transcript(&view, "now");
        assert_eq!(t.to_text(), "→ hi\n← [2026-11-30 12:00:00]:hi\n→ long…\n");
        assert_eq!((t.session_id, t.omitted), (Some(7), 1));
        assert_eq!(t.totals.map(|x| x.bytes_sent), Some(600));
        assert!(t.messages[2].truncated && !t.messages[0].truncated);
    }
}
