//! The server's counters for `GET /metrics` (served by `http/metrics.rs`) in the Prometheus text format, one recorder per
//! server (no global recorder, so servers started side by side in one test process keep their
//! own counts), every series labelled with `--instance` when it is set.
//!
//! The hot path stays as it was: bytes and messages are counted where they always were, in
//! each session's own atomics, and only added up per kind when Prometheus scrapes (sessions
//! that closed left their totals in [`KindTotals`]). What happens once per session or per
//! handshake (opened, closed, refused) is counted as it happens.
//!
//! Why `metrics-exporter-prometheus` and not `prometheus-client`: the latter writes only
//! OpenMetrics (`# TYPE x counter` with `x_total` samples, `# EOF`), which Debian's promtool
//! 2.42 cannot lint (`x_total no help text`); this one writes the Prometheus text format that
//! Prometheus and promtool both read. Without its HTTP listener (default features off) it adds
//! no runtime, only the recorder.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Key, Label, Recorder, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use socklab_protocol::{CaptureStats, SessionKind};

use self::sharded::ShardedHistogram;

mod sharded;

/// Every session kind, in the order of [`kind_index`].
pub(crate) const KINDS: [SessionKind; 5] = SessionKind::ALL;

/// Bucket bounds (seconds) of both histograms (the only two): 100 µs on loopback up to the 5 s connect
/// timeout.
const BUCKETS: [f64; 15] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Set (to anything) in the server's environment, it turns metrics recording off: every
/// handle is a no-op and `/metrics` says so. For `cargo xtask bench-metrics` only, which
/// measures what recording costs per message (the same binary with and without it); not a
/// flag, because no deployment should want it.
pub(crate) const OFF_ENV: &str = "SOCKLAB_BENCH_METRICS_OFF";

/// How often histogram samples are folded into their buckets, so they never pile up between
/// scrapes (or without any).
pub(crate) const UPKEEP: Duration = Duration::from_secs(5);

/// The index of `kind` in [`KINDS`].
pub(crate) fn kind_index(kind: SessionKind) -> usize {
    match kind {
        SessionKind::Tcp => 0,
        SessionKind::Udp => 1,
        SessionKind::Banner => 2,
        SessionKind::Ws => 3,
        SessionKind::Wt => 4,
    }
}

/// Bytes and messages of one kind's sessions: those that closed, or (summed at scrape time)
/// those still open.
#[derive(Debug, Default)]
pub(crate) struct KindTotals {
    /// Bytes received from clients.
    pub bytes_in: AtomicU64,
    /// Bytes sent to clients.
    pub bytes_out: AtomicU64,
    /// Messages (WebSocket messages, datagrams; reads and writes for TCP) from clients.
    pub msgs_in: AtomicU64,
    /// Messages to clients.
    pub msgs_out: AtomicU64,
}

impl KindTotals {
    /// Adds a session's `[bytes in, bytes out, messages in, messages out]`.
    pub fn add(&self, counts: [u64; 4]) {
        for (total, n) in self.all().into_iter().zip(counts) {
            total.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// `[bytes in, bytes out, messages in, messages out]`.
    pub fn get(&self) -> [u64; 4] {
        self.all().map(|a| a.load(Ordering::Relaxed))
    }

    fn all(&self) -> [&AtomicU64; 4] {
        [
            &self.bytes_in,
            &self.bytes_out,
            &self.msgs_in,
            &self.msgs_out,
        ]
    }
}

/// Why a handshake was refused.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Refusal {
    /// A foreign Origin: 403.
    Origin,
    /// `--max-connections` reached: 503.
    Limit,
    /// Not a valid WebSocket upgrade (400, 405, 426 …).
    BadRequest,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Refusal::Origin => "origin",
            Refusal::Limit => "limit",
            Refusal::BadRequest => "bad_request",
        }
    }
}

