//! The endpoint's identity: a self-signed ECDSA P-256 certificate browsers accept by hash (or
//! `--tls-cert`/`--tls-key`), and the QUIC/TLS configuration built from it.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use wtransport::tls::rustls;
use wtransport::tls::self_signed::time::{Duration as CertDuration, OffsetDateTime};
use wtransport::{Identity, ServerConfig};

/// How long the self-signed certificate is valid. Chromium refuses `serverCertificateHashes`
/// for certificates valid longer than 14 days; 13 leaves room for clock skew.
pub const CERT_VALIDITY_DAYS: i64 = 13;
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
    /// The endpoint could not be started on the bound socket.
    #[error("cannot start the WebTransport endpoint on {addr}: {source}")]
    Endpoint {
        /// The socket's address.
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

pub async fn load_identity(cert: &Path, key: &Path) -> Result<Identity, WtError> {
    Identity::load_pemfiles(cert, key)
        .await
        .map_err(|err| WtError::Certificate {
            cert: cert.display().to_string(),
            key: key.display().to_string(),
            why: err.to_string(),
        })
}

/// A fresh self-signed ECDSA P-256 certificate for loopback, valid [`CERT_VALIDITY_DAYS`].
pub fn self_signed() -> Result<Identity, WtError> {
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
pub fn cert_hash(identity: &Identity) -> [u8; 32] {
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
pub fn server_config(
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
pub fn bind_udp(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
}
