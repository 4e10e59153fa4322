//! The floor under the page's main-thread time: the same typing (`page_drive::PAGE_SCRIPT`) into a
//! minimal page written in plain JavaScript — a text box, a list that gets a row per message
//! and reply, a counter — over the same `/ws`, in a fresh Chromium. Whatever this costs per
//! message is the browser's own price for a frame or two and a socket callback on this machine;
//! the page's figure is read against it.

use std::fs;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use super::browser::Session;
use super::ctx::Ctx;
use super::page_drive::{Served, drive, open_page, serve_dir};

/// The minimal page: the ids and data attributes `PAGE_SCRIPT` and `OPEN_SCRIPT` use.
const FLOOR_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>socklab bench: the floor page</title></head>
<body>
<span id="bs-status" data-status="connecting">connecting</span>
<ol id="log" style="height: 340px; overflow-y: auto; contain: strict"></ol>
<span id="bs-stats" data-received="0">0</span>
<textarea id="bs-input" rows="1"></textarea>
<script>
const url = new URL('ws', location.href);
url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
const ws = new WebSocket(url);
const [input, log, stats] = ['bs-input', 'log', 'bs-stats'].map((id) => document.getElementById(id));
let sentAt = 0, received = 0;
const row = (text) => {
  const li = document.createElement('li');
  li.textContent = text;
  log.appendChild(li);
  log.scrollTop = log.scrollHeight;
};
ws.onopen = () => { document.getElementById('bs-status').dataset.status = 'open'; };
ws.onmessage = (m) => {
  const rtt = performance.now() - sentAt;
  row('↓ ' + m.data + ' ' + rtt.toFixed(1) + ' ms');
  stats.dataset.received = ++received;
  stats.dataset.rttP50Ms = rtt.toFixed(1);
  stats.textContent = received;
};
input.addEventListener('keydown', (e) => {
  if (e.key !== 'Enter') return;
  e.preventDefault();
  sentAt = performance.now();
  ws.send(input.value);
  row('↑ ' + input.value);
  input.value = '';
});
</script>
</body></html>
"#;

/// Writes the floor page under the run's logs and serves it.
pub fn serve(ctx: &Ctx) -> Result<Served> {
    let dir = ctx.log_dir.join("floor-page");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let page = dir.join("index.html");
    fs::write(&page, FLOOR_PAGE).with_context(|| format!("writing {}", page.display()))?;
    serve_dir(ctx, "floor-server", &dir)
}

/// The floor page's main-thread figures for `n` messages after `warm`, in a fresh Chromium.
pub async fn measure(driver: u16, url: &str, warm: usize, n: usize) -> Result<Value> {
    let s = Session::open(driver, true).await?;
    let measured = async {
        open_page(&s, url).await?;
        drive(&s, warm, n).await
    }
    .await;
    s.close().await;
    let driven = measured?;
    let mut out = json!({ "messages": n, "rtt_p50_ms": driven.p50 });
    driven.write_into(&mut out);
    Ok(out)
}
