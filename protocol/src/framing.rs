//! Line framing and the lesson's `[time]:message` stamp, as sans-IO state machines.
//!
//! The echo service answers *lines*: every complete line is answered as soon as it arrives, and
//! the bytes of an unfinished line are answered when the peer pauses ([`Stamper::flush`]). The
//! framer never holds more than `max_pending` bytes of an unfinished line: past that it hands
//! the bytes on as a piece of their own, so a 10 MB line with no newline costs bounded memory
//! and still comes back byte for byte, in order, under several stamps.

/// Length of a formatted stamp: `[` + `%Y-%m-%d %H:%M:%S` (19 bytes) + `]:`.
pub const STAMP_LEN: usize = 22;

/// One formatted stamp, `[2026-01-01 12:00:00]:`, ready to be copied in front of a line.
///
/// The caller reads the clock (local time, honouring `TZ`) and builds the stamp from its parts,
/// which keeps this crate free of clocks and time zones, and lets a server format the stamp once
/// per second rather than once per line.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Stamp([u8; STAMP_LEN]);

impl Stamp {
    /// Builds the stamp for a wall-clock time. Out-of-range fields are clamped to what fits in
    /// their digits (a year past 9999 prints as 9999) so the stamp is always [`STAMP_LEN`] bytes.
    pub fn new(year: i32, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> Self {
        let mut b = *b"[0000-00-00 00:00:00]:";
        let year = year.clamp(0, 9999) as u32;
        put_digits(&mut b[1..5], year);
        put_digits(&mut b[6..8], month.min(99));
        put_digits(&mut b[9..11], day.min(99));
        put_digits(&mut b[12..14], hour.min(99));
        put_digits(&mut b[15..17], minute.min(99));
        put_digits(&mut b[18..20], second.min(99));
        Stamp(b)
    }

    /// The stamp's bytes, always [`STAMP_LEN`] long and ASCII.
    pub fn as_bytes(&self) -> &[u8; STAMP_LEN] {
        &self.0
    }

    /// The stamp as text (it is always ASCII).
    pub fn as_str(&self) -> &str {
        // Only ASCII digits and punctuation are ever written into the array.
        std::str::from_utf8(&self.0).unwrap_or("[0000-00-00 00:00:00]:")
    }
}

impl std::fmt::Debug for Stamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn put_digits(out: &mut [u8], mut value: u32) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// Splits a byte stream into lines without copying complete lines, buffering at most
/// `max_pending` bytes of an unfinished one. A line of up to `max_pending` bytes, its `\n` not
/// counted, is handed on whole; a longer one in pieces of `max_pending` bytes.
#[derive(Debug, Clone)]
pub struct LineFramer {
    /// Bytes of the line that has started but not ended yet.
    pending: Vec<u8>,
    /// The bound on `pending` and on a whole line without its `\n`; a longer line is handed
    /// on in pieces of this size.
    max_pending: usize,
}

impl LineFramer {
    /// A framer that buffers at most `max_pending` bytes (at least 1) of an unfinished line.
    pub fn new(max_pending: usize) -> Self {
        LineFramer {
            pending: Vec::new(),
            max_pending: max_pending.max(1),
        }
    }

    /// Feeds `data`. Calls `emit` with every complete line (its `\n` included) and, when an
    /// unfinished line outgrows the bound, with a piece of it (no `\n`). The pieces, in order,
    /// are exactly the bytes fed, minus what is still pending.
    pub fn push(&mut self, mut data: &[u8], mut emit: impl FnMut(&[u8])) {
        // Finish the line that earlier pushes started.
        while !self.pending.is_empty() && !data.is_empty() {
            match memchr::memchr(b'\n', data) {
                Some(i) if self.pending.len() + i <= self.max_pending => {
                    self.pending.extend_from_slice(&data[..=i]);
                    emit(&self.pending);
                    self.pending.clear();
                    data = &data[i + 1..];
                }
                _ => {
                    // No newline within the bound: top the buffer up to the bound and hand
                    // the piece on (an exactly full buffer waits, in case a `\n` comes next).
                    let room = self.max_pending - self.pending.len();
                    if data.len() <= room {
                        self.pending.extend_from_slice(data);
                        return;
                    }
                    self.pending.extend_from_slice(&data[..room]);
                    data = &data[room..];
                    emit(&self.pending);
                    self.pending.clear();
                }
            }
        }
        // Whole lines straight from the input, no copy.
        while let Some(i) = memchr::memchr(b'\n', data) {
            if i > self.max_pending {
                break;
            }
            emit(&data[..=i]);
            data = &data[i + 1..];
        }
        // An over-long line: hand on full pieces, keep at most `max_pending`.
        while data.len() > self.max_pending {
            let (piece, rest) = data.split_at(self.max_pending);
            emit(piece);
            data = rest;
            // A newline may follow within the remainder; frame it normally.
            if let Some(i) = memchr::memchr(b'\n', data).filter(|&i| i <= self.max_pending) {
                emit(&data[..=i]);
                data = &data[i + 1..];
                while let Some(i) = memchr::memchr(b'\n', data).filter(|&i| i <= self.max_pending) {
                    emit(&data[..=i]);
                    data = &data[i + 1..];
                }
            }
        }
        self.pending.extend_from_slice(data);
    }

