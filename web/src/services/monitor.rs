//! The monitor feed: `/api/events`, one JSON [`MonitorEvent`] per text frame. On connect the
//! server first announces every open session, then live events follow.
//!
//! Events are handed to the reducer in batches (at most ten a second, fewer when a redraw is
//! costly), so a burst of thousands (a benchmark) costs a few renders, not thousands. The feed
//! reconnects on its own.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use gloo_timers::callback::Timeout;
use socklab_protocol::MonitorEvent;
use yew::{Callback, UseReducerDispatcher};

use super::frame;
use super::socket::{self, Socket, SocketEvent};
use crate::state::monitor::{MonitorAction, MonitorState};
use crate::util;

/// How long events gather before the page redraws, at least.
const BATCH_MS: u32 = 100;
/// … and at most: when a redraw is costly (hundreds of busy sessions), the next one waits
/// longer, so the page spends at most about a quarter of its time on the feed and input is
/// handled in between.
const MAX_BATCH_MS: u32 = 1000;
/// The longest wait between attempts.
const MAX_BACKOFF_MS: u32 = 10_000;

struct Monitor {
    url: String,
    /// Whether to ask for `packet` events too (`?packets=1`): only when capture runs, so a
    /// page on a server without it pays nothing.
    packets: bool,
    dispatch: UseReducerDispatcher<MonitorState>,
    /// Called each time the feed (re)connects.
    on_open: Callback<()>,
    socket: Option<Socket>,
    /// Identifies the current socket and retry timer.
    generation: u64,
    attempt: u32,
    /// Events (JSON text) waiting for the next batch.
    buffer: Vec<String>,
    flush_scheduled: bool,
    /// The current batch interval (grows with the cost of a redraw).
    batch_ms: u32,
}

/// A handle to the monitor feed.
#[derive(Clone)]
pub struct MonitorHandle(Rc<RefCell<Monitor>>);

impl PartialEq for MonitorHandle {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

impl MonitorHandle {
    /// A feed from `url` (call [`MonitorHandle::connect`] to start).
    pub fn new(
        url: String,
        dispatch: UseReducerDispatcher<MonitorState>,
        on_open: Callback<()>,
    ) -> Self {
        MonitorHandle(Rc::new(RefCell::new(Monitor {
            url,
            packets: false,
            dispatch,
            on_open,
            socket: None,
            generation: 0,
            attempt: 0,
            buffer: Vec::new(),
            flush_scheduled: false,
            batch_ms: BATCH_MS,
        })))
    }

    /// Asks for `packet` events (or stops): reconnects when that changes, and the fresh
    /// snapshot redraws the sessions.
    pub fn want_packets(&self, on: bool) {
        let changed = {
            let mut m = self.0.borrow_mut();
            std::mem::replace(&mut m.packets, on) != on
        };
        if changed {
            self.connect();
        }
    }

    /// Sets whether to ask for `packet` events at the next connect, without reconnecting.
    pub fn set_packets(&self, on: bool) {
        self.0.borrow_mut().packets = on;
    }

    /// Connects (again).
    pub fn connect(&self) {
        let (url, dispatch) = {
            let b = self.0.borrow();
            let url = if b.packets {
                format!("{}?packets=1", b.url)
            } else {
                b.url.clone()
            };
            (url, b.dispatch.clone())
        };
        dispatch.dispatch(MonitorAction::Connecting);
        let mut m = self.0.borrow_mut();
        m.generation += 1;
        m.buffer.clear();
        if let Some(old) = m.socket.take() {
            socket::retire(old);
        }
        let generation = m.generation;
        let weak = Rc::downgrade(&self.0);
        let on_event = Rc::new(move |ev| handle_event(&weak, generation, ev));
        match Socket::open(&url, on_event) {
            Ok(s) => m.socket = Some(s),
            Err(_) => {
                drop(m);
                self.lost(generation);
            }
        }
    }

