//! Listening: binding the listeners (`SO_REUSEADDR`, v6-only IPv6) and the accept loop every
//! TCP service shares (connection limit, keepalive, PROXY header), one task per connection.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use socklab_protocol::SessionKind;
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use crate::net::proxy_protocol;
use crate::registry::{Extra, Session};
use crate::state::Shared;

/// A TCP listener like the lesson's (`SO_REUSEADDR`, so a restart does not wait for
/// TIME_WAIT), IPv6 sockets v6-only so `0.0.0.0:P` and `[::]:P` can both be bound.
pub fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = tcp_socket(addr)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    TcpListener::from_std(socket.into())
}

/// `copies` listeners on one address, one for each of the server's runtimes, sharing the port
/// with `SO_REUSEPORT`: the kernel spreads new connections over them by a hash of each
/// connection's addresses and ports. The first is bound exactly like [`bind_tcp`] (so a port
/// some other program holds is refused, as it always was, and port 0 picks a free port); only
/// then is `SO_REUSEPORT` set on it and the others bound to the port it got.
///
/// Not yet registered with any runtime: each runtime makes its copy a tokio listener itself.
pub fn bind_tcp_group(addr: SocketAddr, copies: usize) -> io::Result<Vec<std::net::TcpListener>> {
    let first = tcp_socket(addr)?;
    first.bind(&addr.into())?;
    let mut group = Vec::with_capacity(copies);
    if copies > 1 {
        first.set_reuse_port(true)?;
    }
    first.listen(BACKLOG)?;
    let bound = first.local_addr()?.as_socket().unwrap_or(addr);
    group.push(first.into());
    for _ in 1..copies {
        let socket = tcp_socket(bound)?;
        socket.set_reuse_port(true)?;
        socket.bind(&bound.into())?;
        socket.listen(BACKLOG)?;
        group.push(socket.into());
    }
    Ok(group)
}

/// Pending connections each listener queues before accepting them.
const BACKLOG: i32 = 1024;

/// A non-blocking TCP socket for a listener on `addr`, not yet bound.
fn tcp_socket(addr: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// A UDP socket, IPv6 ones v6-only like the TCP listeners.
pub fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
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
        shared.runtimes.accepted_here();
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
                if let Some(client) =
                    proxy_protocol::accept_header(&mut stream, peer, &shared).await
                {
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
