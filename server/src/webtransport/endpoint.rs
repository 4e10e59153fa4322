//! The WebTransport endpoint: binding its UDP socket, accepting sessions within the connection
//! limit until shutdown, and renewing the self-signed certificate at half its life.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use wtransport::Endpoint;
use wtransport::endpoint::endpoint_side::Server;

use super::cert::{
    CERT_VALIDITY_DAYS, WtError, bind_udp, cert_hash, hex, load_identity, self_signed,
    server_config,
};
use super::session::handle;
use crate::config::MAX_SECS;
use crate::state::{Shared, WtState};

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
    let endpoint = Endpoint::server(config).map_err(|source| WtError::Endpoint { addr, source })?;
    let local = endpoint.local_addr().unwrap_or(addr);
    Ok(WtListener {
        endpoint,
        state: Arc::new(WtState::new(local, cert.is_some(), hash)),
    })
}

/// Accepts WebTransport sessions until shutdown, renewing the self-signed certificate on
/// time. Per-session errors are logged and never stop the endpoint.
pub(crate) async fn serve(listener: WtListener, shared: Arc<Shared>) {
    let WtListener { endpoint, state } = listener;
    let local = state.addr;
    let renew_every = shared
        .config
        .cert_renew_after
        .map(|s| Duration::from_secs(s.clamp(1, MAX_SECS)))
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
            state.set_cert_sha256(hash);
            tracing::info!(sha256 = %hex(&hash), "webtransport certificate renewed");
        }
        Err(err) => {
            tracing::error!(cause = %err, "certificate renewal failed; keeping the old one");
        }
    }
}
