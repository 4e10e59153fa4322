//! Beyond one machine, on loopback: three instances behind HAProxy, one monitor through Redis.
//!
//! Needs Debian's `haproxy` and `redis-server` (and `nginx` for the config check). `cargo xtask
//! test` installs them and sets SOCKLAB_REQUIRE_CLUSTER=1, so there a missing one fails the
//! test; elsewhere (a plain `cargo test` on a machine without them) these tests say they are
//! skipped and pass.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use socklab_protocol::{MonitorEvent, SessionKind};
use socklab_server::RunningServer;
use socklab_tests::skip::{Need, skip_unless_required};
use socklab_tests::{Monitor, TIMEOUT, assert_stamped, http, start_server_with, ws_connect};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

/// Clients of each kind in the main run (300 in all), and after the kill.
const TCP_CLIENTS: usize = 150;
const WS_CLIENTS: usize = 150;
const LATE_CLIENTS: usize = 15;
/// Round trips before and after an instance is stopped.
const BEFORE: usize = 3;
const AFTER: usize = 3;

/// Where a Debian tool is, or why the test cannot run.
fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/bin".into(), "/sbin".into()])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The tools, or `None` after recording why `test` is skipped (a failure where it must run).
fn tools(test: &str, names: &[&str]) -> Option<Vec<PathBuf>> {
    let found: Vec<Option<PathBuf>> = names.iter().map(|n| tool(n)).collect();
    let missing: Vec<&str> = names
        .iter()
        .zip(&found)
        .filter(|(_, p)| p.is_none())
        .map(|(n, _)| *n)
        .collect();
    if missing.is_empty() {
        return Some(found.into_iter().flatten().collect());
    }
    let msg = format!(
        "{} not installed (Debian: apt-get install haproxy redis-server nginx \
         libnginx-mod-stream; `cargo xtask test` does it)",
        missing.join(", ")
    );
    skip_unless_required(test, Need::Cluster, &msg);
    None
}

