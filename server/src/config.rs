//! Every flag of `socklab-server`, parsed once by clap into a plain struct.
//!
//! Tests build a [`Config`] with [`Config::for_tests`] (every listener on `127.0.0.1:0`) or with
//! `Config::parse_from([...])`, exactly as a user would type the flags.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::Parser;
use ipnet::IpNet;

/// The longest time any `SECS` flag takes: a year. Far beyond any use, and far enough below
/// the clock's range that every deadline computed from one fits.
pub const MAX_SECS: u64 = 365 * 24 * 60 * 60;

/// How every `SECS` flag is read: 0 to [`MAX_SECS`], a clear error beyond.
fn secs() -> clap::builder::RangedU64ValueParser<u64> {
    clap::value_parser!(u64).range(0..=MAX_SECS)
}

/// socklab-server: the lesson's TCP/UDP echo and banner services, a WebSocket bridge for the
/// browser, a live monitor feed and the page, in one process.
///
/// Every listener flag can be given several times (for example `--tcp 127.0.0.1:21566 --tcp
/// [::1]:21566` for IPv4 and IPv6). Logs go to stderr; set RUST_LOG (e.g. RUST_LOG=debug) for
/// more or less detail.
#[derive(Debug, Clone, Parser)]
#[command(name = "socklab-server", version, about, long_about = None, max_term_width = 100)]
pub struct Config {
    /// TCP timestamp echo: the reply unit is the line, `[%Y-%m-%d %H:%M:%S]:line`, bytes
    /// verbatim. TCP is a byte stream, not messages: what has arrived is answered whenever the
    /// client pauses, so a line that arrives in pieces (the first emptying the socket buffer)
    /// comes back in pieces, each under its own stamp, every byte once and in order. Where a
    /// message ends is the application's job (here: `\n`).
    #[arg(long = "tcp", value_name = "ADDR", default_value = "127.0.0.1:21566")]
    pub tcp: Vec<SocketAddr>,

    /// UDP timestamp echo: answers every datagram with one stamped datagram.
    #[arg(long = "udp", value_name = "ADDR", default_value = "127.0.0.1:21566")]
    pub udp: Vec<SocketAddr>,

    /// Banner service: sends the welcome text and closes, like the lesson's first server.
    #[arg(long = "banner", value_name = "ADDR", default_value = "127.0.0.1:9001")]
    pub banner: Vec<SocketAddr>,

    /// The banner's text; `\r\n` is appended.
    #[arg(long, value_name = "TEXT", default_value = socklab_protocol::DEFAULT_BANNER_TEXT)]
    pub banner_text: String,

    /// HTTP: the page, the WebSocket bridge `/ws`, the monitor `/api/events`, `/api/sessions`,
    /// `/healthz`.
    #[arg(long = "http", value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub http: Vec<SocketAddr>,

    /// Serve `GET /metrics` (Prometheus text format) on this address instead of on the HTTP
    /// port: for a LAN where students should not read it.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,

    /// Do not start the UDP echo.
    #[arg(long)]
    pub no_udp: bool,

    /// Do not start the banner service.
    #[arg(long)]
    pub no_banner: bool,

