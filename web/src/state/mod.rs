//! Pure state: reducers that turn what happened into what the page shows. No I/O, no clock
//! (times are passed in), so the rules are easy to read and to test.

pub mod bridge;
pub mod monitor;
