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

/// The bridge floor: accept, connect to `to`, then copy bytes both ways
/// (`copy_bidirectional`), nothing else; one task per connection, every task on one
/// current-thread runtime on its own thread: as cheap per message as tokio gets.
pub async fn serve_bare_relay(addr: SocketAddr, to: SocketAddr) -> Result<()> {
    let listener =
        std::net::TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    listener.set_nonblocking(true)?;
    println!("bare relay on {} to {to}", listener.local_addr()?);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("bare-relay".into())
        .spawn(move || runtime.block_on(relay(listener, to)))?;
    until_stdin_closes(std::future::pending()).await;
    Ok(())
}

/// The relay's accept loop, on its own runtime (see [`serve_bare_relay`]).
async fn relay(listener: std::net::TcpListener, to: SocketAddr) {
    let Ok(listener) = TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let Ok((mut client, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        tokio::spawn(async move {
            let Ok(mut upstream) = TcpStream::connect(to).await else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = upstream.set_nodelay(true);
            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        });
    }
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
