//! What every task of one server shares: handles only (the configuration, the session
//! registry, the one connection limit, the one shutdown token, the task tracker), the
//! addresses the listeners really got, and which runtime accepted how many connections.

use std::cell::Cell;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use socklab_protocol::client_text::host_without_port;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::capture::Capture;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::registry::Registry;

/// Where each service really listens (after binding, so port 0 is resolved).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Addrs {
    /// TCP echo listeners.
    pub tcp: Vec<SocketAddr>,
    /// UDP echo sockets.
    pub udp: Vec<SocketAddr>,
    /// Banner listeners.
    pub banner: Vec<SocketAddr>,
    /// HTTP listeners.
    pub http: Vec<SocketAddr>,
    /// The WebTransport endpoint (UDP), unless `--no-webtransport`.
    pub webtransport: Option<SocketAddr>,
    /// `/metrics` on its own listener (`--metrics`).
    pub metrics: Option<SocketAddr>,
}

impl Addrs {
    /// Every port socklab listens on: each packet of its sessions has one of them at one end.
    pub fn ports(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = [&self.tcp, &self.udp, &self.banner, &self.http]
            .into_iter()
            .flatten()
            .chain(self.webtransport.iter())
            .map(|a| a.port())
            .collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    }
}

/// State shared by every task of one server.
#[derive(Debug)]
pub struct Shared {
    /// The parsed flags.
    pub config: Config,
    /// Sessions and the monitor bus.
    pub registry: Arc<Registry>,
    /// `--max-connections`: one permit per open session of any kind, taken before the session
    /// is served and released when it ends.
    pub limit: Arc<Semaphore>,
    /// Cancelled once, at shutdown; every session task watches it (axum's graceful shutdown
    /// does not reach upgraded WebSockets, so they must watch it themselves).
    pub shutdown: CancellationToken,
    /// Every session task, so shutdown can wait for them to close cleanly.
    pub tracker: TaskTracker,
    /// Where the listeners really are (ports chosen by the OS when 0 was asked for).
    pub addrs: Addrs,
    /// Where the bridge connects: `--upstream`, or the first TCP echo listener.
    pub upstream: String,
    /// With `--monitor-redis`: the other instances' sessions for `/api/events`.
    pub cluster: Option<Arc<Cluster>>,
    /// The WebTransport endpoint's URL and certificate hash, for `/api/webtransport`
    /// (None when it is off).
    pub webtransport: Option<Arc<WtState>>,
    /// With `--capture` (and the privilege): the captured packets.
    pub capture: Option<Arc<Capture>>,
    /// Connections accepted by each runtime (`--threads`).
    pub runtimes: RuntimeLoad,
}

impl Shared {
    /// A session's own shutdown token, cancelled with the server's. A session loop polls its
    /// `cancelled()` on every pass, and a pending `cancelled()` locks its token's waiter list
    /// each time: on the server's token that lock would be shared by every session of every
    /// runtime, once per message; on a child token it is the session's own.
    pub fn session_shutdown(&self) -> CancellationToken {
        self.shutdown.child_token()
    }
}

thread_local! {
    /// Which of the server's runtimes drives this thread: 0 for the one the server was
    /// started on (and for any thread of another server's), `i` for the `i`-th of the
    /// current-thread runtimes `--threads` adds.
    static RUNTIME: Cell<usize> = const { Cell::new(0) };
}

/// Marks this thread as driving runtime `index` (see [`runtime_index`]).
pub fn set_runtime_index(index: usize) {
    RUNTIME.set(index);
}

/// The runtime this thread drives: 0 unless [`set_runtime_index`] said otherwise.
pub fn runtime_index() -> usize {
    RUNTIME.get()
}

/// How many connections (TCP echo, banner, HTTP) each runtime accepted: how evenly the
/// kernel's `SO_REUSEPORT` hash spread them. A connection stays on the runtime that accepted
/// it, so a skew here is a skew in the work.
#[derive(Debug)]
pub struct RuntimeLoad {
    accepted: Box<[AtomicU64]>,
}

impl RuntimeLoad {
    /// Counters for `runtimes` runtimes.
    pub fn new(runtimes: usize) -> Self {
        RuntimeLoad {
            accepted: (0..runtimes.max(1)).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Counts one connection accepted on this thread's runtime.
    pub fn accepted_here(&self) {
        let i = runtime_index().min(self.accepted.len() - 1);
        self.accepted[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Connections accepted so far, by runtime.
    pub fn accepted(&self) -> Vec<u64> {
        self.accepted
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .collect()
    }
}

/// What the HTTP side needs to tell a page where WebTransport is and how to trust it. The
/// endpoint (`webtransport::endpoint`) renews the hash; `/api/webtransport` reads it.
#[derive(Debug)]
pub struct WtState {
    /// Where the endpoint really listens.
    pub addr: SocketAddr,
    /// Whether the certificate came from `--tls-cert` (then the URL uses the name the page
    /// was loaded with, which a real certificate is for).
    pub custom_cert: bool,
    /// SHA-256 of the current certificate's DER; replaced when the certificate is renewed.
    cert_sha256: RwLock<[u8; 32]>,
}

impl WtState {
    /// The state of an endpoint at `addr` whose certificate's SHA-256 is `cert_sha256`.
    pub fn new(addr: SocketAddr, custom_cert: bool, cert_sha256: [u8; 32]) -> Self {
        WtState {
            addr,
            custom_cert,
            cert_sha256: RwLock::new(cert_sha256),
        }
    }

    /// SHA-256 of the certificate now in use.
    pub fn cert_sha256(&self) -> [u8; 32] {
        *self
            .cert_sha256
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a renewed certificate's SHA-256.
    pub fn set_cert_sha256(&self, hash: [u8; 32]) {
        *self
            .cert_sha256
            .write()
            .unwrap_or_else(PoisonError::into_inner) = hash;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_the_endpoint() {
        let state = WtState::new("127.0.0.1:4433".parse().unwrap(), false, [0; 32]);
        assert_eq!(state.url(Some("example:8080")), "https://127.0.0.1:4433/");
        let any = WtState::new("[::]:4433".parse().unwrap(), false, [0; 32]);
        assert_eq!(
            any.url(Some("lab.example:8080")),
            "https://lab.example:4433/"
        );
        assert_eq!(any.url(None), "https://[::]:4433/");
    }
}
