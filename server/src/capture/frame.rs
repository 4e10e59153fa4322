//! What the reader thread hands the matcher thread.

use std::time::Duration;

/// A packet as read, with the time it was read.
#[derive(Debug)]
pub(crate) struct Frame {
    /// Since the Unix epoch.
    pub at: Duration,
    /// From the IP header on.
    pub data: Vec<u8>,
}