    /// WebTransport (HTTP/3 over QUIC, UDP): the browser's datagram path to the UDP echo, and
    /// a bidirectional stream bridged to the TCP echo like `/ws`.
    #[arg(
        long = "webtransport",
        value_name = "ADDR",
        default_value = "127.0.0.1:4433"
    )]
    pub webtransport: SocketAddr,

    /// Do not start the WebTransport endpoint.
    #[arg(long)]
    pub no_webtransport: bool,

    /// WebTransport certificate chain (PEM) instead of the self-signed one made at start.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key (PEM) of `--tls-cert`.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Where each WebTransport session's datagrams go (default: this server's first UDP echo
    /// socket). Fixed by the operator, like `--upstream`.
    #[arg(long, value_name = "HOST:PORT")]
    pub udp_upstream: Option<String>,

    /// Replace the self-signed WebTransport certificate after this many seconds (default: at
    /// half its 13-day life). For tests.
    #[arg(long, value_name = "SECS", value_parser = secs(), hide = true)]
    pub cert_renew_after: Option<u64>,

    /// Where the built page is (Trunk's output directory).
    #[arg(long, value_name = "DIR", default_value = "dist")]
    pub static_dir: PathBuf,

    /// Where the bridge connects for every WebSocket session (default: this server's first
    /// TCP echo listener). Fixed by the operator: clients can never choose the target.
    #[arg(long, value_name = "HOST:PORT")]
    pub upstream: Option<String>,

    /// Also accept WebSocket handshakes whose Origin is this (e.g. `https://lab.example.org`);
    /// repeatable. The server's own origin is always allowed; `*` allows any (not advised).
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    pub allow_origin: Vec<String>,

    /// Open sessions of all kinds together (TCP, banner, WebSocket, and each bridge's upstream
    /// connection); beyond it new TCP connections are closed at once and handshakes get 503.
    /// Each takes up to two file descriptors: the open-files limit is raised as far as the
    /// system allows, with a warning when a value given here needs more.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Runtimes, one thread each (default: one per CPU core). Each is a single-threaded tokio
    /// runtime with its own copy of the TCP echo, banner and HTTP listeners (`SO_REUSEPORT`:
    /// the kernel spreads new connections over them), and every session stays on the runtime
    /// that accepted it, its bridge's upstream connection too: no work stealing, no wake-ups
    /// across threads. The UDP echo, WebTransport and `--metrics` run on the first. The
    /// connection limit, the monitor and shutdown cover all of them.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,

    /// Largest WebSocket message the bridge accepts, in bytes (larger: close 1009).
    #[arg(long, value_name = "BYTES", default_value_t = 65_536)]
    pub max_message: usize,

    /// Longest line answered whole, in bytes without its `\n`, and the most bytes of an
    /// unfinished line held back; a longer line is answered in pieces.
    #[arg(long, value_name = "BYTES", default_value_t = 65_536)]
    pub max_line: usize,

    /// Close a WebSocket session with 1001 after this many seconds without a message.
    #[arg(long, value_name = "SECS", value_parser = secs(), default_value_t = 300)]
    pub idle_timeout: u64,

    /// Seconds between the server's WebSocket pings (`/ws` and `/api/events`); a peer silent
    /// for two intervals (it answers no ping) is dropped and its connection slot freed.
    #[arg(long, value_name = "SECS", value_parser = secs(), default_value_t = 20)]
    pub ping_interval: u64,

    /// Drop a client whose replies could not be written for this many seconds (it stopped
    /// reading and its buffers are full).
    #[arg(long, value_name = "SECS", value_parser = secs(), default_value_t = 30)]
    pub write_timeout: u64,

    /// Drop this share of UDP echo replies on purpose (0–100), so loss can be seen on loopback.
    #[arg(long, value_name = "PERCENT", default_value_t = 0.0)]
    pub udp_drop: f64,

    /// Seconds of silence before TCP keepalive probes check that a client (raw TCP, or an HTTP
    /// connection with its WebSocket) is still there (a peer that vanished without a FIN is
    /// dropped after 3 unanswered probes); 0 turns keepalive off. At most 32767 (Linux's
    /// limit).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(0..=32_767), default_value_t = 60)]
    pub tcp_keepalive: u64,

    /// A UDP peer counts as one session on the monitor until it has been silent this long.
    #[arg(long, value_name = "SECS", value_parser = secs(), default_value_t = 60)]
    pub udp_idle: u64,

    /// How many monitor events a slow subscriber may fall behind before it loses some
    /// (it is told with a `lagged` event; the echo path never waits for it).
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub monitor_buffer: usize,

    /// Largest HTTP request head, in bytes (larger: the connection is closed). At least 8192:
    /// the HTTP parser reads in buffers of that size, so a smaller bound could not be kept.
    #[arg(long, value_name = "BYTES", default_value_t = 16 * 1024,
          value_parser = max_header_bytes)]
    pub max_header: usize,

    /// Drop an HTTP client that has not sent its whole request head within this many seconds
    /// (slowloris).
    #[arg(long, value_name = "SECS", value_parser = secs(), default_value_t = 10)]
    pub header_timeout: u64,

    /// Seconds to let sessions close cleanly at shutdown before they are cut.
    #[arg(long, value_name = "SECS", value_parser = secs(), default_value_t = 3)]
    pub shutdown_grace: u64,

    /// This instance's name, shown on monitor events when several instances share a feed.
    #[arg(long, value_name = "NAME")]
    pub instance: Option<String>,

    /// Behind a TCP load balancer: every connection to the TCP echo and banner listeners starts
    /// with a PROXY protocol header (v1 or v2: HAProxy's `send-proxy-v2`, nginx's
    /// `proxy_protocol on`), and the client it names is the one logged and monitored. Only
    /// --trusted-proxy peers are served; others are refused with a log line.
    #[arg(long)]
    pub proxy_protocol: bool,

    /// Behind an HTTP load balancer: believe `X-Forwarded-For` from --trusted-proxy peers, so
    /// WebSocket sessions show the real client.
    #[arg(long)]
    pub forwarded_for: bool,

    /// A proxy whose PROXY header or X-Forwarded-For is believed (an IP, or a network like
    /// 10.0.0.0/8); repeatable. None given: loopback only.
    #[arg(long = "trusted-proxy", value_name = "IP|CIDR")]
    pub trusted_proxy: Vec<Cidr>,

    /// One monitor for several instances: publish this instance's session events to Redis
    /// pub/sub (`redis://HOST:6379/`; `redis://USER:PASS@HOST:6379/` with credentials,
    /// `rediss://…` over TLS, `redis+unix:///PATH`) and stream every instance's on
    /// `/api/events`, tagged with --instance (default: host name and HTTP port). If Redis goes
    /// away the services go on, and the feed says `degraded` until it is back.
    #[arg(long, value_name = "URL", value_parser = parse_redis_url)]
    pub monitor_redis: Option<String>,

    /// With --monitor-redis: most other-instance sessions kept for the monitor, all instances
    /// together (each costs under 1 KiB); more are dropped and counted in /api/info.
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    pub monitor_redis_max_sessions: usize,

    /// With --monitor-redis: most sessions kept for any one other instance.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub monitor_redis_max_per_instance: usize,

    /// With --monitor-redis: most other instances tracked at once; messages from more are
    /// dropped and counted.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub monitor_redis_max_instances: usize,

    /// With --monitor-redis: largest message taken from Redis, in bytes; larger ones (and
    /// ones that are not socklab events) are dropped and counted in /api/info.
    #[arg(long, value_name = "BYTES", default_value_t = 4096)]
    pub monitor_redis_max_event: usize,

    /// Capture socklab's own TCP and UDP packets (Linux, AF_PACKET): `/api/sessions/{id}/pcap`
    /// and `packet` events on `/api/events?packets=1`. Needs root or CAP_NET_RAW (`sudo setcap
    /// cap_net_raw+ep target/release/socklab-server`); without it the server runs with
    /// capture off and says so once. Refused on other systems.
    #[arg(long, value_parser = capture_flag)]
    pub capture: bool,

    /// Most payload bytes kept of each captured packet after a session's first 32 (headers
    /// are always kept whole).
    #[arg(long, value_name = "BYTES", default_value_t = 128)]
    pub capture_payload: usize,

    /// Most payload bytes kept of each of a session's first 32 packets: enough for a
    /// WebSocket's whole HTTP upgrade, so Wireshark can decode the frames that follow.
    #[arg(long, value_name = "BYTES", default_value_t = 2048)]
    pub capture_head_payload: usize,

    /// Most sessions whose packets are kept while they are open; packets of further sessions
    /// are counted as dropped.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub capture_sessions: usize,

    /// How many closed sessions' packets are kept (the oldest go first).
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub capture_closed: usize,
}

