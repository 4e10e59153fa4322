//! socklab-server: the lesson's network services, a WebSocket bridge for the browser, a live
//! monitor feed and the page, in one tokio process.
//!
//! # Layout
//! In layers, each importing only from its own layer or below (see ARCHITECTURE.md at the
//! repository root for the data paths and where each kind of change goes):
//! * this file and `app` (the route table) — wiring: [`bind`], [`spawn`], [`run`].
//! * `ws` (`/ws` bridge, `/api/events` monitor, WebSocket helpers and liveness) and
//!   `webtransport` (endpoint, certificate, session, stream) — the browser's endpoints.
//! * `services` (`tcp_echo`, `udp_echo`, `banner`) — the lesson's services; `http` — serving
//!   HTTP, the Origin rule and `X-Forwarded-For` (`access`), the JSON APIs, `/metrics`, a
//!   session's pcap, the page's files.
//! * `net` — binding and the accept loop, `read_now`, the bridge's upstream connections, the
//!   PROXY protocol header.
//! * `state` — `Shared`: handles only (config, registry, limit, shutdown, tracker, cluster,
//!   capture), and [`Addrs`].
//! * `cluster` — `--monitor-redis`: one monitor for several instances through Redis pub/sub;
//!   `capture` — `--capture`: socklab's own packets from an `AF_PACKET` socket, kept per
//!   session for `/api/sessions/{id}/pcap` and the monitor's `packet` events.
//! * [`registry`] — one session model for every kind: ids, byte counts, the monitor bus.
//! * [`config`] (every flag, into [`Config`]), `clock`, [`shutdown`] (Ctrl-C / SIGTERM),
//!   `metrics` (the Prometheus counters, read at scrape time).
//!
//! The line framing and stamping live in `socklab-protocol`, shared with the page.
//!
//! # Use
//! The caller binds ([`bind`]) and chooses the shutdown trigger, so tests bind port 0 and stop
//! the server when they like:
//! ```no_run
//! # async fn demo() -> Result<(), socklab_server::ServerError> {
//! let config = socklab_server::Config::for_tests();
//! let listeners = socklab_server::bind(&config).await?;
//! println!("echo on {}", listeners.addrs().tcp[0]);
//! socklab_server::run(config, listeners, socklab_server::shutdown::signal()).await
//! # }
//! ```

pub mod config;
pub mod registry;
pub mod shutdown;

mod app;
mod capture;
mod clock;
mod cluster;
mod http;
mod metrics;
mod net;
mod services;
mod state;
mod webtransport;
mod ws;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{Cidr, Config};
pub use registry::Registry;
pub use state::Addrs;
pub use webtransport::WtError;

use net::listen::{bind_tcp, bind_udp};
use services::{banner, tcp_echo, udp_echo};
use state::Shared;

/// Errors that stop the server from starting.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A listener could not be opened.
    #[error("cannot listen on {addr} ({service}): {source}")]
    Bind {
        /// The service the address was for.
        service: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// Why not (address in use, permission denied, …).
        #[source]
        source: io::Error,
    },
    /// The WebTransport endpoint could not start (its socket or its certificate).
    #[error(transparent)]
    WebTransport(#[from] WtError),
}

/// The bound sockets of every service, ready for [`run`].
#[derive(Debug)]
pub struct Listeners {
    tcp: Vec<TcpListener>,
    udp: Vec<UdpSocket>,
    banner: Vec<TcpListener>,
    http: Vec<TcpListener>,
    webtransport: Option<webtransport::WtListener>,
    metrics: Option<TcpListener>,
    addrs: Addrs,
}

impl Listeners {
    /// Where the listeners are.
    pub fn addrs(&self) -> &Addrs {
        &self.addrs
    }
}

/// Binds every listener the configuration asks for. Fails on the first address that cannot be
/// bound, naming it and its service.
pub async fn bind(config: &Config) -> Result<Listeners, ServerError> {
    let mut l = Listeners {
        tcp: Vec::new(),
        udp: Vec::new(),
        banner: Vec::new(),
        http: Vec::new(),
        webtransport: None,
        metrics: None,
        addrs: Addrs::default(),
    };
    for &addr in &config.tcp {
        let listener = bind_tcp(addr).map_err(|source| bind_error("tcp echo", addr, source))?;
        l.addrs.tcp.push(local_addr(&listener, addr));
        l.tcp.push(listener);
    }
    if !config.no_udp {
        for &addr in &config.udp {
            let socket = bind_udp(addr).map_err(|source| bind_error("udp echo", addr, source))?;
            l.addrs.udp.push(socket.local_addr().unwrap_or(addr));
            l.udp.push(socket);
        }
    }
    if !config.no_banner {
        for &addr in &config.banner {
            let listener = bind_tcp(addr).map_err(|source| bind_error("banner", addr, source))?;
            l.addrs.banner.push(local_addr(&listener, addr));
            l.banner.push(listener);
        }
    }
    for &addr in &config.http {
        let listener = bind_tcp(addr).map_err(|source| bind_error("http", addr, source))?;
        l.addrs.http.push(local_addr(&listener, addr));
        l.http.push(listener);
    }
    if let Some(addr) = config.metrics {
        let listener = bind_tcp(addr).map_err(|source| bind_error("metrics", addr, source))?;
        l.addrs.metrics = Some(local_addr(&listener, addr));
        l.metrics = Some(listener);
    }
    if !config.no_webtransport {
        let cert = config.tls_cert.as_deref().zip(config.tls_key.as_deref());
        let wt = webtransport::bind(config.webtransport, cert).await?;
        l.addrs.webtransport = Some(wt.state.addr);
        l.webtransport = Some(wt);
    }
    Ok(l)
}

