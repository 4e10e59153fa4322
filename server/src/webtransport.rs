//! WebTransport: B/S over UDP. The browser has no raw UDP socket either; WebTransport (HTTP/3
//! over QUIC over UDP) is its datagram path, as WebSocket is its stream path.
//!
//! * Every WebTransport session gets its **own** UDP socket to the UDP echo (or
//!   `--udp-upstream`): each datagram from the browser is sent there as one UDP datagram, each
//!   reply comes back as one datagram. Nothing is retried, reordered or buffered: what UDP
//!   loses stays lost, which is the lesson.
//! * Every bidirectional stream the browser opens gets its own TCP connection to the TCP echo
//!   (or `--upstream`), exactly like a `/ws` session: bytes go up verbatim, replies come back
//!   line by line, the unfinished line when the upstream pauses.
//! * The certificate is self-signed ECDSA P-256, valid 13 days (browsers accept
//!   `serverCertificateHashes` only for certificates valid at most 14 days), and replaced at
//!   half its life without touching open sessions (`Endpoint::reload_config`). Its SHA-256 is
//!   what `GET /api/webtransport` gives the page. `--tls-cert`/`--tls-key` use a real one.
//!
//! Sessions close with the same codes as `/ws` (as QUIC application error codes): 1001 for idle
//! and shutdown, 1011 when the upstream fails; a stream whose upstream is unreachable or fails
//! is reset with 1011.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use socklab_protocol::client_text::{
    host_without_port, origin_listed, origin_matches_authority, sanitize_tag, tag_param,
};
use socklab_protocol::{LineFramer, SessionKind, close_code};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;
use wtransport::endpoint::endpoint_side::Server;
use wtransport::endpoint::{IncomingSession, SessionRequest};
use wtransport::error::ConnectionError;
use wtransport::tls::rustls;
use wtransport::tls::self_signed::time::{Duration as CertDuration, OffsetDateTime};
use wtransport::{Connection, Endpoint, Identity, RecvStream, SendStream, ServerConfig, VarInt};

use crate::bridge::connect_upstream;
use crate::registry::{Extra, LinkGuard, Session};
use crate::shared::Shared;

/// How long the self-signed certificate is valid. Chromium refuses `serverCertificateHashes`
/// for certificates valid longer than 14 days; 13 leaves room for clock skew.
const CERT_VALIDITY_DAYS: i64 = 13;
/// The certificate starts being valid this long before it is made, for clients whose clock is
/// a little behind.
const CERT_BACKDATE: Duration = Duration::from_secs(3600);
/// The names the self-signed certificate is for.
const CERT_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];
/// QUIC keep-alive: the server pings an idle connection this often, so a peer that vanished is
/// noticed (after [`QUIC_IDLE`]) and NAT bindings stay open.
const KEEP_ALIVE: Duration = Duration::from_secs(10);
/// A QUIC connection that has heard nothing (not even an answer to a ping) this long is dead.
const QUIC_IDLE: Duration = Duration::from_secs(30);
/// Bidirectional streams served at once per session; more wait in QUIC's own flow control.
const MAX_STREAMS: usize = 16;
/// A reply datagram from the upstream is read into this; QUIC datagrams are smaller anyway
/// (about 1200 bytes, at most the path MTU), so anything larger could not be forwarded.
const UDP_BUF: usize = 4096;
/// Stream bytes read with one call.
const STREAM_CHUNK: usize = 4096;
/// Upstream reply bytes gathered before they are written to the stream.
const BATCH_BYTES: usize = 64 * 1024;
/// How long a closing stream's upstream gets for its FIN.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Errors that stop the WebTransport endpoint from starting.
#[derive(Debug, thiserror::Error)]
pub enum WtError {
    /// The UDP socket could not be bound.
    #[error(
        "cannot listen on {addr} (webtransport): {source}\n  (another socklab-server on this \
         host? give this one its own UDP port with --webtransport ADDR, or turn it off with \
         --no-webtransport)"
    )]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why not.
        #[source]
        source: io::Error,
    },
    /// `--tls-cert`/`--tls-key` could not be read or do not belong together.
    #[error("WebTransport certificate {cert} / key {key}: {why}")]
    Certificate {
        /// The certificate file.
        cert: String,
        /// The key file.
        key: String,
        /// What is wrong.
        why: String,
    },
    /// The self-signed certificate could not be made.
    #[error("cannot make the self-signed WebTransport certificate: {0}")]
    SelfSigned(String),
}

