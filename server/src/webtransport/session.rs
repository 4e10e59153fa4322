//! One WebTransport session: the handshake (path, Origin rule, `?tag=`), then datagrams both
//! ways through the session's own UDP socket and every bidirectional stream bridged
//! (`stream.rs`), until the browser leaves, it is idle, or the server shuts down.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use socklab_protocol::client_text::{origin_listed, origin_matches_authority};
use socklab_protocol::{SessionKind, close_code};
use tokio::net::UdpSocket;
use tokio::time::Instant;
use wtransport::endpoint::{IncomingSession, SessionRequest};
use wtransport::error::ConnectionError;
use wtransport::{Connection, VarInt};

use super::stream::{Activity, bridge_stream};
use crate::http::access::BridgeQuery;
use crate::net::upstream::{connect_udp, udp_upstream};
use crate::registry::{Extra, LinkGuard, Session};
use crate::state::Shared;

/// Bidirectional streams served at once per session; more wait in QUIC's own flow control.
const MAX_STREAMS: usize = 16;
/// A reply datagram from the upstream is read into this; QUIC datagrams are smaller anyway
/// (about 1200 bytes, at most the path MTU), so anything larger could not be forwarded.
const UDP_BUF: usize = 4096;
/// One session from the QUIC handshake to its close.
pub async fn handle(incoming: IncomingSession, local: SocketAddr, shared: Arc<Shared>) {
    let peer = incoming.remote_address();
    let Some(request) = receive(incoming, peer, &shared).await else {
        return;
    };
    let tag = match admit(&request, peer, &shared) {
        Ok(tag) => tag,
        Err(Refused::UnknownPath) => return request.not_found().await,
        Err(Refused::ForeignOrigin) => return request.forbidden().await,
    };
    let Some(connection) = accept(request, peer, &shared).await else {
        return;
    };
    let extra = Extra {
        tag,
        handshake: None,
    };
    let session = shared.registry.open(SessionKind::Wt, peer, local, extra);
    run(connection, session, &shared).await;
}

/// The session's request, within the header timeout; `None` when the handshake failed, timed
/// out, or the server is shutting down.
async fn receive(
    incoming: IncomingSession,
    peer: SocketAddr,
    shared: &Shared,
) -> Option<SessionRequest> {
    let timeout = shared.config.header_timeout();
    tokio::select! {
        () = shared.shutdown.cancelled() => None,
        r = tokio::time::timeout(timeout, incoming) => match r {
            Ok(Ok(request)) => Some(request),
            Ok(Err(err)) => {
                tracing::debug!(%peer, cause = %err, "webtransport handshake failed");
                None
            }
            Err(_) => {
                tracing::debug!(%peer, "webtransport handshake timed out");
                None
            }
        },
    }
}

/// Why a session request is refused.
enum Refused {
    /// A path other than `/`: 404.
    UnknownPath,
    /// An Origin `/ws` would refuse too: 403 (logged and counted in [`admit`]).
    ForeignOrigin,
}

/// The request's `?tag=` (if any) when its path and Origin are allowed.
fn admit(
    request: &SessionRequest,
    peer: SocketAddr,
    shared: &Shared,
) -> Result<Option<String>, Refused> {
    let path = request
        .path()
        .split_once('?')
        .map_or(request.path(), |(p, _)| p);
    if path != "/" {
        tracing::debug!(%peer, path, "webtransport request for an unknown path");
        return Err(Refused::UnknownPath);
    }
    // Read as `/ws` reads it. A query `/ws` would refuse (400) costs only the tag here: a
    // WebTransport session can be refused with 403, 404 or 429, none of which would say why.
    let tag = BridgeQuery::from_target(request.path())
        .inspect_err(|why| tracing::debug!(%peer, why, "webtransport ?tag= not read"))
        .ok()
        .and_then(|q| q.tag());
    if !origin_allowed(request, shared) {
        tracing::warn!(
            %peer,
            origin = request.origin().unwrap_or(""),
            authority = request.authority(),
            "WebTransport session refused: foreign Origin"
        );
        shared
            .registry
            .metrics()
            .refused(crate::metrics::Refusal::Origin, "webtransport");
        return Err(Refused::ForeignOrigin);
    }
    Ok(tag)
}

/// The accepted session's connection, within the header timeout; `None` when accepting failed,
/// timed out, or the server is shutting down.
async fn accept(request: SessionRequest, peer: SocketAddr, shared: &Shared) -> Option<Connection> {
    let timeout = shared.config.header_timeout();
    tokio::select! {
        () = shared.shutdown.cancelled() => None,
        c = tokio::time::timeout(timeout, request.accept()) => match c {
            Ok(Ok(connection)) => Some(connection),
            Ok(Err(err)) => {
                tracing::debug!(%peer, cause = %err, "webtransport accept failed");
                None
            }
            Err(_) => None,
        },
    }
}

