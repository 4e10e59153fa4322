//! What every service shares: the configuration, the session registry, the one connection
//! limit and the one shutdown signal.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use socklab_protocol::SessionKind;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::Addrs;
use crate::config::Config;
use crate::proxy;
use crate::registry::{Extra, Registry, Session};

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
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    /// The WebTransport endpoint's URL and certificate hash, for `/api/webtransport`
    /// (None when it is off).
    pub webtransport: Option<Arc<crate::webtransport::WtState>>,
    /// With `--capture` (and the privilege): the captured packets.
    pub capture: Option<Arc<crate::capture::Capture>>,
}

/// Accepts connections until shutdown and serves each in its own task, within the connection
/// limit: a connection over the limit is closed at once. Per-connection errors are logged and
/// never stop the listener.
pub async fn accept_loop<F, Fut>(
    listener: TcpListener,
    shared: Arc<Shared>,
    kind: SessionKind,
    handler: F,
) where
    F: Fn(TcpStream, Session, Arc<Shared>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listen_addr = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    loop {
        let accepted = tokio::select! {
            () = shared.shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (mut stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(err) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::warn!(%kind, addr = %listen_addr, cause = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&shared.limit).try_acquire_owned() else {
            tracing::warn!(
                %kind,
                %peer,
                max = shared.config.max_connections,
                "connection limit reached: closing the new connection"
            );
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        set_keepalive(&stream, shared.config.tcp_keepalive);
        let local = stream.local_addr().unwrap_or(listen_addr);
        // Behind a proxy the client is named in a header that may take a round trip to come,
        // so it is read in the connection's own task. The bridge's own upstream sends none.
        if shared.config.proxy_protocol && shared.registry.linked(peer).is_none() {
            let (handler, shared) = (handler.clone(), Arc::clone(&shared));
            Arc::clone(&shared).tracker.spawn(async move {
                if let Some(client) = proxy::accept_header(&mut stream, peer, &shared).await {
                    let session = shared.registry.open(kind, client, local, Extra::default());
                    handler(stream, session, Arc::clone(&shared)).await;
                }
                drop(permit);
            });
            continue;
        }
        let session = shared.registry.open(kind, peer, local, Extra::default());
        let task = handler(stream, session, Arc::clone(&shared));
        shared.tracker.spawn(async move {
            task.await;
            drop(permit);
        });
    }
    tracing::debug!(%kind, addr = %listen_addr, "listener stopped");
}

/// Turns on TCP keepalive, so a client that vanished without a FIN (unplugged, crashed
/// machine) is found and its slot freed: probes start after `idle_secs` of silence and the
/// connection is dropped after 3 unanswered ones, 10 s apart. 0 leaves keepalive off.
pub fn set_keepalive(stream: &TcpStream, idle_secs: u64) {
    if idle_secs == 0 {
        return;
    }
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(idle_secs))
        .with_interval(Duration::from_secs(10))
        .with_retries(3);
    if let Err(err) = socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive) {
        tracing::debug!(cause = %err, "could not enable TCP keepalive");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keepalive_is_set_with_the_configured_idle_time() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server_side, _) = listener.accept().await.unwrap();
        set_keepalive(&server_side, 45);
        let sock = socket2::SockRef::from(&server_side);
        assert!(sock.keepalive().unwrap());
        assert_eq!(sock.tcp_keepalive_time().unwrap(), Duration::from_secs(45));
        set_keepalive(&client, 0);
        assert!(!socket2::SockRef::from(&client).keepalive().unwrap());
    }
}