/// A listener on a free loopback port that a child process inherits (no close-on-exec), so
/// HAProxy can `bind fd@N` to it: no port is released and re-bound, so none can be taken
/// meanwhile by a parallel test.
fn inheritable_listener() -> StdListener {
    let listener = StdListener::bind("127.0.0.1:0").unwrap();
    socket2::SockRef::from(&listener)
        .set_cloexec(false)
        .unwrap();
    listener
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// A redis-server without persistence, listening on a Unix socket only (no port to race
/// for with other tests). Its URL is `redis+unix://` + the socket's path.
struct Redis {
    child: Child,
    socket: PathBuf,
    _dir: Arc<tempdir::Dir>,
}

impl Redis {
    async fn start(bin: &Path, dir: Arc<tempdir::Dir>) -> Redis {
        let socket = dir.0.join("redis.sock");
        let _ = std::fs::remove_file(&socket);
        let child = Command::new(bin)
            .args(["--port", "0", "--unixsocket"])
            .arg(&socket)
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server starts");
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            if let Ok(mut s) = tokio::net::UnixStream::connect(&socket).await {
                let mut buf = [0u8; 7];
                if s.write_all(b"PING\r\n").await.is_ok()
                    && s.read_exact(&mut buf).await.is_ok()
                    && &buf == b"+PONG\r\n"
                {
                    return Redis {
                        child,
                        socket,
                        _dir: dir,
                    };
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "redis-server did not come up"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn url(&self) -> String {
        format!("redis+unix://{}", self.socket.display())
    }
}

/// Starts an instance as the deployment runs it: behind a proxy, in the cluster monitor.
async fn start_instance(name: &str, redis: &str) -> RunningServer {
    let (name, redis) = (name.to_owned(), redis.to_owned());
    start_server_with(move |c| {
        c.instance = Some(name);
        c.proxy_protocol = true;
        c.forwarded_for = true;
        c.trusted_proxy = vec!["127.0.0.1".parse().unwrap()];
        c.monitor_redis = Some(redis);
        c.monitor_buffer = 1 << 16;
    })
    .await
}

/// HAProxy in front of `instances`, like deploy/haproxy.cfg but with quick health checks and
/// on the inherited listening sockets `echo` and `http` (file descriptors). A check may take
/// up to 5 s and an instance is down after two failed ones: on a loaded machine a single slow
/// check (the timeout was `inter`, 300 ms) marked every instance down and HAProxy answered 503.
/// A stopped instance refuses at once, so it is still found down within two checks.
fn haproxy_config(instances: &[&RunningServer], echo: i32, http: i32) -> String {
    let mut cfg = format!(
        "global\n    maxconn 4000\n\
         defaults\n    retries 2\n    option redispatch 1\n    timeout connect 2s\n\
         \x20   timeout client 60s\n    timeout server 60s\n    timeout tunnel 60s\n\
         \x20   timeout check 5s\n    default-server inter 300ms fall 2 rise 1\n\
         frontend echo\n    mode tcp\n    bind fd@{echo}\n    default_backend echo\n\
         backend echo\n    mode tcp\n    balance leastconn\n    option httpchk GET /healthz\n\
         \x20   http-check expect status 200\n"
    );
    for (i, s) in instances.iter().enumerate() {
        cfg += &format!(
            "    server i{} {} send-proxy-v2 check port {}\n",
            i + 1,
            s.addrs.tcp[0],
            s.addrs.http[0].port()
        );
    }
    cfg += &format!(
        "frontend web\n    mode http\n    bind fd@{http}\n    option forwardfor\n\
         \x20   monitor-uri /haproxy-alive\n\
         \x20   default_backend web\n\
         backend web\n    mode http\n    balance leastconn\n    option httpchk GET /healthz\n\
         \x20   http-check expect status 200\n"
    );
    for (i, s) in instances.iter().enumerate() {
        cfg += &format!("    server i{} {} check\n", i + 1, s.addrs.http[0]);
    }
    cfg
}

/// A running HAProxy in front of `instances`, and where it listens.
struct Proxy {
    _child: Child,
    _dir: tempdir::Dir,
    _listeners: [StdListener; 2],
    echo: SocketAddr,
    http: SocketAddr,
}

/// Starts HAProxy on two listeners it inherits and waits until it serves and sees healthy
/// instances.
async fn start_haproxy(bin: &Path, instances: &[&RunningServer]) -> Proxy {
    use std::os::fd::AsRawFd;
    let (echo, http) = (inheritable_listener(), inheritable_listener());
    let dir = tempdir::Dir::new("haproxy");
    let path = dir.0.join("haproxy.cfg");
    let config = haproxy_config(instances, echo.as_raw_fd(), http.as_raw_fd());
    std::fs::write(&path, config).unwrap();
    let check = std::process::Command::new(bin)
        .arg("-c")
        .arg("-f")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "generated config rejected: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    let mut child = Command::new(bin)
        .arg("-db")
        .arg("-f")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.0.join("stderr")).unwrap())
        .kill_on_drop(true)
        .spawn()
        .expect("haproxy starts");
    let http_addr = http.local_addr().unwrap();
    if !serving(&mut child, http_addr, "/haproxy-alive", b"Service ready").await {
        let stderr = std::fs::read_to_string(dir.0.join("stderr")).unwrap_or_default();
        panic!("haproxy exited: {stderr}");
    }
    assert!(
        serving(&mut child, http_addr, "/healthz", b"ok").await,
        "the instances are not healthy behind the proxy"
    );
    Proxy {
        _child: child,
        _dir: dir,
        echo: echo.local_addr().unwrap(),
        http: http_addr,
        _listeners: [echo, http],
    }
}

/// Waits until `GET path` at `addr` answers 200 with `body` in it; `false` if `child` exits.
async fn serving(child: &mut Child, addr: SocketAddr, path: &str, body: &[u8]) -> bool {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        let request = format!("GET {path} HTTP/1.0\r\n\r\n");
        if let Some(r) = http::fetch(addr, request.as_bytes()).await
            && r.status == 200
            && r.body.windows(body.len()).any(|w| w == body)
        {
            return true;
        }
        assert!(tokio::time::Instant::now() < deadline, "proxy not ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A throwaway directory, removed on drop.
mod tempdir {
    use std::path::PathBuf;

    pub struct Dir(pub PathBuf);

    impl Dir {
        pub fn new(what: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "socklab-{what}-{}-{}",
                std::process::id(),
                fastrand_u64()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            Dir(dir)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn fastrand_u64() -> u64 {
        use std::hash::{BuildHasher, RandomState};
        RandomState::new().hash_one(std::time::SystemTime::now())
    }
}

/// Waits for `status ok` on an instance's feed (its snapshot starts with the status).
async fn wait_cluster_ok(server: &RunningServer) -> Monitor {
    let mut m = Monitor::connect(server).await;
    m.wait_for(|e| matches!(e, MonitorEvent::Status(s) if s.state == "ok"))
        .await;
    m
}

/// What a client saw.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Every reply, complete and in order, before and after the instance was stopped.
    Completed,
    /// Its instance was stopped: a clean close (TCP FIN; WebSocket close 1001) after complete
    /// replies.
    Closed,
}

/// Who a client is, to find it in the instances' registries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Id {
    /// A TCP client by its local port (the PROXY header carries it to the instance).
    Tcp(u16),
    /// A WebSocket client by its tag.
    Ws(String),
}

/// One raw TCP client through the proxy: `BEFORE` round trips, ready, then either `AFTER`
/// more on `go` or a clean close.
async fn tcp_client(
    n: usize,
    echo: SocketAddr,
    ready: mpsc::Sender<Id>,
    closed: mpsc::Sender<Id>,
    mut go: watch::Receiver<bool>,
) -> Outcome {
    let stream = TcpStream::connect(echo)
        .await
        .expect("connect through proxy");
    let id = Id::Tcp(stream.local_addr().unwrap().port());
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let round = |k: usize| format!("tcp client {n} message {k}\n");
    for k in 0..BEFORE {
        let line = round(k);
        w.write_all(line.as_bytes()).await.unwrap();
        let mut reply = Vec::new();
        tokio::time::timeout(TIMEOUT, r.read_until(b'\n', &mut reply))
            .await
            .expect("reply in time")
            .expect("read");
        assert_stamped(&reply, line.as_bytes());
    }
    ready.send(id.clone()).await.unwrap();
    let mut byte = [0u8; 1];
    tokio::select! {
        read = r.read(&mut byte) => {
            // Only a clean end of stream is acceptable here: the instance was stopped.
            assert_eq!(read.expect("a clean close, not a reset"), 0, "unexpected bytes");
            closed.send(id).await.unwrap();
            return Outcome::Closed;
        }
        changed = go.changed() => changed.unwrap(),
    }
    for k in BEFORE..BEFORE + AFTER {
        let line = round(k);
        w.write_all(line.as_bytes()).await.unwrap();
        let mut reply = Vec::new();
        tokio::time::timeout(TIMEOUT, r.read_until(b'\n', &mut reply))
            .await
            .expect("reply in time")
            .expect("read");
        assert_stamped(&reply, line.as_bytes());
    }
    Outcome::Completed
}

/// One browser-like client of the bridge through the proxy, same script as [`tcp_client`].
async fn ws_client(
    n: usize,
    http: SocketAddr,
    ready: mpsc::Sender<Id>,
    closed: mpsc::Sender<Id>,
    mut go: watch::Receiver<bool>,
) -> Outcome {
    let tag = format!("c{n}");
    let url = format!("ws://{http}/ws?tag={tag}");
    let (mut ws, _) = tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(url))
        .await
        .expect("handshake in time")
        .expect("handshake through proxy");
    let id = Id::Ws(tag);
    async fn round(ws: &mut socklab_tests::Ws, n: usize, k: usize) {
        let text = format!("ws client {n} message {k}");
        ws.send(Message::text(text.clone())).await.unwrap();
        loop {
            match tokio::time::timeout(TIMEOUT, ws.next())
                .await
                .expect("reply in time")
            {
                Some(Ok(Message::Text(t))) => {
                    assert_stamped(t.as_bytes(), text.as_bytes());
                    return;
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("ws client {n}: expected reply {k}, got {other:?}"),
            }
        }
    }
    for k in 0..BEFORE {
        round(&mut ws, n, k).await;
    }
    ready.send(id.clone()).await.unwrap();
    // Waiting may outlast a ping interval on a slow run: pings are answered as they come.
    loop {
        tokio::select! {
            msg = ws.next() => {
                match msg {
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(Some(frame)))) => {
                        assert_eq!(u16::from(frame.code), 1001, "closed with {frame:?}");
                    }
                    other => panic!("ws client {n}: expected close 1001, got {other:?}"),
                }
                closed.send(id).await.unwrap();
                return Outcome::Closed;
            }
            changed = go.changed() => break changed.unwrap(),
        }
    }
    for k in BEFORE..BEFORE + AFTER {
        round(&mut ws, n, k).await;
    }
    let _ = ws.close(None).await;
    Outcome::Completed
}

/// Which instance serves each client right now, from the instances' own registries.
fn placement(instances: &[(&str, &RunningServer)]) -> HashMap<Id, String> {
    let mut at = HashMap::new();
    for (name, server) in instances {
        for s in server.registry.snapshot().sessions {
            let id = match s.kind {
                SessionKind::Tcp if s.via.is_none() => {
                    Id::Tcp(s.peer.parse::<SocketAddr>().unwrap().port())
                }
                SessionKind::Ws => match s.tag {
                    Some(tag) => Id::Ws(tag),
                    None => continue,
                },
                _ => continue,
            };
            at.insert(id, (*name).to_owned());
        }
    }
    at
}

/// What instance 1's monitor said about other instances' sessions.
#[derive(Default)]
struct Seen {
    /// Its feed said `status ok`.
    ok: bool,
    /// (instance, client) for every remote session opened.
    opened: HashSet<(String, Id)>,
    /// Remote sessions opened and not closed, by (instance, id).
    open: HashSet<(String, u64)>,
    /// Events it missed (`lagged`): must stay 0.
    lagged: u64,
}

/// Reads instance 1's `/api/events` in the background.
async fn watch_monitor(server: &RunningServer) -> Arc<Mutex<Seen>> {
    let mut ws = ws_connect(server, "/api/events", &[]).await.unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let seen2 = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Some(Ok(msg)) = ws.next().await {
            let Message::Text(text) = msg else { continue };
            let event: MonitorEvent = serde_json::from_str(text.as_str()).unwrap();
            let mut seen = seen2.lock().unwrap();
            match event {
                MonitorEvent::Status(s) => seen.ok = s.state == "ok",
                MonitorEvent::SessionOpened(o) if o.instance.as_deref() != Some("i1") => {
                    let instance = o.instance.clone().unwrap_or_default();
                    let id = match (o.kind, o.via, o.tag) {
                        (SessionKind::Tcp, None, _) => {
                            Id::Tcp(o.peer.parse::<SocketAddr>().unwrap().port())
                        }
                        (SessionKind::Ws, _, Some(tag)) => Id::Ws(tag),
                        _ => continue,
                    };
                    seen.open.insert((instance.clone(), o.id));
                    seen.opened.insert((instance, id));
                }
                MonitorEvent::SessionClosed(c) if c.instance.as_deref() != Some("i1") => {
                    seen.open.remove(&(c.instance.unwrap_or_default(), c.id));
                }
                MonitorEvent::Lagged { skipped } => seen.lagged += skipped,
                _ => {}
            }
        }
    });
    seen
}

