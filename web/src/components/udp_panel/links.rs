//! The UDP panel's connections, as a hook: the WebTransport session (from
//! `/api/webtransport`, read into `WebTransportInfo`) and, during a burst, a WebSocket of its
//! own to the bridge. Everything they report goes to the panel's reducer in one batch per
//! animation frame, with the times the sockets took.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use gloo_timers::callback::Timeout;
use yew::prelude::*;

use crate::services::api;
use crate::services::frame::FrameQueue;
use crate::services::socket::{Socket, SocketEvent, retire};
use crate::services::wt::{Link, LinkEvent};
use crate::state::udp::{Action, Udp};
use crate::util;

/// How long after its send a datagram (one, or a burst's) is waited for before it is called
/// lost.
const WAIT_MS: u32 = 1500;

/// How long a burst's WebSocket run may take at most. TCP loses nothing, so the run otherwise
/// ends when every reply is back or the socket closes; this only bounds a stuck bridge.
const WS_WAIT_MS: u32 = 15_000;

struct Inner {
    queue: FrameQueue<Action>,
    /// The WebTransport session.
    wt: Option<Link>,
    /// Identifies the current connect; an older one's answer is dropped.
    generation: u64,
    /// The WebSocket of the burst in flight, which burst it is, and how many of its replies
    /// are back.
    ws: Option<Socket>,
    ws_burst: u32,
    ws_back: usize,
    burst_timer: Option<Timeout>,
    ws_timer: Option<Timeout>,
    single_timer: Option<Timeout>,
}

/// A handle to the panel's connections.
#[derive(Clone)]
pub struct Links(Rc<RefCell<Inner>>);

/// Sends messages `0..n` with `send` (which returns when it sent, or `None`) and returns when
/// each went out.
fn send_all(n: usize, mut send: impl FnMut(usize) -> Option<f64>) -> Vec<f64> {
    (0..n)
        .map(|seq| send(seq).unwrap_or_else(util::now_ms))
        .collect()
}

impl Links {
    fn queue(&self) -> FrameQueue<Action> {
        self.0.borrow().queue.clone()
    }

    /// (Re)opens the WebTransport session.
    pub fn connect(&self) {
        let generation = {
            let mut inner = self.0.borrow_mut();
            inner.wt = None;
            inner.generation += 1;
            inner.generation
        };
        self.queue().push(Action::Connecting);
        let weak = Rc::downgrade(&self.0);
        yew::platform::spawn_local(async move {
            let info = api::webtransport_info().await;
            let Some(rc) = weak.upgrade() else { return };
            let mut inner = rc.borrow_mut();
            if inner.generation != generation {
                return;
            }
            let queue = inner.queue.clone();
            match info {
                Ok(info) => {
                    queue.push(Action::Info(info.clone()));
                    inner.wt = Some(Link::open(
                        &info,
                        Callback::from(move |e| {
                            queue.push(match e {
                                LinkEvent::Open => Action::Open,
                                LinkEvent::Datagram { text, at_ms } => {
                                    Action::Datagram { text, at_ms }
                                }
                                LinkEvent::Closed(why) => Action::Closed(why),
                            })
                        }),
                    ));
                }
                Err(why) => queue.push(Action::Closed(why)),
            }
        });
    }

    /// Sends one datagram and waits a while for its reply.
    pub fn send_one(&self) {
        let text = format!("hello over UDP {}", util::clock_now());
        let mut inner = self.0.borrow_mut();
        let Some(at) = inner.wt.as_ref().and_then(|wt| wt.send(&text)) else {
            return;
        };
        let queue = inner.queue.clone();
        queue.push(Action::Single(text, at));
        inner.single_timer = Some(Timeout::new(WAIT_MS, move || {
            queue.push(Action::SingleTimeout)
        }));
    }

    /// Burst `id`: `n` datagrams at once, and the same `n` over a new WebSocket to the bridge.
    pub fn send_burst(&self, id: u32, n: usize) {
        let mut inner = self.0.borrow_mut();
        let queue = inner.queue.clone();
        queue.push(Action::Burst(id, n));
        if let Some(wt) = inner.wt.as_ref() {
            let times = send_all(n, |seq| wt.send(&format!("u{id}-{seq}")));
            queue.push(Action::UdpSent(id, times));
        }
        let weak = Rc::downgrade(&self.0);
        let on_event = Rc::new(move |ev| on_ws_event(&weak, id, n, ev));
        inner.ws_burst = id;
        inner.ws_back = 0;
        inner.ws = Socket::open(&util::ws_url("ws?tag=udp-compare"), on_event).ok();
        if inner.ws.is_none() {
            queue.push(Action::WsDone(id));
        }
        inner.burst_timer = Some(Timeout::new(WAIT_MS, {
            let queue = queue.clone();
            move || queue.push(Action::Finish(id))
        }));
        let weak = Rc::downgrade(&self.0);
        inner.ws_timer = Some(Timeout::new(WS_WAIT_MS, move || {
            if let Some(rc) = weak.upgrade() {
                end_ws_run(&mut rc.borrow_mut(), id);
            }
        }));
    }
}

fn on_ws_event(weak: &Weak<RefCell<Inner>>, id: u32, n: usize, ev: SocketEvent) {
    let Some(rc) = weak.upgrade() else { return };
    let mut inner = rc.borrow_mut();
    match ev {
        SocketEvent::Open => {
            if let Some(ws) = inner.ws.as_ref() {
                let times = send_all(n, |seq| ws.send_text(&format!("w{id}-{seq}")).ok());
                inner.queue.push(Action::WsSent(id, times));
            }
        }
        SocketEvent::Text { text, at_ms } => {
            inner.queue.push(Action::WsReply { text, at_ms });
            inner.ws_back += 1;
            if inner.ws_back >= n {
                // Cancelled here, outside its own callback.
                inner.ws_timer = None;
                end_ws_run(&mut inner, id);
            }
        }
        // Closed before every reply came: the rest will not come.
        SocketEvent::Closed { .. } => end_ws_run(&mut inner, id),
        SocketEvent::Binary { .. } => {}
    }
}

/// Ends burst `id`'s WebSocket run: its socket closes (dropped later, as this may run inside
/// one of its callbacks) and the run is marked done.
fn end_ws_run(inner: &mut Inner, id: u32) {
    // A retired socket's late close must not end the next burst's run.
    if inner.ws_burst != id {
        return;
    }
    if let Some(ws) = inner.ws.take() {
        ws.close_with_reason("burst done");
        retire(ws);
    }
    inner.queue.push(Action::WsDone(id));
}

/// The panel's connections, living as long as the panel; nothing is opened until
/// [`Links::connect`].
#[hook]
pub fn use_links(dispatch: UseReducerDispatcher<Udp>) -> Links {
    let links = use_memo((), move |_| {
        Links(Rc::new(RefCell::new(Inner {
            queue: FrameQueue::new(move |batch| dispatch.dispatch(Action::Batch(batch))),
            wt: None,
            generation: 0,
            ws: None,
            ws_burst: 0,
            ws_back: 0,
            burst_timer: None,
            ws_timer: None,
            single_timer: None,
        })))
    });
    (*links).clone()
}
