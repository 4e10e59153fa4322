//! Serving a page, opening it and typing into it while measuring its main thread: shared by
//! the page section (`page`) and its floor (`page_floor`).

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::{Value, json};

use super::browser::Session;
use super::ctx::{Ctx, server_flags};
use super::procs::{Proc, free_port, local, wait_port};
use super::trace;

/// The pause between two messages, in ms.
pub const PAUSE_MS: u32 = 30;

/// A socklab server (release build, ports of its own) serving `dir` as its page; dropped, it
/// stops.
pub struct Served {
    _server: Proc,
    /// Its TCP echo's port.
    pub tcp: u16,
    /// The page's URL.
    pub url: String,
}

/// Starts a server (logged as `name`) whose page is `dir`, and waits for its HTTP port.
pub fn serve_dir(ctx: &Ctx, name: &str, dir: &Path) -> Result<Served> {
    let (tcp, http) = (free_port()?, free_port()?);
    let mut server = ctx.command(&ctx.bins.server);
    server
        .args(["--tcp", &local(tcp).to_string(), "--http"])
        .arg(local(http).to_string())
        .args(server_flags(&ctx.bins.server))
        .arg("--static-dir")
        .arg(dir)
        .env("RUST_LOG", "warn");
    let mut server = Proc::spawn(name, server, &ctx.log_dir)?;
    wait_port(&mut server, http)?;
    Ok(Served {
        _server: server,
        tcp,
        url: format!("http://{}/", local(http)),
    })
}

/// Opens the page at `url` in `s` and waits until its WebSocket is open ([`OPEN_SCRIPT`]).
pub async fn open_page(s: &Session, url: &str) -> Result<()> {
    s.goto(url).await?;
    if s.script(OPEN_SCRIPT, vec![]).await? != json!(true) {
        bail!("the page at {url} did not open its WebSocket within 20 s");
    }
    Ok(())
}

/// Types `n` messages that are not measured: the first ones a page handles also pay for
/// compiling and warming its code on that path.
pub async fn warm_up(s: &Session, n: usize) -> Result<()> {
    let warm = s
        .script(PAGE_SCRIPT, vec![json!(n), json!(PAUSE_MS)])
        .await?;
    if !warm.is_number() {
        bail!("the warm-up messages failed: {warm}");
    }
    Ok(())
}

/// Waits until the page's bridge is open.
const OPEN_SCRIPT: &str = r#"
const done = arguments[arguments.length - 1];
const t0 = performance.now();
(function wait() {
  if (document.querySelector('#bs-status[data-status=open]')) done(true);
  else if (performance.now() - t0 > 20000) done(false);
  else setTimeout(wait, 20);
})();
"#;

/// The page's own input (or the floor page's: the same ids): `n` messages typed (value +
/// `input` event) and sent with Enter, one at a time; each waits until the page counts its
/// reply (`data-received` on the statistics). The pause after a reply is drawn from a frame's length (16.7 ms) on top of `pause`: the
/// reply is counted in a frame, so a fixed pause would press Enter at the same point of every
/// frame, where a person's keystrokes fall anywhere in it (a fixed pause lands each Enter just
/// before the next frame, and every reply behind that frame's drawing of the typed text).
pub const PAGE_SCRIPT: &str = r#"
const [n, pause, done] = [arguments[0], arguments[1], arguments[arguments.length - 1]];
const input = document.getElementById('bs-input');
const stats = () => document.querySelector('#bs-stats');
const received = () => Number(stats().dataset.received);
const tick = (ms) => new Promise((r) => setTimeout(r, ms));
const counted = (target) => new Promise((resolve, reject) => {
  if (received() >= target) return resolve();
  const obs = new MutationObserver(() => {
    if (received() >= target) { obs.disconnect(); resolve(); }
  });
  obs.observe(stats(), { attributes: true });
  setTimeout(() => { obs.disconnect(); reject(new Error('no reply ' + target)); }, 10000);
});
(async () => {
  console.timeStamp('socklab-messages');
  const start = received();
  for (let i = 0; i < n; i++) {
    input.value = 'page ' + i;
    input.dispatchEvent(new InputEvent('input', { bubbles: true }));
    await tick(0);
    input.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true }));
    await counted(start + i + 1);
    await tick(pause + Math.random() * 16.7);
  }
  console.timeStamp('socklab-messages');
  done(Number(stats().dataset.rttP50Ms));
})().catch((e) => done(String(e)));
"#;