/// The Origin rule of `/ws`, for WebTransport: a browser session may come only from a page this
/// server served (scheme http/https, the host the client used to reach us, one of our HTTP
/// ports) or from an `--allow-origin` one. No Origin (non-browser tools): allowed.
fn origin_allowed(request: &SessionRequest, shared: &Shared) -> bool {
    let Some(origin) = request.origin() else {
        return true;
    };
    let origin = origin.trim_end_matches('/');
    if origin_listed(origin, &shared.config.allow_origin) {
        return true;
    }
    let ports: Vec<u16> = shared.addrs.http.iter().map(SocketAddr::port).collect();
    origin_matches_authority(origin, request.authority(), &ports)
}

type StreamTask<'a> = Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;

/// One open session: datagrams both ways, streams bridged, until the browser leaves, it is
/// idle, or the server shuts down.
async fn run(connection: Connection, mut session: Session, shared: &Shared) {
    let Some((udp, _link)) = open_udp(&connection, &mut session, shared).await else {
        return;
    };
    let reason = relay(&connection, &udp, &session, shared).await;
    session.set_reason(reason);
}

/// The session's own UDP socket to the upstream, and its link; when there is none to be had,
/// the session is closed with 1011 and why.
async fn open_udp(
    connection: &Connection,
    session: &mut Session,
    shared: &Shared,
) -> Option<(UdpSocket, LinkGuard)> {
    match connect_udp(shared, session.id()).await {
        Ok(pair) => Some(pair),
        Err(err) => {
            let why = format!("udp upstream {} unusable: {err}", udp_upstream(shared));
            tracing::warn!(id = session.id(), "{why}");
            session.set_reason(why.clone());
            close(connection, close_code::SERVER_ERROR, &why);
            None
        }
    }
}

/// Datagrams both ways and every stream bridged, until the session ends; why it ended.
async fn relay(
    connection: &Connection,
    udp: &UdpSocket,
    session: &Session,
    shared: &Shared,
) -> String {
    let idle = shared.config.idle_timeout();
    let activity = Activity::new();
    let mut buf = vec![0u8; UDP_BUF];
    let mut streams: FuturesUnordered<StreamTask<'_>> = FuturesUnordered::new();
    loop {
        tokio::select! {
            datagram = connection.receive_datagram() => match datagram {
                Ok(datagram) => {
                    activity.touch();
                    datagram_up(&datagram, udp, session, shared).await;
                }
                Err(err) => break closed_reason(&err),
            },
            received = udp.recv(&mut buf) => match received {
                Ok(n) => {
                    activity.touch();
                    datagram_down(&buf[..n], connection, session, shared);
                }
                Err(err) => {
                    tracing::debug!(id = session.id(), cause = %err, "udp upstream receive error");
                }
            },
            bi = connection.accept_bi(), if streams.len() < MAX_STREAMS => match bi {
                Ok((send, recv)) => {
                    activity.touch();
                    streams.push(Box::pin(bridge_stream(send, recv, session, shared, &activity)));
                }
                Err(err) => break closed_reason(&err),
            },
            Some(()) = streams.next(), if !streams.is_empty() => {}
            () = tokio::time::sleep_until(activity.last() + idle) => {
                if activity.last() + idle <= Instant::now() {
                    let why = format!("idle for {}s", idle.as_secs());
                    close(connection, close_code::GOING_AWAY, &why);
                    break why;
                }
            }
            () = shared.shutdown.cancelled() => {
                close(connection, close_code::GOING_AWAY, "server shutting down");
                break "server shutting down".to_owned();
            }
        }
    }
}

/// A datagram from the browser, sent upstream as one UDP datagram.
async fn datagram_up(datagram: &[u8], udp: &UdpSocket, session: &Session, shared: &Shared) {
    session.received(datagram);
    let forwarded = udp.send(datagram).await;
    shared
        .registry
        .metrics()
        .datagram_upstream(forwarded.is_ok());
    if let Err(err) = forwarded {
        // ICMP "port unreachable" from an earlier datagram, and the like: the
        // datagram is lost, as UDP may lose it.
        tracing::debug!(id = session.id(), cause = %err, "udp upstream send failed");
    }
}

/// A reply from the upstream, sent to the browser as one datagram if it fits in one.
fn datagram_down(reply: &[u8], connection: &Connection, session: &Session, shared: &Shared) {
    let sent = connection.send_datagram(reply);
    shared.registry.metrics().datagram(sent.is_ok());
    match sent {
        Ok(()) => session.sent(reply),
        Err(err) => tracing::debug!(
            id = session.id(),
            bytes = reply.len(),
            max = connection.max_datagram_size(),
            cause = %err,
            "reply not forwarded"
        ),
    }
}

/// Closes the session with a `/ws`-style code and reason.
fn close(connection: &Connection, code: u16, reason: &str) {
    connection.close(VarInt::from_u32(u32::from(code)), reason.as_bytes());
}

/// Why a session ended, in words, from the error its connection reported.
fn closed_reason(err: &ConnectionError) -> String {
    match err {
        ConnectionError::ApplicationClosed(_) | ConnectionError::ConnectionClosed(_) => {
            "client closed".to_owned()
        }
        ConnectionError::TimedOut => "client stopped answering (QUIC idle timeout)".to_owned(),
        ConnectionError::LocallyClosed => "closed".to_owned(),
        other => format!("client error: {other}"),
    }
}
