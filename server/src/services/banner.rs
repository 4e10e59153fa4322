//! The lesson's first server: send the welcome text, then close.

use std::sync::Arc;

use socklab_protocol::SessionKind;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::net::listen::accept_loop;
use crate::registry::Session;
use crate::state::Shared;

/// Greets every client until shutdown.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    accept_loop(listener, shared, SessionKind::Banner, handle).await;
}

async fn handle(mut stream: TcpStream, mut session: Session, shared: Arc<Shared>) {
    let mut text = shared.config.banner_text.clone().into_bytes();
    text.extend_from_slice(b"\r\n");
    let write = async {
        stream.write_all(&text).await?;
        stream.shutdown().await
    };
    match tokio::time::timeout(shared.config.write_timeout(), write).await {
        Ok(Ok(())) => {
            session.sent(&text);
            session.set_reason("banner sent");
        }
        Ok(Err(err)) => session.set_reason(format!("write error: {err}")),
        Err(_) => session.set_reason("client not reading"),
    }
}
