//! `/metrics`: the exposition after known traffic, linted by promtool, and scraped by a real
//! Prometheus, run with the shipped deploy/ scrape configs, whose query API must then give
//! back what happened; and the Grafana dashboard in deploy/ names only metrics that exist.
//!
//! Needs Debian's `prometheus` (it brings promtool). `cargo xtask test` installs it and sets
//! SOCKLAB_REQUIRE_PROMETHEUS=1, so there (and wherever `CI` is set) a missing one fails the
//! test; elsewhere these tests say they are skipped and pass.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use socklab_server::RunningServer;
use socklab_tests::skip::{Need, skip_unless_required};
use socklab_tests::{LineClient, Ws, http, next_message, send_text, start_server_with, ws_connect};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// Where a Debian tool is, or `None` after recording why `test` is skipped (a failure where
/// it must run: `CI`, `SOCKLAB_REQUIRE_PROMETHEUS=1`).
fn tool(test: &str, name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain(["/usr/bin".into(), "/usr/sbin".into()])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        let msg = format!(
            "{name} not installed (Debian: apt-get install prometheus; `cargo xtask test` does it)"
        );
        skip_unless_required(test, Need::Prometheus, &msg);
    }
    found
}

/// Known traffic: one TCP echo client and one `/ws` client that each made one round trip and
/// stay open, one `/ws` handshake refused for its Origin, one monitor subscriber.
struct Traffic {
    _tcp: LineClient,
    _ws: Ws,
    _monitor: Ws,
}

async fn drive(server: &RunningServer) -> Traffic {
    let mut tcp = LineClient::connect(server.addrs.tcp[0]).await;
    tcp.send(b"hi\n").await;
    tcp.line().await;
    let mut ws = ws_connect(server, "/ws", &[]).await.unwrap();
    send_text(&mut ws, "hello").await;
    next_message(&mut ws).await.unwrap();
    let refused = ws_connect(server, "/ws", &[("Origin", "http://evil.example")]).await;
    assert!(refused.is_err(), "a foreign Origin is refused");
    let monitor = ws_connect(server, "/api/events", &[]).await.unwrap();
    Traffic {
        _tcp: tcp,
        _ws: ws,
        _monitor: monitor,
    }
}

/// The exposition's value of the series `name{labels}` (labels as rendered), waiting until it
/// is `want` (the bridge's upstream session opens a moment after the handshake).
async fn wait_for_sample(addr: SocketAddr, series: &str, want: f64) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = http::get(addr, "/metrics", &[]).await.text();
        let got = text.lines().find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .parse::<f64>()
                .ok()
        });
        if got == Some(want) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{series} is {got:?}, not {want}, in\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn metrics_count_sessions_bytes_and_refusals() {
    let server = start_server_with(|c| c.instance = Some("m1".into())).await;
    let _traffic = drive(&server).await;
    let http = server.addrs.http[0];
    wait_for_sample(
        http,
        r#"socklab_sessions_open{instance="m1",kind="tcp"}"#,
        2.0,
    )
    .await;
    // The monitor's subscriber is counted by the server's task for the upgraded connection,
    // a moment after the client's handshake is done.
    let text = wait_for_sample(http, r#"socklab_monitor_subscribers{instance="m1"}"#, 1.0).await;
    for line in [
        r#"socklab_sessions_open{instance="m1",kind="ws"} 1"#,
        // "hi\n" from the TCP client, "hello\n" from the bridge's upstream connection.
        r#"socklab_bytes_in_total{instance="m1",kind="tcp"} 9"#,
        r#"socklab_bytes_in_total{instance="m1",kind="ws"} 5"#,
        r#"socklab_messages_in_total{instance="m1",kind="ws"} 1"#,
        r#"socklab_messages_out_total{instance="m1",kind="ws"} 1"#,
        r#"socklab_handshakes_refused_total{instance="m1",reason="origin",endpoint="/ws"} 1"#,
        r#"socklab_monitor_subscribers{instance="m1"} 1"#,
        r#"socklab_bridge_upstream_connect_seconds_count{instance="m1"} 1"#,
        r#"socklab_bridge_round_trip_seconds_count{instance="m1"} 1"#,
        concat!(
            r#"socklab_build_info{instance="m1",version=""#,
            env!("CARGO_PKG_VERSION"),
            r#""} 1"#
        ),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing from\n{text}"
        );
    }
    let response = http::get(http, "/metrics", &[]).await;
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    promtool_check_metrics(&text).await;
    server.stop().await;
}