/// What the HTTP side needs to tell a page where WebTransport is and how to trust it.
#[derive(Debug)]
pub(crate) struct WtState {
    /// Where the endpoint really listens.
    pub addr: SocketAddr,
    /// Whether the certificate came from `--tls-cert` (then the URL uses the name the page
    /// was loaded with, which a real certificate is for).
    pub custom_cert: bool,
    /// SHA-256 of the current certificate's DER; replaced when the certificate is renewed.
    cert_sha256: RwLock<[u8; 32]>,
}

impl WtState {
    /// SHA-256 of the certificate now in use.
    pub fn cert_sha256(&self) -> [u8; 32] {
        *self
            .cert_sha256
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The URL a page should open. `host` is the HTTP `Host` the page was loaded with: used
    /// when the endpoint listens on every address, or has a real certificate for that name.
    pub fn url(&self, host: Option<&str>) -> String {
        let port = self.addr.port();
        let page_host = host
            .map(host_without_port)
            .filter(|h| !h.is_empty())
            .map(str::to_owned);
        let own_host = match self.addr.ip() {
            IpAddr::V6(ip) => format!("[{ip}]"),
            IpAddr::V4(ip) => ip.to_string(),
        };
        let use_page = self.custom_cert || self.addr.ip().is_unspecified();
        let host = match page_host {
            Some(h) if use_page => h,
            _ => own_host,
        };
        format!("https://{host}:{port}/")
    }
}

/// The bound WebTransport endpoint, ready to serve.
pub(crate) struct WtListener {
    endpoint: Endpoint<Server>,
    /// Shared with the HTTP side.
    pub state: Arc<WtState>,
}

impl std::fmt::Debug for WtListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WtListener")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// Makes (or loads) the certificate and binds the endpoint. Needs a tokio runtime.
pub(crate) async fn bind(
    addr: SocketAddr,
    cert: Option<(&Path, &Path)>,
) -> Result<WtListener, WtError> {
    // The socket first: a taken port is the likeliest failure (a second instance on one
    // host), and it must be reported as one, not as a certificate problem.
    let socket = bind_udp(addr).map_err(|source| WtError::Bind { addr, source })?;
    let identity = match cert {
        Some((cert, key)) => load_identity(cert, key).await?,
        None => self_signed()?,
    };
    let hash = cert_hash(&identity);
    let config = server_config(&identity, Some(socket)).map_err(|why| match cert {
        Some((c, k)) => WtError::Certificate {
            cert: c.display().to_string(),
            key: k.display().to_string(),
            why,
        },
        None => WtError::SelfSigned(why),
    })?;
    let endpoint = Endpoint::server(config).map_err(|source| WtError::Bind { addr, source })?;
    let local = endpoint.local_addr().unwrap_or(addr);
    Ok(WtListener {
        endpoint,
        state: Arc::new(WtState {
            addr: local,
            custom_cert: cert.is_some(),
            cert_sha256: RwLock::new(hash),
        }),
    })
}

async fn load_identity(cert: &Path, key: &Path) -> Result<Identity, WtError> {
    Identity::load_pemfiles(cert, key)
        .await
        .map_err(|err| WtError::Certificate {
            cert: cert.display().to_string(),
            key: key.display().to_string(),
            why: err.to_string(),
        })
}

/// A fresh self-signed ECDSA P-256 certificate for loopback, valid [`CERT_VALIDITY_DAYS`].
fn self_signed() -> Result<Identity, WtError> {
    let not_before =
        OffsetDateTime::now_utc() - CertDuration::seconds(CERT_BACKDATE.as_secs() as i64);
    Identity::self_signed_builder()
        .subject_alt_names(CERT_NAMES)
        .not_before(not_before)
        .offset_from_not_before(CertDuration::days(CERT_VALIDITY_DAYS))
        .build()
        .map_err(|err| WtError::SelfSigned(err.to_string()))
}

/// SHA-256 of the leaf certificate: what `serverCertificateHashes` compares.
fn cert_hash(identity: &Identity) -> [u8; 32] {
    identity
        .certificate_chain()
        .as_slice()
        .first()
        .map(|c| *c.hash().as_ref())
        .unwrap_or_default()
}

/// The QUIC/TLS configuration. Built here rather than with wtransport's `with_identity`, which
/// panics on a key that does not fit the certificate: a bad `--tls-key` is an error message.
/// `bind` (the bound UDP socket) is `None` for a reload, which keeps the socket it has.
fn server_config(
    identity: &Identity,
    bind: Option<std::net::UdpSocket>,
) -> Result<ServerConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = identity
        .certificate_chain()
        .as_slice()
        .iter()
        .map(|c| rustls::pki_types::CertificateDer::from(c.der().to_vec()))
        .collect();
    let key =
        rustls::pki_types::PrivateKeyDer::try_from(identity.private_key().secret_der().to_vec())
            .map_err(|err| format!("unreadable private key: {err}"))?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|err| err.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|err| err.to_string())?;
    tls.alpn_protocols = vec![wtransport::tls::WEBTRANSPORT_ALPN.to_vec()];
    let builder = ServerConfig::builder();
    let builder = match bind {
        Some(socket) => builder.with_bind_socket(socket),
        // Ignored by `reload_config(.., false)`; nothing is bound.
        None => builder.with_bind_default(0),
    };
    builder
        .with_custom_tls(tls)
        .keep_alive_interval(Some(KEEP_ALIVE))
        .max_idle_timeout(Some(QUIC_IDLE))
        .map_err(|_| "invalid QUIC idle timeout".to_owned())
        .map(|b| b.build())
}

