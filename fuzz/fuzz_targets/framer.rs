//! LineFramer against the byte-at-a-time model: the same pieces, in the same order, whatever
//! the chunking and pauses; never more than `max` bytes pending.
#![no_main]

use libfuzzer_sys::fuzz_target;
use socklab_fuzz::{Case, Model};
use socklab_protocol::LineFramer;

fuzz_target!(|input: &[u8]| {
    let Some(case) = Case::decode(input) else {
        return;
    };
    let mut framer = LineFramer::new(case.max);
    let mut model = Model::default();
    let mut pieces: Vec<Vec<u8>> = Vec::new();
    let mut at = 0;
    for &(len, pause) in &case.pushes {
        let chunk = &case.data[at..at + len];
        at += len;
        framer.push(chunk, |p| pieces.push(p.to_vec()));
        model.push(chunk, case.max);
        assert!(framer.pending() <= case.max);
        if pause {
            framer.flush(|p| pieces.push(p.to_vec()));
            model.flush();
            assert_eq!(framer.pending(), 0);
        }
    }
    framer.flush(|p| pieces.push(p.to_vec()));
    model.flush();
    assert_eq!(pieces, model.pieces);
    assert_eq!(pieces.concat(), case.data);
});
