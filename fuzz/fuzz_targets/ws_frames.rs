//! The server side of a WebSocket's frames (`ws_frames::ClientFrames`): whatever the client
//! sends and however the reads cut it, nothing panics, no message exceeds the bound, and the
//! messages, control frames and close code are the same as when it all comes in one read.
#![no_main]

use std::ops::ControlFlow;

use libfuzzer_sys::fuzz_target;
use socklab_fuzz::Case;
use socklab_protocol::ws_frames::{ClientFrames, Received};

/// What `frames` makes of `data` read in pieces of `lens`: every message or control frame,
/// then the close code of the error that ended it, if any.
fn run(max: usize, lens: &[usize], data: &[u8]) -> (Vec<String>, Option<u16>) {
    let mut frames = ClientFrames::new(max);
    let mut seen = Vec::new();
    let mut at = 0;
    for &len in lens {
        let mut piece = data[at..at + len].to_vec();
        at += len;
        let fed = frames.feed(&mut piece, |r| {
            if let Received::Text(t) = r {
                assert!(t.len() <= max);
            }
            if let Received::Binary(b) = r {
                assert!(b.len() <= max);
            }
            let close = matches!(r, Received::Close(_));
            seen.push(format!("{r:?}"));
            if close {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        match fed {
            Err(err) => return (seen, Some(err.close_code())),
            Ok(ControlFlow::Break(())) => break,
            Ok(ControlFlow::Continue(())) => {}
        }
    }
    (seen, None)
}

fuzz_target!(|input: &[u8]| {
    let Some(case) = Case::decode(input) else {
        return;
    };
    // Bounds up to 64 × 4: small enough that over-long messages are common.
    let max = case.max * 4;
    let whole = run(max, &[case.data.len()], case.data);
    let lens: Vec<usize> = case.pushes.iter().map(|&(len, _)| len).collect();
    assert_eq!(whole, run(max, &lens, case.data));
});