    /// The peer paused: hands on the unfinished line, if any, and forgets it.
    pub fn flush(&mut self, mut emit: impl FnMut(&[u8])) {
        if !self.pending.is_empty() {
            emit(&self.pending);
            self.pending.clear();
        }
    }

    /// How many bytes of an unfinished line are buffered.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Releases the buffer's memory if it grew (an idle session should cost little).
    pub fn shrink(&mut self) {
        if self.pending.is_empty() {
            self.pending = Vec::new();
        }
    }
}

/// The echo service's core: lines in, `stamp + line` out.
#[derive(Debug, Clone)]
pub struct Stamper {
    framer: LineFramer,
}

impl Stamper {
    /// A stamper that buffers at most `max_pending` bytes of an unfinished line.
    pub fn new(max_pending: usize) -> Self {
        Stamper {
            framer: LineFramer::new(max_pending),
        }
    }

    /// Feeds bytes read from the peer; appends the reply to `out` (every complete line, and
    /// pieces of an over-long one, each behind `stamp`).
    pub fn push(&mut self, data: &[u8], stamp: &Stamp, out: &mut Vec<u8>) {
        self.framer
            .push(data, |piece| stamp_into(out, stamp, piece));
    }

    /// The peer paused: appends the stamped unfinished line, if any, to `out`.
    pub fn flush(&mut self, stamp: &Stamp, out: &mut Vec<u8>) {
        self.framer.flush(|piece| stamp_into(out, stamp, piece));
    }

    /// How many bytes wait for the end of their line.
    pub fn pending(&self) -> usize {
        self.framer.pending()
    }