/// `promtool check metrics`: the exposition parses and follows the naming rules.
async fn promtool_check_metrics(text: &str) {
    let Some(promtool) = tool("promtool_check_metrics", "promtool") else {
        return;
    };
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .await
        .unwrap();
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn metrics_flag_moves_them_to_their_own_listener() {
    let server = start_server_with(|c| c.metrics = Some("127.0.0.1:0".parse().unwrap())).await;
    let own = server.addrs.metrics.expect("a metrics listener");
    let there = http::get(own, "/metrics", &[]).await;
    assert_eq!(there.status, 200);
    assert!(
        there
            .text()
            .contains("socklab_sessions_open{kind=\"tcp\"} 0"),
        "{}",
        there.text()
    );
    let not_here = http::get(server.addrs.http[0], "/metrics", &[]).await;
    assert_eq!(not_here.status, 404, "not on the HTTP port with --metrics");
    assert_eq!(
        http::get(own, "/api/sessions", &[]).await.status,
        404,
        "only /metrics there"
    );
    server.stop().await;
}

/// A Prometheus scraping one target every second, killed when dropped.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Prometheus {
    /// Runs the shipped `deploy/{file}` with each of its `targets` (as written there)
    /// replaced by a test server's address, scraping every second: its honor_labels is what
    /// keeps socklab's own `instance` (--instance) on the series rather than Prometheus's
    /// host:port.
    async fn start(bin: PathBuf, file: &str, targets: &[(&str, SocketAddr)]) -> Prometheus {
        let dir = std::env::temp_dir().join(format!(
            "socklab-prometheus-{}-{}",
            std::process::id(),
            targets[0].1.port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let dir = TempDir(dir);
        let mut config = std::fs::read_to_string(deploy(file))
            .unwrap()
            .replace("scrape_interval: 15s", "scrape_interval: 1s")
            .replace("scrape_timeout: 5s", "scrape_timeout: 1s");
        for (shipped, test) in targets {
            let shipped = format!("'{shipped}'");
            assert!(config.contains(&shipped), "deploy/{file} names {shipped}");
            config = config.replace(&shipped, &format!("'{test}'"));
        }
        assert!(
            config.contains("scrape_interval: 1s"),
            "deploy/{file} no longer has the interval this test rewrites"
        );
        let config_path = dir.0.join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let mut child = Command::new(bin)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.0.join("data").display()
            ))
            .arg("--web.listen-address=127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut log = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = log.next_line().await.unwrap() {
                if line.contains("msg=\"Listening on\"") {
                    let addr = line.rsplit("address=").next().unwrap();
                    return addr.trim().parse::<SocketAddr>().unwrap();
                }
            }
            panic!("prometheus exited before it listened");
        })
        .await
        .expect("prometheus listens within 20 s");
        // Keep draining its log so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = log.next_line().await {} });
        Prometheus {
            child,
            addr,
            _dir: dir,
        }
    }

    /// The value of an instant query's only sample, if it has one.
    async fn query(&self, promql: &str) -> Option<f64> {
        let encoded: String = promql
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b == b'_' {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let response = http::get(self.addr, &format!("/api/v1/query?query={encoded}"), &[]).await;
        if response.status == 503 {
            // Still starting (replaying its write-ahead log): "Service Unavailable".
            return None;
        }
        let body = response.text();
        let json: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["status"], "success", "{promql}: {body}");
        let result = json["data"]["result"].as_array()?;
        result.first()?["value"][1].as_str()?.parse().ok()
    }

    /// Waits (scrapes come every second) until `promql` gives `want`.
    async fn wait_for(&self, promql: &str, want: f64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.query(promql).await;
            if got == Some(want) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{promql} is {got:?} in Prometheus, not {want}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test]
