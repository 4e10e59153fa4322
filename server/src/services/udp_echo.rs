//! The connectionless side of the lesson: every datagram is answered with one stamped
//! datagram. UDP has no sessions; for the monitor, a peer address counts as one session until
//! it has been silent for `--udp-idle` seconds.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use socklab_protocol::SessionKind;
use socklab_protocol::framing::stamp_into;
use tokio::net::UdpSocket;

use crate::clock::stamp_now;
use crate::registry::{Extra, Session};
use crate::state::Shared;

/// Largest datagram we can receive: the largest UDP payload over IPv6 (65527) rounded up.
const MAX_DATAGRAM: usize = 65536;

/// The largest UDP payload over IPv4 (65535 - 20 IP - 8 UDP) and over IPv6 (65535 - 8).
const MAX_UDP_V4: usize = 65_507;
const MAX_UDP_V6: usize = 65_527;

/// One peer as the monitor sees it.
struct Peer {
    session: Session,
    last_seen: Instant,
}

/// The peers tracked for the monitor, bounded like connections so spoofed sources cannot grow
/// the map without limit (datagrams from untracked peers are still answered).
struct Peers {
    map: HashMap<SocketAddr, Peer>,
    max: usize,
    local: SocketAddr,
}

impl Peers {
    /// Counts a datagram from `peer`, whose session opens with its first one (when there is
    /// room); the peer, if it is tracked.
    fn received(&mut self, peer: SocketAddr, data: &[u8], shared: &Shared) -> Option<&mut Peer> {
        if !self.map.contains_key(&peer) && self.map.len() < self.max {
            let session =
                shared
                    .registry
                    .open(SessionKind::Udp, peer, self.local, Extra::default());
            let last_seen = Instant::now();
            self.map.insert(peer, Peer { session, last_seen });
        }
        let tracked = self.map.get_mut(&peer)?;
        tracked.session.received(data);
        tracked.last_seen = Instant::now();
        Some(tracked)
    }

    /// Closes the sessions of peers silent for `idle`.
    fn sweep(&mut self, idle: Duration) {
        let now = Instant::now();
        self.map.retain(|_, p| {
            let keep = now.duration_since(p.last_seen) < idle;
            if !keep {
                p.session.set_reason("idle");
            }
            keep
        });
    }
}

/// Answers datagrams until shutdown.
pub async fn serve(socket: UdpSocket, shared: Arc<Shared>) {
    let local = socket
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let idle = shared.config.udp_idle();
    let drop_percent = shared.config.udp_drop.min(100.0);
    let max = shared.config.max_connections;
    let mut peers = Peers {
        map: HashMap::new(),
        max,
        local,
    };
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut out = Vec::with_capacity(MAX_DATAGRAM + socklab_protocol::STAMP_LEN);
    let mut sweep = tokio::time::interval(idle.min(Duration::from_secs(5)));
    loop {
        let (n, peer) = tokio::select! {
            () = shared.shutdown.cancelled() => break,
            _ = sweep.tick() => {
                peers.sweep(idle);
                continue;
            }
            received = socket.recv_from(&mut buf) => match received {
                Ok(pair) => pair,
                Err(err) => {
                    // Linux reports an earlier reply's ICMP "port unreachable" here; it
                    // concerns one peer, not the socket.
                    tracing::debug!(addr = %local, cause = %err, "udp receive error");
                    continue;
                }
            },
        };
        let data = &buf[..n];
        let tracked = peers.received(peer, data, &shared);
        if drop_percent > 0.0 && fastrand::f64() * 100.0 < drop_percent {
            tracing::debug!(%peer, bytes = n, "datagram dropped on purpose (--udp-drop)");
            continue;
        }
        if !stamp_reply(&mut out, data, peer) {
            continue;
        }
        match socket.send_to(&out, peer).await {
            Ok(_) => {
                if let Some(p) = tracked {
                    p.session.sent(&out);
                }
            }
            Err(err) => tracing::warn!(%peer, cause = %err, "udp send failed"),
        }
    }
    for p in peers.map.values_mut() {
        p.session.set_reason("server shutting down");
    }
}

/// The stamped reply to `data` into `out`; `false` (and a warning) when it would not fit in
/// one datagram to `peer`.
fn stamp_reply(out: &mut Vec<u8>, data: &[u8], peer: SocketAddr) -> bool {
    out.clear();
    stamp_into(out, &stamp_now(), data);
    let max_reply = if peer.is_ipv4() {
        MAX_UDP_V4
    } else {
        MAX_UDP_V6
    };
    if out.len() > max_reply {
        tracing::warn!(
            %peer,
            bytes = data.len(),
            "reply (stamp + payload) would not fit in one datagram: not sent"
        );
        return false;
    }
    true
}