/// The endpoint's UDP socket: IPv6 sockets v6-only, like every other listener.
fn bind_udp(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Accepts WebTransport sessions until shutdown, renewing the self-signed certificate on
/// time. Per-session errors are logged and never stop the endpoint.
pub(crate) async fn serve(listener: WtListener, shared: Arc<Shared>) {
    let WtListener { endpoint, state } = listener;
    let local = state.addr;
    let renew_every = shared
        .config
        .cert_renew_after
        .map(|s| Duration::from_secs(s.max(1)))
        .unwrap_or(Duration::from_secs(CERT_VALIDITY_DAYS as u64 * 86_400 / 2));
    let mut renew_at = (!state.custom_cert).then(|| Instant::now() + renew_every);
    tracing::info!(addr = %local, "webtransport listening");
    loop {
        let incoming = tokio::select! {
            () = shared.shutdown.cancelled() => break,
            () = sleep_until(renew_at) => {
                renew(&endpoint, &state);
                renew_at = Some(Instant::now() + renew_every);
                continue;
            }
            incoming = endpoint.accept() => incoming,
        };
        let Ok(permit) = Arc::clone(&shared.limit).try_acquire_owned() else {
            tracing::warn!(
                peer = %incoming.remote_address(),
                max = shared.config.max_connections,
                "connection limit reached: WebTransport refused"
            );
            incoming.refuse();
            continue;
        };
        let shared2 = Arc::clone(&shared);
        shared.tracker.spawn(async move {
            handle(incoming, local, shared2).await;
            drop(permit);
        });
    }
    // Sessions close themselves on the shutdown token; keep the endpoint until their close
    // frames are out.
    let grace = shared.config.shutdown_grace();
    shared.tracker.spawn(async move {
        let _ = tokio::time::timeout(grace, endpoint.wait_idle()).await;
    });
    tracing::debug!(addr = %local, "webtransport endpoint stopped");
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Replaces the self-signed certificate. Open sessions keep theirs (TLS is done); new ones
/// get the new one, whose hash `/api/webtransport` gives from now on.
fn renew(endpoint: &Endpoint<Server>, state: &WtState) {
    let identity = match self_signed() {
        Ok(identity) => identity,
        Err(err) => {
            tracing::error!(cause = %err, "certificate renewal failed; keeping the old one");
            return;
        }
    };
    let reloaded = server_config(&identity, None)
        .map_err(io::Error::other)
        .and_then(|config| endpoint.reload_config(config, false));
    match reloaded {
        Ok(()) => {
            let hash = cert_hash(&identity);
            *state
                .cert_sha256
                .write()
                .unwrap_or_else(PoisonError::into_inner) = hash;
            tracing::info!(sha256 = %hex(&hash), "webtransport certificate renewed");
        }
        Err(err) => {
            tracing::error!(cause = %err, "certificate renewal failed; keeping the old one");
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One session from the QUIC handshake to its close.
async fn handle(incoming: IncomingSession, local: SocketAddr, shared: Arc<Shared>) {
    let peer = incoming.remote_address();
    let timeout = shared.config.header_timeout();
    let request = tokio::select! {
        () = shared.shutdown.cancelled() => return,
        r = tokio::time::timeout(timeout, incoming) => match r {
            Ok(Ok(request)) => request,
            Ok(Err(err)) => {
                tracing::debug!(%peer, cause = %err, "webtransport handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "webtransport handshake timed out");
                return;
            }
        },
    };
    let (path, query) = match request.path().split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (request.path(), None),
    };
    if path != "/" {
        tracing::debug!(%peer, path, "webtransport request for an unknown path");
        request.not_found().await;
        return;
    }
    let tag = query.and_then(tag_param).map(sanitize_tag);
    if !origin_allowed(&request, &shared) {
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
        request.forbidden().await;
        return;
    }
    let connection = tokio::select! {
        () = shared.shutdown.cancelled() => return,
        c = tokio::time::timeout(timeout, request.accept()) => match c {
            Ok(Ok(connection)) => connection,
            Ok(Err(err)) => {
                tracing::debug!(%peer, cause = %err, "webtransport accept failed");
                return;
            }
            Err(_) => return,
        },
    };
    let session = shared.registry.open(
        SessionKind::Wt,
        peer,
        local,
        Extra {
            tag,
            handshake: None,
        },
    );
    run(connection, session, &shared).await;
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

/// Milliseconds since a session started, shared by its datagram loop and its streams so any
/// of them keeps the session from being idle.
struct Activity {
    started: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            started: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.started + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

type StreamTask<'a> = Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;

/// One open session: datagrams both ways, streams bridged, until the browser leaves, it is
/// idle, or the server shuts down.
async fn run(connection: Connection, mut session: Session, shared: &Shared) {
    let (udp, _link) = match connect_udp(shared, session.id()).await {
        Ok(pair) => pair,
        Err(err) => {
            let why = format!("udp upstream {} unusable: {err}", udp_upstream(shared));
            tracing::warn!(id = session.id(), "{why}");
            session.set_reason(why.clone());
            close(&connection, close_code::SERVER_ERROR, &why);
            return;
        }
    };
    let idle = shared.config.idle_timeout();
    let activity = Activity::new();
    let mut buf = vec![0u8; UDP_BUF];
    let mut streams: FuturesUnordered<StreamTask<'_>> = FuturesUnordered::new();
    let reason = loop {
        tokio::select! {
            datagram = connection.receive_datagram() => match datagram {
                Ok(datagram) => {
                    activity.touch();
                    session.received(&datagram);
                    let forwarded = udp.send(&datagram).await;
                    shared.registry.metrics().datagram_upstream(forwarded.is_ok());
                    if let Err(err) = forwarded {
                        // ICMP "port unreachable" from an earlier datagram, and the like: the
                        // datagram is lost, as UDP may lose it.
                        tracing::debug!(id = session.id(), cause = %err, "udp upstream send failed");
                    }
                }
                Err(err) => break closed_reason(&err),
            },
            received = udp.recv(&mut buf) => match received {
                Ok(n) => {
                    activity.touch();
                    let reply = &buf[..n];
                    let sent = connection.send_datagram(reply);
                    shared.registry.metrics().datagram(sent.is_ok());
                    match sent {
                        Ok(()) => session.sent(reply),
                        Err(err) => tracing::debug!(
                            id = session.id(),
                            bytes = n,
                            max = connection.max_datagram_size(),
                            cause = %err,
                            "reply not forwarded"
                        ),
                    }
                }
                Err(err) => {
                    tracing::debug!(id = session.id(), cause = %err, "udp upstream receive error");
                }
            },
            bi = connection.accept_bi(), if streams.len() < MAX_STREAMS => match bi {
                Ok((send, recv)) => {
                    activity.touch();
                    streams.push(Box::pin(bridge_stream(send, recv, &session, shared, &activity)));
                }
                Err(err) => break closed_reason(&err),
            },
            Some(()) = streams.next(), if !streams.is_empty() => {}
            () = tokio::time::sleep_until(activity.last() + idle) => {
                if activity.last() + idle <= Instant::now() {
                    let why = format!("idle for {}s", idle.as_secs());
                    close(&connection, close_code::GOING_AWAY, &why);
                    break why;
                }
            }
            () = shared.shutdown.cancelled() => {
                close(&connection, close_code::GOING_AWAY, "server shutting down");
                break "server shutting down".to_owned();
            }
        }
    };
    drop(streams);
    session.set_reason(reason);
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

/// Where datagrams go: `--udp-upstream`, or this server's first UDP echo socket.
fn udp_upstream(shared: &Shared) -> String {
    shared.config.udp_upstream.clone().unwrap_or_else(|| {
        shared
            .addrs
            .udp
            .first()
            .map(|a| a.to_string())
            .unwrap_or_else(|| format!("127.0.0.1:{}", socklab_protocol::DEFAULT_ECHO_PORT))
    })
}

/// The session's own UDP socket, connected to the upstream, linked to the session so the
/// monitor shows which UDP peer of the echo serves which browser.
async fn connect_udp(shared: &Shared, id: u64) -> io::Result<(UdpSocket, LinkGuard)> {
    let target = udp_upstream(shared);
    let addr = tokio::net::lookup_host(&target)
        .await?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address for that name"))?;
    // On loopback the source is the upstream's own address, so the echo sees exactly the
    // address the link names.
    let source = match addr.ip() {
        ip if ip.is_loopback() => ip,
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let socket = UdpSocket::bind(SocketAddr::new(source, 0)).await?;
    socket.connect(addr).await?;
    let link = shared.registry.link(socket.local_addr()?, id);
    Ok((socket, link))
}

/// One bidirectional stream bridged to its own TCP upstream connection, like a `/ws` session:
/// the browser's bytes go up verbatim, the upstream's replies come back a line at a time (the
/// unfinished line when the upstream pauses). The browser finishing its side half-closes the
/// upstream; the upstream closing finishes the stream.
async fn bridge_stream(
    mut send: SendStream,
    mut recv: RecvStream,
    session: &Session,
    shared: &Shared,
    activity: &Activity,
) {
    let id = session.id();
    let (mut upstream, _link) = match connect_upstream(shared, id).await {
        Ok(pair) => pair,
        Err(err) => {
            tracing::warn!(id, "upstream {} unreachable: {err}", shared.upstream);
            reset(&mut send, recv);
            return;
        }
    };
    let write_timeout = shared.config.write_timeout();
    let mut framer = LineFramer::new(shared.config.max_message);
    let mut buf = vec![0u8; STREAM_CHUNK];
    let mut out = Vec::new();
    let mut ends = Vec::new();
    let mut client_done = false;
    loop {
        tokio::select! {
            read = recv.read(&mut buf), if !client_done => match read {
                Ok(Some(n)) => {
                    activity.touch();
                    let data = &buf[..n];
                    session.received(data);
                    match tokio::time::timeout(write_timeout, upstream.write_all(data)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(err)) => {
                            tracing::info!(id, "upstream failed: {err}");
                            reset(&mut send, recv);
                            return;
                        }
                        Err(_) => {
                            tracing::info!(id, "upstream stopped reading");
                            reset(&mut send, recv);
                            return;
                        }
                    }
                }
                Ok(None) => {
                    // The browser finished its side: so do we, and wait for the last replies.
                    client_done = true;
                    let _ = tokio::time::timeout(CLOSE_TIMEOUT, upstream.shutdown()).await;
                }
                Err(err) => {
                    tracing::debug!(id, cause = %err, "stream closed by the client");
                    break;
                }
            },
            ready = upstream.readable() => {
                let drained = match ready {
                    Ok(()) => drain_upstream(&upstream, &mut framer, &mut out, &mut ends),
                    Err(err) => Err(err),
                };
                if !out.is_empty() {
                    activity.touch();
                    match tokio::time::timeout(write_timeout, send.write_all(&out)).await {
                        Ok(Ok(())) => {
                            let mut start = 0;
                            for &end in &ends {
                                session.sent(&out[start..end]);
                                start = end;
                            }
                        }
                        Ok(Err(err)) => {
                            tracing::debug!(id, cause = %err, "stream closed by the client");
                            break;
                        }
                        Err(_) => {
                            tracing::info!(id, "client not reading its stream");
                            let _ = send.reset(VarInt::from_u32(u32::from(close_code::GOING_AWAY)));
                            break;
                        }
                    }
                    out.clear();
                    ends.clear();
                }
                match drained {
                    Ok(false) => {}
                    Ok(true) => {
                        let _ = tokio::time::timeout(write_timeout, send.finish()).await;
                        return;
                    }
                    Err(err) => {
                        tracing::info!(id, "upstream failed: {err}");
                        reset(&mut send, recv);
                        return;
                    }
                }
            }
        }
    }
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, upstream.shutdown()).await;
}

/// Resets the stream both ways with 1011 (upstream unreachable or failed).
fn reset(send: &mut SendStream, recv: RecvStream) {
    let code = VarInt::from_u32(u32::from(close_code::SERVER_ERROR));
    let _ = send.reset(code);
    recv.stop(code);
}

/// Reads everything the upstream has ready into `out`, noting where each line ends; the
/// unfinished line goes too when the upstream paused. Returns whether the upstream closed.
fn drain_upstream(
    upstream: &TcpStream,
    framer: &mut LineFramer,
    out: &mut Vec<u8>,
    ends: &mut Vec<usize>,
) -> io::Result<bool> {
    let mut chunk = [0u8; STREAM_CHUNK];
    let mut piece = |p: &[u8]| {
        out.extend_from_slice(p);
        ends.push(out.len());
    };
    let mut batched = 0;
    loop {
        if batched >= BATCH_BYTES {
            return Ok(false);
        }
        match upstream.try_read(&mut chunk) {
            Ok(0) => {
                framer.flush(&mut piece);
                return Ok(true);
            }
            Ok(n) => {
                batched += n;
                framer.push(&chunk[..n], &mut piece);
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                framer.flush(&mut piece);
                return Ok(false);
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => {
                framer.flush(&mut piece);
                return Err(err);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_self_signed_certificate_suits_browsers() {
        let identity = self_signed().unwrap();
        let cert = &identity.certificate_chain().as_slice()[0];
        assert_eq!(cert_hash(&identity), *cert.hash().as_ref());
        // ≤ 14 days and ECDSA: what serverCertificateHashes accepts.
        let der = cert.der();
        let p256 = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
        assert!(
            der.windows(p256.len()).any(|w| w == p256),
            "not a P-256 key"
        );
        assert!(server_config(&identity, None).is_ok());
    }

    #[test]
    fn urls_name_the_endpoint() {
        let state = WtState {
            addr: "127.0.0.1:4433".parse().unwrap(),
            custom_cert: false,
            cert_sha256: RwLock::new([0; 32]),
        };
        assert_eq!(state.url(Some("example:8080")), "https://127.0.0.1:4433/");
        let any = WtState {
            addr: "[::]:4433".parse().unwrap(),
            ..state
        };
        assert_eq!(
            any.url(Some("lab.example:8080")),
            "https://lab.example:4433/"
        );
        assert_eq!(any.url(None), "https://[::]:4433/");
    }
}
