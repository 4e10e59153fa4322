//! Section 4 of `cargo xtask bench`, also alone as `cargo xtask bench-page`: the page as a
//! measuring instrument. Its size (wasm + js, gzip), its first frame, the round-trip time it
//! reports beside a plain JavaScript `WebSocket` in the same tab, and the main thread's time
//! per echoed message (Chrome DevTools Protocol `Performance.getMetrics`, through chromedriver's
//! `goog/cdp/execute`).

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::browser::Session;
use super::ctx::{Ctx, PAGE_WARM_UP, Plan};
use super::lone::{lone_ctx, write_lone_section};
use super::page_drive::{PAUSE_MS, delta, drive, open_page, serve_dir, warm_up};
use super::page_floor;
use super::procs::{Proc, free_port, local, wait_port};
use super::stats::{f, median, ratio_text};
use crate::cmd::{self, command};
use crate::tools;

/// Messages per round-trip run (each echoed, one at a time, with a pause between them as a
/// person typing would leave).
const MESSAGES: usize = 40;
const MESSAGES_QUICK: usize = 15;
/// The warm-up with `bench-page --long-log`: the page's log then holds about 490 rows of the
/// 500 it keeps (two per message, and two connection notes).
const LONG_LOG_WARM_UP: usize = 230;

/// `cargo xtask bench-page [--quick] [--long-log]`: this section alone, written to
/// `target/bench/page.md` and `page.json` (the page must be built: `trunk build --release
/// --offline`). With `long_log` the page's log is nearly full before the measured messages.
pub fn page_only(quick: bool, long_log: bool) -> Result<()> {
    let mut plan = Plan::new(quick);
    if long_log {
        plan.page_warm_up = LONG_LOG_WARM_UP;
    }
    let ctx = lone_ctx(plan)?;
    let started = Instant::now();
    let page = section(&ctx)?;
    write_lone_section(
        "page",
        "# socklab: the page\n",
        quick,
        started,
        page,
        markdown,
    )
}

/// The section: sizes always (when built), timings when Chromium is here.
pub fn section(ctx: &Ctx) -> Result<Value> {
    let files = built_files();
    if files.is_empty() {
        println!("bench: page not built (no wasm or js in dist/); skipping the page section");
        return Ok(json!({ "built": false }));
    }
    let mut sizes = Vec::new();
    let (mut raw_total, mut gz_total) = (0u64, 0u64);
    for f in &files {
        let raw = fs::metadata(f)?.len();
        let gz = gzip_len(f)?;
        raw_total += raw;
        gz_total += gz;
        sizes.push(json!({
            "file": f.file_name().map(|n| n.to_string_lossy().into_owned()),
            "raw": raw,
            "gzip": gz,
        }));
    }
    let (paint, rtt) = match timings(ctx) {
        Ok(t) => t,
        Err(err) => {
            println!("bench: page timing skipped: {err:#}");
            let e = json!({ "error": format!("{err:#}") });
            (e.clone(), e)
        }
    };
    Ok(json!({
        "built": true,
        "files": sizes,
        "raw_bytes": raw_total,
        "gzip_bytes": gz_total,
        "paint": paint,
        "rtt": rtt,
    }))
}

