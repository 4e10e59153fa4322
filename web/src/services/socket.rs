//! The page's one wrapper over the browser's `WebSocket` (the bridge, the monitor feed and the
//! UDP panel's comparison burst all use it): its callbacks become one stream of
//! [`SocketEvent`]s, detached cleanly when dropped.
//!
//! Round-trip times are only as true as their two timestamps, so both are taken here, at the
//! socket: [`Socket::send_text`] returns the `performance.now()` taken right before `send`, and
//! each message event carries the `performance.now()` taken first thing in `onmessage`, before
//! any state update or render.

use std::rc::Rc;

use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};

use crate::util;

/// What happened on a socket.
#[derive(Debug, Clone)]
pub enum SocketEvent {
    /// The handshake finished; messages may flow.
    Open,
    /// A text message arrived, at `at_ms` (`performance.now()`).
    Text {
        /// The message.
        text: String,
        /// When `onmessage` started.
        at_ms: f64,
    },
    /// A binary message arrived, at `at_ms` (`performance.now()`).
    Binary {
        /// The message.
        data: Vec<u8>,
        /// When `onmessage` started.
        at_ms: f64,
    },
    /// The connection closed (after a close frame, or abnormally with code 1006).
    Closed {
        /// The close code (1006 when no close frame arrived).
        code: u16,
        /// The reason the peer gave, possibly empty.
        reason: String,
        /// Whether the closing handshake completed.
        clean: bool,
    },
}

/// An open (or opening) WebSocket and the closures the browser calls.
pub struct Socket {
    ws: WebSocket,
    _on_open: Closure<dyn FnMut()>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl Socket {
    /// Starts connecting to `url`; every event goes to `on_event`.
    pub fn open(url: &str, on_event: Rc<dyn Fn(SocketEvent)>) -> Result<Socket, String> {
        let ws = WebSocket::new(url).map_err(|e| format!("{e:?}"))?;
        ws.set_binary_type(BinaryType::Arraybuffer);

        let cb = on_event.clone();
        let on_open = Closure::<dyn FnMut()>::new(move || cb(SocketEvent::Open));
        let cb = on_event.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            let at_ms = util::now_ms();
            let data = e.data();
            if let Some(text) = data.as_string() {
                cb(SocketEvent::Text { text, at_ms });
            } else if let Ok(buf) = data.dyn_into::<js_sys::ArrayBuffer>() {
                let data = js_sys::Uint8Array::new(&buf).to_vec();
                cb(SocketEvent::Binary { data, at_ms });
            }
        });
        let cb = on_event;
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |e: CloseEvent| {
            cb(SocketEvent::Closed {
                code: e.code(),
                reason: e.reason(),
                clean: e.was_clean(),
            })
        });
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        Ok(Socket {
            ws,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
        })
    }

    /// Sends a text message; returns when (`performance.now()`, taken right before `send`).
    pub fn send_text(&self, text: &str) -> Result<f64, String> {
        let at_ms = util::now_ms();
        self.ws.send_with_str(text).map_err(|e| format!("{e:?}"))?;
        Ok(at_ms)
    }

    /// Sends a binary message; returns when, like [`Socket::send_text`].
    pub fn send_bytes(&self, data: &[u8]) -> Result<f64, String> {
        let at_ms = util::now_ms();
        self.ws
            .send_with_u8_array(data)
            .map_err(|e| format!("{e:?}"))?;
        Ok(at_ms)
    }

    /// Starts a normal close (code 1000); a `Closed` event follows.
    pub fn close(&self) {
        let _ = self.ws.close_with_code(1000);
    }

    /// Starts a normal close (code 1000) with a reason.
    pub fn close_with_reason(&self, reason: &str) {
        let _ = self.ws.close_with_code_and_reason(1000, reason);
    }

    /// Whether the socket is open.
    pub fn is_open(&self) -> bool {
        self.ws.ready_state() == WebSocket::OPEN
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        if self.ws.ready_state() < WebSocket::CLOSING {
            let _ = self.ws.close();
        }
    }
}

/// Drops a socket later, outside the callback that may be running right now (a closure must
/// not be freed while the browser is still inside it).
pub fn retire(socket: Socket) {
    yew::platform::spawn_local(async move { drop(socket) });
}

/// How long to wait before reconnect attempt `attempt` (1, 2, …): 1 s, doubling, at most
/// `max_ms`.
pub fn backoff_ms(attempt: u32, max_ms: u32) -> u32 {
    1000u32
        .saturating_mul(1 << attempt.saturating_sub(1).min(5))
        .min(max_ms)
}

#[cfg(test)]
mod tests {
    use super::backoff_ms;

    #[test]
    fn backoff_doubles_from_one_second_up_to_the_cap() {
        let waits: Vec<u32> = (1..=7).map(|a| backoff_ms(a, 30_000)).collect();
        assert_eq!(waits, [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
        let waits: Vec<u32> = (1..=6).map(|a| backoff_ms(a, 10_000)).collect();
        assert_eq!(waits, [1000, 2000, 4000, 8000, 10_000, 10_000]);
    }
}
