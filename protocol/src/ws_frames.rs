//! The server side of a WebSocket, sans-IO: the client's frames parsed in the bytes the caller
//! read (with tungstenite's [`FrameHeader`] parser), unmasked in place, checked and put
//! together into messages; the server's frames written into the caller's buffer. The bridge
//! `/ws` speaks WebSocket with it straight on its `TcpStream`.
//!
//! Why not tungstenite's `WebSocketStream` (as the monitor feed uses, through axum): per
//! message it went through hyper's upgraded-connection wrappers and tokio-tungstenite's waker
//! proxies (an `AtomicWaker` registered and an `Arc` waker cloned on every poll), zeroed its
//! read buffer before every read, and gave each message a `Bytes` of its own. Here a message
//! that came whole in one read is handed on where it lies, in the caller's read buffer.
//!
//! The rules are RFC 6455's and tungstenite's (its `ProtocolError`s name what broke them): a
//! client frame must be masked and use no reserved bits or opcodes; control frames are final
//! and at most 125 bytes; a continuation needs a message to continue and a new message must
//! wait for the last one's final frame; text must be UTF-8; no frame or message may exceed
//! `max_message`, which is checked on the header, before its payload is buffered.

use std::io::Cursor;
use std::ops::ControlFlow;

use tungstenite::Error as WsError;
use tungstenite::error::ProtocolError;
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{CloseCode, Control, Data, OpCode};

use crate::close_code;

/// The most a control frame's payload may hold (RFC 6455 §5.5).
const MAX_CONTROL: usize = 125;
/// A close reason's limit: a control frame's, less the two bytes of the code.
pub const MAX_CLOSE_REASON: usize = MAX_CONTROL - 2;
/// An unfinished frame's buffer is given back once emptied if it grew beyond this.
const KEEP_PENDING: usize = 4 * 1024;