/// The smallest `--max-header`: hyper's HTTP/1 parser cannot be bounded below its own read
/// buffer (it panics on a smaller bound), so a smaller value is refused, not quietly raised.
pub const MIN_MAX_HEADER: usize = 8192;

fn max_header_bytes(s: &str) -> Result<usize, String> {
    let n: usize = s.parse().map_err(|e| format!("{e}"))?;
    if n < MIN_MAX_HEADER {
        return Err(format!(
            "{n} is below {MIN_MAX_HEADER}, the smallest request head the HTTP parser can bound"
        ));
    }
    Ok(n)
}

/// `--capture`, refused where this build has no packet capture (only Linux has `AF_PACKET`).
fn capture_flag(s: &str) -> Result<bool, String> {
    capture_on(s, cfg!(target_os = "linux"))
}

fn capture_on(s: &str, linux: bool) -> Result<bool, String> {
    let on: bool = s
        .parse()
        .map_err(|_| format!("{s:?} is neither true nor false"))?;
    if on && !linux {
        return Err(format!(
            "packet capture needs Linux (an AF_PACKET socket); this build is for {}",
            std::env::consts::OS
        ));
    }
    Ok(on)
}

impl Config {
    /// Flags that put every listener on `127.0.0.1:0` (a free port each): for tests, which
    /// start servers side by side, in process or as `socklab-server` processes.
    pub const PORT_ZERO_FLAGS: [&'static str; 10] = [
        "--tcp",
        "127.0.0.1:0",
        "--udp",
        "127.0.0.1:0",
        "--banner",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--webtransport",
        "127.0.0.1:0",
    ];

    /// Every listener on `127.0.0.1:0` and the page from `static_dir`: what tests start.
    pub fn for_tests() -> Self {
        let mut config =
            Config::parse_from(std::iter::once("socklab-server").chain(Config::PORT_ZERO_FLAGS));
        config.shutdown_grace = 2;
        config
    }

    /// How many runtimes to run: `--threads`, or one per CPU core.
    pub fn runtimes(&self) -> usize {
        self.threads.map(usize::from).unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
    }

