//! Session records ("transcripts"): what one client sent and received, in order. The page
//! downloads its B/S session and any C/S session card it shows in this form, and
//! `socklab-client --record FILE` writes its own session in it (websockify's `--record`, for
//! the lesson's client), so the two cannot drift apart.
//!
//! A transcript is kept as JSON ([`Transcript`], serde) and shown as text in the lesson's look
//! ([`Transcript::to_text`]): one line per message, `→ hi` for what the client sent and
//! `← [2026-11-30 12:00:00]:hi` for what came back. Each record says what in it is exact and
//! what is not ([`Transcript::notes`]): a C/S card, for one, only knows the messages the
//! monitor previewed (the first [`crate::PREVIEW_CHARS`] characters), so it gives their true
//! sizes beside possibly shortened text.

use serde::{Deserialize, Serialize};

use crate::events::SessionKind;

/// The value of [`Transcript::format`]: this schema, version 1.
pub const TRANSCRIPT_FORMAT: &str = "socklab-transcript/1";

/// One session's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    /// Always [`TRANSCRIPT_FORMAT`]; a reader checks it before trusting the rest.
    pub format: String,
    /// Who recorded it and how: `socklab-client`, `page: B/S (WebSocket)`,
    /// `page: C/S card (monitor feed)`.
    pub recorder: String,
    /// The session's transport.
    pub kind: SessionKind,
    /// Where the client talked to: `127.0.0.1:21566`, `ws://127.0.0.1:8080/ws`; for a C/S card,
    /// the client's address and the server's, `peer → local`.
    pub target: String,
    /// The server's id of the session, when the recorder knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<u64>,
    /// When the record was written (RFC 3339, the recorder's clock).
    pub written_at: String,
    /// What in this record is exact and what is not, in words.
    pub notes: Vec<String>,
    /// Messages that happened before the first one here but are not in it (the page keeps only
    /// its newest messages).
    #[serde(default)]
    pub omitted: u64,
    /// Bytes the client sent and received over the whole session, when the recorder knows
    /// them even for messages not listed (a C/S card's counters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totals: Option<Totals>,
    /// The messages, oldest first.
    pub messages: Vec<TranscriptMessage>,
}

/// Bytes each way over a whole session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Bytes the client sent.
    pub bytes_sent: u64,
    /// Bytes the client received.
    pub bytes_received: u64,
}

/// Which way a message went, seen from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TranscriptDir {
    /// The client sent it (`→`).
    Sent,
    /// The client received it (`←`).
    Received,
}

impl TranscriptDir {
    /// The arrow of the lesson-look text.
    pub fn arrow(self) -> &'static str {
        match self {
            TranscriptDir::Sent => "→",
            TranscriptDir::Received => "←",
        }
    }
}

/// One message of a transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscriptMessage {
    /// When it was sent or received (RFC 3339 with milliseconds, the recorder's clock; for a
    /// C/S card, the server's).
    pub at: String,
    /// Sent or received.
    pub dir: TranscriptDir,
    /// Its true size in bytes (a text message's UTF-8 bytes, the `\n` the client adds
    /// included where the recorder sends it).
    pub bytes: u64,
    /// The content as text (invalid UTF-8 replaced); only its start when `truncated`.
    pub text: String,
    /// Whether `text` is only the start of the message.
    #[serde(default, skip_serializing_if = "is_false")]
    pub truncated: bool,
    /// Whether it was a binary WebSocket message (`text` is then its bytes read as UTF-8).
    #[serde(default, skip_serializing_if = "is_false")]
    pub binary: bool,
    /// For a reply: milliseconds from sending the message it answers to receiving it, when the
    /// recorder measured it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
}

fn is_false(b: &bool) -> bool {
    !b
}

impl Transcript {
    /// An empty record, in the current format.
    pub fn new(recorder: &str, kind: SessionKind, target: &str, written_at: &str) -> Transcript {
        Transcript {
            format: TRANSCRIPT_FORMAT.to_owned(),
            recorder: recorder.to_owned(),
            kind,
            target: target.to_owned(),
            session_id: None,
            written_at: written_at.to_owned(),
            notes: Vec::new(),
            omitted: 0,
            totals: None,
            messages: Vec::new(),
        }
    }

    /// The session in the lesson's look: one line per message, `→ hi` and
    /// `← [2026-11-30 12:00:00]:hi`. A line's own `\n` (the unit the echo answers) is left out;
    /// other control characters are written `\n`, `\r`, `\t`, so every message stays on one
    /// line; a shortened message ends in `…`.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for m in &self.messages {
            out.push_str(m.dir.arrow());
            out.push(' ');
            let body = m.text.strip_suffix('\n').unwrap_or(&m.text);
            let body = body.strip_suffix('\r').unwrap_or(body);
            push_escaped(&mut out, body);
            if m.truncated {
                out.push('…');
            }
            out.push('\n');
        }
        out
    }
}

/// Appends `text` with its line-breaking characters escaped.
fn push_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            _ => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(dir: TranscriptDir, text: &str) -> TranscriptMessage {
        TranscriptMessage {
            at: "2026-11-30T12:00:00.000Z".into(),
            dir,
            bytes: text.len() as u64,
            text: text.into(),
            truncated: false,
            binary: false,
            rtt_ms: None,
        }
    }

    #[test]
    fn the_text_is_the_lessons_look_one_line_per_message() {
        let mut t = Transcript::new("test", SessionKind::Tcp, "127.0.0.1:21566", "now");
        t.messages.push(message(TranscriptDir::Sent, "hi\n"));
        t.messages.push(message(
            TranscriptDir::Received,
            "[2026-11-30 12:00:00]:hi\n",
        ));
        t.messages.push(message(TranscriptDir::Sent, "a\nb\tc\r\n"));
        let mut long = message(TranscriptDir::Received, "xyz");
        long.truncated = true;
        t.messages.push(long);
        assert_eq!(
            t.to_text(),
            "→ hi\n← [2026-11-30 12:00:00]:hi\n→ a\\nb\\tc\n← xyz…\n"
        );
    }

    #[test]
    fn the_json_round_trips_and_leaves_out_what_is_unknown() -> Result<(), serde_json::Error> {
        let mut t = Transcript::new("test", SessionKind::Ws, "ws://h/ws", "now");
        let mut reply = message(TranscriptDir::Received, "[t]:hi");
        reply.rtt_ms = Some(1.5);
        t.messages.push(message(TranscriptDir::Sent, "hi"));
        t.messages.push(reply);
        let json = serde_json::to_string(&t)?;
        assert!(
            json.starts_with(r#"{"format":"socklab-transcript/1","#),
            "{json}"
        );
        assert!(json.contains(r#""kind":"ws""#), "{json}");
        assert!(json.contains(r#""dir":"received","bytes":6,"text":"[t]:hi","rtt_ms":1.5"#));
        assert!(
            !json.contains("truncated") && !json.contains("session_id"),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Transcript>(&json)?, t);
        Ok(())
    }
}
