//! The connectionless side of the lesson: every datagram is answered with one stamped
//! datagram. UDP has no sessions; for the monitor, a peer address counts as one session until
//! it has been silent for `--udp-idle` seconds.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

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

/// Answers datagrams until shutdown.
pub async fn serve(socket: UdpSocket, shared: Arc<Shared>) {
    let local = socket
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let idle = shared.config.udp_idle();
    let drop_percent = shared.config.udp_drop.min(100.0);
    // Peers tracked for the monitor, bounded like connections so spoofed sources cannot grow
    // it without limit (datagrams from untracked peers are still answered).
    let max_peers = shared.config.max_connections;
    let mut peers: HashMap<SocketAddr, Peer> = HashMap::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut out = Vec::with_capacity(MAX_DATAGRAM + socklab_protocol::STAMP_LEN);
    let mut sweep = tokio::time::interval(idle.min(std::time::Duration::from_secs(5)));
    loop {
        let (n, peer) = tokio::select! {
            () = shared.shutdown.cancelled() => break,
            _ = sweep.tick() => {
                let now = Instant::now();
                peers.retain(|_, p| {
                    let keep = now.duration_since(p.last_seen) < idle;
                    if !keep {
                        p.session.set_reason("idle");
                    }
                    keep
                });
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
        if !peers.contains_key(&peer) && peers.len() < max_peers {
            let session = shared
                .registry
                .open(SessionKind::Udp, peer, local, Extra::default());
            peers.insert(
                peer,
                Peer {
                    session,
                    last_seen: Instant::now(),
                },
            );
        }
        let mut tracked = peers.get_mut(&peer);
        if let Some(p) = tracked.as_mut() {
            p.session.received(data);
            p.last_seen = Instant::now();
        }
        if drop_percent > 0.0 && fastrand::f64() * 100.0 < drop_percent {
            tracing::debug!(%peer, bytes = n, "datagram dropped on purpose (--udp-drop)");
            continue;
        }
        out.clear();
        stamp_into(&mut out, &stamp_now(), data);
        let max_reply = if peer.is_ipv4() {
            MAX_UDP_V4
        } else {
            MAX_UDP_V6
        };
        if out.len() > max_reply {
            tracing::warn!(
                %peer,
                bytes = n,
                "reply (stamp + payload) would not fit in one datagram: not sent"
            );
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
    for p in peers.values_mut() {
        p.session.set_reason("server shutting down");
    }
}
