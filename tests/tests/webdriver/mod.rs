//! A small harness for the browser tests: finds the built page and the browser, starts one
//! `chromedriver` per test on a free port, opens headless Chromium through it (fantoccini,
//! plain HTTP, no TLS), and offers the few waits and probes the tests need.
//!
//! The tests need three things: the Trunk build (`SOCKLAB_DIST`), `chromedriver` and Chromium
//! (`CHROMEDRIVER`/`CHROMIUM`, else the Debian paths). When one is missing they fail where they
//! must run (`CI` set, or `SOCKLAB_REQUIRE_BROWSER=1`), else skip and say so
//! (`socklab_tests::skip`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use socklab_tests::skip::{Need, skip_unless_required};
use socklab_tests::socklab_server::{Config, RunningServer};
use socklab_tests::start_server_with;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a wait for the page lasts before the test fails.
pub const PAGE_TIMEOUT: Duration = Duration::from_secs(15);

/// [`Browser::send_messages`]' script: arguments `n`, the texts' prefix, the pause in ms.
const SEND_MESSAGES: &str = r#"
const [n, prefix, pause, done] = [arguments[0], arguments[1], arguments[2], arguments[arguments.length - 1]];
const input = document.getElementById('bs-input');
const received = () => Number(document.getElementById('bs-stats').dataset.received);
const tick = (ms) => new Promise((r) => setTimeout(r, ms));
(async () => {
  const start = received();
  for (let i = 0; i < n; i++) {
    input.value = prefix + ' ' + i;
    input.dispatchEvent(new InputEvent('input', { bubbles: true }));
    await tick(0);
    input.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true }));
    const t0 = performance.now();
    while (received() < start + i + 1) {
      if (performance.now() - t0 > 10000) throw new Error('no reply to message ' + i);
      await tick(5);
    }
    await tick(pause);
  }
  done(true);
})().catch((e) => done(String(e)));
"#;

/// What the browser tests need from the machine.
pub struct Setup {
    /// The built page (Trunk's `dist/`).
    pub dist: PathBuf,
    /// The `chromedriver` binary.
    pub chromedriver: PathBuf,
    /// The Chromium binary.
    pub chromium: PathBuf,
}

fn first_existing(env: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    candidates.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// Finds the page and the browser, or explains what is missing: a failure where the test must
/// run (`CI`, `SOCKLAB_REQUIRE_BROWSER=1`), else a recorded skip (`None`).
pub fn setup(test: &str) -> Option<Setup> {
    let mut missing = Vec::new();
    // A relative SOCKLAB_DIST is taken from the workspace root, like the xtask's `dist/`.
    let dist = std::env::var_os("SOCKLAB_DIST")
        .map(PathBuf::from)
        .map(|d| {
            if d.is_absolute() {
                d
            } else {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(d)
            }
        });
    match &dist {
        None => missing.push(
            "SOCKLAB_DIST is not set (build the page with `trunk build --release --offline` \
             and point SOCKLAB_DIST at dist/, or run `cargo xtask test`)"
                .to_string(),
        ),
        Some(d) if !d.join("index.html").is_file() => missing.push(format!(
            "SOCKLAB_DIST={} has no index.html (build the page first)",
            d.display()
        )),
        Some(_) => {}
    }
    let chromedriver = first_existing("CHROMEDRIVER", &["/usr/bin/chromedriver"]);
    if chromedriver.is_none() {
        missing.push(
            "chromedriver not found (set CHROMEDRIVER or `apt-get install chromium-driver`)".into(),
        );
    }
    let chromium = first_existing(
        "CHROMIUM",
        &[
            "/usr/bin/chromium",
            "/usr/bin/chromium-browser",
            "/usr/bin/google-chrome",
        ],
    );
    if chromium.is_none() {
        missing.push("Chromium not found (set CHROMIUM or `apt-get install chromium`)".into());
    }
    if missing.is_empty() {
        return Some(Setup {
            dist: dist?,
            chromedriver: chromedriver?,
            chromium: chromium?,
        });
    }
    skip_unless_required(test, Need::Browser, &missing.join("; "));
    None
}

/// One headless Chromium, driven over WebDriver, with its own chromedriver and profile.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    driver: Child,
    driver_port: u16,
    profile: PathBuf,
}

