//! One render per animation frame: events that arrive in a burst (replies, monitor events) are
//! queued and handed over together at the next `requestAnimationFrame`, so a thousand replies
//! cost one render, and a socket callback does no more than push onto a queue.
//!
//! A background tab gets no animation frames, so a timer delivers too (whichever fires first);
//! the queue never waits for the tab to be shown.
//!
//! While the bridge waits for a reply ([`awaiting_reply`]), redraws wait too, for at most
//! [`HOLD_MS`]: a reply that arrives while the page draws is only seen when the drawing ends,
//! and its round-trip time would then be the page's, not the network's. So the message and its
//! reply are drawn together, a round trip after Enter.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;

use crate::util;

/// How long a queue waits when no animation frame comes (a hidden tab), in ms.
const FALLBACK_MS: i32 = 250;
/// The longest a redraw waits for an owed reply, in ms.
pub const HOLD_MS: f64 = 100.0;

thread_local! {
    /// Since when (`performance.now()`) the bridge has waited for a reply, while it does.
    static AWAITING: Cell<Option<f64>> = const { Cell::new(None) };
}

/// Says whether the bridge waits for a reply now (redraws hold back meanwhile).
pub fn awaiting_reply(waiting: bool) {
    AWAITING.with(|a| {
        a.set(match (waiting, a.get()) {
            (true, Some(since)) => Some(since),
            (true, None) => Some(util::now_ms()),
            (false, _) => None,
        })
    });
}

/// Whether redraws should wait: a reply is owed, and not yet for [`HOLD_MS`].
pub fn holding() -> bool {
    AWAITING.with(|a| {
        a.get()
            .is_some_and(|since| util::now_ms() - since < HOLD_MS)
    })
}

/// A job that runs once, from whichever of its two triggers fires first.
type Once = Rc<Cell<Option<Box<dyn FnOnce()>>>>;

/// Runs `f` once, at the next animation frame or after [`FALLBACK_MS`], whichever is first.
pub fn next_frame(f: impl FnOnce() + 'static) {
    let slot: Once = Rc::new(Cell::new(Some(Box::new(f))));
    let Some(window) = web_sys::window() else {
        if let Some(f) = slot.take() {
            f();
        }
        return;
    };
    let run = |slot: Once| {
        Closure::once_into_js(move || {
            if let Some(f) = slot.take() {
                f();
            }
        })
    };
    let frame = run(slot.clone());
    let _ = window.request_animation_frame(frame.unchecked_ref());
    let timer = run(slot);
    let _ = window
        .set_timeout_with_callback_and_timeout_and_arguments_0(timer.unchecked_ref(), FALLBACK_MS);
}

struct Inner<A> {
    items: Vec<A>,
    scheduled: bool,
    deliver: Rc<dyn Fn(Vec<A>)>,
}

/// A queue delivered in one piece per animation frame.
pub struct FrameQueue<A>(Rc<RefCell<Inner<A>>>);

impl<A> Clone for FrameQueue<A> {
    fn clone(&self) -> Self {
        FrameQueue(self.0.clone())
    }
}

impl<A: 'static> FrameQueue<A> {
    /// A queue whose items go to `deliver`, in order, once per frame.
    pub fn new(deliver: impl Fn(Vec<A>) + 'static) -> Self {
        FrameQueue(Rc::new(RefCell::new(Inner {
            items: Vec::new(),
            scheduled: false,
            deliver: Rc::new(deliver),
        })))
    }

    /// Queues `item` (and asks for a frame if none is coming).
    pub fn push(&self, item: A) {
        let schedule = {
            let mut q = self.0.borrow_mut();
            q.items.push(item);
            !std::mem::replace(&mut q.scheduled, true)
        };
        if schedule {
            self.schedule();
        }
    }

    fn schedule(&self) {
        let weak = Rc::downgrade(&self.0);
        next_frame(move || {
            if let Some(rc) = weak.upgrade() {
                FrameQueue(rc).flush();
            }
        });
    }

    /// Delivers what is queued, unless a reply is owed ([`holding`]): then at a later frame.
    fn flush(&self) {
        if holding() {
            self.schedule();
            return;
        }
        let (items, deliver) = {
            let mut q = self.0.borrow_mut();
            q.scheduled = false;
            (std::mem::take(&mut q.items), q.deliver.clone())
        };
        if !items.is_empty() {
            deliver(items);
        }
    }
}