/// One message or control frame from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Received<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
    /// A ping: its payload goes back in a pong.
    Ping(&'a [u8]),
    Pong,
    /// The client's close: its code and reason, if it gave them.
    Close(Option<(u16, &'a str)>),
}

/// Why the client's bytes are not a WebSocket conversation: the session ends with the code
/// [`FrameError::close_code`] gives.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("message too big: the limit is {0} bytes")]
    TooBig(usize),
    #[error("invalid UTF-8 in a text message")]
    Utf8,
    #[error("protocol error: {0}")]
    Protocol(ProtocolError),
}

impl FrameError {
    /// The close code the client is sent (DESIGN: 1009, 1007, 1002).
    pub fn close_code(&self) -> u16 {
        match self {
            FrameError::TooBig(_) => close_code::TOO_BIG,
            FrameError::Utf8 => close_code::INVALID_DATA,
            FrameError::Protocol(_) => close_code::PROTOCOL_ERROR,
        }
    }
}

/// The reading half of one server-side WebSocket: what is left of a frame that has not all
/// arrived, and a fragmented message being put together. Both are empty between messages (a
/// message that arrives whole in one read is never copied into them), and each gives back its
/// memory once emptied if it grew beyond 4 KiB.
#[derive(Debug)]
pub struct ClientFrames {
    max_message: usize,
    /// The start of a frame whose end has not arrived yet (at most one frame).
    pending: Vec<u8>,
    /// A fragmented message so far, and whether it is text.
    message: Vec<u8>,
    fragmented: Option<Data>,
    /// An error ended the conversation: where the next frame starts is unknown.
    broken: bool,
}

impl ClientFrames {
    /// Frames and messages of at most `max_message` bytes.
    pub fn new(max_message: usize) -> Self {
        ClientFrames {
            max_message,
            pending: Vec::new(),
            message: Vec::new(),
            fragmented: None,
            broken: false,
        }
    }

    /// Whether an error ended the conversation: what the client sends after it cannot be
    /// read as frames (a caller waiting for its close frame should only drain the socket).
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Takes bytes read from the client and hands `each` every message and control frame they
    /// complete, in order, until `each` breaks (a close: what follows it is not read). The
    /// unmasking is done in `bytes`. An error ends the conversation: nothing after it is read,
    /// and every later call fails with [`ProtocolError::ReceivedAfterClosing`].
    pub fn feed(
        &mut self,
        bytes: &mut [u8],
        each: impl FnMut(Received<'_>) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>, FrameError> {
        if self.broken {
            return Err(FrameError::Protocol(ProtocolError::ReceivedAfterClosing));
        }
        let fed = self.feed_frames(bytes, each);
        if fed.is_err() {
            self.broken = true;
            self.pending = Vec::new();
            self.message = Vec::new();
            self.fragmented = None;
        }
        fed
    }

    fn feed_frames(
        &mut self,
        bytes: &mut [u8],
        mut each: impl FnMut(Received<'_>) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>, FrameError> {
        if self.pending.is_empty() {
            let (used, flow) = self.parse(bytes, &mut each)?;
            if flow.is_continue() {
                self.pending
                    .extend_from_slice(bytes.get(used..).unwrap_or_default());
            }
            return Ok(flow);
        }
        let mut pending = std::mem::take(&mut self.pending);
        pending.extend_from_slice(bytes);
        let (used, flow) = self.parse(&mut pending, &mut each)?;
        pending.drain(..used.min(pending.len()));
        if pending.is_empty() && pending.capacity() > KEEP_PENDING {
            pending = Vec::new();
        }
        self.pending = pending;
        Ok(flow)
    }

    /// Parses the whole frames at the start of `buf`; returns how many bytes they took.
    fn parse(
        &mut self,
        buf: &mut [u8],
        each: &mut impl FnMut(Received<'_>) -> ControlFlow<()>,
    ) -> Result<(usize, ControlFlow<()>), FrameError> {
        let mut at = 0;
        while let Some(rest) = buf.get_mut(at..) {
            let Some((header, payload)) = self.next_frame(rest)? else {
                break;
            };
            let (head, len) = (payload.start, payload.len());
            let frame = rest.get_mut(payload).unwrap_or_default();
            at += head + len;
            if self.frame(header, frame, each)?.is_break() {
                return Ok((at, ControlFlow::Break(())));
            }
        }
        Ok((at, ControlFlow::Continue(())))
    }

    /// The next frame's header and where its payload lies in `buf`, if it has all arrived.
    /// A header that breaks a rule is refused as soon as it has arrived, before its payload.
    fn next_frame(
        &self,
        buf: &[u8],
    ) -> Result<Option<(FrameHeader, std::ops::Range<usize>)>, FrameError> {
        let mut cursor = Cursor::new(buf);
        let parsed = FrameHeader::parse(&mut cursor).map_err(|err| match err {
            WsError::Protocol(p) => FrameError::Protocol(p),
            // The parser reads a slice: it fails only on its rules (the reserved opcodes).
            _ => FrameError::Protocol(ProtocolError::InvalidOpcode(
                buf.first().map_or(0, |b| b & 0x0f),
            )),
        })?;
        let Some((header, len)) = parsed else {
            return Ok(None);
        };
        self.check_header(&header, len)?;
        let start = cursor.position() as usize;
        let end = start + len as usize;
        Ok((end <= buf.len()).then_some((header, start..end)))
    }

    /// The rules a header alone can break: reserved bits, no mask, a control frame fragmented
    /// or over 125 bytes, a continuation with nothing to continue, a new message before the
    /// last one's final frame, and the size limit (a continuation counts what came before it;
    /// a control frame between fragments does not).
    fn check_header(&self, header: &FrameHeader, len: u64) -> Result<(), FrameError> {
        let refuse = |p| Err(FrameError::Protocol(p));
        if header.rsv1 || header.rsv2 || header.rsv3 {
            return refuse(ProtocolError::NonZeroReservedBits);
        }
        if header.mask.is_none() {
            return refuse(ProtocolError::UnmaskedFrameFromClient);
        }
        let so_far = match (header.opcode, self.fragmented) {
            (OpCode::Control(_), _) if !header.is_final => {
                return refuse(ProtocolError::FragmentedControlFrame);
            }
            (OpCode::Control(_), _) if len > MAX_CONTROL as u64 => {
                return refuse(ProtocolError::ControlFrameTooBig);
            }
            (OpCode::Control(_), _) => 0,
            (OpCode::Data(Data::Continue), None) => {
                return refuse(ProtocolError::UnexpectedContinueFrame);
            }
            (OpCode::Data(Data::Continue), Some(_)) => self.message.len() as u64,
            (OpCode::Data(_), Some(open)) => return refuse(ProtocolError::ExpectedFragment(open)),
            (OpCode::Data(_), None) => 0,
        };
        if len > self.max_message as u64 || so_far + len > self.max_message as u64 {
            return Err(FrameError::TooBig(self.max_message));
        }
        Ok(())
    }

    /// One whole frame, its header checked: unmasked and handed on (a message's last frame
    /// hands on the message).
    fn frame(
        &mut self,
        header: FrameHeader,
        payload: &mut [u8],
        each: &mut impl FnMut(Received<'_>) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>, FrameError> {
        if let Some(mask) = header.mask {
            unmask(payload, mask);
        }
        match header.opcode {
            OpCode::Control(control) => control_frame(control, payload, each),
            OpCode::Data(Data::Continue) => {
                self.message.extend_from_slice(payload);
                match self.fragmented {
                    Some(kind) if header.is_final => self.finish_message(kind, each),
                    _ => Ok(ControlFlow::Continue(())),
                }
            }
            OpCode::Data(kind) => {
                if header.is_final {
                    return data_message(kind, payload, each);
                }
                self.fragmented = Some(kind);
                self.message.extend_from_slice(payload);
                Ok(ControlFlow::Continue(()))
            }
        }
    }

    /// A fragmented message's final frame came: the message is handed on, the buffer kept
    /// for the next one (given back if it grew beyond 4 KiB).
    fn finish_message(
        &mut self,
        kind: Data,
        each: &mut impl FnMut(Received<'_>) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>, FrameError> {
        self.fragmented = None;
        let message = std::mem::take(&mut self.message);
        let flow = data_message(kind, &message, each);
        self.message = message;
        self.message.clear();
        if self.message.capacity() > KEEP_PENDING {
            self.message = Vec::new();
        }
        flow
    }
}

/// A whole text or binary message.
fn data_message(
    kind: Data,
    payload: &[u8],
    each: &mut impl FnMut(Received<'_>) -> ControlFlow<()>,
) -> Result<ControlFlow<()>, FrameError> {
    match kind {
        Data::Text => {
            let text = std::str::from_utf8(payload).map_err(|_| FrameError::Utf8)?;
            Ok(each(Received::Text(text)))
        }
        Data::Binary => Ok(each(Received::Binary(payload))),
        // The parser refuses reserved opcodes; a continuation never reaches here.
        Data::Continue | Data::Reserved(_) => {
            Err(FrameError::Protocol(ProtocolError::UnexpectedContinueFrame))
        }
    }
}

/// A ping, pong or close frame.
fn control_frame(
    control: Control,
    payload: &[u8],
    each: &mut impl FnMut(Received<'_>) -> ControlFlow<()>,
) -> Result<ControlFlow<()>, FrameError> {
    match control {
        Control::Ping => Ok(each(Received::Ping(payload))),
        Control::Pong => Ok(each(Received::Pong)),
        Control::Close => {
            let close = match payload {
                [] => None,
                [hi, lo, reason @ ..] => {
                    let code = u16::from_be_bytes([*hi, *lo]);
                    if !CloseCode::from(code).is_allowed() {
                        return Err(FrameError::Protocol(ProtocolError::InvalidCloseSequence));
                    }
                    let reason = std::str::from_utf8(reason).map_err(|_| FrameError::Utf8)?;
                    Some((code, reason))
                }
                [_] => return Err(FrameError::Protocol(ProtocolError::InvalidCloseSequence)),
            };
            // Nothing after a close is read, whatever `each` says (RFC 6455 §5.5.1).
            let _ = each(Received::Close(close));
            Ok(ControlFlow::Break(()))
        }
        Control::Reserved(op) => Err(FrameError::Protocol(
            ProtocolError::UnknownControlFrameType(op),
        )),
    }
}

/// Undoes the client's masking (RFC 6455 §5.3), in place.
fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    for (i, byte) in payload.iter_mut().enumerate() {
        *byte ^= mask[i & 3];
    }
}

/// Appends one final, unmasked server frame (server frames are never masked), its header
/// written by tungstenite's [`FrameHeader::format`], the twin of the parser the reading side
/// uses.
pub fn put_frame(out: &mut Vec<u8>, opcode: OpCode, payload: &[u8]) {
    let header = FrameHeader {
        opcode,
        ..FrameHeader::default()
    };
    // Writing into a `Vec` cannot fail.
    let _ = header.format(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

/// Appends a text message's frame.
pub fn put_text(out: &mut Vec<u8>, text: &str) {
    put_frame(out, OpCode::Data(Data::Text), text.as_bytes());
}

/// Appends a binary message's frame.
pub fn put_binary(out: &mut Vec<u8>, bytes: &[u8]) {
    put_frame(out, OpCode::Data(Data::Binary), bytes);
}

/// Appends a close frame: the code and as much of `reason` as fits (cut at a character).
pub fn put_close(out: &mut Vec<u8>, code: u16, reason: &str) {
    let reason = truncate_reason(reason);
    let mut payload = [0u8; MAX_CONTROL];
    payload[..2].copy_from_slice(&code.to_be_bytes());
    payload[2..2 + reason.len()].copy_from_slice(reason.as_bytes());
    put_frame(
        out,
        OpCode::Control(Control::Close),
        &payload[..2 + reason.len()],
    );
}

/// A close reason may hold at most 123 bytes (RFC 6455 §5.5); cut at a character boundary.
pub fn truncate_reason(reason: &str) -> &str {
    let end = reason
        .char_indices()
        .map(|(at, c)| at + c.len_utf8())
        .take_while(|&end| end <= MAX_CLOSE_REASON)
        .last()
        .unwrap_or(0);
    reason.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A client frame as a browser sends it: masked with `mask`.
    fn client_frame(first: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
        let mut out = Vec::new();
        let len = payload.len();
        if len <= 125 {
            out.extend_from_slice(&[first, 0x80 | len as u8]);
        } else if len <= 0xFFFF {
            out.extend_from_slice(&[first, 0x80 | 126]);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.extend_from_slice(&[first, 0x80 | 127]);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
        out
    }

    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// What `frames` makes of `bytes` fed in pieces of `step` bytes, as owned values.
    fn feed_in_steps(
        frames: &mut ClientFrames,
        bytes: &[u8],
        step: usize,
    ) -> (Vec<String>, Option<FrameError>) {
        let mut seen = Vec::new();
        for piece in bytes.chunks(step.max(1)) {
            let mut piece = piece.to_vec();
            let fed = frames.feed(&mut piece, |r| {
                seen.push(format!("{r:?}"));
                if matches!(r, Received::Close(_)) {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            });
            match fed {
                Err(err) => return (seen, Some(err)),
                Ok(ControlFlow::Break(())) => break,
                Ok(ControlFlow::Continue(())) => {}
            }
        }
        (seen, None)
    }

    #[test]
    fn messages_arrive_whole_however_the_bytes_are_cut() {
        let mut wire = client_frame(0x81, b"hi", MASK);
        wire.extend(client_frame(0x82, &[0, 0xff, 7], MASK));
        wire.extend(client_frame(0x89, b"p", MASK));
        wire.extend(client_frame(0x01, "héllo ".as_bytes(), MASK));
        wire.extend(client_frame(0x8A, b"", MASK));
        wire.extend(client_frame(0x80, "wörld".as_bytes(), MASK));
        wire.extend(client_frame(0x81, &vec![b'x'; 300], MASK));
        let mut close = 1000u16.to_be_bytes().to_vec();
        close.extend_from_slice(b"bye");
        wire.extend(client_frame(0x88, &close, MASK));
        wire.extend(client_frame(0x81, b"after the close", MASK));
        let expected = vec![
            r#"Text("hi")"#.to_owned(),
            "Binary([0, 255, 7])".to_owned(),
            "Ping([112])".to_owned(),
            "Pong".to_owned(),
            r#"Text("héllo wörld")"#.to_owned(),
            format!("Text({:?})", "x".repeat(300)),
            r#"Close(Some((1000, "bye")))"#.to_owned(),
        ];
        for step in [1, 2, 3, 7, 64, wire.len()] {
            let mut frames = ClientFrames::new(1024);
            let (seen, err) = feed_in_steps(&mut frames, &wire, step);
            assert!(err.is_none(), "step {step}: {err:?}");
            assert_eq!(seen, expected, "step {step}");
        }
    }

    /// Frames for one message cut into `parts` fragments (a cut may split a character).
    fn fragments(wire: &mut Vec<u8>, opcode: u8, payload: &[u8], parts: usize, mask: [u8; 4]) {
        let cuts: Vec<usize> = (0..=parts).map(|i| payload.len() * i / parts).collect();
        for i in 0..parts {
            let fin = if i + 1 == parts { 0x80 } else { 0 };
            let op = if i == 0 { opcode } else { 0 };
            wire.extend(client_frame(fin | op, &payload[cuts[i]..cuts[i + 1]], mask));
        }
    }

    #[derive(Debug, Clone)]
    enum Sent {
        Text(String),
        Binary(Vec<u8>),
        Ping(Vec<u8>),
    }

    fn sent() -> impl Strategy<Value = Sent> {
        prop_oneof![
            ".{0,40}".prop_map(Sent::Text),
            proptest::collection::vec(any::<u8>(), 0..300).prop_map(Sent::Binary),
            proptest::collection::vec(any::<u8>(), 0..=125).prop_map(Sent::Ping),
        ]
    }

    proptest! {
        #[test]
        fn any_messages_however_fragmented_and_cut_come_out_as_sent(
            messages in proptest::collection::vec((sent(), 1usize..4, any::<[u8; 4]>()), 0..12),
            step in 1usize..64,
        ) {
            let mut wire = Vec::new();
            let mut expected = Vec::new();
            for (message, parts, mask) in &messages {
                match message {
                    Sent::Text(t) => {
                        fragments(&mut wire, 0x1, t.as_bytes(), *parts, *mask);
                        expected.push(format!("{:?}", Received::Text(t)));
                    }
                    Sent::Binary(b) => {
                        fragments(&mut wire, 0x2, b, *parts, *mask);
                        expected.push(format!("{:?}", Received::Binary(b)));
                    }
                    Sent::Ping(p) => {
                        wire.extend(client_frame(0x89, p, *mask));
                        expected.push(format!("{:?}", Received::Ping(p)));
                    }
                }
            }
            let (seen, err) = feed_in_steps(&mut ClientFrames::new(1024), &wire, step);
            prop_assert!(err.is_none(), "{:?}", err);
            prop_assert_eq!(seen, expected);
        }
    }

    #[test]
    fn a_message_over_the_limit_is_refused_by_its_header() {
        let mut frames = ClientFrames::new(100);
        // Only the header: the payload is refused before it is buffered.
        let wire = client_frame(0x82, &[1; 101], MASK);
        let (_, err) = feed_in_steps(&mut frames, &wire[..8], 8);
        assert!(matches!(err, Some(FrameError::TooBig(100))), "{err:?}");
        // Fragments that add up to more than the limit.
        let mut frames = ClientFrames::new(100);
        let mut wire = client_frame(0x02, &[1; 60], MASK);
        wire.extend(client_frame(0x80, &[1; 41], MASK));
        let (_, err) = feed_in_steps(&mut frames, &wire, wire.len());
        assert_eq!(err.map(|e| e.close_code()), Some(close_code::TOO_BIG));
        // Exactly the limit is fine.
        let mut frames = ClientFrames::new(100);
        let wire = client_frame(0x82, &[1; 100], MASK);
        assert!(feed_in_steps(&mut frames, &wire, 10).1.is_none());
    }

    #[test]
    fn broken_conversations_get_their_close_codes() {
        let unmasked = vec![0x81, 2, b'h', b'i'];
        let cases: Vec<(Vec<u8>, u16)> = vec![
            (unmasked, close_code::PROTOCOL_ERROR),
            (client_frame(0xC1, b"x", MASK), close_code::PROTOCOL_ERROR), // rsv1
            (client_frame(0x83, b"x", MASK), close_code::PROTOCOL_ERROR), // reserved opcode
            (client_frame(0x09, b"x", MASK), close_code::PROTOCOL_ERROR), // fragmented ping
            (
                client_frame(0x89, &[0; 126], MASK),
                close_code::PROTOCOL_ERROR,
            ),
            (client_frame(0x80, b"x", MASK), close_code::PROTOCOL_ERROR), // nothing to continue
            (client_frame(0x88, &[3], MASK), close_code::PROTOCOL_ERROR), // one-byte close
            (
                client_frame(0x88, &1005u16.to_be_bytes(), MASK),
                close_code::PROTOCOL_ERROR,
            ),
            (client_frame(0x81, b"\xff", MASK), close_code::INVALID_DATA),
        ];
        for (wire, code) in cases {
            let mut frames = ClientFrames::new(1024);
            let (_, err) = feed_in_steps(&mut frames, &wire, wire.len());
            assert_eq!(err.map(|e| e.close_code()), Some(code), "{wire:x?}");
        }
        // A new message before the fragmented one's final frame.
        let mut wire = client_frame(0x01, b"a", MASK);
        wire.extend(client_frame(0x81, b"b", MASK));
        let (_, err) = feed_in_steps(&mut ClientFrames::new(1024), &wire, 3);
        assert_eq!(
            err.map(|e| e.close_code()),
            Some(close_code::PROTOCOL_ERROR)
        );
        // Text whose UTF-8 is split across fragments is fine; invalid as a whole is not.
        let euro = "€".as_bytes();
        let mut wire = client_frame(0x01, &euro[..1], MASK);
        wire.extend(client_frame(0x80, &euro[1..], MASK));
        let (seen, err) = feed_in_steps(&mut ClientFrames::new(1024), &wire, 1);
        assert!(err.is_none());
        assert_eq!(seen, vec![r#"Text("€")"#.to_owned()]);
    }

    #[test]
    fn control_frames_between_fragments_do_not_count_toward_the_limit() {
        let mut wire = client_frame(0x02, &[1; 90], MASK);
        wire.extend(client_frame(0x89, &[2; 20], MASK));
        wire.extend(client_frame(0x8A, &[3; 20], MASK));
        wire.extend(client_frame(0x80, &[4; 10], MASK));
        let (seen, err) = feed_in_steps(&mut ClientFrames::new(100), &wire, 7);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(seen.len(), 3, "{seen:?}");
        // A new message in the middle of a fragmented one is a protocol error, not "too big".
        let mut wire = client_frame(0x02, &[1; 90], MASK);
        wire.extend(client_frame(0x82, &[1; 20], MASK));
        let (_, err) = feed_in_steps(&mut ClientFrames::new(100), &wire, wire.len());
        assert_eq!(
            err.map(|e| e.close_code()),
            Some(close_code::PROTOCOL_ERROR)
        );
    }

    #[test]
    fn a_broken_header_is_refused_before_its_payload_and_nothing_is_read_after_it() {
        // A 126-byte ping, unmasked data, reserved bits: only the header has arrived.
        for header in [
            vec![0x89, 0x80 | 126, 0, 126, 1, 2, 3, 4],
            vec![0x82, 100],
            vec![0xA2, 0x80 | 100, 1, 2, 3, 4],
        ] {
            let mut frames = ClientFrames::new(1024);
            let (_, err) = feed_in_steps(&mut frames, &header, header.len());
            assert_eq!(
                err.map(|e| e.close_code()),
                Some(close_code::PROTOCOL_ERROR)
            );
            assert!(frames.is_broken());
            let mut next = client_frame(0x81, b"hi", MASK);
            assert!(
                frames
                    .feed(&mut next, |_| ControlFlow::Continue(()))
                    .is_err()
            );
        }
    }

    #[test]
    fn server_frames_read_back_with_tungstenite() {
        for len in [0, 1, 125, 126, 65_535, 65_536] {
            let payload = vec![b'a'; len];
            let mut out = Vec::new();
            put_text(&mut out, std::str::from_utf8(&payload).unwrap_or_default());
            let mut cursor = Cursor::new(&out);
            let parsed = FrameHeader::parse(&mut cursor).ok().flatten();
            let Some((header, parsed_len)) = parsed else {
                panic!("no header for {len}");
            };
            assert!(header.is_final && header.mask.is_none());
            assert_eq!(header.opcode, OpCode::Data(Data::Text));
            assert_eq!(parsed_len, len as u64);
            assert_eq!(out.len() - cursor.position() as usize, len);
        }
        let mut out = Vec::new();
        put_close(&mut out, 1009, &"é".repeat(100));
        assert_eq!(out[0], 0x88);
        assert!(usize::from(out[1]) <= MAX_CONTROL);
        assert_eq!(&out[2..4], &1009u16.to_be_bytes());
        assert!(std::str::from_utf8(&out[4..]).is_ok());
    }

    #[test]
    fn reasons_fit_in_a_close_frame() {
        assert_eq!(truncate_reason("short"), "short");
        let long = "é".repeat(100);
        let cut = truncate_reason(&long);
        assert!(cut.len() <= 123 && cut.len().is_multiple_of(2));
    }
}