/// Starts chromedriver and reads from its output that it listens. Its port is picked here,
/// below the kernel's ephemeral range: chromedriver binds IPv6 and then IPv4 on one port, and
/// with `--port=0` the IPv4 side fell among the ephemeral ports every parallel test's sockets
/// (and their TIME_WAIT remnants) hold, which under load failed five starts in a row. A port
/// taken between the check and the start is tried again on another (a retry of the tool's
/// start, never of the test).
async fn start_driver(bin: &Path) -> (Child, u16) {
    const ATTEMPTS: usize = 10;
    let mut said = Vec::new();
    for _ in 0..ATTEMPTS {
        let port = free_quiet_port();
        let mut driver = Command::new(bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            // Its own process group, which the Chromium it starts joins: a test that fails
            // drops the Browser, and `Drop` ends both (killing only chromedriver would leave
            // Chromium running, its parent gone).
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver");
        let stdout = driver.stdout.take().expect("chromedriver's stdout");
        let mut lines = BufReader::new(stdout).lines();
        said.clear();
        let port = tokio::time::timeout(PAGE_TIMEOUT, async {
            while let Some(line) = lines.next_line().await.expect("read chromedriver's output") {
                let port = line
                    .split_once("started successfully on port ")
                    .and_then(|(_, rest)| rest.trim_end_matches('.').parse::<u16>().ok());
                if port.is_some() {
                    return port;
                }
                said.push(line);
            }
            None
        })
        .await
        .unwrap_or_else(|_| panic!("chromedriver did not start in time; it said: {said:#?}"));
        if let Some(port) = port {
            // Keep draining its output so it never blocks on a full pipe.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return (driver, port);
        }
        if !said.iter().any(|l| l.contains("port not available")) {
            panic!("chromedriver exited; it said: {said:#?}");
        }
        eprintln!("chromedriver's port was taken meanwhile; starting it again");
    }
    panic!("chromedriver found no free port in {ATTEMPTS} starts; last it said: {said:#?}");
}

/// A port in 20000–31999 (below Linux's ephemeral range, 32768–60999, where port-0 sockets
/// live) that is free on 127.0.0.1 and on ::1 (where the host has IPv6) right now.
fn free_quiet_port() -> u16 {
    use std::hash::{BuildHasher, RandomState};
    use std::io::ErrorKind;
    loop {
        // RandomState is seeded at random: a fresh port each call, across parallel tests.
        let port = 20_000 + (RandomState::new().hash_one(Instant::now()) % 12_000) as u16;
        let v4 = std::net::TcpListener::bind(("127.0.0.1", port));
        let v6 = std::net::TcpListener::bind(("::1", port));
        let v6_free = match &v6 {
            Ok(_) => true,
            Err(e) => e.kind() == ErrorKind::AddrNotAvailable,
        };
        if v4.is_ok() && v6_free {
            return port;
        }
    }
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a `width`×`height` window.
    pub async fn start(setup: &Setup, width: u32, height: u32) -> Browser {
        let (driver, driver_port) = start_driver(&setup.chromedriver).await;
        let profile = std::env::temp_dir().join(format!(
            "socklab-chromium-{}-{driver_port}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).expect("profile dir");
        let caps = json!({
            "browserName": "chrome",
            "goog:loggingPrefs": { "browser": "ALL" },
            "goog:chromeOptions": {
                "binary": setup.chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--no-first-run",
                    "--disable-sync",
                    "--hide-scrollbars",
                    "--lang=en-US",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.display()),
                ],
                "prefs": { "intl.accept_languages": "en-US,en" },
            },
        });
        let caps = match caps {
            Value::Object(map) => map,
            _ => unreachable!(),
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{driver_port}"))
            .await
            .expect("a WebDriver session with headless Chromium");
        client
            .set_window_size(width, height)
            .await
            .expect("window size");
        Browser {
            client,
            driver,
            driver_port,
            profile,
        }
    }

    /// Opens the page served at `http`.
    pub async fn open(&self, http: SocketAddr) {
        self.client
            .goto(&format!("http://{http}/"))
            .await
            .expect("navigate to the page");
    }

    /// Opens the page and waits until its bridge session is open.
    pub async fn open_connected(&self, server: &RunningServer) {
        self.open(server.addrs.http[0]).await;
        self.wait_for(
            "#bs-status[data-status=open]",
            "the bridge connection to open",
        )
        .await;
    }

    /// Waits until the page's server pill says its monitor feed is live (in English).
    pub async fn wait_feed_live(&self) {
        self.wait_text("#server-pill", PAGE_TIMEOUT, "the monitor feed", |t| {
            t.contains("online")
        })
        .await;
    }

    /// Runs `script` (a function body; `return` gives the value) in the page.
    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// The text of the first element matching `css` (empty if there is none).
    pub async fn text(&self, css: &str) -> String {
        let script = format!(
            "const e = document.querySelector({}); return e ? e.innerText : '';",
            json!(css)
        );
        self.js(&script)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The texts of every element matching `css`.
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let script = format!(
            "return Array.from(document.querySelectorAll({})).map(e => e.innerText);",
            json!(css)
        );
        match self.js(&script).await {
            Value::Array(items) => items
                .into_iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Waits until `check` accepts the text of `css`; returns that text. Fails after
    /// `timeout`, showing the last text seen.
    pub async fn wait_text(
        &self,
        css: &str,
        timeout: Duration,
        what: &str,
        mut check: impl FnMut(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.text(css).await;
            if check(&text) {
                return text;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {what} in `{css}`; last text: {text:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until an element matches `css`.
    pub async fn wait_for(&self, css: &str, what: &str) {
        let script = format!("return document.querySelector({}) !== null;", json!(css));
        self.wait_true(&script, &format!("{what} (`{css}`)")).await;
    }

    /// Waits until `script` returns `true`.
    pub async fn wait_true(&self, script: &str, what: &str) {
        let deadline = Instant::now() + PAGE_TIMEOUT;
        while self.js(script).await != Value::Bool(true) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Resizes the window and waits until the page sees the new width.
    pub async fn resize(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("resize");
        self.wait_true(
            &format!("return window.innerWidth === {width};"),
            &format!("the window to be {width} px wide"),
        )
        .await;
    }

    /// Makes the page still: fonts loaded, finite animations jumped to their end, and two
    /// frames painted since. Animations are finished rather than awaited: one in a region
    /// that `content-visibility: auto` skips (the teaching strip below a phone's first
    /// screen) is not advanced by Chromium, so waiting for it would never end.
    pub async fn settle(&self) {
        let script = "const done = arguments[arguments.length - 1]; \
            for (const a of document.getAnimations()) { \
                if (a.effect && a.effect.getComputedTiming().iterations !== Infinity) { \
                    try { a.finish(); } catch (e) {} } } \
            document.fonts.ready \
                .then(() => requestAnimationFrame(() => requestAnimationFrame(() => done(true))));";
        let settled =
            tokio::time::timeout(PAGE_TIMEOUT, self.client.execute_async(script, Vec::new()))
                .await
                .expect("the page to settle in time")
                .expect("the settle script");
        assert_eq!(settled, Value::Bool(true));
    }

    /// Clicks the first element matching `css`.
    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no `{css}`: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("click `{css}`: {e}"));
    }

    /// Types `text` into the element matching `css`, as keystrokes.
    pub async fn type_into(&self, css: &str, text: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no `{css}`: {e}"))
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into `{css}`: {e}"));
    }

    /// The browser console's entries at level SEVERE since the last call (errors, uncaught
    /// exceptions, failed loads). Panics when the log cannot be read: an empty list must mean
    /// "no errors", never "could not look".
    pub async fn console_errors(&self) -> Vec<String> {
        let reply = self
            .client
            .issue_cmd(SessionPost("se/log", json!({ "type": "browser" })))
            .await
            .unwrap_or_else(|e| panic!("reading the browser console log: {e}"));
        let Some(entries) = reply.as_array() else {
            panic!("the browser console log is not a list: {reply}");
        };
        entries
            .iter()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Types `n` messages into the page's composer (value + `input` event, then Enter), texts
    /// `PREFIX 0` to `PREFIX n-1`, one at a time: each after the page counted the previous
    /// reply (`data-received`), then `pause_ms` more. Panics on a reply not counted in 10 s.
    #[allow(dead_code)] // browser.rs and browser_load.rs only
    pub async fn send_messages(&self, prefix: &str, n: usize, pause_ms: u32) {
        let sent = self
            .js_async(
                SEND_MESSAGES,
                vec![json!(n), json!(prefix), json!(pause_ms)],
            )
            .await;
        assert_eq!(sent, json!(true), "the page's messages: {sent}");
    }

    /// Runs an async `script` in the page (it ends by calling its last argument) with `args`.
    #[allow(dead_code)] // browser_load.rs and send_messages only
    pub async fn js_async(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute_async(script, args)
            .await
            .unwrap_or_else(|e| panic!("async script failed: {e}\n{script}"))
    }

    /// One Chrome DevTools Protocol command, through chromedriver's `goog/cdp/execute`.
    #[allow(dead_code)] // not every test binary uses it
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        let body = json!({ "cmd": cmd, "params": params });
        let reply = self
            .client
            .issue_cmd(SessionPost("goog/cdp/execute", body))
            .await
            .unwrap_or_else(|e| panic!("CDP {cmd}: {e}"));
        assert!(reply.is_object(), "CDP {cmd}: {reply}");
        reply
    }

    /// Saves a PNG of the whole page (the window grows to the page's height first) or, with
    /// `full_page = false`, of the window's first screen.
    pub async fn screenshot(&self, path: &Path, width: u32, height: u32, full_page: bool) {
        self.js("window.scrollTo(0, 0); return null;").await;
        if full_page {
            let h = self
                .js("return Math.ceil(document.documentElement.scrollHeight);")
                .await
                .as_u64()
                .unwrap_or(u64::from(height));
            self.resize(width, h.max(u64::from(height)) as u32).await;
        }
        self.settle().await;
        let png = self.client.screenshot().await.expect("screenshot");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot dir");
        }
        std::fs::write(path, png).expect("write screenshot");
        if full_page {
            self.resize(width, height).await;
        }
        eprintln!("screenshot: {}", path.display());
    }

    /// Ends the session, then chromedriver (and whatever is left of Chromium: see `Drop`).
    pub async fn quit(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    /// Kills chromedriver's process group, Chromium included, also when a test panics.
    fn drop(&mut self) {
        if let Some(pid) = self.driver.id() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// A test server (port 0) that serves the built page, with `tweak` applied to its flags.
pub async fn serve_page_with(setup: &Setup, tweak: impl FnOnce(&mut Config)) -> RunningServer {
    let dist = setup.dist.clone();
    start_server_with(move |c| {
        c.static_dir = dist;
        tweak(c);
    })
    .await
}

/// A test server (port 0) that serves the built page.
pub async fn serve_page(setup: &Setup) -> RunningServer {
    serve_page_with(setup, |_| {}).await
}

/// A chromedriver extension outside W3C WebDriver (its console log, CDP commands):
/// `POST /session/{id}/PATH` with a JSON body, sent by fantoccini like any command.
#[derive(Debug)]
struct SessionPost(&'static str, Value);

impl WebDriverCompatibleCommand for SessionPost {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        let session = session_id.unwrap_or_default();
        base_url.join(&format!("session/{session}/{}", self.0))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.1.to_string()))
    }
}

/// The build's target directory (`CARGO_TARGET_DIR`, else the workspace's `target/`).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// Where screenshots go: `<target>/screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    target_dir().join("screenshots")
}

/// The WCAG 2.1 A and AA rules of axe-core: what the page must pass with no violation.
pub const WCAG_21_AA: [&str; 4] = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];
/// Best-practice rules checked as well: all content inside landmarks.
pub const ALSO: [&str; 1] = ["region"];

/// axe-core's `axe.min.js`, from `SOCKLAB_AXE`, else where `cargo xtask tools` puts it
/// (`<target>/tools/node/node_modules/axe-core/`). When it is missing: a failure with
/// `SOCKLAB_REQUIRE_BROWSER=1`, else a skip (`None`), like [`setup`].
pub fn axe_source(test: &str) -> Option<String> {
    let path = std::env::var_os("SOCKLAB_AXE")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("tools/node/node_modules/axe-core/axe.min.js"));
    match std::fs::read_to_string(&path) {
        Ok(source) => Some(source),
        Err(err) => {
            let why = format!(
                "axe-core not readable at {} ({err}); `cargo xtask tools` installs it",
                path.display()
            );
            skip_unless_required(test, Need::Browser, &why);
            None
        }
    }
}

impl Browser {
    /// Runs axe-core on the whole page with the `tags` rules and the `also` rules (injecting
    /// `axe_source` first, once per page load) and returns one line per violation: rule,
    /// impact, how many nodes, the first few nodes with axe's own summary of what is wrong.
    pub async fn axe_violations(
        &self,
        axe_source: &str,
        tags: &[&str],
        also: &[&str],
    ) -> Vec<String> {
        // axe reads colours as drawn: a card halfway through its entrance fade has a text
        // colour blended with the panel, which is not the colour the page settles on.
        self.settle().await;
        if self.js("return typeof window.axe;").await != "object" {
            // WebDriver scripts are not subject to the page's CSP, unlike a <script> tag.
            self.js(&format!("{axe_source}\n;return null;")).await;
        }
        let rules: serde_json::Map<String, Value> = also
            .iter()
            .map(|r| (r.to_string(), json!({ "enabled": true })))
            .collect();
        let script = format!(
            "return axe.run(document, {{ runOnly: {{ type: 'tag', values: {} }}, rules: {}, \
             resultTypes: ['violations'] }}).then(r => r.violations.map(v => \
             `${{v.id}} (${{v.impact}}): ${{v.nodes.length}} node(s): ` + \
             v.nodes.slice(0, 4).map(n => n.target.join(' ') + ' — ' + \
             (n.failureSummary || '').replace(/\\s+/g, ' ')).join(' | ')));",
            json!(tags),
            Value::Object(rules)
        );
        match self.js(&script).await {
            Value::Array(items) => items
                .into_iter()
                .map(|v| v.as_str().unwrap_or_default().to_string())
                .collect(),
            other => panic!("axe.run gave {other}"),
        }
    }

    /// Presses one key (a WebDriver key code such as Tab, `\u{E004}`) on whatever has focus.
    pub async fn press(&self, key: &str) {
        self.client
            .active_element()
            .await
            .expect("an active element")
            .send_keys(key)
            .await
            .unwrap_or_else(|e| panic!("press {key:?}: {e}"));
    }
}
