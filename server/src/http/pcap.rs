//! `GET /api/sessions/{id}/pcap`: a session's captured packets (`capture/`) as a pcap file.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::state::Shared;

/// `GET /api/sessions/{id}/pcap`: the session's kept packets as a pcap file.
pub(crate) async fn pcap_handler(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<u64>,
) -> Response {
    let Some(capture) = shared.capture.as_ref() else {
        return (
            StatusCode::NOT_FOUND,
            "packet capture is off on this server (start it with --capture, as root or with \
             CAP_NET_RAW)\n",
        )
            .into_response();
    };
    let Some((kind, file)) = capture.pcap(id) else {
        return (
            StatusCode::NOT_FOUND,
            format!("no captured packets for session {id} (unknown, or forgotten)\n"),
        )
            .into_response();
    };
    let name = format!("attachment; filename=\"socklab-{kind}-{id}.pcap\"");
    (
        [
            (
                header::CONTENT_TYPE,
                "application/vnd.tcpdump.pcap".to_owned(),
            ),
            (header::CONTENT_DISPOSITION, name),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        file,
    )
        .into_response()
}
