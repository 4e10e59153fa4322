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
mod runtimes;
mod services;
mod state;
mod webtransport;
mod ws;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, UdpSocket};
use tokio::runtime::Handle;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{Cidr, Config};
pub use registry::Registry;
pub use state::Addrs;
pub use webtransport::WtError;

use net::listen::{bind_tcp, bind_tcp_group, bind_udp};
use runtimes::Runtimes;
use services::{banner, tcp_echo, udp_echo};
use state::{RuntimeLoad, Shared};

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
    /// One of the `--threads` runtimes (or its thread) could not start.
    #[error("cannot start the runtimes of --threads {threads}: {source}")]
    Runtimes {
        /// How many were asked for.
        threads: usize,
        /// Why not.
        #[source]
        source: io::Error,
    },
}

/// The bound sockets of every service, and the runtimes that will serve them, ready for
/// [`run`].
#[derive(Debug)]
pub struct Listeners {
    /// Runtime `i`'s own copy of every TCP echo, banner and HTTP listener (`SO_REUSEPORT`).
    per_runtime: Vec<RuntimeListeners>,
    udp: Vec<UdpSocket>,
    webtransport: Option<webtransport::WtListener>,
    metrics: Option<TcpListener>,
    addrs: Addrs,
    runtimes: Runtimes,
}

/// One runtime's listeners: one for each address of each service, all sharing their ports
/// with the other runtimes' copies.
#[derive(Debug, Default)]
struct RuntimeListeners {
    tcp: Vec<std::net::TcpListener>,
    banner: Vec<std::net::TcpListener>,
    http: Vec<std::net::TcpListener>,
}

impl Listeners {
    /// Where the listeners are.
    pub fn addrs(&self) -> &Addrs {
        &self.addrs
    }
}

/// Binds every listener the configuration asks for (each TCP one once per runtime, see
/// `--threads`) and starts the runtimes beyond the current one. Fails on the first address
/// that cannot be bound, naming it and its service.
pub async fn bind(config: &Config) -> Result<Listeners, ServerError> {
    let n = config.runtimes();
    let mut per_runtime: Vec<RuntimeListeners> =
        (0..n).map(|_| RuntimeListeners::default()).collect();
    let mut addrs = Addrs::default();
    for &addr in &config.tcp {
        let group = bind_tcp_group(addr, n).map_err(|e| bind_error("tcp echo", addr, e))?;
        addrs.tcp.push(group_addr(&group, addr));
        deal(group, &mut per_runtime, |r| &mut r.tcp);
    }
    let mut udp = Vec::new();
    if !config.no_udp {
        for &addr in &config.udp {
            let socket = bind_udp(addr).map_err(|source| bind_error("udp echo", addr, source))?;
            addrs.udp.push(socket.local_addr().unwrap_or(addr));
            udp.push(socket);
        }
    }
    if !config.no_banner {
        for &addr in &config.banner {
            let group = bind_tcp_group(addr, n).map_err(|e| bind_error("banner", addr, e))?;
            addrs.banner.push(group_addr(&group, addr));
            deal(group, &mut per_runtime, |r| &mut r.banner);
        }
    }
    for &addr in &config.http {
        let group = bind_tcp_group(addr, n).map_err(|e| bind_error("http", addr, e))?;
        addrs.http.push(group_addr(&group, addr));
        deal(group, &mut per_runtime, |r| &mut r.http);
    }
    let mut metrics = None;
    if let Some(addr) = config.metrics {
        let listener = bind_tcp(addr).map_err(|source| bind_error("metrics", addr, source))?;
        addrs.metrics = Some(local_addr(&listener, addr));
        metrics = Some(listener);
    }
    let mut wt = None;
    if !config.no_webtransport {
        let cert = config.tls_cert.as_deref().zip(config.tls_key.as_deref());
        let bound = webtransport::bind(config.webtransport, cert).await?;
        addrs.webtransport = Some(bound.state.addr);
        wt = Some(bound);
    }
    let runtimes =
        Runtimes::start(n - 1).map_err(|source| ServerError::Runtimes { threads: n, source })?;
    Ok(Listeners {
        per_runtime,
        udp,
        webtransport: wt,
        metrics,
        addrs,
        runtimes,
    })
}

