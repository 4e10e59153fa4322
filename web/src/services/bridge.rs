//! The B/S connection: this page → `/ws` (WebSocket) → the server's bridge → TCP → echo.
//!
//! It reconnects on its own with exponential backoff (1 s, 2 s, 4 s … 30 s), except after the
//! user pressed "disconnect" or the server said the connection was idle too long. Every change
//! goes to the [`BridgeState`] reducer, in one batch per animation frame ([`FrameQueue`]), with
//! the times the socket itself took (see [`socket`]); components only read that state.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use gloo_timers::callback::Timeout;
use yew::UseReducerDispatcher;

use super::frame::{self, FrameQueue};
use super::socket::{self, Socket, SocketEvent};
use crate::state::bridge::{BridgeAction, BridgeState, CloseInfo, lines_in, lines_in_bytes};
use crate::util;

/// The longest wait between attempts.
const MAX_BACKOFF_MS: u32 = 30_000;
/// A connection that stayed open this long resets the backoff.
const STABLE_MS: f64 = 10_000.0;

struct Bridge {
    /// `ws://…/ws?tag=…`.
    url: String,
    /// Where state changes go, one batch per frame.
    dispatch: FrameQueue<BridgeAction>,
    /// The current socket, while connecting or open.
    socket: Option<Socket>,
    /// Identifies the current socket and retry timer; events of older ones are ignored.
    generation: u64,
    /// Failed attempts in a row.
    attempt: u32,
    /// Whether to reconnect after a close.
    auto: bool,
    /// When the current socket opened.
    opened_at: Option<f64>,
    /// Whether the current socket received anything (then the bridge really works).
    got_message: bool,
    /// Reply lines owed to what was sent (redraws wait for them; see `frame`).
    owed: usize,
}

/// A cheap, clonable handle to the bridge connection.
#[derive(Clone)]
pub struct BridgeHandle(Rc<RefCell<Bridge>>);

impl PartialEq for BridgeHandle {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

impl BridgeHandle {
    /// A bridge connection to `url` (not connected yet: call [`BridgeHandle::connect`]).
    pub fn new(url: String, reducer: UseReducerDispatcher<BridgeState>) -> Self {
        BridgeHandle(Rc::new(RefCell::new(Bridge {
            url,
            dispatch: FrameQueue::new(move |batch| reducer.dispatch(BridgeAction::Batch(batch))),
            socket: None,
            generation: 0,
            attempt: 0,
            auto: true,
            opened_at: None,
            got_message: false,
            owed: 0,
        })))
    }

    /// Opens a new connection (closing the current one, if any).
    pub fn connect(&self) {
        let (url, dispatch) = {
            let b = self.0.borrow();
            (b.url.clone(), b.dispatch.clone())
        };
        dispatch.push(BridgeAction::Connecting {
            url: url.clone(),
            clock: util::clock_now(),
        });
        let mut b = self.0.borrow_mut();
        b.generation += 1;
        b.opened_at = None;
        b.got_message = false;
        if let Some(old) = b.socket.take() {
            socket::retire(old);
        }
        let generation = b.generation;
        let weak = Rc::downgrade(&self.0);
        let on_event = Rc::new(move |ev| handle_event(&weak, generation, ev));
        match Socket::open(&url, on_event) {
            Ok(s) => b.socket = Some(s),
            Err(err) => {
                drop(b);
                // An unusable URL: report it like a dropped connection.
                self.closed(generation, 1006, err, false);
            }
        }
    }

    /// Sends one text message (the bridge adds `\n`); `false` when not connected.
    pub fn send(&self, text: &str) -> bool {
        self.send_with(
            lines_in(text),
            |s| s.send_text(text),
            |clock, now_ms| BridgeAction::Sent {
                text: text.to_string(),
                clock,
                now_ms,
            },
        )
    }

    /// Sends one binary message (the bridge forwards it verbatim); `false` when not connected.
    pub fn send_binary(&self, data: &[u8]) -> bool {
        self.send_with(
            lines_in_bytes(data),
            |s| s.send_bytes(data),
            |clock, now_ms| BridgeAction::SentBinary {
                data: data.to_vec(),
                clock,
                now_ms,
            },
        )
    }