    /// [`Config::idle_timeout`] as a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout.clamp(1, MAX_SECS))
    }

    /// [`Config::ping_interval`] as a duration.
    pub fn ping_interval(&self) -> Duration {
        Duration::from_secs(self.ping_interval.clamp(1, MAX_SECS))
    }

    /// The longest upstream line a bridge forwards as one message: the longest message it
    /// accepts with the echo's stamp on it, so the echo's answer to it comes back whole.
    /// Longer lines go in pieces of this size.
    pub fn max_reply_line(&self) -> usize {
        self.max_message.saturating_add(socklab_protocol::STAMP_LEN)
    }

    /// [`Config::write_timeout`] as a duration.
    pub fn write_timeout(&self) -> Duration {
        Duration::from_secs(self.write_timeout.clamp(1, MAX_SECS))
    }

    /// [`Config::udp_idle`] as a duration.
    pub fn udp_idle(&self) -> Duration {
        Duration::from_secs(self.udp_idle.clamp(1, MAX_SECS))
    }

    /// [`Config::header_timeout`] as a duration.
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout.clamp(1, MAX_SECS))
    }

    /// [`Config::shutdown_grace`] as a duration.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace.min(MAX_SECS))
    }

    /// Whether the peer is a proxy whose word about the client is believed: one listed with
    /// `--trusted-proxy`, or, when none is listed, a loopback address.
    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        if self.trusted_proxy.is_empty() {
            ip.to_canonical().is_loopback()
        } else {
            self.trusted_proxy.iter().any(|net| net.contains(ip))
        }
    }
}

/// `--monitor-redis`'s value check (clap): a URL the redis crate accepts.
pub fn parse_redis_url(s: &str) -> Result<String, String> {
    match redis::Client::open(s) {
        Ok(_) => Ok(s.to_owned()),
        Err(err) => Err(format!(
            "not a Redis URL (like redis://127.0.0.1:6379/): {err}"
        )),
    }
}

/// An IP network for `--trusted-proxy`: `10.0.0.0/8`, `::1/128`, or a single address (a
/// `/32` or `/128`). The matching is `ipnet`'s; this adds the bare address and the
/// IPv4-mapped IPv6 peers a dual-stack listener reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(IpNet);

/// Why a `--trusted-proxy` value is not a network.
#[derive(Debug, thiserror::Error)]
#[error("not an IP address or CIDR network (like 10.0.0.0/8 or 127.0.0.1): {0}")]
pub struct CidrError(String);

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<IpNet>()
            .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
            .map(Cidr)
            .map_err(|_| CidrError(s.to_owned()))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Cidr {
    /// Whether `ip` is in this network (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip.to_canonical())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn capture_is_refused_off_linux() {
        assert_eq!(capture_on("true", true), Ok(true));
        assert_eq!(capture_on("false", false), Ok(false));
        let refused = capture_on("true", false).unwrap_err();
        assert!(refused.contains("needs Linux"), "{refused}");
    }

    #[test]
    fn capture_is_a_plain_switch() {
        let on = Config::try_parse_from(["socklab-server", "--capture"]).unwrap();
        let off = Config::try_parse_from(["socklab-server"]).unwrap();
        assert_eq!(
            (on.capture, off.capture),
            (cfg!(target_os = "linux"), false)
        );
    }

    #[test]
    fn flags_are_consistent() {
        Config::command().debug_assert();
    }

    #[test]
    fn defaults_are_the_lesson_ports() {
        let c = Config::parse_from(["socklab-server"]);
        assert_eq!(c.tcp, vec!["127.0.0.1:21566".parse().unwrap()]);
        assert_eq!(c.banner, vec!["127.0.0.1:9001".parse().unwrap()]);
        assert_eq!(c.http, vec!["127.0.0.1:8080".parse().unwrap()]);
        assert_eq!(c.max_connections, 10_000);
        assert_eq!(c.max_message, 65_536);
    }

    #[test]
    fn listener_flags_repeat() {
        let c = Config::parse_from(["s", "--tcp", "127.0.0.1:1", "--tcp", "[::1]:1"]);
        assert_eq!(c.tcp.len(), 2);
        assert!(c.tcp[1].is_ipv6());
    }

    #[test]
    fn cidrs_parse_and_match() {
        let net: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()));
        let one: Cidr = "::1".parse().unwrap();
        assert_eq!(one.to_string(), "::1/128");
        assert!(one.contains(std::net::Ipv6Addr::LOCALHOST.into()));
        let odd: Cidr = "192.168.0.0/23".parse().unwrap();
        assert!(odd.contains("192.168.1.255".parse().unwrap()));
        assert!(!odd.contains("192.168.2.0".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("lab".parse::<Cidr>().is_err());
    }

    #[test]
    fn redis_urls_are_checked() {
        assert!(parse_redis_url("redis://127.0.0.1:6379/").is_ok());
        assert!(parse_redis_url("redis://user:secret@127.0.0.1:6379/").is_ok());
        assert!(parse_redis_url("rediss://redis.example.org:6380/").is_ok());
        assert!(parse_redis_url("http://nope").is_err());
    }
}
