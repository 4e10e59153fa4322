//! `--record FILE`: the session as a transcript (`socklab_protocol::transcript`, the schema
//! the page downloads too), rewritten after every exchange (never between a send and its
//! reply, where it would add to the round trip), so a session cut short by Ctrl-C still
//! leaves its record.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use chrono::{Local, SecondsFormat};
use socklab_protocol::{SessionKind, Transcript, TranscriptDir, TranscriptMessage};

/// What the client's records say about their own figures.
const NOTES: [&str; 3] = [
    "at: this client's clock, just before a message was written to the socket, or once its reply was read whole.",
    "bytes: application payload as sent or received (TCP: the line with its \\n; UDP: the datagram; WebSocket: the message, no frame header).",
    "rtt_ms: from writing a line to reading its whole reply (TCP: up to the \\n; UDP: the datagram; WebSocket: the message).",
];

/// A session being recorded.
pub struct Recorder {
    path: PathBuf,
    transcript: Transcript,
    /// When the line that waits for its reply was sent.
    sent_at: Option<Instant>,
}

/// Now, RFC 3339 with milliseconds and the local offset.
fn now() -> String {
    Local::now().to_rfc3339_opts(SecondsFormat::Millis, false)
}

impl Recorder {
    /// Starts a record of a `kind` session with `target` in `path`, writing it once at once so
    /// a file that cannot be written is an error before anything is sent.
    pub fn create(path: &Path, kind: SessionKind, target: &str) -> Result<Recorder> {
        let mut transcript = Transcript::new("socklab-client", kind, target, &now());
        transcript.notes = NOTES.iter().map(|n| (*n).to_owned()).collect();
        let recorder = Recorder {
            path: path.to_owned(),
            transcript,
            sent_at: None,
        };
        recorder.save()?;
        Ok(recorder)
    }

    /// The client is about to send `data` (`binary`: as a binary WebSocket message).
    pub fn sent(&mut self, data: &[u8], binary: bool) {
        self.push(TranscriptDir::Sent, data, binary, None);
        self.sent_at = Some(Instant::now());
    }

    /// A reply came: `data`, answering the last line sent.
    pub fn received(&mut self, data: &[u8], binary: bool) {
        let rtt = self
            .sent_at
            .take()
            .map(|at| at.elapsed().as_secs_f64() * 1e3);
        self.push(TranscriptDir::Received, data, binary, rtt);
    }

    fn push(&mut self, dir: TranscriptDir, data: &[u8], binary: bool, rtt_ms: Option<f64>) {
        self.transcript.messages.push(TranscriptMessage {
            at: now(),
            dir,
            bytes: data.len() as u64,
            text: String::from_utf8_lossy(data).into_owned(),
            truncated: false,
            binary,
            rtt_ms,
        });
    }

    /// Writes the whole record.
    pub fn save(&self) -> Result<()> {
        let json = serde_json::to_string_pretty(&self.transcript)?;
        std::fs::write(&self.path, json + "\n")
            .with_context(|| format!("cannot write the record file {}", self.path.display()))
    }
}