/// Gives runtime `i` the `i`-th copy of a listener group.
fn deal(
    group: Vec<std::net::TcpListener>,
    per_runtime: &mut [RuntimeListeners],
    service: impl Fn(&mut RuntimeListeners) -> &mut Vec<std::net::TcpListener>,
) {
    for (listener, runtime) in group.into_iter().zip(per_runtime.iter_mut()) {
        service(runtime).push(listener);
    }
}

/// Where a listener group really listens (the port the OS chose for port 0).
fn group_addr(group: &[std::net::TcpListener], asked: SocketAddr) -> SocketAddr {
    group
        .first()
        .and_then(|l| l.local_addr().ok())
        .unwrap_or(asked)
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
    runtimes: Runtimes,
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
        self.runtimes.end().await;
        tracing::info!(closed = open, "socklab stopped");
    }

    /// Connections (TCP echo, banner, HTTP) each runtime has accepted so far, by runtime
    /// (`--threads`): how the kernel spread them.
    pub fn accepted_per_runtime(&self) -> Vec<u64> {
        self.shared.runtimes.accepted()
    }
}

/// Binds nothing: starts every service on already-bound `listeners` in the background.
/// Cancelling `shutdown` (or calling [`RunningServer::stop`]) stops it.
pub fn spawn(config: Config, listeners: Listeners, shutdown: CancellationToken) -> RunningServer {
    let addrs = listeners.addrs.clone();
    let config = with_instance(config, &addrs);
    let shared = Arc::new(shared_handles(config, &listeners, shutdown));
    let mut runtimes = listeners.runtimes;
    runtimes.adopt();
    let mut tasks = serve_on_runtimes(&runtimes, listeners.per_runtime, &shared);
    serve_udp(listeners.udp, &shared);
    if let Some(wt) = listeners.webtransport {
        tasks.push(tokio::spawn(webtransport::serve(wt, Arc::clone(&shared))));
    }
    serve_metrics(listeners.metrics, &shared, &mut tasks);
    RunningServer {
        addrs,
        registry: Arc::clone(&shared.registry),
        shared,
        listeners: tasks,
        runtimes,
    }
}

/// The configuration with this instance's name for `--monitor-redis`: `--instance`, else one
/// made from the HTTP addresses.
fn with_instance(mut config: Config, addrs: &Addrs) -> Config {
    if config.monitor_redis.is_some() && config.instance.is_none() {
        config.instance = Some(cluster::default_instance(&addrs.http));
    }
    config
}

/// The handles every task shares, starting the cluster and the capture when asked for.
fn shared_handles(config: Config, listeners: &Listeners, shutdown: CancellationToken) -> Shared {
    let addrs = &listeners.addrs;
    let registry = Registry::new(config.monitor_buffer, config.instance.clone());
    let tracker = TaskTracker::new();
    let cluster = start_cluster(&config, &registry, &shutdown, &tracker);
    let upstream = bridge_upstream(&config, addrs);
    let capture = capture::Capture::start(&config, &addrs.ports(), &registry, &shutdown);
    Shared {
        capture,
        limit: Arc::new(Semaphore::new(config.max_connections)),
        config,
        registry,
        shutdown,
        tracker,
        addrs: addrs.clone(),
        upstream,
        cluster,
        webtransport: listeners
            .webtransport
            .as_ref()
            .map(|w| Arc::clone(&w.state)),
        runtimes: RuntimeLoad::new(listeners.per_runtime.len()),
    }
}