/// One server's metrics.
#[derive(Debug)]
pub(crate) struct Metrics {
    /// False when [`OFF_ENV`] is set: nothing is recorded.
    on: bool,
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// Bytes and messages of closed sessions, by kind (added under the session map's lock,
    /// so a scrape never sees a session both open and closed, or neither).
    pub closed_totals: [KindTotals; 5],
    opened: [Counter; 5],
    open: [Gauge; 5],
    bytes_in: [Counter; 5],
    bytes_out: [Counter; 5],
    msgs_in: [Counter; 5],
    msgs_out: [Counter; 5],
    connect: Histogram,
    /// Recorded per message by every runtime: sharded by thread, summed at scrape time.
    rtt: ShardedHistogram,
    lagged: Counter,
    subscribers: Gauge,
    wt_sent: Counter,
    wt_lost: Counter,
}

impl Metrics {
    /// A fresh set, every series labelled `instance` when one is given.
    pub fn new(instance: Option<&str>) -> Metrics {
        // Only an empty bucket list is refused.
        let mut builder = PrometheusBuilder::new()
            .set_buckets(&BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        if let Some(instance) = instance {
            builder = builder.add_global_label("instance", instance);
        }
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        describe(&recorder);
        let per_kind =
            |name: &'static str| KINDS.map(|k| counter(&recorder, name, &[("kind", k.as_str())]));
        let m = Metrics {
            opened: per_kind("socklab_sessions_opened_total"),
            open: KINDS.map(|k| gauge(&recorder, "socklab_sessions_open", &[("kind", k.as_str())])),
            bytes_in: per_kind("socklab_bytes_in_total"),
            bytes_out: per_kind("socklab_bytes_out_total"),
            msgs_in: per_kind("socklab_messages_in_total"),
            msgs_out: per_kind("socklab_messages_out_total"),
            connect: recorder.register_histogram(
                &Key::from_static_name("socklab_bridge_upstream_connect_seconds"),
                &META,
            ),
            rtt: ShardedHistogram::new(RTT, help(RTT), &BUCKETS, instance),
            lagged: counter(&recorder, "socklab_monitor_events_dropped_total", &[]),
            subscribers: gauge(&recorder, "socklab_monitor_subscribers", &[]),
            wt_sent: counter(&recorder, "socklab_webtransport_datagrams_sent_total", &[]),
            wt_lost: counter(&recorder, "socklab_webtransport_datagrams_lost_total", &[]),
            closed_totals: Default::default(),
            on: true,
            recorder,
            handle,
        };
        if std::env::var_os(OFF_ENV).is_some() {
            return m.off();
        }
        gauge(
            &m.recorder,
            "socklab_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))],
        )
        .set(1.0);
        for r in [Refusal::Origin, Refusal::Limit, Refusal::BadRequest] {
            // Present from the start at 0, so `increase()` sees the first refusal.
            m.refused_counter(r, "/ws").increment(0);
        }
        m
    }

    /// The same set with every handle a no-op ([`OFF_ENV`]).
    fn off(self) -> Metrics {
        let noop = || KINDS.map(|_| Counter::noop());
        Metrics {
            on: false,
            opened: noop(),
            open: KINDS.map(|_| Gauge::noop()),
            bytes_in: noop(),
            bytes_out: noop(),
            msgs_in: noop(),
            msgs_out: noop(),
            connect: Histogram::noop(),
            lagged: Counter::noop(),
            subscribers: Gauge::noop(),
            wt_sent: Counter::noop(),
            wt_lost: Counter::noop(),
            ..self
        }
    }

    /// A session opened.
    pub fn opened(&self, kind: SessionKind) {
        self.opened[kind_index(kind)].increment(1);
    }

    /// A session closed, for `reason` (reduced to a few classes, so free-text reasons cannot
    /// make new series without end).
    pub fn closed(&self, kind: SessionKind, reason: &str) {
        if !self.on {
            return;
        }
        counter(
            &self.recorder,
            "socklab_sessions_closed_total",
            &[("kind", kind.as_str()), ("reason", reason_class(reason))],
        )
        .increment(1);
    }

    /// A handshake on `endpoint` was refused.
    pub fn refused(&self, why: Refusal, endpoint: &'static str) {
        if !self.on {
            return;
        }
        self.refused_counter(why, endpoint).increment(1);
    }

    fn refused_counter(&self, why: Refusal, endpoint: &'static str) -> Counter {
        counter(
            &self.recorder,
            "socklab_handshakes_refused_total",
            &[("reason", why.as_str()), ("endpoint", endpoint)],
        )
    }

    /// The bridge connected to its upstream in `took`.
    pub fn upstream_connected(&self, took: Duration) {
        self.connect.record(took.as_secs_f64());
    }

    /// A client message's first reply came back `took` after the message went upstream (the
    /// bridge reads the clock once per event anyway, so it measures).
    pub fn round_trip(&self, took: Duration) {
        if !self.on {
            return;
        }
        self.rtt.record(took);
    }

    /// A monitor subscriber lost `n` events because it fell behind.
    pub fn events_dropped(&self, n: u64) {
        self.lagged.increment(n);
    }

    /// A WebTransport reply datagram was sent to the browser (`true`) or could not be
    /// (`false`: larger than the path allows, or the session closing).
    pub fn datagram(&self, sent: bool) {
        if sent { &self.wt_sent } else { &self.wt_lost }.increment(1);
    }

    /// A browser's datagram could not be sent on to the UDP upstream (`false`).
    pub fn datagram_upstream(&self, sent: bool) {
        if !sent {
            self.wt_lost.increment(1);
        }
    }

    /// A monitor subscriber, counted until the guard is dropped.
    pub fn subscriber(&self) -> Subscriber {
        self.subscribers.increment(1.0);
        Subscriber(self.subscribers.clone())
    }

    /// The exposition, with the scrape-time values (`open` sessions, `totals` of closed and
    /// open sessions by kind, connections `accepted` by each runtime) set first.
    pub fn render(&self, open: [u64; 5], totals: [[u64; 4]; 5], accepted: &[u64]) -> String {
        if !self.on {
            return format!("# socklab: metrics recording is off ({OFF_ENV} is set)\n");
        }
        for (runtime, &n) in accepted.iter().enumerate() {
            let label = Label::new("runtime", runtime.to_string());
            self.recorder
                .register_counter(
                    &Key::from_static_name("socklab_runtime_connections_accepted_total")
                        .with_extra_labels(vec![label]),
                    &META,
                )
                .absolute(n);
        }
        for i in 0..KINDS.len() {
            self.open[i].set(open[i] as f64);
            let [bi, bo, mi, mo] = totals[i];
            // `absolute` only moves a counter up, which is what a counter may do.
            self.bytes_in[i].absolute(bi);
            self.bytes_out[i].absolute(bo);
            self.msgs_in[i].absolute(mi);
            self.msgs_out[i].absolute(mo);
        }
        let mut text = self.handle.render();
        self.rtt.render(&mut text);
        text
    }

    /// Sets the packet capture's counters (`--capture`) to `stats`, before a scrape: they
    /// exist only while capture runs.
    pub fn capture(&self, stats: CaptureStats) {
        let c = |name, pairs: &[(&'static str, &'static str)]| counter(&self.recorder, name, pairs);
        c("socklab_capture_packets_read_total", &[]).absolute(stats.read);
        c(
            "socklab_capture_packets_dropped_total",
            &[("where", "kernel")],
        )
        .absolute(stats.kernel_dropped);
        c(
            "socklab_capture_packets_dropped_total",
            &[("where", "queue")],
        )
        .absolute(stats.queue_dropped);
        c("socklab_capture_packets_captured_total", &[]).absolute(stats.captured);
        c("socklab_capture_packets_unstored_total", &[]).absolute(stats.unstored);
    }

    /// Folds histogram samples into buckets; run every [`UPKEEP`].
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }
}

