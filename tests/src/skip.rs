//! Skipping a test that cannot run here, never silently.
//!
//! A test that needs something the machine may lack (a browser, HAProxy/Redis, IPv6, the
//! privilege to capture packets) calls [`skip_unless_required`] when it is missing. Where the test must run — `CI` is set, or the
//! need's `SOCKLAB_REQUIRE_<NEED>=1` (which `cargo xtask test` sets) — that is a failure.
//! Elsewhere the test says why on stderr and appends `test: reason` to the file named by
//! `SOCKLAB_SKIP_LOG`, from which `cargo xtask test` counts the skips on its summary line.

use std::io::Write;

/// What a skipped test needs, and the variable that makes its absence a failure.
#[derive(Debug, Clone, Copy)]
pub enum Need {
    /// Chromium, chromedriver and the built page (`SOCKLAB_REQUIRE_BROWSER`).
    Browser,
    /// HAProxy, Redis and nginx (`SOCKLAB_REQUIRE_CLUSTER`).
    Cluster,
    /// An IPv6 loopback (`SOCKLAB_REQUIRE_IPV6`).
    Ipv6,
    /// Prometheus and promtool (`SOCKLAB_REQUIRE_PROMETHEUS`).
    Prometheus,
    /// Root or `CAP_NET_RAW`, for `--capture` (`SOCKLAB_REQUIRE_CAPTURE`).
    Capture,
}

impl Need {
    /// The environment variable that, set to `1`, makes a missing need a failure.
    pub fn require_var(self) -> &'static str {
        match self {
            Need::Browser => "SOCKLAB_REQUIRE_BROWSER",
            Need::Cluster => "SOCKLAB_REQUIRE_CLUSTER",
            Need::Ipv6 => "SOCKLAB_REQUIRE_IPV6",
            Need::Prometheus => "SOCKLAB_REQUIRE_PROMETHEUS",
            Need::Capture => "SOCKLAB_REQUIRE_CAPTURE",
        }
    }
}

/// The variable naming the file that skipped tests append `test: reason` lines to.
pub const SKIP_LOG_VAR: &str = "SOCKLAB_SKIP_LOG";

/// Whether `CI` is set to something other than empty, `0` or `false`.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// Records that `test` cannot run because `why`; panics instead where the test must run.
/// The caller returns right after.
pub fn skip_unless_required(test: &str, need: Need, why: &str) {
    let var = need.require_var();
    if in_ci() {
        panic!("{test}: CI is set but {why}");
    }
    if std::env::var(var).is_ok_and(|v| v == "1") {
        panic!("{test}: {var}=1 but {why}");
    }
    eprintln!("SKIPPED {test}: {why} (set {var}=1 or CI to make this a failure)");
    if let Some(path) = std::env::var_os(SKIP_LOG_VAR) {
        // One short write with O_APPEND: lines from parallel test processes do not interleave.
        let line = format!("{test}: {}\n", why.replace('\n', " "));
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(err) = written {
            panic!("{test}: cannot record the skip in {path:?}: {err}");
        }
    }
}
