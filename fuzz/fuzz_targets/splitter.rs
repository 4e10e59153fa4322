//! The bridge's message splitter (framer + line_payload): messages are at most `max` bytes,
//! text exactly when UTF-8, and with the line ends put back they rebuild the stream.
#![no_main]

use libfuzzer_sys::fuzz_target;
use socklab_fuzz::Case;
use socklab_protocol::LineFramer;
use socklab_protocol::framing::{LinePayload, line_payload};

fuzz_target!(|input: &[u8]| {
    let Some(case) = Case::decode(input) else {
        return;
    };
    let mut framer = LineFramer::new(case.max);
    let mut rebuilt = Vec::new();
    let max = case.max;
    let mut take = |piece: &[u8]| {
        let msg = line_payload(piece);
        assert!(msg.as_bytes().len() <= max);
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
    let mut at = 0;
    for &(len, pause) in &case.pushes {
        framer.push(&case.data[at..at + len], &mut take);
        at += len;
        if pause {
            framer.flush(&mut take);
        }
    }
    framer.flush(&mut take);
    assert_eq!(rebuilt, case.data);
});