fn bind_error(service: &'static str, addr: SocketAddr, source: io::Error) -> ServerError {
    ServerError::Bind {
        service,
        addr,
        source,
    }
}

fn local_addr(listener: &TcpListener, asked: SocketAddr) -> SocketAddr {
    listener.local_addr().unwrap_or(asked)
}

/// Serves every service on `listeners` until `shutdown` resolves, then stops accepting,
/// closes every session cleanly (WebSocket close 1001) and returns within
/// `--shutdown-grace` seconds.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    let token = CancellationToken::new();
    let server = spawn(config, listeners, token.clone());
    shutdown.await;
    server.stop().await;
    Ok(())
}

/// A server running in the background, as tests use it.
#[derive(Debug)]
pub struct RunningServer {
    /// Where it listens.
    pub addrs: Addrs,
    /// Its registry (sessions, monitor bus).
    pub registry: Arc<Registry>,
    shared: Arc<Shared>,
    listeners: Vec<JoinHandle<()>>,
}

impl RunningServer {
    /// Asks every task to stop and waits (at most the grace period) for sessions to close.
    pub async fn stop(self) {
        let shared = self.shared;
        shared.shutdown.cancel();
        for l in self.listeners {
            let _ = l.await;
        }
        shared.tracker.close();
        let open = shared.registry.len();
        if tokio::time::timeout(shared.config.shutdown_grace(), shared.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                open = shared.registry.len(),
                "sessions still open after the grace period; cutting them"
            );
        }
        tracing::info!(closed = open, "socklab stopped");
    }
}

/// Binds nothing: starts every service on already-bound `listeners` in the background.
/// Cancelling `shutdown` (or calling [`RunningServer::stop`]) stops it.
pub fn spawn(config: Config, listeners: Listeners, shutdown: CancellationToken) -> RunningServer {
    let addrs = listeners.addrs.clone();
    let mut config = config;
    if config.monitor_redis.is_some() && config.instance.is_none() {
        config.instance = Some(cluster::default_instance(&addrs.http));
    }
    let registry = Registry::new(config.monitor_buffer, config.instance.clone());
    let tracker = TaskTracker::new();
    let cluster = config.monitor_redis.as_deref().map(|url| {
        let limits = cluster::Limits::from_config(&config);
        cluster::Cluster::start(
            url,
            &registry,
            config.monitor_buffer,
            limits,
            &shutdown,
            &tracker,
        )
    });
    let upstream = config.upstream.clone().unwrap_or_else(|| {
        addrs
            .tcp
            .first()
            .map(|a| a.to_string())
            .unwrap_or_else(|| format!("127.0.0.1:{}", socklab_protocol::DEFAULT_ECHO_PORT))
    });
    let capture = capture::Capture::start(&config, &addrs.ports(), &registry, &shutdown);
    let shared = Arc::new(Shared {
        capture,
        limit: Arc::new(Semaphore::new(config.max_connections)),
        config,
        registry: Arc::clone(&registry),
        shutdown,
        tracker,
        addrs: addrs.clone(),
        upstream,
        cluster,
        webtransport: listeners
            .webtransport
            .as_ref()
            .map(|w| Arc::clone(&w.state)),
    });
    let mut tasks = Vec::new();
    for l in listeners.tcp {
        tasks.push(tokio::spawn(tcp_echo::serve(l, Arc::clone(&shared))));
    }
    for s in listeners.udp {
        // Tracked, not a listener: it owns the UDP peers' sessions and closes them itself.
        let shared2 = Arc::clone(&shared);
        shared.tracker.spawn(udp_echo::serve(s, shared2));
    }
    for l in listeners.banner {
        tasks.push(tokio::spawn(banner::serve(l, Arc::clone(&shared))));
    }
    if let Some(wt) = listeners.webtransport {
        tasks.push(tokio::spawn(webtransport::serve(wt, Arc::clone(&shared))));
    }
    tasks.push(tokio::spawn(http::metrics::upkeep(Arc::clone(&shared))));
    if let Some(l) = listeners.metrics {
        let app = app::metrics_app(Arc::clone(&shared));
        tasks.push(tokio::spawn(http::serve::serve(
            l,
            app,
            Arc::clone(&shared),
        )));
    }
    let app = app::app(Arc::clone(&shared));
    for l in listeners.http {
        tasks.push(tokio::spawn(http::serve::serve(
            l,
            app.clone(),
            Arc::clone(&shared),
        )));
    }
    RunningServer {
        addrs,
        registry,
        shared,
        listeners: tasks,
    }
}

/// Binds and starts a server in the background: the one-call form tests use.
pub async fn start(config: Config) -> Result<RunningServer, ServerError> {
    let listeners = bind(&config).await?;
    Ok(spawn(config, listeners, CancellationToken::new()))
}
