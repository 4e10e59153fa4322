//! Stamper: the reply is exactly stamp + piece for every piece of the model framer, so every
//! byte comes back once, in order, each piece behind one stamp.
#![no_main]

use libfuzzer_sys::fuzz_target;
use socklab_fuzz::{Case, Model};
use socklab_protocol::{Stamp, Stamper};

fuzz_target!(|input: &[u8]| {
    let Some(case) = Case::decode(input) else {
        return;
    };
    let stamp = Stamp::new(2026, 1, 1, 12, 0, 0);
    let mut stamper = Stamper::new(case.max);
    let mut model = Model::default();
    let mut out = Vec::new();
    let mut at = 0;
    for &(len, pause) in &case.pushes {
        let chunk = &case.data[at..at + len];
        at += len;
        stamper.push(chunk, &stamp, &mut out);
        model.push(chunk, case.max);
        if pause {
            stamper.flush(&stamp, &mut out);
            model.flush();
        }
        if stamper.pending() == 0 {
            stamper.shrink();
        }
    }
    stamper.flush(&stamp, &mut out);
    model.flush();
    let expected: Vec<u8> = model
        .pieces
        .iter()
        .flat_map(|p| stamp.as_bytes().iter().chain(p.iter()).copied())
        .collect();
    assert_eq!(out, expected);
});