/// With `--monitor-redis`: the cluster, its publisher and subscriber started on `tracker`.
fn start_cluster(
    config: &Config,
    registry: &Arc<Registry>,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
) -> Option<Arc<cluster::Cluster>> {
    config.monitor_redis.as_deref().map(|url| {
        let limits = cluster::Limits::from_config(config);
        cluster::Cluster::start(
            url,
            registry,
            config.monitor_buffer,
            limits,
            shutdown,
            tracker,
        )
    })
}

/// Where the bridge connects: `--upstream`, else the first TCP echo, else the default port.
fn bridge_upstream(config: &Config, addrs: &Addrs) -> String {
    config.upstream.clone().unwrap_or_else(|| {
        addrs
            .tcp
            .first()
            .map(|a| a.to_string())
            .unwrap_or_else(|| format!("127.0.0.1:{}", socklab_protocol::DEFAULT_ECHO_PORT))
    })
}

/// Starts every runtime's accept loops on it, all answering with the one route table.
fn serve_on_runtimes(
    runtimes: &Runtimes,
    per_runtime: Vec<RuntimeListeners>,
    shared: &Arc<Shared>,
) -> Vec<JoinHandle<()>> {
    let app = app::app(Arc::clone(shared));
    let mut tasks = Vec::new();
    for (i, own) in per_runtime.into_iter().enumerate() {
        tasks.extend(serve_on(&runtimes.handle(i), own, &app, shared));
    }
    tasks
}

/// Starts each UDP echo socket's task.
fn serve_udp(sockets: Vec<UdpSocket>, shared: &Arc<Shared>) {
    for s in sockets {
        // Tracked, not a listener: it owns the UDP peers' sessions and closes them itself.
        let shared2 = Arc::clone(shared);
        shared.tracker.spawn(udp_echo::serve(s, shared2));
    }
}

/// Starts the metrics' upkeep and, with `--metrics`, their own listener.
fn serve_metrics(
    listener: Option<TcpListener>,
    shared: &Arc<Shared>,
    tasks: &mut Vec<JoinHandle<()>>,
) {
    tasks.push(tokio::spawn(http::metrics::upkeep(Arc::clone(shared))));
    if let Some(l) = listener {
        let app = app::metrics_app(Arc::clone(shared));
        tasks.push(tokio::spawn(http::serve::serve(l, app, Arc::clone(shared))));
    }
}

/// Starts one runtime's accept loops on it: every connection they accept is served there.
fn serve_on(
    runtime: &Handle,
    own: RuntimeListeners,
    app: &axum::Router,
    shared: &Arc<Shared>,
) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    for l in own.tcp {
        let shared = Arc::clone(shared);
        tasks.push(runtime.spawn(async move {
            if let Some(l) = registered(l, "tcp echo") {
                tcp_echo::serve(l, shared).await;
            }
        }));
    }
    for l in own.banner {
        let shared = Arc::clone(shared);
        tasks.push(runtime.spawn(async move {
            if let Some(l) = registered(l, "banner") {
                banner::serve(l, shared).await;
            }
        }));
    }
    for l in own.http {
        let (app, shared) = (app.clone(), Arc::clone(shared));
        tasks.push(runtime.spawn(async move {
            if let Some(l) = registered(l, "http") {
                http::serve::serve(l, app, shared).await;
            }
        }));
    }
    tasks
}

/// A listener handed to the runtime it runs on, registered with that runtime's reactor.
fn registered(listener: std::net::TcpListener, service: &'static str) -> Option<TcpListener> {
    let addr = listener.local_addr().ok();
    match TcpListener::from_std(listener) {
        Ok(l) => Some(l),
        Err(err) => {
            // Not expected: the reactor refused a socket it was handed (out of memory).
            tracing::error!(service, ?addr, cause = %err, "cannot serve a listener on this runtime");
            None
        }
    }
}

/// Binds and starts a server in the background: the one-call form tests use.
pub async fn start(config: Config) -> Result<RunningServer, ServerError> {
    let listeners = bind(&config).await?;
    Ok(spawn(config, listeners, CancellationToken::new()))
}