/// The built page: `SOCKLAB_DIST` (as for the browser tests), else `dist/`.
fn dist() -> PathBuf {
    std::env::var_os("SOCKLAB_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| cmd::root().join("dist"))
}

fn built_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Ok(dir) = fs::read_dir(dist()) {
        for entry in dir.flatten() {
            let path = entry.path();
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if ext == "wasm" || ext == "js" {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn gzip_len(path: &Path) -> Result<u64> {
    let out = command("gzip")
        .args(["-9", "-c"])
        .arg(path)
        .stderr(Stdio::null())
        .output()
        .context("could not run gzip")?;
    if !out.status.success() {
        bail!("gzip failed on {}", path.display());
    }
    Ok(out.stdout.len() as u64)
}

/// One server (serving `dist/`) and one chromedriver for the first-frame runs and the
/// round-trip run.
fn timings(ctx: &Ctx) -> Result<(Value, Value)> {
    for tool in [tools::CHROMIUM, tools::CHROMEDRIVER] {
        if !Path::new(tool).exists() {
            bail!("{tool} is missing (cargo xtask tools installs it)");
        }
    }
    let page = serve_dir(ctx, "page-server", &dist())?;
    let driver_port = free_port()?;
    let mut driver = command(tools::CHROMEDRIVER);
    driver.arg(format!("--port={driver_port}"));
    let mut driver = Proc::spawn("chromedriver", driver, &ctx.log_dir)?;
    wait_port(&mut driver, driver_port)?;
    let url = page.url.as_str();
    let n = if ctx.plan.quick {
        MESSAGES_QUICK
    } else {
        MESSAGES
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start a tokio runtime for the WebDriver client")?;
    let echo = local(page.tcp);
    let floor = page_floor::serve(ctx)?;
    runtime.block_on(async {
        let paint = first_paint(ctx, driver_port, url).await?;
        let s = Session::open(driver_port, true).await?;
        let rtt = round_trips(&s, url, ctx.plan.page_warm_up, n).await;
        s.close().await;
        let mut rtt = rtt?;
        // The bursts in a session of their own, without the trace's cost per event.
        let s = Session::open(driver_port, false).await?;
        let burst = bursts(&s, url, echo, ctx.plan.quick).await;
        s.close().await;
        rtt["bursts"] = burst?;
        rtt["floor"] = page_floor::measure(driver_port, &floor.url, ctx.plan.page_warm_up, n)
            .await
            .unwrap_or_else(|err| json!({ "error": format!("{err:#}") }));
        Ok((paint, rtt))
    })
}

/// Records how long each keystroke waited before the page's handlers ran (`performance.now()`
/// − the event's `timeStamp`) and how late a 50 ms timer fired; `window.__probe()` returns
/// both maxima and counts since the last call.
const PROBE_SCRIPT: &str = r#"
const done = arguments[arguments.length - 1];
if (!window.__probe) {
  let keys = [], timer = [];
  document.addEventListener('keydown', (e) => keys.push(performance.now() - e.timeStamp), true);
  let due = performance.now() + 50;
  (function tick() { const now = performance.now(); timer.push(now - due); due = now + 50; setTimeout(tick, 50); })();
  window.__probe = () => {
    const r = [Math.max(0, ...keys), keys.length, Math.max(0, ...timer), timer.length];
    keys = []; timer = [];
    return r;
  };
}
document.getElementById('bs-filter').focus();
done(window.__probe());
"#;

/// The probe's figures since the last call.
const READ_PROBE: &str = "arguments[arguments.length - 1](window.__probe());";

/// The page's responsiveness while raw TCP clients flood the echo it watches: one client
/// writing 10,000 lines at once, then 200 clients chatting at 10 messages a second (3 s;
/// 1 s with `--quick`). Keystrokes go in through CDP `Input.dispatchKeyEvent` (the browser's
/// own input path) every 100 ms while each burst runs.
async fn bursts(s: &Session, url: &str, echo: SocketAddr, quick: bool) -> Result<Value> {
    open_page(s, url).await?;
    // Warm, as the round trips' tab was: messages run the monitor's and the cards' code.
    warm_up(s, MESSAGES_QUICK).await?;
    let flood = burst(s, move || flood_client(echo, 10_000)).await?;
    let seconds = if quick { 1 } else { 3 };
    let chat = burst(s, move || chat_clients(echo, 200, 10, seconds)).await?;
    Ok(json!({ "lines_10000": flood, "clients_200": chat }))
}

/// Runs `load` on its own thread, typing into the page until it ends (and at least once),
/// then reads the probe.
async fn burst(s: &Session, load: impl FnOnce() -> Result<u64> + Send + 'static) -> Result<Value> {
    s.script(PROBE_SCRIPT, vec![]).await?;
    let started = Instant::now();
    let load = std::thread::spawn(load);
    let mut typed = 0;
    while typed == 0 || !load.is_finished() {
        for kind in ["keyDown", "keyUp"] {
            let key = json!({ "type": kind, "key": "x", "text": "x" });
            s.cdp("Input.dispatchKeyEvent", key).await?;
        }
        typed += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let bytes = match load.join() {
        Ok(r) => r?,
        Err(_) => bail!("the load thread panicked"),
    };
    let v = s.script(READ_PROBE, vec![]).await?;
    Ok(json!({
        "seconds": started.elapsed().as_secs_f64(),
        "bytes_echoed": bytes,
        "keys": v[1],
        "key_wait_max_ms": v[0],
        "timer_ticks": v[3],
        "timer_late_max_ms": v[2],
    }))
}

/// One client writes `lines` lines in one go and reads every reply line; bytes read.
fn flood_client(echo: SocketAddr, lines: usize) -> Result<u64> {
    let mut stream = TcpStream::connect(echo)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let all: String = (0..lines).map(|i| format!("flood line {i:05}\n")).collect();
    stream.write_all(all.as_bytes())?;
    read_lines(stream, lines)
}

/// `clients` clients, each writing `rate` lines a second for `seconds` and reading the
/// replies; bytes read in all.
fn chat_clients(echo: SocketAddr, clients: usize, rate: u64, seconds: u64) -> Result<u64> {
    let lines = (rate * seconds) as usize;
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            std::thread::spawn(move || -> Result<u64> {
                let mut stream = TcpStream::connect(echo)?;
                stream.set_read_timeout(Some(Duration::from_secs(30)))?;
                let reader = stream.try_clone()?;
                let read = std::thread::spawn(move || read_lines(reader, lines));
                for i in 0..lines {
                    stream.write_all(format!("c{c:03} m{i:02}\n").as_bytes())?;
                    std::thread::sleep(Duration::from_millis(1000 / rate));
                }
                match read.join() {
                    Ok(r) => r,
                    Err(_) => bail!("a reader thread panicked"),
                }
            })
        })
        .collect();
    let mut total = 0;
    for t in threads {
        match t.join() {
            Ok(r) => total += r?,
            Err(_) => bail!("a chat client panicked"),
        }
    }
    Ok(total)
}

/// Reads `lines` reply lines; their bytes.
fn read_lines(stream: TcpStream, lines: usize) -> Result<u64> {
    let mut reader = BufReader::new(stream);
    let (mut total, mut line) = (0u64, Vec::new());
    for _ in 0..lines {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            bail!("the echo closed early");
        }
        total += n as u64;
    }
    Ok(total)
}

/// Navigation to first contentful paint (the page's body is empty until the app renders, so
/// that is the app's first frame), in a fresh headless Chromium each time.
async fn first_paint(ctx: &Ctx, driver: u16, url: &str) -> Result<Value> {
    let mut fcp = Vec::new();
    let mut load = Vec::new();
    for _ in 0..ctx.plan.page_runs {
        let s = Session::open(driver, false).await?;
        let painted = one_paint(&s, url).await;
        s.close().await;
        let (f, l) = painted?;
        fcp.push(json!(f));
        load.push(json!(l));
    }
    let med = |xs: &[Value]| {
        let runs: Vec<Value> = xs.iter().map(|x| json!({ "v": x })).collect();
        median(&runs, "v")
    };
    Ok(json!({
        "url": url,
        "first_contentful_paint_ms": med(&fcp),
        "load_event_ms": med(&load),
        "runs_fcp_ms": fcp,
        "runs_load_ms": load,
    }))
}

const PAINT_SCRIPT: &str = r#"
const done = arguments[arguments.length - 1];
const t0 = performance.now();
(function wait() {
  const fcp = performance.getEntriesByName('first-contentful-paint')[0];
  if (fcp) {
    const nav = performance.getEntriesByType('navigation')[0];
    done([fcp.startTime, nav ? nav.loadEventEnd : -1]);
  } else if (performance.now() - t0 > 20000) {
    done([-1, -1]);
  } else {
    setTimeout(wait, 20);
  }
})();
"#;

async fn one_paint(s: &Session, url: &str) -> Result<(f64, f64)> {
    s.goto(url).await?;
    let v = s.script(PAINT_SCRIPT, vec![]).await?;
    let fcp = v[0].as_f64().unwrap_or(-1.0);
    let load = v[1].as_f64().unwrap_or(-1.0);
    if fcp < 0.0 {
        bail!("the page painted nothing within 20 s");
    }
    Ok((fcp, load))
}

/// A plain JavaScript WebSocket to the same `/ws`, in the same tab: `n` messages one at a
/// time, each timed from just before `send` to the top of its `onmessage`.
const RAW_SCRIPT: &str = r#"
const [n, pause, done] = [arguments[0], arguments[1], arguments[arguments.length - 1]];
const url = new URL('ws?tag=raw-baseline', location.href);
url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
const ws = new WebSocket(url);
const rtts = [];
let t0 = 0, i = 0;
const next = () => { t0 = performance.now(); ws.send('raw ' + i); };
ws.onmessage = () => {
  rtts.push(performance.now() - t0);
  if (++i < n) setTimeout(next, pause); else { ws.close(); done(rtts); }
};
ws.onopen = next;
ws.onerror = () => done(null);
"#;

/// Page RTT vs raw JavaScript RTT, and main-thread time per echoed message.
async fn round_trips(s: &Session, url: &str, warm: usize, n: usize) -> Result<Value> {
    open_page(s, url).await?;
    let raw_before = raw_rtts(s, n).await?;
    let page = drive(s, warm, n).await?;
    let idle = idle_metrics(s, page.wall).await?;
    let Some(page_p50) = page.p50.as_f64() else {
        bail!("the page round trips failed: {}", page.p50);
    };
    let raw_after = raw_rtts(s, n).await?;
    let mut raw: Vec<f64> = raw_before.iter().chain(&raw_after).copied().collect();
    raw.sort_by(f64::total_cmp);
    let raw_p50 = raw[raw.len() / 2];
    let idle_per_msg = |name: &str| idle.get(name).copied().unwrap_or(0.0) * 1000.0 / n as f64;
    let mut out = json!({
        "messages": n,
        "warm_up": warm,
        "pause_ms": PAUSE_MS,
        "page_p50_ms": page_p50,
        "raw_js_p50_ms": raw_p50,
        "ratio": page_p50 / raw_p50.max(0.001),
        "raw_js_runs_ms": [raw_before, raw_after],
        "window_ms": page.wall.as_secs_f64() * 1000.0,
        "idle_task_ms_per_msg": idle_per_msg("TaskDuration"),
        "idle_thread_cpu_ms_per_msg": idle_per_msg("ThreadTime"),
    });
    page.write_into(&mut out);
    Ok(out)
}

/// The same metrics over a window as long as the messages took, with the page left alone:
/// what the page costs when nothing happens (timers, animations, paint), to subtract.
async fn idle_metrics(s: &Session, wall: Duration) -> Result<HashMap<String, f64>> {
    let before = s.metrics().await?;
    tokio::time::sleep(wall).await;
    let after = s.metrics().await?;
    Ok(after
        .keys()
        .map(|k| (k.clone(), delta(&before, &after, k)))
        .collect())
}

async fn raw_rtts(s: &Session, n: usize) -> Result<Vec<f64>> {
    let v = s
        .script(RAW_SCRIPT, vec![json!(n), json!(PAUSE_MS)])
        .await?;
    let rtts: Vec<f64> = v
        .as_array()
        .context("the plain WebSocket in the page failed")?
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    if rtts.len() != n {
        bail!("the plain WebSocket gave {} of {n} round trips", rtts.len());
    }
    Ok(rtts)
}

/// Page RTT ÷ raw JS RTT (goal ≤ 1.5×), main-thread ms per echoed message (goal ≤ 5) and
/// the worst input wait during the bursts (goal ≤ 100 ms: keystrokes and the 50 ms timer).
pub fn goals(page: &Value) -> [(f64, Option<f64>); 3] {
    let rtt = &page["rtt"];
    let b = &rtt["bursts"];
    let worst = ["lines_10000", "clients_200"]
        .iter()
        .flat_map(|k| ["key_wait_max_ms", "timer_late_max_ms"].map(|m| b[k][m].as_f64()))
        .collect::<Option<Vec<f64>>>()
        .map(|v| v.into_iter().fold(0.0, f64::max));
    [
        (1.5, rtt["ratio"].as_f64()),
        (5.0, rtt["task_ms_per_msg"].as_f64()),
        (100.0, worst),
    ]
}

/// The section in the report.
pub fn markdown(md: &mut String, page: &Value) {
    md.push_str("\n## 4. Page\n\n");
    if page["built"].as_bool() != Some(true) {
        not_built_markdown(md, page);
        return;
    }
    sizes_markdown(md, page);
    paint_markdown(md, &page["paint"]);
    let rtt = &page["rtt"];
    if let Some(err) = rtt["error"].as_str() {
        md.push_str(&format!("\nRound trips: not measured ({err}).\n"));
        return;
    }
    round_trips_method(md, rtt);
    round_trips_table(md, rtt);
    long_log_markdown(md, rtt);
    layers_markdown(md, &rtt["paint_layers"]);
    bursts_markdown(md, &rtt["bursts"]);
}

/// Why there are no figures: the section's error, or no page built.
fn not_built_markdown(md: &mut String, page: &Value) {
    match page["error"].as_str() {
        Some(err) => md.push_str(&format!("Not measured: {err}\n")),
        None => md.push_str(
            "Page not built (no wasm or js in `dist/`): build it with `trunk build --release`.\n",
        ),
    }
}

/// The built files' sizes, raw and gzipped, and their total.
fn sizes_markdown(md: &mut String, page: &Value) {
    md.push_str("| file | raw bytes | gzip -9 bytes |\n|---|---:|---:|\n");
    for file in page["files"].as_array().into_iter().flatten() {
        md.push_str(&format!(
            "| {} | {} | {} |\n",
            file["file"].as_str().unwrap_or(""),
            file["raw"],
            file["gzip"]
        ));
    }
    md.push_str(&format!(
        "| **total** | {} | {} |\n\n",
        page["raw_bytes"], page["gzip_bytes"]
    ));
}

/// The first frame: navigation to first contentful paint, and the load event.
fn paint_markdown(md: &mut String, paint: &Value) {
    match paint["error"].as_str() {
        Some(err) => md.push_str(&format!("First frame: not measured ({err}).\n")),
        None => md.push_str(&format!(
            "Navigation → first contentful paint (the app's first frame; the body is empty \
             until it renders), fresh headless Chromium each time, median: **{} ms** \
             (load event: {} ms).\n",
            f(&paint["first_contentful_paint_ms"], 0),
            f(&paint["load_event_ms"], 0)
        )),
    }
}

/// How the round trips and the main thread's time were measured.
fn round_trips_method(md: &mut String, rtt: &Value) {
    md.push_str(&format!(
        "\nRound trips in one headless Chromium tab, {} messages each, one at a time, {}–{} ms \
         apart (uniformly, so Enter falls anywhere in a frame): the page's own input (value + `input` event, then Enter) beside a plain \
         JavaScript `WebSocket` to the same `/ws` before and after it. Main-thread time is \
         CDP `Performance.getMetrics` over the page's messages, divided by their number (it \
         includes the send, the reply, the monitor events of the bridge's upstream session, \
         and the small driving script).\n\n",
        rtt["messages"],
        rtt["pause_ms"],
        PAUSE_MS + 17,
    ));
}

/// The round trips' and the main thread's figures, the page's beside the floor page's.
fn round_trips_table(md: &mut String, rtt: &Value) {
    md.push_str(&format!(
        "| measure | value | goal |\n|---|---:|---:|\n\
         | page RTT p50 (`data-rtt-p50-ms`) | {} ms | |\n\
         | plain JS WebSocket RTT p50 | {} ms | |\n\
         | page ÷ plain JS | {}× | ≤ 1.5× |\n\
         | main thread per echoed message (TaskDuration) | {} ms | ≤ 5 ms |\n\
         | · its CPU time (ThreadTime) | {} ms | |\n\
         | · of which script | {} ms | |\n\
         | · of which layout | {} ms | |\n\
         | · of which style | {} ms | |\n\
         | the same page left alone for as long (TaskDuration ÷ messages) | {} ms | |\n\
         | by phase (Chromium trace): script / style / layout / paint / commit / other | {} ms | |\n\
         | frames drawn per message | {} | |\n\
         | the floor: a minimal plain-JS page, same typing (TaskDuration / ThreadTime) | {} / {} ms | |\n\
         | · by phase: script / style / layout / paint / commit / other; frames | {} ms; {} | |\n\
         | page ÷ floor (TaskDuration) | {}× | |\n",
        f(&rtt["page_p50_ms"], 2),
        f(&rtt["raw_js_p50_ms"], 2),
        f(&rtt["ratio"], 2),
        f(&rtt["task_ms_per_msg"], 2),
        f(&rtt["thread_cpu_ms_per_msg"], 2),
        f(&rtt["script_ms_per_msg"], 2),
        f(&rtt["layout_ms_per_msg"], 2),
        f(&rtt["style_ms_per_msg"], 2),
        f(&rtt["idle_task_ms_per_msg"], 2),
        phase_cells(&rtt["phases"]),
        f(&rtt["phases"]["frames_per_msg"], 2),
        f(&rtt["floor"]["task_ms_per_msg"], 2),
        f(&rtt["floor"]["thread_cpu_ms_per_msg"], 2),
        phase_cells(&rtt["floor"]["phases"]),
        f(&rtt["floor"]["phases"]["frames_per_msg"], 2),
        ratio_text(
            rtt["task_ms_per_msg"].as_f64(),
            rtt["floor"]["task_ms_per_msg"].as_f64()
        ),
    ));
}

/// With `--long-log`: how full the log was while the messages were measured.
fn long_log_markdown(md: &mut String, rtt: &Value) {
    let (Some(warm), Some(n)) = (rtt["warm_up"].as_u64(), rtt["messages"].as_u64()) else {
        return;
    };
    if warm <= PAGE_WARM_UP as u64 {
        return;
    }
    // Two rows per message and two connection notes; the page keeps 500.
    let rows = (2 + 2 * (warm + n)).min(500);
    md.push_str(&format!(
        "\n**A long log** (`--long-log`): {warm} messages were typed first, into the page and \
         the floor page alike, so the page's log held about {rows} rows by the end (it draws \
         its newest 61 to 90; docs/benchmarks.md, \"A long log\").\n",
    ));
}

/// The layers the page repainted, most costly first (at most [`LAYERS_SHOWN`]).
fn layers_markdown(md: &mut String, layers: &Value) {
    let Some(layers) = layers.as_array().filter(|l| !l.is_empty()) else {
        return;
    };
    md.push_str(
        "\nWhere the page's `Paint` time went (Chromium trace; each layer named by the element \
         that roots it, own time less the layers nested in it; a layer is repainted when \
         something in it changed), per echoed message:\n\n\
         | layer | repaints | ms |\n|---|---:|---:|\n",
    );
    for l in layers.iter().take(LAYERS_SHOWN) {
        md.push_str(&format!(
            "| `{}` | {} | {} |\n",
            l["element"].as_str().unwrap_or("?"),
            f(&l["repaints_per_msg"], 2),
            f(&l["ms_per_msg"], 2)
        ));
    }
}

/// How many of the page's painted layers the report lists.
const LAYERS_SHOWN: usize = 6;

/// "a / b / c …" ms per message of each rendering phase.
fn phase_cells(phases: &Value) -> String {
    ["script", "style", "layout", "paint", "commit", "other"]
        .map(|p| f(&phases[format!("{p}_ms_per_msg")], 2))
        .join(" / ")
}

/// The bursts' table, when they ran.
fn bursts_markdown(md: &mut String, b: &Value) {
    if b.is_null() {
        return;
    }
    md.push_str(
        "\nResponsiveness under bursts of raw TCP clients the page watches (keystrokes through \
         CDP `Input.dispatchKeyEvent` every 100 ms; a 50 ms timer): the longest a keystroke \
         waited before the page's handler ran, and the latest the timer fired.\n\n\
         | burst | keystrokes | worst keystroke wait | worst timer lateness | goal |\n\
         |---|---:|---:|---:|---:|\n",
    );
    for (key, name) in [
        ("lines_10000", "one client, 10,000 lines at once"),
        ("clients_200", "200 clients, 10 msg/s each"),
    ] {
        let r = &b[key];
        md.push_str(&format!(
            "| {name} | {} | {} ms | {} ms | ≤ 100 ms |\n",
            r["keys"],
            f(&r["key_wait_max_ms"], 1),
            f(&r["timer_late_max_ms"], 1)
        ));
    }
}