async fn prometheus_scrapes_what_happened() {
    let Some(bin) = tool("prometheus_scrapes_what_happened", "prometheus") else {
        return;
    };
    let server = start_server_with(|c| c.instance = Some("prom-test".into())).await;
    let _traffic = drive(&server).await;
    let mut prometheus = Prometheus::start(
        bin,
        "prometheus.yml",
        &[("127.0.0.1:8080", server.addrs.http[0])],
    )
    .await;
    prometheus.wait_for(r#"up{job="socklab"}"#, 1.0).await;
    for (promql, want) in [
        (
            r#"socklab_sessions_open{instance="prom-test",kind="ws"}"#,
            1.0,
        ),
        (
            r#"socklab_sessions_open{instance="prom-test",kind="tcp"}"#,
            2.0,
        ),
        (
            r#"socklab_bytes_in_total{instance="prom-test",kind="tcp"}"#,
            9.0,
        ),
        (
            r#"socklab_bytes_out_total{instance="prom-test",kind="ws"}"#,
            27.0,
        ),
        (
            r#"socklab_handshakes_refused_total{instance="prom-test",reason="origin",endpoint="/ws"}"#,
            1.0,
        ),
        (r#"sum(socklab_monitor_subscribers)"#, 1.0),
    ] {
        prometheus.wait_for(promql, want).await;
    }
    prometheus.child.kill().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn prometheus_scrapes_the_cluster_by_instance() {
    let Some(bin) = tool("prometheus_scrapes_the_cluster_by_instance", "prometheus") else {
        return;
    };
    let mut servers = Vec::new();
    for name in ["i1", "i2", "i3"] {
        servers.push(start_server_with(|c| c.instance = Some(name.into())).await);
    }
    // One TCP session on i2 only, so the instances differ.
    let mut tcp = LineClient::connect(servers[1].addrs.tcp[0]).await;
    tcp.send(b"hi\n").await;
    tcp.line().await;
    let targets: Vec<(&str, SocketAddr)> = ["127.0.0.1:8101", "127.0.0.1:8102", "127.0.0.1:8103"]
        .into_iter()
        .zip(servers.iter().map(|s| s.addrs.http[0]))
        .collect();
    let mut prometheus = Prometheus::start(bin, "prometheus-cluster.yml", &targets).await;
    prometheus.wait_for(r#"sum(up{job="socklab"})"#, 3.0).await;
    for (promql, want) in [
        (r#"count(socklab_build_info{instance=~"i[123]"})"#, 3.0),
        (r#"socklab_sessions_open{instance="i2",kind="tcp"}"#, 1.0),
        (r#"socklab_sessions_open{instance="i1",kind="tcp"}"#, 0.0),
    ] {
        prometheus.wait_for(promql, want).await;
    }
    // Without honor_labels socklab's names would have moved to `exported_instance`.
    let moved = r#"count(socklab_build_info{exported_instance!=""})"#;
    assert_eq!(prometheus.query(moved).await, None, "{moved}");
    prometheus.child.kill().await.unwrap();
    drop(tcp);
    for server in servers {
        server.stop().await;
    }
}

/// A file in the repository's deploy/.
fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("deploy")
        .join(file)
}

/// Runs promtool with `args`, asserting it succeeds; `what` names the check on failure.
fn promtool(bin: &Path, args: &[&std::ffi::OsStr], what: &str) {
    let out = std::process::Command::new(bin).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_shipped_scrape_configs_are_valid() {
    let Some(bin) = tool("the_shipped_scrape_configs_are_valid", "promtool") else {
        return;
    };
    for file in ["prometheus.yml", "prometheus-cluster.yml"] {
        let path = deploy(file);
        let text = std::fs::read_to_string(&path).unwrap();
        // Without it socklab's `instance` label becomes `exported_instance`.
        assert!(
            text.contains("honor_labels: true"),
            "deploy/{file} keeps socklab's instance label"
        );
        promtool(
            &bin,
            &["check".as_ref(), "config".as_ref(), path.as_os_str()],
            &format!("promtool check config deploy/{file}"),
        );
    }
}

/// Every PromQL expression of the dashboard: its panels' `expr` and its variables' queries
/// (`label_values(…)`, Grafana's, not PromQL), in the order they appear.
fn dashboard_queries(dashboard: &Value) -> (Vec<String>, Vec<String>) {
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("every target has an expr");
            exprs.push(expr.to_owned());
        }
    }
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
        .iter()
        .filter_map(|v| v["definition"].as_str().map(str::to_owned))
        .collect();
    (exprs, variables)
}

/// The `socklab_…` metric names in a query.
fn metric_names(query: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = query;
    while let Some(at) = rest.find("socklab_") {
        let name = &rest[at..];
        let end = name
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(name.len());
        names.push(&name[..end]);
        rest = &name[end..];
    }
    names
}

/// The exposition's sample names and its families' `# TYPE`s.
fn exposition_names(text: &str) -> (HashSet<&str>, HashMap<&str, &str>) {
    let mut samples = HashSet::new();
    let mut types = HashMap::new();
    for line in text.lines() {
        if let Some(decl) = line.strip_prefix("# TYPE ") {
            let mut parts = decl.split_whitespace();
            if let (Some(name), Some(kind)) = (parts.next(), parts.next()) {
                types.insert(name, kind);
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            samples.insert(&line[..end]);
        }
    }
    (samples, types)
}

/// `name`'s family: `x` for `x_bucket`/`x_sum`/`x_count` of a histogram or summary `x`.
fn family<'a>(name: &'a str, types: &HashMap<&str, &str>) -> &'a str {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|suffix| {
            let base = name.strip_suffix(suffix)?;
            let kind = types.get(base)?;
            let fits = matches!(*kind, "histogram") || (*kind == "summary" && *suffix != "_bucket");
            fits.then_some(base)
        })
        .unwrap_or(name)
}

#[tokio::test]
async fn the_grafana_dashboard_queries_only_exposed_metrics() {
    let text = std::fs::read_to_string(deploy("grafana-dashboard.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is valid JSON");
    let (exprs, variables) = dashboard_queries(&dashboard);
    let used: HashSet<&str> = exprs
        .iter()
        .chain(&variables)
        .flat_map(|q| metric_names(q))
        .collect();
    // The panels the issue asks for.
    for name in [
        "socklab_sessions_open",
        "socklab_messages_in_total",
        "socklab_bytes_out_total",
        "socklab_bridge_round_trip_seconds_bucket",
        "socklab_handshakes_refused_total",
        "socklab_monitor_events_dropped_total",
    ] {
        assert!(used.contains(name), "no dashboard query uses {name}");
    }
    let server = start_server_with(|c| c.instance = Some("dash".into())).await;
    let _traffic = drive(&server).await;
    // And one closed session: closes are counted by reason only once one happened.
    let mut closed = LineClient::connect(server.addrs.tcp[0]).await;
    closed.send(b"bye\n").await;
    closed.line().await;
    drop(closed);
    let http = server.addrs.http[0];
    wait_for_sample(
        http,
        r#"socklab_bridge_round_trip_seconds_count{instance="dash"}"#,
        1.0,
    )
    .await;
    let exposition = wait_for_sample(
        http,
        r#"socklab_sessions_closed_total{instance="dash",kind="tcp",reason="client_closed"}"#,
        1.0,
    )
    .await;
    let (samples, types) = exposition_names(&exposition);
    for name in &used {
        let family = family(name, &types);
        assert!(
            types.contains_key(family) && samples.contains(name),
            "the dashboard queries {name}, which /metrics does not have:\n{exposition}"
        );
    }
    server.stop().await;
    promtool_check_queries(&exprs);
}

/// `promtool check rules` on the dashboard's expressions as recording rules: Prometheus's own
/// parser reads each one (Grafana's variables replaced by what they stand for).
fn promtool_check_queries(exprs: &[String]) {
    let Some(bin) = tool("promtool_check_queries", "promtool") else {
        return;
    };
    let mut rules = String::from("groups:\n  - name: socklab_dashboard\n    rules:\n");
    for (i, expr) in exprs.iter().enumerate() {
        let expr = expr
            .replace("$__rate_interval", "1m")
            .replace("$instance", ".*");
        let quoted = serde_json::to_string(&expr).unwrap();
        rules.push_str(&format!(
            "      - record: socklab_dashboard:query{i}\n        expr: {quoted}\n"
        ));
    }
    let path = std::env::temp_dir().join(format!(
        "socklab-dashboard-rules-{}.yml",
        std::process::id()
    ));
    std::fs::write(&path, &rules).unwrap();
    let file = TempFile(path);
    promtool(
        &bin,
        &["check".as_ref(), "rules".as_ref(), file.0.as_os_str()],
        &format!("promtool check rules on the dashboard's queries\n{rules}"),
    );
}

struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