/// Counts one monitor subscriber while it lives.
#[derive(Debug)]
pub(crate) struct Subscriber(Gauge);

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

static META: metrics::Metadata<'static> =
    metrics::Metadata::new(module_path!(), metrics::Level::INFO, None);

fn labels(pairs: &[(&'static str, &'static str)]) -> Vec<Label> {
    pairs
        .iter()
        .map(|&(k, v)| Label::from_static_parts(k, v))
        .collect()
}

fn counter(
    r: &PrometheusRecorder,
    name: &'static str,
    pairs: &[(&'static str, &'static str)],
) -> Counter {
    r.register_counter(
        &Key::from_static_name(name).with_extra_labels(labels(pairs)),
        &META,
    )
}

fn gauge(
    r: &PrometheusRecorder,
    name: &'static str,
    pairs: &[(&'static str, &'static str)],
) -> Gauge {
    r.register_gauge(
        &Key::from_static_name(name).with_extra_labels(labels(pairs)),
        &META,
    )
}

/// Each series' unit and help text, as `/metrics` prints them.
const HELP: [(&str, Option<Unit>, &str); 20] = [
    (
        "socklab_runtime_connections_accepted_total",
        None,
        "Connections (TCP echo, banner, HTTP) accepted by each runtime (--threads): how \
             the kernel spread them.",
    ),
    ("socklab_sessions_open", None, "Sessions open now, by kind."),
    (
        "socklab_sessions_opened_total",
        None,
        "Sessions opened, by kind.",
    ),
    (
        "socklab_sessions_closed_total",
        None,
        "Sessions closed, by kind and reason.",
    ),
    (
        "socklab_bytes_in_total",
        Some(Unit::Bytes),
        "Bytes received from clients, by kind.",
    ),
    (
        "socklab_bytes_out_total",
        Some(Unit::Bytes),
        "Bytes sent to clients, by kind.",
    ),
    (
        "socklab_messages_in_total",
        None,
        "Messages from clients (WebSocket messages, datagrams; reads for TCP), by kind.",
    ),
    (
        "socklab_messages_out_total",
        None,
        "Messages to clients (WebSocket messages, datagrams; writes for TCP), by kind.",
    ),
    (
        "socklab_handshakes_refused_total",
        None,
        "WebSocket and WebTransport handshakes refused, by reason (origin 403, limit 503, bad_request).",
    ),
    (
        "socklab_bridge_upstream_connect_seconds",
        Some(Unit::Seconds),
        "Time the bridge took to connect to its upstream.",
    ),
    (
        RTT,
        Some(Unit::Seconds),
        "Per message through the /ws bridge: from forwarding a client message upstream to the first reply after it.",
    ),
    (
        "socklab_monitor_subscribers",
        None,
        "Monitor feed (/api/events) subscribers now.",
    ),
    (
        "socklab_monitor_events_dropped_total",
        None,
        "Monitor events dropped because a subscriber fell behind.",
    ),
    (
        "socklab_webtransport_datagrams_sent_total",
        None,
        "WebTransport datagrams sent to browsers.",
    ),
    (
        "socklab_webtransport_datagrams_lost_total",
        None,
        "WebTransport datagrams that could not be forwarded (to the upstream or the browser).",
    ),
    (
        "socklab_capture_packets_read_total",
        None,
        "--capture: packets read from the raw socket (those the kernel passed socklab's filter).",
    ),
    (
        "socklab_capture_packets_dropped_total",
        None,
        "--capture: packets dropped, by where: kernel (the socket's buffer was full, SO_RXQ_OVFL) or queue (the matching thread fell behind).",
    ),
    (
        "socklab_capture_packets_captured_total",
        None,
        "--capture: packets matched to a socklab session.",
    ),
    (
        "socklab_capture_packets_unstored_total",
        None,
        "--capture: matched packets not kept (--capture-sessions sessions already kept).",
    ),
    (
        "socklab_build_info",
        None,
        "This build: its version as a label, value 1.",
    ),
];