/// What [`drive`] measured.
pub struct Driven {
    /// The page's `data-rtt-p50-ms` at the end (or the script's error text).
    pub p50: Value,
    pub wall: Duration,
    /// `Performance.getMetrics` deltas, ms per message.
    pub per_msg: HashMap<String, f64>,
    /// [`trace::phases`] of the same messages.
    pub phases: Value,
    /// [`trace::paint_layers`] of the same messages, each named by its element.
    pub paint_layers: Value,
}

impl Driven {
    /// The main-thread figures as the section's JSON keys.
    pub fn write_into(&self, out: &mut Value) {
        for (key, metric) in [
            ("task_ms_per_msg", "TaskDuration"),
            ("thread_cpu_ms_per_msg", "ThreadTime"),
            ("script_ms_per_msg", "ScriptDuration"),
            ("layout_ms_per_msg", "LayoutDuration"),
            ("style_ms_per_msg", "RecalcStyleDuration"),
        ] {
            out[key] = json!(self.per_msg.get(metric).copied().unwrap_or(0.0));
        }
        out["phases"] = self.phases.clone();
        out["paint_layers"] = self.paint_layers.clone();
    }
}

/// Types `warm` and then `n` messages into the page open in `s` ([`PAGE_SCRIPT`]) and
/// measures its main thread during the `n`; reads the session's trace, so once per session.
pub async fn drive(s: &Session, warm: usize, n: usize) -> Result<Driven> {
    warm_up(s, warm).await?;
    s.cdp("Performance.enable", json!({})).await?;
    let before = s.metrics().await?;
    let started = Instant::now();
    let p50 = s
        .script(PAGE_SCRIPT, vec![json!(n), json!(PAUSE_MS)])
        .await?;
    let wall = started.elapsed();
    let after = s.metrics().await?;
    let events = s.trace_events().await?;
    let phases = trace::phases(&events, n);
    let paint_layers = named_layers(s, trace::paint_layers(&events, n)).await;
    let per_msg = after
        .keys()
        .map(|k| (k.clone(), delta(&before, &after, k) * 1000.0 / n as f64))
        .collect();
    Ok(Driven {
        p50,
        wall,
        per_msg,
        phases,
        paint_layers,
    })
}

/// The layers of [`trace::paint_layers`] as JSON, each with its element as a CSS-like name
/// (`section#id.class`), looked up while the page is still open.
async fn named_layers(s: &Session, layers: Vec<trace::PaintLayer>) -> Value {
    // `DOM.describeNode` answers for backend node ids once the DOM agent has a document.
    let dom = s.cdp("DOM.getDocument", json!({ "depth": 0 })).await;
    let mut out = Vec::with_capacity(layers.len());
    for layer in layers {
        let element = match &dom {
            Ok(_) => s
                .cdp("DOM.describeNode", json!({ "backendNodeId": layer.node }))
                .await
                .map_or_else(
                    |err| format!("node {} ({err:#})", layer.node),
                    |d| css_name(&d["node"]),
                ),
            Err(_) => format!("node {}", layer.node),
        };
        out.push(json!({
            "element": element,
            "repaints_per_msg": layer.repaints_per_msg,
            "ms_per_msg": layer.ms_per_msg,
        }));
    }
    Value::Array(out)
}

/// `section#id.a.b` for a CDP `DOM.Node` (`#document` as it is).
fn css_name(node: &Value) -> String {
    let mut name = node["nodeName"].as_str().unwrap_or("?").to_lowercase();
    let attrs: Vec<&str> = node["attributes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for pair in attrs.chunks(2) {
        match pair {
            ["id", id] => name.push_str(&format!("#{id}")),
            ["class", classes] => {
                for class in classes.split_whitespace() {
                    name.push_str(&format!(".{class}"));
                }
            }
            _ => {}
        }
    }
    name
}

pub fn delta(before: &HashMap<String, f64>, after: &HashMap<String, f64>, name: &str) -> f64 {
    after.get(name).copied().unwrap_or(0.0) - before.get(name).copied().unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_element_is_named_by_its_tag_id_and_classes() {
        let node = json!({
            "nodeName": "SECTION",
            "attributes": ["aria-labelledby", "x", "id", "udp-panel", "class", "panel  udp"],
        });
        assert_eq!(css_name(&node), "section#udp-panel.panel.udp");
        assert_eq!(css_name(&json!({ "nodeName": "#document" })), "#document");
    }
}
