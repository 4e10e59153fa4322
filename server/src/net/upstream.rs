//! The upstream side of a bridged session: its own connection to the echo (or `--upstream`),
//! linked in the registry to the session it serves, so the monitor can show which echo
//! connection serves which browser.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream, UdpSocket};

use crate::registry::LinkGuard;
use crate::state::Shared;

/// How long the upstream may take to accept the bridge's connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens the session's own connection to the upstream, linked to the session so the monitor
/// can show which echo connection serves which browser.
pub async fn connect_upstream(shared: &Shared, id: u64) -> io::Result<(TcpStream, LinkGuard)> {
    let addr = tokio::net::lookup_host(&shared.upstream)
        .await?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address for that name"))?;
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // Bound to the exact source address the route gives (not the unspecified one), so the
    // link names the very (address, port) pair the echo's accept will see, and it exists
    // before the echo can accept us: with `--proxy-protocol` the echo skips the header check
    // only for that pair, never for a mere port match.
    socket.bind(SocketAddr::new(source_ip(addr)?, 0))?;
    let local = socket.local_addr()?;
    let mut link = shared.registry.link(local, id);
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(addr))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    let connected = stream.local_addr()?;
    if connected != local {
        // Not expected (the socket was bound to one address); keep the link true anyway.
        tracing::debug!(%local, %connected, "upstream socket's address changed on connect");
        link = shared.registry.link(connected, id);
    }
    let _ = stream.set_nodelay(true);
    Ok((stream, link))
}

/// The source address the kernel would use to reach `dest`, found by connecting a UDP socket
/// (which sends nothing). For a loopback or unspecified `dest` (`0.0.0.0` reaches this host)
/// it is a loopback address.
fn source_ip(dest: SocketAddr) -> io::Result<IpAddr> {
    let any = match dest {
        SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
    };
    let probe = std::net::UdpSocket::bind(any)?;
    probe.connect(dest)?;
    Ok(probe.local_addr()?.ip())
}

/// Where datagrams go: `--udp-upstream`, or this server's first UDP echo socket.
pub fn udp_upstream(shared: &Shared) -> String {
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
pub async fn connect_udp(shared: &Shared, id: u64) -> io::Result<(UdpSocket, LinkGuard)> {
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