    /// Releases buffer memory when nothing is pending.
    pub fn shrink(&mut self) {
        self.framer.shrink();
    }
}

/// Appends `stamp` then `payload` to `out`: the reply to one line, or to one UDP datagram.
pub fn stamp_into(out: &mut Vec<u8>, stamp: &Stamp, payload: &[u8]) {
    out.reserve(STAMP_LEN + payload.len());
    out.extend_from_slice(stamp.as_bytes());
    out.extend_from_slice(payload);
}

/// What the bridge sends upstream for a client's text message: its bytes, plus `\n` unless it
/// already ends with one.
pub fn text_to_line(text: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(text.as_bytes());
    if !text.ends_with('\n') {
        out.push(b'\n');
    }
}

/// A piece from the framer without its line end: the payload of one bridge message.
pub fn strip_newline(piece: &[u8]) -> &[u8] {
    piece.strip_suffix(b"\n").unwrap_or(piece)
}

/// What one bridge message carries: text when the line is UTF-8, its bytes otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinePayload<'a> {
    /// A valid UTF-8 line: a text message.
    Text(&'a str),
    /// Anything else: a binary message, verbatim.
    Binary(&'a [u8]),
}

impl<'a> LinePayload<'a> {
    /// The payload's bytes, whatever its kind.
    pub fn as_bytes(&self) -> &'a [u8] {
        match *self {
            LinePayload::Text(t) => t.as_bytes(),
            LinePayload::Binary(b) => b,
        }
    }
}

/// The bridge's message splitter, after the framer: one piece (a line, or part of an over-long
/// one) becomes one message, without its `\n`, text if UTF-8 and binary otherwise.
pub fn line_payload(piece: &[u8]) -> LinePayload<'_> {
    let payload = strip_newline(piece);
    match std::str::from_utf8(payload) {
        Ok(text) => LinePayload::Text(text),
        Err(_) => LinePayload::Binary(payload),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn stamp() -> Stamp {
        Stamp::new(2026, 1, 1, 12, 0, 0)
    }

    fn frame(max: usize, chunks: &[&[u8]]) -> (Vec<Vec<u8>>, usize) {
        let mut f = LineFramer::new(max);
        let mut out = Vec::new();
        for c in chunks {
            f.push(c, |p| out.push(p.to_vec()));
        }
        (out, f.pending())
    }

    #[test]
    fn stamp_format_matches_the_lesson() {
        assert_eq!(stamp().as_str(), "[2026-01-01 12:00:00]:");
        assert_eq!(
            Stamp::new(7, 3, 9, 1, 2, 3).as_str(),
            "[0007-03-09 01:02:03]:"
        );
        assert_eq!(
            Stamp::new(12345, 1, 1, 0, 0, 0).as_str(),
            "[9999-01-01 00:00:00]:"
        );
    }

    #[test]
    fn two_lines_in_one_write_get_two_stamps() {
        let mut s = Stamper::new(1024);
        let mut out = Vec::new();
        s.push(b"a\nb\n", &stamp(), &mut out);
        assert_eq!(out, b"[2026-01-01 12:00:00]:a\n[2026-01-01 12:00:00]:b\n");
        assert_eq!(s.pending(), 0);
    }

    #[test]
    fn partial_line_waits_for_flush() {
        let mut s = Stamper::new(1024);
        let mut out = Vec::new();
        s.push(b"hel", &stamp(), &mut out);
        s.push(b"lo", &stamp(), &mut out);
        assert!(out.is_empty());
        s.flush(&stamp(), &mut out);
        assert_eq!(out, b"[2026-01-01 12:00:00]:hello");
        out.clear();
        s.flush(&stamp(), &mut out);
        assert!(out.is_empty(), "nothing pending, nothing sent");
    }

    #[test]
    fn line_split_across_pushes_is_joined() {
        let (out, pending) = frame(1024, &[b"ab", b"c\nd", b"e\n"]);
        assert_eq!(out, vec![b"abc\n".to_vec(), b"de\n".to_vec()]);
        assert_eq!(pending, 0);
    }

    #[test]
    fn bytes_are_verbatim() {
        let (out, _) = frame(1024, &[b"\x00\xff\r\n"]);
        assert_eq!(out, vec![b"\x00\xff\r\n".to_vec()]);
    }

    #[test]
    fn long_line_is_handed_on_in_bounded_pieces() {
        let (out, pending) = frame(4, &[b"abcdefghij\nxy"]);
        assert_eq!(
            out,
            vec![b"abcd".to_vec(), b"efgh".to_vec(), b"ij\n".to_vec()]
        );
        assert_eq!(pending, 2);
        let (out, pending) = frame(4, &[b"ab", b"cdefg", b"hi\n"]);
        assert_eq!(
            out,
            vec![b"abcd".to_vec(), b"efgh".to_vec(), b"i\n".to_vec()]
        );
        assert_eq!(pending, 0);
    }

    /// A line of exactly the bound, plus its `\n`, is one line: whether it comes whole, after
    /// a full buffer, or in bytes.
    #[test]
    fn a_line_as_long_as_the_bound_is_whole() {
        assert_eq!(frame(4, &[b"abcd\nx"]), (vec![b"abcd\n".to_vec()], 1));
        assert_eq!(frame(4, &[b"abcd", b"\n"]), (vec![b"abcd\n".to_vec()], 0));
        assert_eq!(
            frame(4, &[b"a", b"b", b"c", b"d", b"\n"]),
            (vec![b"abcd\n".to_vec()], 0)
        );
        assert_eq!(
            frame(4, &[b"abcdefgh\n"]),
            (vec![b"abcd".to_vec(), b"efgh\n".to_vec()], 0)
        );
    }

    #[test]
    fn text_to_line_adds_one_newline() {
        let mut out = Vec::new();
        text_to_line("hi", &mut out);
        text_to_line("there\n", &mut out);
        assert_eq!(out, b"hi\nthere\n");
        assert_eq!(strip_newline(b"x\n"), b"x");
        assert_eq!(strip_newline(b"x"), b"x");
    }

    proptest! {
        /// Every byte comes back exactly once, in order, whatever the chunking and the bound;
        /// nothing pending ever exceeds the bound; every piece but an over-long one ends a line.
        #[test]
        fn framer_loses_and_duplicates_nothing(
            data in proptest::collection::vec(prop_oneof![Just(b'\n'), any::<u8>()], 0..2000),
            cuts in proptest::collection::vec(0usize..2000, 0..20),
            max in 1usize..64,
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort_unstable();
            let mut f = LineFramer::new(max);
            let mut seen = Vec::new();
            let mut start = 0;
            for &c in cuts.iter().chain(std::iter::once(&data.len())) {
                f.push(&data[start..c], |p| {
                    // A piece is a line of at most `max` bytes and its `\n`, or `max` bytes
                    // of a longer one.
                    assert!(p.ends_with(b"\n") || p.len() == max);
                    assert!(p.len() <= max + usize::from(p.ends_with(b"\n")));
                    seen.extend_from_slice(p);
                });
                prop_assert!(f.pending() <= max);
                start = c;
            }
            f.flush(|p| seen.extend_from_slice(p));
            prop_assert_eq!(seen, data);
        }

        /// The bridge's splitter: framer pieces turned into messages give back every byte of
        /// the stream, in order, once the `\n`s that ended the lines are put back; text
        /// messages are exactly the UTF-8 ones.
        #[test]
        fn splitter_messages_rebuild_the_stream(
            data in proptest::collection::vec(
                prop_oneof![Just(b'\n'), Just(0xe4), Just(0xbd), Just(0xa0), any::<u8>()],
                0..2000,
            ),
            cuts in proptest::collection::vec(0usize..2000, 0..20),
            max in 1usize..64,
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort_unstable();
            let mut f = LineFramer::new(max);
            let mut rebuilt = Vec::new();
            let mut take = |piece: &[u8]| {
                let msg = line_payload(piece);
                assert!(msg.as_bytes().len() <= max, "{} > {max}", msg.as_bytes().len());
                // The message is the piece without its `\n`, and text exactly when that is UTF-8.
                let body = piece.strip_suffix(b"\n").unwrap_or(piece);
                assert_eq!(msg.as_bytes(), body);
                assert_eq!(
                    matches!(msg, LinePayload::Text(_)),
                    std::str::from_utf8(body).is_ok(),
                    "{body:?}"
                );
                rebuilt.extend_from_slice(msg.as_bytes());
                if piece.ends_with(b"\n") {
                    rebuilt.push(b'\n');
                }
            };
            let mut start = 0;
            for &c in cuts.iter().chain(std::iter::once(&data.len())) {
                f.push(&data[start..c], &mut take);
                start = c;
            }
            f.flush(&mut take);
            prop_assert_eq!(rebuilt, data);
        }

        /// The stamper returns every byte once, in order, each piece behind one stamp,
        /// whatever the chunking and wherever the peer pauses.
        #[test]
        fn stamper_returns_every_byte_once_in_order(
            data in proptest::collection::vec(prop_oneof![Just(b'\n'), any::<u8>()], 0..2000),
            cuts in proptest::collection::vec((0usize..2000, any::<bool>()), 0..20),
            max in 1usize..64,
        ) {
            let mut cuts: Vec<(usize, bool)> =
                cuts.into_iter().map(|(c, p)| (c.min(data.len()), p)).collect();
            cuts.sort_unstable();
            let mut s = Stamper::new(max);
            let mut out = Vec::new();
            let mut start = 0;
            for &(c, pause) in cuts.iter().chain(std::iter::once(&(data.len(), true))) {
                s.push(&data[start..c], &stamp(), &mut out);
                if pause {
                    s.flush(&stamp(), &mut out);
                }
                start = c;
            }
            // Remove the stamps: every reply piece starts with one.
            let mut payload = Vec::new();
            let mut rest = &out[..];
            while !rest.is_empty() {
                prop_assert!(rest.starts_with(stamp().as_bytes()));
                rest = &rest[STAMP_LEN..];
                let end = rest
                    .windows(STAMP_LEN)
                    .position(|w| w == stamp().as_bytes())
                    .unwrap_or(rest.len());
                payload.extend_from_slice(&rest[..end]);
                rest = &rest[end..];
            }
            // (Random data never holds a whole 22-byte stamp, so the split is unambiguous.)
            prop_assert_eq!(payload, data);
        }
    }
}