/// Polls `cond` on what the monitor saw until it holds, or fails with `what`.
async fn until(seen: &Mutex<Seen>, what: &str, cond: impl Fn(&Seen) -> bool) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !cond(&seen.lock().unwrap()) {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_behind_haproxy_share_one_monitor_and_survive_losing_one() {
    let Some(bins) = tools(
        "three_instances_behind_haproxy_share_one_monitor_and_survive_losing_one",
        &["haproxy", "redis-server"],
    ) else {
        return;
    };
    let (haproxy, redis_server) = (&bins[0], &bins[1]);
    let redis = Redis::start(redis_server, Arc::new(tempdir::Dir::new("redis"))).await;
    let [i1, i2, i3] = start_three_instances(&redis.url()).await;
    let seen = watch_monitor(&i1).await;
    until(&seen, "instance 1's feed never said ok", |s| s.ok).await;
    let proxy = start_haproxy(haproxy, &[&i1, &i2, &i3]).await;

    // 300 clients, all connected at once, each a few round trips through the proxy.
    let (closed_tx, mut closed_rx) = mpsc::channel(TCP_CLIENTS + WS_CLIENTS);
    let mut clients = Clients::spawn(0, TCP_CLIENTS, WS_CLIENTS, &proxy, &closed_tx);
    let ids = clients
        .all_ready(Duration::from_secs(30), "every client served in time")
        .await;
    let at = placement(&[("i1", &i1), ("i2", &i2), ("i3", &i3)]);
    assert_every_client_placed_and_spread(&ids, &at);
    assert_monitor_shows_remote_sessions(&seen, &at).await;

    // Stop instance 3 mid-run: its clients see a clean close; the others carry on.
    let on_i3: HashSet<Id> = at
        .iter()
        .filter(|(_, i)| *i == "i3")
        .map(|(id, _)| id.clone())
        .collect();
    i3.stop().await;
    wait_closed_exactly(&mut closed_rx, &on_i3).await;
    let completed = clients
        .finish()
        .await
        .into_iter()
        .filter(|o| *o == Outcome::Completed)
        .count();
    assert_eq!(completed, TCP_CLIENTS + WS_CLIENTS - on_i3.len());
    eprintln!(
        "i3 stopped: {} clients closed cleanly, {completed} others completed every round trip",
        on_i3.len()
    );
    assert_monitor_dropped_instance_3(&seen).await;

    // New clients go to the instances that are left (HAProxy retries a refused connection
    // elsewhere, then its health check takes instance 3 out).
    late_clients_go_to_the_instances_left(&proxy, &closed_tx, &i1, &i2).await;
    i1.stop().await;
    i2.stop().await;
}

/// Starts instances i1, i2 and i3 on one Redis, then waits until each says `status ok`.
async fn start_three_instances(redis: &str) -> [RunningServer; 3] {
    let i1 = start_instance("i1", redis).await;
    let i2 = start_instance("i2", redis).await;
    let i3 = start_instance("i3", redis).await;
    for s in [&i1, &i2, &i3] {
        wait_cluster_ok(s).await;
    }
    [i1, i2, i3]
}

/// A batch of clients through the proxy, each held after its first round trips until `go`.
struct Clients {
    tasks: Vec<tokio::task::JoinHandle<Outcome>>,
    ready: mpsc::Receiver<Id>,
    /// Kept, so that waiting for `ready` runs into its timeout even if every client failed.
    _ready_tx: mpsc::Sender<Id>,
    go: watch::Sender<bool>,
    /// Kept, so that `go` can be sent even when every client has been closed.
    _go_rx: watch::Receiver<bool>,
}

impl Clients {
    /// Starts `tcp` raw clients and `ws` bridge clients, numbered from `first`.
    fn spawn(
        first: usize,
        tcp: usize,
        ws: usize,
        proxy: &Proxy,
        closed: &mpsc::Sender<Id>,
    ) -> Self {
        let (ready_tx, ready) = mpsc::channel(tcp + ws);
        let (go, go_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        for n in first..first + tcp {
            let (r, c, g) = (ready_tx.clone(), closed.clone(), go_rx.clone());
            tasks.push(tokio::spawn(tcp_client(n, proxy.echo, r, c, g)));
        }
        for n in first..first + ws {
            let (r, c, g) = (ready_tx.clone(), closed.clone(), go_rx.clone());
            tasks.push(tokio::spawn(ws_client(n, proxy.http, r, c, g)));
        }
        Clients {
            tasks,
            ready,
            _ready_tx: ready_tx,
            go,
            _go_rx: go_rx,
        }
    }

    /// Waits, at most `within` for each, until every client is ready; fails with `what`.
    async fn all_ready(&mut self, within: Duration, what: &str) -> Vec<Id> {
        let mut ids = Vec::new();
        while ids.len() < self.tasks.len() {
            let id = tokio::time::timeout(within, self.ready.recv())
                .await
                .expect(what)
                .unwrap();
            ids.push(id);
        }
        ids
    }

    /// Sends `go`, then waits for every client's outcome.
    async fn finish(self) -> Vec<Outcome> {
        self.go.send(true).unwrap();
        let mut outcomes = Vec::new();
        for c in self.tasks {
            outcomes.push(c.await.expect("client task"));
        }
        outcomes
    }
}

/// Every client is on exactly one instance, and every instance has some of each kind.
fn assert_every_client_placed_and_spread(ids: &[Id], at: &HashMap<Id, String>) {
    for id in ids {
        assert!(
            at.contains_key(id),
            "{id:?} is on no instance (PROXY header lost?)"
        );
    }
    for name in ["i1", "i2", "i3"] {
        for tcp in [true, false] {
            let count = at
                .iter()
                .filter(|(id, i)| *i == name && matches!(id, Id::Tcp(_)) == tcp)
                .count();
            assert!(
                count > 0,
                "{name} got no {} client",
                if tcp { "tcp" } else { "ws" }
            );
        }
    }
    let per_instance = |name: &str| at.values().filter(|i| *i == name).count();
    eprintln!(
        "300 clients through HAProxy: i1 {}, i2 {}, i3 {}",
        per_instance("i1"),
        per_instance("i2"),
        per_instance("i3")
    );
}

/// Instance 1's monitor shows the sessions of instances 2 and 3, with the real clients.
async fn assert_monitor_shows_remote_sessions(seen: &Mutex<Seen>, at: &HashMap<Id, String>) {
    let remote: Vec<(String, Id)> = at
        .iter()
        .filter(|(_, i)| *i != "i1")
        .map(|(id, i)| (i.clone(), id.clone()))
        .collect();
    until(
        seen,
        "instance 1's monitor misses sessions of instances 2 and 3",
        |seen| remote.iter().all(|r| seen.opened.contains(r)),
    )
    .await;
}

/// Waits until every client of `on_i3` has seen its close, and no other client has.
async fn wait_closed_exactly(closed_rx: &mut mpsc::Receiver<Id>, on_i3: &HashSet<Id>) {
    let mut closed = HashSet::new();
    while closed.len() < on_i3.len() {
        let id = tokio::time::timeout(TIMEOUT, closed_rx.recv())
            .await
            .expect("instance 3's clients see their close in time")
            .unwrap();
        assert!(
            on_i3.contains(&id),
            "{id:?} was closed but it was not on i3"
        );
        closed.insert(id);
    }
}

/// Instance 1's monitor closed every session of instance 3, and missed nothing.
async fn assert_monitor_dropped_instance_3(seen: &Mutex<Seen>) {
    until(
        seen,
        "instance 1's monitor still shows instance 3's sessions",
        |seen| !seen.open.iter().any(|(i, _)| i == "i3"),
    )
    .await;
    assert_eq!(
        seen.lock().unwrap().lagged,
        0,
        "instance 1's monitor lagged"
    );
}

/// New clients go to the instances that are left and complete every round trip.
async fn late_clients_go_to_the_instances_left(
    proxy: &Proxy,
    closed_tx: &mpsc::Sender<Id>,
    i1: &RunningServer,
    i2: &RunningServer,
) {
    let mut late = Clients::spawn(1000, LATE_CLIENTS, LATE_CLIENTS, proxy, closed_tx);
    let late_ids = late.all_ready(TIMEOUT, "late clients served in time").await;
    let at = placement(&[("i1", i1), ("i2", i2)]);
    assert!(late_ids.iter().all(|id| at.contains_key(id)));
    for outcome in late.finish().await {
        assert_eq!(outcome, Outcome::Completed);
    }
}

#[tokio::test]
async fn the_monitor_says_degraded_without_redis_and_recovers() {
    let Some(bins) = tools(
        "the_monitor_says_degraded_without_redis_and_recovers",
        &["redis-server"],
    ) else {
        return;
    };
    let dir = Arc::new(tempdir::Dir::new("redis"));
    let mut redis = Redis::start(&bins[0], Arc::clone(&dir)).await;
    let a = start_instance("a", &redis.url()).await;
    let b = start_instance("b", &redis.url()).await;
    let mut monitor = wait_cluster_ok(&a).await;
    wait_cluster_ok(&b).await;
    let mut on_b = ws_connect(&b, "/ws?tag=onb", &[]).await.unwrap();
    monitor
        .wait_for(
            |e| matches!(e, MonitorEvent::SessionOpened(o) if o.tag.as_deref() == Some("onb")),
        )
        .await;

    // Redis goes away: the feed says so, b's session is closed on it, the echo goes on.
    redis.child.kill().await.unwrap();
    let status = monitor
        .wait_for(|e| matches!(e, MonitorEvent::Status(s) if s.state == "degraded"))
        .await;
    let MonitorEvent::Status(status) = status else {
        unreachable!()
    };
    assert!(status.detail.contains("Redis"), "{}", status.detail);
    monitor
        .wait_for(
            |e| matches!(e, MonitorEvent::SessionClosed(c) if c.instance.as_deref() == Some("b")),
        )
        .await;
    let mut c = socklab_tests::LineClient::connect(a.addrs.tcp[0]).await;
    // a runs with --proxy-protocol: a v1 header as the proxy would send it.
    c.send(b"PROXY TCP4 192.0.2.1 127.0.0.1 1234 21566\r\nstill here\n")
        .await;
    assert_stamped(&c.line().await, b"still here\n");
    on_b.send(Message::text("bridge too")).await.unwrap();
    match socklab_tests::next_message(&mut on_b).await {
        Ok(Message::Text(t)) => assert_stamped(t.as_bytes(), b"bridge too"),
        other => panic!("bridge reply, got {other:?}"),
    }

    // Redis is back: ok again, and b's open session reappears on a's feed. The two come in
    // either order (a's subscription can bring b's snapshot before a's publisher is back).
    let _redis = Redis::start(&bins[0], dir).await;
    let (mut ok, mut back) = (false, false);
    monitor
        .wait_for(|e| {
            match e {
                MonitorEvent::Status(s) if s.state == "ok" => ok = true,
                MonitorEvent::SessionOpened(o) if o.tag.as_deref() == Some("onb") => back = true,
                _ => {}
            }
            ok && back
        })
        .await;
    a.stop().await;
    b.stop().await;
}

#[test]
fn the_shipped_proxy_configs_are_valid() {
    let Some(bins) = tools("the_shipped_proxy_configs_are_valid", &["haproxy", "nginx"]) else {
        return;
    };
    let deploy = repo_root().join("deploy");
    // `what` names the check in the failure message.
    let check = |bin: &std::path::Path, flags: &[&str], file: &str, what: &str| {
        let out = std::process::Command::new(bin)
            .args(flags)
            .arg(deploy.join(file))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    check(&bins[0], &["-c", "-f"], "haproxy.cfg", "haproxy -c");
    check(
        &bins[1],
        &["-t", "-c"],
        "nginx.conf",
        "nginx -t (needs libnginx-mod-stream)",
    );
}

/// A redis-server on a loopback TCP port (for URLs with credentials or TLS), started with
/// `args` added; another port is tried if the one picked was taken meanwhile.
async fn redis_on_tcp(bin: &Path, args: &[&str]) -> (Child, u16) {
    for _ in 0..5 {
        // redis-server cannot take an inherited socket: a free port is picked and released,
        // and the start is tried again on another when it was taken meanwhile.
        let port = StdListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let mut child = Command::new(bin)
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(args)
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server starts");
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        while child.try_wait().unwrap().is_none() {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)).await {
                // Up: it answers (+PONG, or -NOAUTH with a password).
                let mut b = [0u8; 1];
                if s.write_all(b"PING\r\n").await.is_ok()
                    && s.read_exact(&mut b).await.is_ok()
                    && (b[0] == b'+' || b[0] == b'-')
                {
                    return (child, port);
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "redis-server did not come up"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!("could not start redis-server on a free port");
}

/// `/api/info`'s cluster part.
async fn cluster_info(server: &RunningServer) -> socklab_protocol::events::ClusterInfo {
    let info = http::get(server.addrs.http[0], "/api/info", &[]).await;
    let info: socklab_protocol::ServerInfo = serde_json::from_slice(&info.body).unwrap();
    info.cluster.expect("cluster info with --monitor-redis")
}

/// This process's resident memory, in KiB (each test is its own process under nextest).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// `PUBLISH channel payload` as a RESP command.
fn publish_cmd(out: &mut Vec<u8>, channel: &str, payload: &str) {
    out.extend_from_slice(b"*3\r\n$7\r\nPUBLISH\r\n");
    for part in [channel, payload] {
        out.extend_from_slice(format!("${}\r\n{part}\r\n", part.len()).as_bytes());
    }
}

/// Fake `session_opened` events published in the flood test.
const FAKES: usize = 100_000;
/// The flood test's instance keeps at most this many remote sessions.
const CAP: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_fake_sessions_on_redis_is_capped_and_the_echo_goes_on() {
    let Some(bins) = tools("a_flood_of_fake_sessions_on_redis", &["redis-server"]) else {
        return;
    };
    let dir = Arc::new(tempdir::Dir::new("redis"));
    let redis = Redis::start(&bins[0], dir).await;
    let url = redis.url();
    let a = start_server_with(move |c| {
        c.instance = Some("a".into());
        c.monitor_redis = Some(url);
        c.monitor_redis_max_sessions = CAP;
        c.monitor_redis_max_per_instance = 600;
        c.monitor_redis_max_instances = 4;
    })
    .await;
    let _feed = wait_cluster_ok(&a).await;
    let rss_before = rss_kib();

    // Round trips on the echo all through the flood.
    let (stop_tx, echoing) = echo_until_stopped(a.addrs.tcp[0]);
    publish_fake_sessions(&redis.socket).await;

    // Every fake taken or refused, and no more than the cap kept.
    let info = wait_every_fake_handled(&a).await;
    assert_eq!(info.remote_sessions, CAP, "{info:?}");
    assert_eq!(info.instances, 4, "{info:?}");
    assert_eq!(info.dropped_over_cap, (FAKES - CAP) as u64, "{info:?}");
    assert_eq!((info.dropped_malformed, info.dropped_oversized), (0, 0));
    let grown = rss_kib().saturating_sub(rss_before);
    eprintln!("100,000 fake sessions published: {info:?}; RSS grew {grown} KiB");
    // The exact bound is the count above; memory is the sanity check. Kept, 1,000 sessions are
    // well under 1 MB, and parsing the flood leaves ~10 MB in the allocator; without the caps
    // the 100,000 kept sessions grow RSS by ~70 MB.
    assert!(
        grown < 32 * 1024,
        "RSS grew {grown} KiB for {CAP} kept sessions"
    );

    stop_tx.send(true).unwrap();
    let (mut c, rounds) = tokio::time::timeout(TIMEOUT, echoing)
        .await
        .expect("the echo kept answering")
        .unwrap();
    assert!(rounds > 0, "no round trip during the flood");
    c.send(b"after\n").await;
    assert_stamped(&c.line().await, b"after\n");
    a.stop().await;
}

/// One echo client doing round trips until told to stop; then its client and round count.
fn echo_until_stopped(
    echo: SocketAddr,
) -> (
    watch::Sender<bool>,
    tokio::task::JoinHandle<(socklab_tests::LineClient, u32)>,
) {
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let echoing = tokio::spawn(async move {
        let mut c = socklab_tests::LineClient::connect(echo).await;
        let mut rounds = 0u32;
        while !*stop_rx.borrow_and_update() {
            c.send(format!("during {rounds}\n").as_bytes()).await;
            assert_stamped(&c.line().await, format!("during {rounds}\n").as_bytes());
            rounds += 1;
        }
        (c, rounds)
    });
    (stop_tx, echoing)
}

/// Publishes [`FAKES`] `session_opened` from 10 made-up instances, as anyone with PUBLISH
/// could send.
async fn publish_fake_sessions(socket: &Path) {
    let mut publisher = tokio::net::UnixStream::connect(socket).await.unwrap();
    for batch in 0..FAKES / 1000 {
        let mut cmds = Vec::new();
        for i in 0..1000 {
            let n = batch * 1000 + i;
            let event = format!(
                r#"{{"type":"session_opened","id":{n},"kind":"tcp","peer":"192.0.2.{}:{}","local":"127.0.0.1:21566","at":"2026-01-01T00:00:00+00:00","instance":"fake{}"}}"#,
                n % 250,
                n % 60_000,
                n % 10
            );
            publish_cmd(&mut cmds, "socklab:events", &event);
        }
        publisher.write_all(&cmds).await.unwrap();
        // 1000 integer replies (`:N\r\n`): read them so Redis is not kept waiting.
        let mut replies = 0;
        let mut buf = [0u8; 8192];
        while replies < 1000 {
            let n = publisher.read(&mut buf).await.unwrap();
            assert!(n > 0, "redis closed the publisher");
            replies += buf[..n].iter().filter(|&&b| b == b'\n').count();
        }
    }
}

/// Polls `/api/info` until every fake is counted as kept or dropped; its cluster part then.
async fn wait_every_fake_handled(a: &RunningServer) -> socklab_protocol::events::ClusterInfo {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let info = cluster_info(a).await;
        if info.remote_sessions as u64 + info.dropped_over_cap >= FAKES as u64 {
            return info;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the fakes were not all handled: {info:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn credentials_in_the_url_reach_a_redis_with_a_password() {
    let Some(bins) = tools("credentials_in_the_url_reach_a_redis", &["redis-server"]) else {
        return;
    };
    let (_redis, port) = redis_on_tcp(&bins[0], &["--requirepass", "s3cret-pw"]).await;
    let good = format!("redis://default:s3cret-pw@127.0.0.1:{port}/");
    let a = start_server_with(move |c| {
        c.instance = Some("a".into());
        c.monitor_redis = Some(good);
    })
    .await;
    let mut feed = wait_cluster_ok(&a).await;
    let b =
        start_instance_plain("b", &format!("redis://default:s3cret-pw@127.0.0.1:{port}/")).await;
    let _on_b = ws_connect(&b, "/ws?tag=onb", &[]).await.unwrap();
    feed.wait_for(
        |e| matches!(e, MonitorEvent::SessionOpened(o) if o.tag.as_deref() == Some("onb")),
    )
    .await;

    // A wrong password: degraded, saying why, and without showing the password. (A new
    // subscriber's first event is the status; a reason replaces "connecting" once known.)
    let bad = format!("redis://default:wrong-pw@127.0.0.1:{port}/");
    let c = start_instance_plain("c", &bad).await;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let detail = loop {
        let mut feed = Monitor::connect(&c).await;
        if let MonitorEvent::Status(s) = feed.next().await {
            assert_eq!(s.state, "degraded", "{}", s.detail);
            if !s.detail.contains("(connecting)") {
                break s.detail;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "no reason given");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!detail.contains("wrong-pw"), "{detail}");
    assert!(detail.contains("default:***@"), "{detail}");
    for s in [a, b, c] {
        s.stop().await;
    }
}

/// An instance in the cluster monitor, without a proxy in front.
async fn start_instance_plain(name: &str, redis: &str) -> RunningServer {
    let (name, redis) = (name.to_owned(), redis.to_owned());
    start_server_with(move |c| {
        c.instance = Some(name);
        c.monitor_redis = Some(redis);
    })
    .await
}