    fn send_with(
        &self,
        lines: usize,
        send: impl FnOnce(&Socket) -> Result<f64, String>,
        sent: impl FnOnce(String, f64) -> BridgeAction,
    ) -> bool {
        let (at_ms, dispatch) = {
            let mut b = self.0.borrow_mut();
            let at_ms = b
                .socket
                .as_ref()
                .filter(|s| s.is_open())
                .and_then(|s| send(s).ok());
            if at_ms.is_some() {
                b.owed += lines;
                frame::awaiting_reply(true);
            }
            (at_ms, b.dispatch.clone())
        };
        let clock = util::clock_now();
        dispatch.push(match at_ms {
            Some(at_ms) => sent(clock, at_ms),
            None => BridgeAction::NotSent { clock },
        });
        at_ms.is_some()
    }

    /// Closes the connection (code 1000) and stays closed until [`BridgeHandle::reconnect_now`].
    pub fn disconnect(&self) {
        let (dispatch, closing) = {
            let mut b = self.0.borrow_mut();
            b.auto = false;
            match b.socket.as_ref() {
                // The close event follows and is reported like any other close.
                Some(s) => {
                    s.close();
                    (b.dispatch.clone(), true)
                }
                // Waiting for a retry: cancel it.
                None => {
                    b.generation += 1;
                    (b.dispatch.clone(), false)
                }
            }
        };
        dispatch.push(if closing {
            BridgeAction::Closing
        } else {
            BridgeAction::Stopped
        });
    }

    /// Connects again now, resetting the backoff.
    pub fn reconnect_now(&self) {
        {
            let mut b = self.0.borrow_mut();
            b.auto = true;
            b.attempt = 0;
        }
        self.connect();
    }

    fn closed(&self, generation: u64, code: u16, reason: String, clean: bool) {
        let (dispatch, retry) = {
            let mut b = self.0.borrow_mut();
            if b.generation != generation {
                return;
            }
            if let Some(s) = b.socket.take() {
                socket::retire(s);
            }
            let stable = b.opened_at.is_some_and(|t| util::now_ms() - t >= STABLE_MS);
            if stable || b.got_message {
                b.attempt = 0;
            }
            let idle = code == 1001 && reason.to_ascii_lowercase().contains("idle");
            let retry = if b.auto && !idle {
                b.attempt += 1;
                let delay = socket::backoff_ms(b.attempt, MAX_BACKOFF_MS);
                Some((delay, b.attempt))
            } else {
                None
            };
            (b.dispatch.clone(), retry)
        };
        dispatch.push(BridgeAction::Closed(CloseInfo {
            code,
            reason,
            clean,
            clock: util::clock_now(),
        }));
        match retry {
            Some((delay, attempt)) => {
                dispatch.push(BridgeAction::Waiting {
                    retry_at_ms: util::now_ms() + f64::from(delay),
                    attempt,
                    secs: delay.div_ceil(1000),
                    clock: util::clock_now(),
                });
                let weak = Rc::downgrade(&self.0);
                Timeout::new(delay, move || {
                    if let Some(rc) = weak.upgrade() {
                        let handle = BridgeHandle(rc);
                        if handle.0.borrow().generation == generation {
                            handle.connect();
                        }
                    }
                })
                .forget();
            }
            None => dispatch.push(BridgeAction::Stopped),
        }
    }
}

fn handle_event(weak: &Weak<RefCell<Bridge>>, generation: u64, ev: SocketEvent) {
    let Some(rc) = weak.upgrade() else { return };
    let handle = BridgeHandle(rc);
    let dispatch = {
        let mut b = handle.0.borrow_mut();
        if b.generation != generation {
            return;
        }
        match &ev {
            SocketEvent::Open => {
                b.opened_at = Some(util::now_ms());
                b.owed = 0;
            }
            SocketEvent::Text { .. } | SocketEvent::Binary { .. } => {
                b.got_message = true;
                b.owed = b.owed.saturating_sub(1);
            }
            SocketEvent::Closed { .. } => b.owed = 0,
        }
        frame::awaiting_reply(b.owed > 0);
        b.dispatch.clone()
    };
    let clock = util::clock_now();
    match ev {
        SocketEvent::Open => dispatch.push(BridgeAction::Opened {
            clock,
            now_ms: util::now_ms(),
        }),
        SocketEvent::Text { text, at_ms } => dispatch.push(BridgeAction::ReceivedText {
            text,
            clock,
            now_ms: at_ms,
        }),
        SocketEvent::Binary { data, at_ms } => dispatch.push(BridgeAction::ReceivedBinary {
            data,
            clock,
            now_ms: at_ms,
        }),
        SocketEvent::Closed {
            code,
            reason,
            clean,
        } => handle.closed(generation, code, reason, clean),
    }
}