/// The round-trip histogram's name (see [`ShardedHistogram`]).
const RTT: &str = "socklab_bridge_round_trip_seconds";

/// `name`'s help text in [`HELP`].
fn help(name: &str) -> &'static str {
    HELP.iter()
        .find(|(n, _, _)| *n == name)
        .map_or("", |&(_, _, text)| text)
}

fn describe(r: &PrometheusRecorder) {
    for (name, unit, text) in HELP {
        // Counters and gauges share one description table.
        r.describe_counter(name.into(), unit, text.into());
    }
}

/// A close reason reduced to a class: the reasons are free text with addresses and errors in
/// them, labels must be few.
pub(crate) fn reason_class(reason: &str) -> &'static str {
    const CLASSES: [(&str, &str); 14] = [
        ("client closed", "client_closed"),
        ("client reset", "client_reset"),
        ("client went away", "client_went_away"),
        ("client not reading", "client_not_reading"),
        ("server shutting down", "shutdown"),
        ("upstream closed", "upstream_closed"),
        ("upstream failed", "upstream_failed"),
        ("upstream stopped", "upstream_failed"),
        ("upstream ", "upstream_unreachable"),
        ("udp upstream", "upstream_unreachable"),
        ("idle", "idle"),
        ("peer stopped answering", "ping_timeout"),
        ("banner sent", "banner_sent"),
        ("message too big", "message_too_big"),
    ];
    CLASSES
        .iter()
        .find(|(prefix, _)| reason.starts_with(prefix))
        .map_or_else(
            || {
                if reason.contains("error") {
                    "error"
                } else {
                    "other"
                }
            },
            |&(_, class)| class,
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_index_is_the_place_in_kinds() {
        for (i, kind) in KINDS.into_iter().enumerate() {
            assert_eq!(kind_index(kind), i, "{kind}");
        }
    }

    #[test]
    fn reasons_fall_into_few_classes() {
        assert_eq!(reason_class("client closed (1000 bye)"), "client_closed");
        assert_eq!(
            reason_class("upstream 127.0.0.1:1 unreachable: refused"),
            "upstream_unreachable"
        );
        assert_eq!(
            reason_class("upstream failed: broken pipe"),
            "upstream_failed"
        );
        assert_eq!(reason_class("idle for 300s"), "idle");
        assert_eq!(reason_class("read error: x"), "error");
        assert_eq!(reason_class("whatever"), "other");
    }

    #[test]
    fn off_records_nothing_and_says_so() {
        let m = Metrics::new(None).off();
        m.opened(SessionKind::Tcp);
        m.closed(SessionKind::Tcp, "client closed");
        m.round_trip(Duration::from_millis(1));
        let text = m.render([1, 0, 0, 0, 0], [[1, 2, 3, 4]; 5], &[1]);
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains(OFF_ENV), "{text}");
    }

    #[test]
    fn the_exposition_is_labelled_and_counts() {
        let m = Metrics::new(Some("a"));
        m.opened(SessionKind::Ws);
        m.closed(SessionKind::Ws, "client closed");
        m.refused(Refusal::Origin, "/ws");
        let mut totals = [[0; 4]; 5];
        totals[3] = [3, 7, 1, 1];
        let _a = m.subscriber();
        let b = m.subscriber();
        drop(m.subscriber());
        m.capture(CaptureStats {
            read: 9,
            kernel_dropped: 2,
            ..CaptureStats::default()
        });
        let text = m.render([0, 0, 0, 1, 0], totals, &[3, 4]);
        drop(b);
        for line in [
            r#"socklab_sessions_opened_total{instance="a",kind="ws"} 1"#,
            r#"socklab_sessions_closed_total{instance="a",kind="ws",reason="client_closed"} 1"#,
            r#"socklab_handshakes_refused_total{instance="a",reason="origin",endpoint="/ws"} 1"#,
            r#"socklab_bytes_out_total{instance="a",kind="ws"} 7"#,
            r#"socklab_sessions_open{instance="a",kind="ws"} 1"#,
            r#"socklab_monitor_subscribers{instance="a"} 2"#,
            r#"socklab_capture_packets_read_total{instance="a"} 9"#,
            r#"socklab_capture_packets_dropped_total{instance="a",where="kernel"} 2"#,
            r#"socklab_capture_packets_dropped_total{instance="a",where="queue"} 0"#,
            r#"socklab_runtime_connections_accepted_total{instance="a",runtime="1"} 4"#,
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }
}
