//! B/S over UDP: a WebTransport session for datagrams, as a few JavaScript calls.
//! WebTransport's web-sys bindings are behind `--cfg=web_sys_unstable_apis`; the JS API is
//! small and stable, so it is bound here directly and the page needs no extra build flags.
//!
//! Where and how to connect comes from `/api/webtransport`, read by [`crate::services::api`]
//! into `WebTransportInfo`. The times of round trips are taken here: right before a datagram
//! is written ([`Link::send`]) and right after one is read (in [`LinkEvent::Datagram`]).

use js_sys::{Function, Uint8Array};
use socklab_protocol::WebTransportInfo;
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

const encoder = new TextEncoder();

export function wt_open(url, hash, on) {
  const link = { wt: null, writer: null, done: false };
  const closed = (reason) => {
    if (!link.done) { link.done = true; on("closed", reason, 0); }
  };
  (async () => {
    const wt = new WebTransport(url, {
      serverCertificateHashes: [{ algorithm: "sha-256", value: hash }],
    });
    link.wt = wt;
    wt.closed.then(
      (c) => closed(((c && c.closeCode) ?? "") + " " + ((c && c.reason) || "session closed")),
      (e) => closed(why(e)),
    );
    await wt.ready;
    if (link.done) return;
    link.writer = wt.datagrams.writable.getWriter();
    on("open", "", 0);
    const reader = wt.datagrams.readable.getReader();
    const text = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      const at = performance.now();
      if (done || link.done) break;
      on("datagram", text.decode(value), at);
    }
  })().catch((e) => closed(why(e)));
  return link;
}

export function wt_send(link, text) {
  if (!link.writer || link.done) return -1;
  const at = performance.now();
  link.writer.write(encoder.encode(text)).catch(() => {});
  return at;
}

export function wt_close(link) {
  link.done = true;
  try { if (link.wt) link.wt.close({ closeCode: 0, reason: "page closed it" }); } catch (e) {}
}
"#)]
extern "C" {
    fn wt_supported() -> bool;
    fn wt_open(url: &str, hash: &Uint8Array, on: &Function) -> JsValue;
    fn wt_send(link: &JsValue, text: &str) -> f64;
    fn wt_close(link: &JsValue);
}

/// What a WebTransport session reports.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkEvent {
    /// Ready to send.
    Open,
    /// A datagram came back, read at `at_ms` (`performance.now()`).
    Datagram {
        /// Its payload, decoded as UTF-8.
        text: String,
        /// When the read finished.
        at_ms: f64,
    },
    /// Closed or failed, with the reason in words.
    Closed(String),
}

/// Whether this browser has WebTransport at all.
pub fn supported() -> bool {
    wt_supported()
}

/// A WebTransport session, closed when dropped.
pub struct Link {
    handle: JsValue,
    // Keeps the JS callback alive as long as the link.
    _on: Closure<dyn FnMut(String, String, f64)>,
}

impl Link {
    /// Opens a session to the endpoint `info` names, trusting its certificate by hash.
    pub fn open(info: &WebTransportInfo, on_event: Callback<LinkEvent>) -> Link {
        let on = Closure::new(move |kind: String, text: String, at_ms: f64| {
            on_event.emit(match kind.as_str() {
                "open" => LinkEvent::Open,
                "datagram" => LinkEvent::Datagram { text, at_ms },
                _ => LinkEvent::Closed(text),
            })
        });
        let hash = Uint8Array::from(info.cert_sha256.as_slice());
        let handle = wt_open(&info.url, &hash, on.as_ref().unchecked_ref());
        Link { handle, _on: on }
    }

    /// Sends one datagram; when it was written (`performance.now()`), `None` when not open.
    pub fn send(&self, text: &str) -> Option<f64> {
        let at = wt_send(&self.handle, text);
        (at >= 0.0).then_some(at)
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        wt_close(&self.handle);
    }
}
