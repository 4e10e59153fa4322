//! B/S over UDP: WebTransport datagrams (and, for comparison, a short-lived WebSocket to the
//! bridge), as a few JavaScript calls. WebTransport's web-sys bindings are behind
//! `--cfg=web_sys_unstable_apis`; the JS API is small and stable, so it is bound here directly
//! and the page needs no extra build flags.
//!
//! Every call reports back through one callback `(kind, text)`: `info` (the JSON of
//! `/api/webtransport`), `open`, `datagram` (a reply, decoded as UTF-8), `message` (a
//! WebSocket reply), `closed` (with a reason in words).

use js_sys::Function;
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::*;
use yew::Callback;

#[wasm_bindgen(inline_js = r#"
export function wt_supported() {
  return typeof globalThis.WebTransport === "function";
}

function why(e) {
  return String((e && (e.message || e.reason)) || e || "closed");
}

export function wt_open(on) {
  const link = { wt: null, writer: null, done: false };
  const closed = (reason) => {
    if (!link.done) { link.done = true; on("closed", reason); }
  };
  fetch("api/webtransport", { cache: "no-store" })
    .then((r) => r.ok ? r.json() : Promise.reject(new Error("GET /api/webtransport: HTTP " + r.status)))
    .then(async (info) => {
      on("info", JSON.stringify(info));
      if (link.done) return;
      const wt = new WebTransport(info.url, {
        serverCertificateHashes: [{ algorithm: "sha-256", value: new Uint8Array(info.cert_sha256) }],
      });
      link.wt = wt;
      wt.closed.then(
        (c) => closed(((c && c.closeCode) ?? "") + " " + ((c && c.reason) || "session closed")),
        (e) => closed(why(e)),
      );
      await wt.ready;
      link.writer = wt.datagrams.writable.getWriter();
      on("open", "");
      const reader = wt.datagrams.readable.getReader();
      const text = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read();
        if (done || link.done) break;
        on("datagram", text.decode(value));
      }
    })
    .catch((e) => closed(why(e)));
  return link;
}

export function wt_send(link, text) {
  if (!link.writer || link.done) return false;
  link.writer.write(new TextEncoder().encode(text)).catch(() => {});
  return true;
}

export function wt_close(link) {
  link.done = true;
  try { if (link.wt) link.wt.close({ closeCode: 0, reason: "page closed it" }); } catch (e) {}
}

export function ws_open(url, on) {
  const ws = new WebSocket(url);
  ws.onopen = () => on("open", "");
  ws.onmessage = (m) => on("message", typeof m.data === "string" ? m.data : "");
  ws.onclose = (c) => on("closed", c.code + " " + c.reason);
  return ws;
}

export function ws_send(ws, text) {
  if (ws.readyState !== 1) return false;
  ws.send(text);
  return true;
}

export function ws_close(ws) {
  ws.onopen = ws.onmessage = ws.onclose = null;
  try { ws.close(1000, "burst done"); } catch (e) {}
}
"#)]
extern "C" {
    fn wt_supported() -> bool;
    fn wt_open(on: &Function) -> JsValue;
    fn wt_send(link: &JsValue, text: &str) -> bool;
    fn wt_close(link: &JsValue);
    fn ws_open(url: &str, on: &Function) -> JsValue;
    fn ws_send(ws: &JsValue, text: &str) -> bool;
    fn ws_close(ws: &JsValue);
}

/// What a link reports.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkEvent {
    /// `/api/webtransport`'s answer (JSON).
    Info(String),
    /// Ready to send.
    Open,
    /// A reply: a datagram (WebTransport) or a message (WebSocket).
    Reply(String),
    /// Closed or failed, with the reason in words.
    Closed(String),
}

fn callback(on_event: Callback<LinkEvent>) -> Closure<dyn FnMut(String, String)> {
    Closure::new(move |kind: String, text: String| {
        let event = match kind.as_str() {
            "info" => LinkEvent::Info(text),
            "open" => LinkEvent::Open,
            "datagram" | "message" => LinkEvent::Reply(text),
            _ => LinkEvent::Closed(text),
        };
        on_event.emit(event);
    })
}

/// Whether this browser has WebTransport at all.
pub fn supported() -> bool {
    wt_supported()
}

/// A WebTransport session or a WebSocket, closed when dropped.
pub struct Link {
    handle: JsValue,
    websocket: bool,
    // Keeps the JS callback alive as long as the link.
    _on: Closure<dyn FnMut(String, String)>,
}

impl Link {
    /// Asks `/api/webtransport` where and how, then opens a WebTransport session.
    pub fn webtransport(on_event: Callback<LinkEvent>) -> Link {
        let on = callback(on_event);
        let handle = wt_open(on.as_ref().unchecked_ref());
        Link {
            handle,
            websocket: false,
            _on: on,
        }
    }

    /// Opens a WebSocket to the bridge at `url`.
    pub fn websocket(url: &str, on_event: Callback<LinkEvent>) -> Link {
        let on = callback(on_event);
        let handle = ws_open(url, on.as_ref().unchecked_ref());
        Link {
            handle,
            websocket: true,
            _on: on,
        }
    }

    /// Sends one datagram (WebTransport) or one text message (WebSocket); false when not open.
    pub fn send(&self, text: &str) -> bool {
        if self.websocket {
            ws_send(&self.handle, text)
        } else {
            wt_send(&self.handle, text)
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        if self.websocket {
            ws_close(&self.handle);
        } else {
            wt_close(&self.handle);
        }
    }
}
