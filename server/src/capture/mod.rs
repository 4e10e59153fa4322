//! `--capture`: socklab's own TCP and UDP packets, as the kernel saw them (Linux only).
//!
//! Data path, top-down: [`socket`]'s reader thread reads an `AF_PACKET` socket whose BPF
//! filter passes only packets to or from socklab's listening ports (one copy each on
//! loopback), and queues them (a bounded queue: when it is full, packets are dropped and
//! counted, never waited for). [`matcher`]'s thread takes them apart ([`parse`]), keeps those
//! of sessions the registry knows in the bounded [`store`], and publishes `packet` events on
//! a bus of its own (only `/api/events?packets=1` subscribes). `GET /api/sessions/{id}/pcap`
//! writes a session's kept packets as a pcap file ([`pcap`]).
//!
//! Both threads are plain OS threads: the echo's tokio workers never wait for capture.
//!
//! Only [`socket`] is Linux's own (`AF_PACKET`); elsewhere its stand-in cannot open, and
//! `--capture` is refused when the flags are read (`config.rs`).

mod frame;
mod hub;
mod matcher;
mod parse;
mod pcap;
#[cfg(target_os = "linux")]
mod socket;
mod store;

use std::io;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

pub(crate) use hub::{Capture, Stats};

use crate::config::Config;
use crate::registry::Registry;

/// Packets read but not yet matched, between the two threads.
const QUEUE: usize = 8192;

/// Where there is no `AF_PACKET`: a socket that never opens.
#[cfg(not(target_os = "linux"))]
mod socket {
    use std::io;

    /// No raw socket exists here.
    pub(crate) enum Socket {}

    pub(crate) fn open(_ports: &[u16]) -> io::Result<Socket> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "packet capture needs Linux (an AF_PACKET socket)",
        ))
    }

    pub(crate) fn read_loop<Q, S, C>(socket: Socket, _queue: Q, _stats: &S, _shutdown: &C) {
        match socket {}
    }
}

impl Capture {
    /// Starts capturing if `--capture` asks for it and the process may. Without the
    /// privilege, logs one line saying how to get it and returns `None`; nothing else changes.
    pub(crate) fn start(
        config: &Config,
        ports: &[u16],
        registry: &Arc<Registry>,
        shutdown: &CancellationToken,
    ) -> Option<Arc<Capture>> {
        if !config.capture {
            return None;
        }
        let raw = match socket::open(ports) {
            Ok(raw) => raw,
            Err(err) => {
                log_refused(&err);
                return None;
            }
        };
        registry.keep_closed_addrs();
        let (packets, _) = broadcast::channel(config.monitor_buffer.max(16));
        let limits = store::Limits {
            open: config.capture_sessions,
            closed: config.capture_closed,
            head_payload: config.capture_head_payload,
            payload: config.capture_payload,
        };
        let capture = Arc::new(Capture {
            store: Mutex::new(store::Store::new(limits)),
            packets,
            payload: config.capture_payload,
            stats: Stats::default(),
        });
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let matcher = matcher::Matcher::new(Arc::clone(registry), Arc::clone(&capture));
        let (c, stop) = (Arc::clone(&capture), shutdown.clone());
        let reader = std::thread::Builder::new()
            .name("capture-read".into())
            .spawn(move || socket::read_loop(raw, tx, &c.stats, &stop));
        let stop = shutdown.clone();
        let matching = std::thread::Builder::new()
            .name("capture-match".into())
            .spawn(move || matcher.run(rx, &stop));
        if let Err(err) = reader.and(matching) {
            tracing::warn!(cause = %err, "packet capture is off: could not start its threads");
            return None;
        }
        tracing::info!(
            ?ports,
            worst_case_bytes_per_session = limits.worst_case_per_session(),
            "packet capture on: socklab's own TCP and UDP packets"
        );
        Some(capture)
    }
}

fn log_refused(err: &io::Error) {
    if err.kind() == io::ErrorKind::PermissionDenied {
        tracing::warn!(
            "packet capture is off: opening a raw socket needs root or CAP_NET_RAW \
             (`sudo setcap cap_net_raw+ep target/release/socklab-server`, then --capture); \
             everything else runs"
        );
    } else {
        tracing::warn!(cause = %err, "packet capture is off: cannot open a raw AF_PACKET socket");
    }
}
