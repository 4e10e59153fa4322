//! `--monitor-redis rediss://…`: the cluster monitor over TLS to a real redis-server with
//! `--tls-port`, its certificate trusted through `SSL_CERT_FILE` (which needs the server as a
//! process: the variable is read from the environment). Needs Debian's `redis-server` (built
//! with TLS); `cargo xtask test` installs it and sets SOCKLAB_REQUIRE_CLUSTER=1, so there a
//! missing one fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const SERVER: &str = env!("CARGO_BIN_EXE_socklab-server");
const TIMEOUT: Duration = Duration::from_secs(10);

// The workspace's skip rule (a failure in CI or with SOCKLAB_REQUIRE_CLUSTER=1, a recorded skip
// elsewhere), shared by source: this crate cannot depend on socklab-tests, which depends on it.
#[allow(dead_code)]
#[path = "../../tests/src/skip.rs"]
mod skip;

fn redis_server(test: &str) -> Option<PathBuf> {
    let found = ["/usr/bin/redis-server", "/usr/sbin/redis-server"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file());
    if found.is_none() {
        skip::skip_unless_required(
            test,
            skip::Need::Cluster,
            "redis-server is not installed (Debian: apt-get install redis-server)",
        );
    }
    found
}

/// A throwaway directory for the certificate, removed on drop.
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// redis-server with TLS only, on a free loopback port (another is tried if it was taken).
async fn tls_redis(bin: &PathBuf, cert: &PathBuf, key: &PathBuf) -> (Child, u16) {
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new(bin)
            .args(["--port", "0", "--bind", "127.0.0.1"])
            .args(["--tls-port", &port.to_string()])
            .arg("--tls-cert-file")
            .arg(cert)
            .arg("--tls-key-file")
            .arg(key)
            .arg("--tls-ca-cert-file")
            .arg(cert)
            .args([
                "--tls-auth-clients",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server starts");
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        while child.try_wait().unwrap().is_none() {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return (child, port);
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "redis did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!("could not start redis-server with TLS on a free port");
}

/// Starts the server with `flags` and `SSL_CERT_FILE`, and collects its log.
fn spawn_server(flags: &[&str], ca: &PathBuf) -> (Child, Arc<Mutex<String>>) {
    let mut child = Command::new(SERVER)
        .args(socklab_server::Config::PORT_ZERO_FLAGS)
        .args(flags)
        .env("SSL_CERT_FILE", ca)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let sink = Arc::clone(&log);
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    (child, log)
}

#[tokio::test]
async fn rediss_urls_reach_redis_over_tls() {
    let Some(bin) = redis_server("rediss_urls_reach_redis_over_tls") else {
        return;
    };
    let dir = Dir(std::env::temp_dir().join(format!("socklab-tls-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let identity = wtransport::Identity::self_signed(["localhost"]).unwrap();
    let (cert, key) = (dir.0.join("cert.pem"), dir.0.join("key.pem"));
    std::fs::write(&cert, identity.certificate_chain().as_slice()[0].to_pem()).unwrap();
    std::fs::write(&key, identity.private_key().to_secret_pem()).unwrap();
    let (_redis, port) = tls_redis(&bin, &cert, &key).await;

    let url = format!("rediss://localhost:{port}/");
    let (_server, log) = spawn_server(&["--instance", "t", "--monitor-redis", &url], &cert);
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !log.lock().unwrap().contains("Redis reachable") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no TLS connection to Redis: {}",
            log.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
