//! Who may open a WebSocket and who the client really is: the Origin rule and the connection
//! slot of `/ws` and `/api/events` ([`Admitted`]; WebTransport applies the Origin rule too),
//! and `X-Forwarded-For` from a trusted proxy.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::OwnedSemaphorePermit;

use socklab_protocol::client_text::{
    forwarded_entries, origin_listed, origin_matches_host, sanitize_tag,
};

use crate::config::Config;
use crate::state::Shared;

/// Both ends of an HTTP connection, put in every request's extensions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnAddrs {
    /// The client.
    pub peer: SocketAddr,
    /// The listener's address the client reached.
    pub local: SocketAddr,
}

/// The Origin rule of `/ws` and `/api/events`: a browser page may open them only from the
/// server's own origin (http or https with the Host the client used) or an origin listed with
/// `--allow-origin`. Tools that send no Origin are allowed: the rule stops cross-site
/// WebSocket hijacking by other web pages, not clients that could open a socket anyway.
pub(crate) fn check_origin(headers: &HeaderMap, shared: &Shared) -> Result<(), OriginRefused> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("").trim_end_matches('/');
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if origin_matches_host(origin, host) || origin_listed(origin, &shared.config.allow_origin) {
        Ok(())
    } else {
        tracing::warn!(origin, host, "WebSocket handshake refused: foreign Origin");
        Err(OriginRefused {
            origin: origin.to_owned(),
        })
    }
}

/// `?tag=`: a label the client picks to find its own session on the monitor, on `/ws` and on
/// WebTransport sessions alike: percent-decoded by axum's `Query`, then sanitised. It is the
/// only parameter, and nothing a client sends can change where the bridge connects.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct BridgeQuery {
    tag: Option<String>,
}

impl BridgeQuery {
    /// The query of a request target (`/?tag=x`), read as `/ws`'s `Query<BridgeQuery>` reads
    /// it; the error says why it is not one (a malformed target, `tag` given twice).
    pub(crate) fn from_target(target: &str) -> Result<Self, String> {
        let uri: Uri = target.parse().map_err(|e| format!("{e}"))?;
        let Query(query) = Query::try_from_uri(&uri).map_err(|e| e.body_text())?;
        Ok(query)
    }

    /// The tag as it is shown and stored ([`sanitize_tag`]).
    pub(crate) fn tag(&self) -> Option<String> {
        self.tag.as_deref().map(sanitize_tag)
    }
}

/// A WebSocket handshake let in: its Origin passed [`check_origin`] (else 403) and it holds a
/// `--max-connections` slot (else 503) for as long as the session keeps [`Admitted::permit`].
///
/// An extractor, last among a handler's arguments: a handshake that is not a WebSocket upgrade
/// (or has a bad query) is refused for that first, with its 4xx, and never takes a slot.
/// `BRIDGE`: the session is bridged, and when it is bridged to this server's own echo it needs
/// two slots, its own and its upstream connection's. With one left it is refused now (503)
/// rather than closed with a misleading "upstream closed" when the echo turns the upstream away.
#[derive(Debug)]
pub(crate) struct Admitted<const BRIDGE: bool> {
    /// The session's slot; dropping it frees the slot.
    pub permit: OwnedSemaphorePermit,
}

impl<const BRIDGE: bool> FromRequestParts<Arc<Shared>> for Admitted<BRIDGE> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, shared: &Arc<Shared>) -> Result<Self, Response> {
        check_origin(&parts.headers, shared).map_err(IntoResponse::into_response)?;
        let needed = if BRIDGE && shared.config.upstream.is_none() {
            2
        } else {
            1
        };
        let permit = if shared.limit.available_permits() >= needed {
            Arc::clone(&shared.limit).try_acquire_owned().ok()
        } else {
            None
        };
        let Some(permit) = permit else {
            if BRIDGE && let Some(addrs) = parts.extensions.get::<ConnAddrs>() {
                tracing::warn!(peer = %addrs.peer, "connection limit reached: WebSocket refused");
            }
            let refused = (
                StatusCode::SERVICE_UNAVAILABLE,
                "socklab is at its --max-connections limit; try again later\n",
            );
            return Err(refused.into_response());
        };
        Ok(Admitted { permit })
    }
}

/// A handshake refused by the Origin rule; answered with 403.
#[derive(Debug)]
pub(crate) struct OriginRefused {
    origin: String,
}

impl IntoResponse for OriginRefused {
    fn into_response(self) -> Response {
        (
            StatusCode::FORBIDDEN,
            format!(
                "Origin {} is not allowed here (only this server's own origin and \
                 --allow-origin ones are)\n",
                self.origin
            ),
        )
            .into_response()
    }
}

/// With `--forwarded-for`: the client named by `X-Forwarded-For` when the request comes from a
/// trusted proxy, else `peer`. The list is read right to left (the right-most entry was
/// added by the proxy nearest to us), skipping trusted proxies; the first other address is
/// the client. Entries may carry a port (`1.2.3.4:5678`, `[::1]:5678`); without one the port
/// is 0.
pub(crate) fn forwarded_client(
    headers: &HeaderMap,
    peer: SocketAddr,
    config: &Config,
) -> SocketAddr {
    if !config.is_trusted_proxy(peer.ip()) {
        return peer;
    }
    let mut client = peer;
    for value in headers.get_all("x-forwarded-for").iter().rev() {
        let Ok(value) = value.to_str() else {
            return client;
        };
        for entry in forwarded_entries(value) {
            let Some(addr) = entry else {
                return client;
            };
            client = addr;
            if !config.is_trusted_proxy(addr.ip()) {
                return client;
            }
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn tags_are_percent_decoded_then_sanitised() {
        let tag = |target: &str| BridgeQuery::from_target(target).map(|q| q.tag());
        assert_eq!(tag("/?tag=page%2D7"), Ok(Some("page-7".to_owned())));
        assert_eq!(tag("/?a=1&tag=x+y%3Cb%3E"), Ok(Some("xyb".to_owned())));
        assert_eq!(tag("/"), Ok(None));
        assert!(tag("/?tag=a&tag=b").is_err());
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let config = Config::parse_from(["s", "--trusted-proxy", "10.0.0.0/8"]);
        let proxy: SocketAddr = "10.0.0.2:40000".parse().unwrap();
        let stranger: SocketAddr = "198.51.100.1:40000".parse().unwrap();
        // A client's own fake entry to the left is not believed: the right-most untrusted wins.
        let h = headers(&["6.6.6.6, 203.0.113.7", "10.0.0.9"]);
        assert_eq!(
            forwarded_client(&h, proxy, &config),
            "203.0.113.7:0".parse().unwrap()
        );
        assert_eq!(forwarded_client(&h, stranger, &config), stranger);
        let with_port = headers(&["[2001:db8::7]:5555"]);
        assert_eq!(
            forwarded_client(&with_port, proxy, &config),
            "[2001:db8::7]:5555".parse().unwrap()
        );
        assert_eq!(
            forwarded_client(&headers(&["unknown"]), proxy, &config),
            proxy
        );
        // No --trusted-proxy: loopback is trusted, nothing else.
        let config = Config::parse_from(["s"]);
        let local: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(
            forwarded_client(&headers(&["203.0.113.7"]), local, &config),
            "203.0.113.7:0".parse().unwrap()
        );
        assert!(!config.is_trusted_proxy("10.0.0.2".parse().unwrap()));
    }
}
