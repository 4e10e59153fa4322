//! The running capture as the rest of the server sees it: the kept packets, the `packet`
//! event bus and the counters. `mod.rs` starts it; the matcher thread fills it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use axum::extract::ws::Utf8Bytes;
use socklab_protocol::{CaptureStats, MonitorEvent};
use tokio::sync::broadcast;

use super::pcap;
use super::store::Store;

/// A running capture.
#[derive(Debug)]
pub(crate) struct Capture {
    pub(super) store: Mutex<Store>,
    /// `packet` events; separate from the monitor bus so that subscribers who did not ask for
    /// packets are not flooded, and so nothing is built when nobody asked.
    pub(super) packets: broadcast::Sender<Utf8Bytes>,
    /// Most payload bytes kept (and shown) per packet.
    pub(super) payload: usize,
    /// What happened to the packets.
    pub stats: Stats,
}

/// Counters of the capture (see [`CaptureStats`] for how they add up).
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Packets read from the raw socket.
    pub read: AtomicU64,
    /// Packets the kernel dropped before they were read (its buffer for the socket was full).
    pub kernel_dropped: AtomicU64,
    /// Packets of socklab's sessions, matched.
    pub captured: AtomicU64,
    /// Packets dropped because the matcher thread fell behind.
    pub dropped: AtomicU64,
    /// Matched packets not kept: `--capture-sessions` sessions were already kept.
    pub unstored: AtomicU64,
}

impl Capture {
    /// Subscribes to `packet` events.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Utf8Bytes> {
        self.packets.subscribe()
    }

    pub(super) fn wants_packets(&self) -> bool {
        self.packets.receiver_count() > 0
    }

    pub(super) fn publish(&self, event: &MonitorEvent) {
        if let Ok(json) = serde_json::to_string(event) {
            // An error only means nobody listens any more.
            drop(self.packets.send(Utf8Bytes::from(json)));
        }
    }

    pub(super) fn lock_store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The pcap file of session `id` (with its upstream's packets for a `ws`/`wt` session)
    /// and the session's kind, if its packets are kept.
    pub(crate) fn pcap(&self, id: u64) -> Option<(socklab_protocol::SessionKind, Vec<u8>)> {
        let store = self.lock_store();
        let kind = store.kind(id)?;
        Some((kind, pcap::write(&store.with_upstreams(id))))
    }
}

impl Stats {
    /// The counters now, for `/api/info`, `/metrics` and the log.
    pub fn snapshot(&self) -> CaptureStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CaptureStats {
            read: get(&self.read),
            kernel_dropped: get(&self.kernel_dropped),
            queue_dropped: get(&self.dropped),
            captured: get(&self.captured),
            unstored: get(&self.unstored),
        }
    }
}