    fn lost(&self, generation: u64) {
        let (dispatch, delay) = {
            let mut m = self.0.borrow_mut();
            if m.generation != generation {
                return;
            }
            if let Some(s) = m.socket.take() {
                socket::retire(s);
            }
            m.buffer.clear();
            m.attempt += 1;
            let delay = socket::backoff_ms(m.attempt, MAX_BACKOFF_MS);
            (m.dispatch.clone(), delay)
        };
        dispatch.dispatch(MonitorAction::Down {
            retry_at_ms: util::now_ms() + f64::from(delay),
        });
        let weak = Rc::downgrade(&self.0);
        Timeout::new(delay, move || {
            if let Some(rc) = weak.upgrade() {
                let handle = MonitorHandle(rc);
                if handle.0.borrow().generation == generation {
                    handle.connect();
                }
            }
        })
        .forget();
    }

    fn flush(&self, generation: u64) {
        if frame::holding() {
            // A reply is owed on the bridge: draw after it (see `frame`).
            let weak = Rc::downgrade(&self.0);
            Timeout::new(16, move || {
                if let Some(rc) = weak.upgrade() {
                    MonitorHandle(rc).flush(generation);
                }
            })
            .forget();
            return;
        }
        let (dispatch, events) = {
            let mut m = self.0.borrow_mut();
            m.flush_scheduled = false;
            if m.generation != generation || m.buffer.is_empty() {
                return;
            }
            (m.dispatch.clone(), std::mem::take(&mut m.buffer))
        };
        let started = util::now_ms();
        dispatch.dispatch(MonitorAction::Events(
            events.iter().filter_map(|text| parse(text)).collect(),
        ));
        // Queued behind the render the dispatch scheduled: this measures parse + reduce + draw.
        let weak = Rc::downgrade(&self.0);
        yew::platform::spawn_local(async move {
            let cost = util::now_ms() - started;
            if let Some(rc) = weak.upgrade() {
                rc.borrow_mut().batch_ms = ((cost * 4.0) as u32).clamp(BATCH_MS, MAX_BATCH_MS);
            }
        });
    }
}

/// One event and its local clock text; unknown event types (a newer server) are skipped, not
/// fatal.
fn parse(text: &str) -> Option<(MonitorEvent, String)> {
    let event = serde_json::from_str::<MonitorEvent>(text).ok()?;
    let clock = match &event {
        MonitorEvent::SessionOpened(e) => util::clock_of(&e.at),
        MonitorEvent::Message(e) => util::clock_of(&e.at),
        MonitorEvent::SessionClosed(e) => util::clock_of(&e.at),
        // A packet's row reads its own `at` when drawn: a burst costs no clock per packet.
        MonitorEvent::Packet(_) => String::new(),
        _ => util::clock_now(),
    };
    Some((event, clock))
}

fn handle_event(weak: &Weak<RefCell<Monitor>>, generation: u64, ev: SocketEvent) {
    let Some(rc) = weak.upgrade() else { return };
    let handle = MonitorHandle(rc);
    if handle.0.borrow().generation != generation {
        return;
    }
    match ev {
        SocketEvent::Open => {
            let (dispatch, on_open, packets) = {
                let mut m = handle.0.borrow_mut();
                m.attempt = 0;
                (m.dispatch.clone(), m.on_open.clone(), m.packets)
            };
            dispatch.dispatch(MonitorAction::Opened { packets });
            on_open.emit(());
        }
        SocketEvent::Text { text, .. } => {
            // Only queued here; parsed at the flush, so the socket callback stays short.
            let schedule = {
                let mut m = handle.0.borrow_mut();
                m.buffer.push(text);
                (!std::mem::replace(&mut m.flush_scheduled, true)).then_some(m.batch_ms)
            };
            if let Some(batch_ms) = schedule {
                let weak = Rc::downgrade(&handle.0);
                Timeout::new(batch_ms, move || {
                    if let Some(rc) = weak.upgrade() {
                        MonitorHandle(rc).flush(generation);
                    }
                })
                .forget();
            }
        }
        SocketEvent::Binary { .. } => {}
        SocketEvent::Closed { .. } => handle.lost(generation),
    }
}
