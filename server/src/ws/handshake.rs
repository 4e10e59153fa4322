//! The bridge's WebSocket handshake (RFC 6455 §4.2), done here rather than by axum's
//! `WebSocketUpgrade` so the session gets the connection's own `TcpStream` back
//! ([`Handshake::accept`]) and speaks WebSocket on it with [`socklab_protocol::ws_frames`].
//! The checks (in axum's order), the refusals' statuses and texts, and the `101` response are
//! axum's, byte for byte.

use std::future::Future;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// A valid WebSocket upgrade request: its key, and hyper's promise of the connection.
#[derive(Debug)]
pub struct Handshake {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
}

/// Why a request to `/ws` is not a WebSocket handshake (the statuses and texts axum gives).
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("Request method must be `GET`")]
    MethodNotGet,
    #[error("Connection header did not include 'upgrade'")]
    Connection,
    #[error("`Upgrade` header did not include 'websocket'")]
    Upgrade,
    #[error("`Sec-WebSocket-Version` header did not include '13'")]
    Version,
    #[error("`Sec-WebSocket-Key` header missing")]
    Key,
    #[error("WebSocket request couldn't be upgraded since no upgrade state was present")]
    NotUpgradable,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let status = match self {
            Refused::MethodNotGet => StatusCode::METHOD_NOT_ALLOWED,
            Refused::NotUpgradable => StatusCode::UPGRADE_REQUIRED,
            _ => StatusCode::BAD_REQUEST,
        };
        (status, self.to_string()).into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Handshake {
    type Rejection = Refused;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Refused> {
        if parts.method != Method::GET {
            return Err(Refused::MethodNotGet);
        }
        if !header_contains(&parts.headers, header::CONNECTION, "upgrade") {
            return Err(Refused::Connection);
        }
        if !header_is(&parts.headers, header::UPGRADE, "websocket") {
            return Err(Refused::Upgrade);
        }
        let key = parts
            .headers
            .get(header::SEC_WEBSOCKET_KEY)
            .ok_or(Refused::Key)?
            .clone();
        if !header_is(&parts.headers, header::SEC_WEBSOCKET_VERSION, "13") {
            return Err(Refused::Version);
        }
        let on_upgrade = parts
            .extensions
            .remove::<OnUpgrade>()
            .ok_or(Refused::NotUpgradable)?;
        Ok(Handshake { key, on_upgrade })
    }
}

/// What a session starts with once the `101` went out: the connection, and the bytes hyper
/// had already read past the request (the client may send its first frame at once).
pub type Upgraded = (TcpStream, Bytes);

impl Handshake {
    /// The `101 Switching Protocols` response; once hyper has written it, `session` runs on
    /// its own task with the connection.
    pub fn accept<F, Fut>(self, session: F) -> Response
    where
        F: FnOnce(Upgraded) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => match upgraded.downcast::<TokioIo<TcpStream>>() {
                    Ok(parts) => session((parts.io.into_inner(), parts.read_buf)).await,
                    // `http::serve` serves every connection as a `TokioIo<TcpStream>`.
                    Err(_) => tracing::error!("WebSocket upgrade: not a TCP connection"),
                },
                Err(err) => tracing::warn!(cause = %err, "WebSocket upgrade failed"),
            }
        });
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        let accept = derive_accept_key(self.key.as_bytes());
        if let Ok(accept) = HeaderValue::from_str(&accept) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        response
    }
}

/// `name` is `value`, in any case.
fn header_is(headers: &HeaderMap, name: header::HeaderName, value: &str) -> bool {
    headers
        .get(name)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(value.as_bytes()))
}

/// `name`'s value contains `value` (lower case), as axum checks `Connection: keep-alive, Upgrade`.
fn header_contains(headers: &HeaderMap, name: header::HeaderName, value: &str) -> bool {
    headers
        .get(name)
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains(value))
}
