//! The baselines socklab is compared with: a bare tokio echo (the TCP echo's) and a bare tokio
//! TCP relay (the bridge's floor). Both run until standard input closes: `cargo xtask bench`
//! stops its helpers that way.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::conn::READ_BUF;

/// The baseline: accept, then read and write back the same bytes, nothing else.
pub async fn serve_bare_echo(addr: SocketAddr) -> Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    println!("bare echo on {}", listener.local_addr()?);
    let accept = async {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                // Out of file descriptors, usually: let some close.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let (from, to) = stream.split();
                pump(from, to).await;
            });
        }
    };
    until_stdin_closes(accept).await;
    Ok(())
}

/// The bridge floor: accept, connect to `to`, then copy bytes both ways, nothing else.
pub async fn serve_bare_relay(addr: SocketAddr, to: SocketAddr) -> Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    println!("bare relay on {} to {to}", listener.local_addr()?);
    let accept = async {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            tokio::spawn(async move {
                let Ok(upstream) = TcpStream::connect(to).await else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = upstream.set_nodelay(true);
                let (cr, cw) = client.into_split();
                let (ur, uw) = upstream.into_split();
                tokio::join!(pump(cr, uw), pump(ur, cw));
            });
        }
    };
    until_stdin_closes(accept).await;
    Ok(())
}

/// Runs `serve` until standard input closes. What arrives on standard input is read and
/// dropped.
async fn until_stdin_closes(serve: impl Future<Output = ()>) {
    let drain = async {
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 256];
        while let Ok(1..) = stdin.read(&mut buf).await {}
    };
    tokio::select! {
        () = serve => {}
        () = drain => {}
    }
}

/// Copies `from` to `to` until either ends, then shuts `to` down: one direction of the relay,
/// or the echo's only one.
async fn pump(mut from: impl AsyncRead + Unpin, mut to: impl AsyncWrite + Unpin) {
    let mut buf = [0u8; READ_BUF];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown().await;
}
