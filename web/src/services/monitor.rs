//! The monitor feed: `/api/events?batch=256`, each text frame a JSON array of
//! [`MonitorEvent`]s (a burst comes as a few frames, not one per event: each frame is a task
//! of the browser's). On connect the server first announces every open session, then live
//! events follow.
//!
//! Events are handed to the reducer in batches (at most ten a second, fewer when a redraw is
//! costly), so a burst of thousands (a benchmark) costs a few renders, not thousands; a batch
//! is parsed in slices of a few milliseconds, so input is handled in between. The feed
//! reconnects on its own.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use gloo_timers::callback::Timeout;
use socklab_protocol::MonitorEvent;
use yew::{Callback, UseReducerDispatcher};

use super::socket::{self, Socket, SocketEvent};
use super::{frame, json};
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
/// Parsing a batch yields to the browser after this long, so that a burst of thousands of
/// events never keeps a keystroke waiting behind it.
const PARSE_SLICE_MS: f64 = 8.0;
/// The most events the server puts in one frame (`?batch=`): a frame is parsed whole (the
/// parse yields only between frames), so frames are kept small.
const FRAME_EVENTS: usize = 256;

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
    /// Frames (JSON text: arrays of events) waiting for the next batch.
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
            let packets = if b.packets { "&packets=1" } else { "" };
            let url = format!("{}?batch={FRAME_EVENTS}{packets}", b.url);
            (url, b.dispatch.clone())
        };
        dispatch.dispatch(MonitorAction::Connecting);
        let mut m = self.0.borrow_mut();
        m.generation += 1;
        m.buffer.clear();
        m.flush_scheduled = false;
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
            frame::after_reply(move || {
                if let Some(rc) = weak.upgrade() {
                    MonitorHandle(rc).flush(generation);
                }
            });
            return;
        }
        let texts = {
            let mut m = self.0.borrow_mut();
            // An older connection's timer: the current one has its own.
            if m.generation != generation {
                return;
            }
            if m.buffer.is_empty() {
                m.flush_scheduled = false;
                return;
            }
            // `flush_scheduled` stays set until this batch is drawn: batches go in order.
            std::mem::take(&mut m.buffer)
        };
        self.parse_slice(generation, texts.into_iter(), Vec::new());
    }

    /// Parses the batch for at most [`PARSE_SLICE_MS`], then lets the browser handle input
    /// before the next slice; the last slice hands the whole batch to the reducer.
    fn parse_slice(
        &self,
        generation: u64,
        mut texts: std::vec::IntoIter<String>,
        mut events: Vec<(MonitorEvent, String)>,
    ) {
        let started = util::now_ms();
        let mut unclocked = 0;
        while let Some(text) = texts.next() {
            let before = events.len();
            parse(&text, &mut events);
            // The clock is read after every 64 events or more: reading it costs a call into
            // the browser.
            unclocked += events.len() - before;
            if unclocked < 64 || texts.len() == 0 {
                continue;
            }
            unclocked = 0;
            if util::now_ms() - started > PARSE_SLICE_MS {
                let weak = Rc::downgrade(&self.0);
                Timeout::new(0, move || {
                    if let Some(rc) = weak.upgrade() {
                        MonitorHandle(rc).parse_slice(generation, texts, events);
                    }
                })
                .forget();
                return;
            }
        }
        let dispatch = {
            let m = self.0.borrow();
            if m.generation != generation {
                return;
            }
            m.dispatch.clone()
        };
        let started = util::now_ms();
        dispatch.dispatch(MonitorAction::Events(events));
        // Queued behind the render the dispatch scheduled: this measures reduce + draw.
        let weak = Rc::downgrade(&self.0);
        yew::platform::spawn_local(async move {
            let cost = util::now_ms() - started;
            if let Some(rc) = weak.upgrade() {
                let handle = MonitorHandle(rc);
                let next = {
                    let mut m = handle.0.borrow_mut();
                    m.batch_ms = ((cost * 4.0) as u32).clamp(BATCH_MS, MAX_BATCH_MS);
                    m.flush_scheduled = !m.buffer.is_empty();
                    m.flush_scheduled.then_some(m.batch_ms)
                };
                if let Some(batch_ms) = next {
                    handle.flush_after(generation, batch_ms);
                }
            }
        });
    }

    /// Flushes the buffer in `batch_ms`.
    fn flush_after(&self, generation: u64, batch_ms: u32) {
        let weak = Rc::downgrade(&self.0);
        Timeout::new(batch_ms, move || {
            if let Some(rc) = weak.upgrade() {
                MonitorHandle(rc).flush(generation);
            }
        })
        .forget();
    }
}

/// A frame's events (an array of them, or one), each with its local clock text, added to
/// `events`; a malformed frame, a malformed event and unknown event types (a newer server)
/// are skipped, not fatal.
fn parse(text: &str, events: &mut Vec<(MonitorEvent, String)>) {
    let Ok(value) = json::parse(text) else {
        return;
    };
    let with_clock = |event| {
        let clock = clock_of(&event);
        (event, clock)
    };
    // `?batch=` frames are arrays; an older server's, one event each.
    if text.starts_with('[') {
        let items = json::Json::items(value).unwrap_or_default();
        events.extend(items.iter().filter_map(decode).map(with_clock));
    } else {
        events.extend(decode(&value).map(with_clock));
    }
}

/// The local clock text an event is shown with.
fn clock_of(event: &MonitorEvent) -> String {
    match event {
        MonitorEvent::SessionOpened(e) => util::clock_of(&e.at),
        MonitorEvent::Message(e) => util::clock_of(&e.at),
        MonitorEvent::SessionClosed(e) => util::clock_of(&e.at),
        // A packet's row reads its own `at` when drawn: a burst costs no clock per packet.
        MonitorEvent::Packet(_) => String::new(),
        _ => util::clock_now(),
    }
}

/// One event, read by [`json::monitor_event`] from what the browser's `JSON.parse` made;
/// malformed events and unknown types are skipped.
fn decode<J: json::Json>(value: &J) -> Option<MonitorEvent> {
    json::monitor_event(value).ok()?
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
                handle.flush_after(generation, batch_ms);
            }
        }
        SocketEvent::Binary { .. } => {}
        SocketEvent::Closed { .. } => handle.lost(generation),
    }
}
