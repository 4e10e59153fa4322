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

use gloo_timers::callback::Timeout;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;

use crate::util;

/// How long a queue waits when no animation frame comes (a hidden tab), in ms.
const FALLBACK_MS: u32 = 250;
/// The longest a redraw waits for an owed reply, in ms.
pub const HOLD_MS: f64 = 100.0;

thread_local! {
    /// Since when (`performance.now()`) the bridge has waited for a reply, while it does.
    static AWAITING: Cell<Option<f64>> = const { Cell::new(None) };
    /// Jobs that wait for the owed reply ([`after_reply`]); whichever of the reply and
    /// [`HOLD_TIMER`] comes first takes them all, so each runs once without a guard of its own.
    static PARKED: RefCell<Vec<Box<dyn FnOnce()>>> = const { RefCell::new(Vec::new()) };
    /// The one timer that ends the hold for every parked job; cancelled when the reply comes
    /// first, so a reply on time costs no timer task.
    static HOLD_TIMER: RefCell<Option<Timeout>> = const { RefCell::new(None) };
    /// Jobs waiting for a frame, run by the fallback timer if no frame comes first.
    static FALLBACK: RefCell<Vec<Once>> = const { RefCell::new(Vec::new()) };
    /// Whether the fallback timer is armed (one for all queues, not one per frame asked).
    static FALLBACK_ARMED: Cell<bool> = const { Cell::new(false) };
}

/// Says whether the bridge waits for a reply now (redraws hold back meanwhile); when it no
/// longer does, the redraws that waited are scheduled.
pub fn awaiting_reply(waiting: bool) {
    AWAITING.with(|a| {
        a.set(match (waiting, a.get()) {
            (true, Some(since)) => Some(since),
            (true, None) => Some(util::now_ms()),
            (false, _) => None,
        })
    });
    if waiting {
        return;
    }
    // Dropping the timer cancels it: the jobs it would have released go at the next frame.
    drop(HOLD_TIMER.with(|t| t.borrow_mut().take()));
    let parked = PARKED.with(|p| std::mem::take(&mut *p.borrow_mut()));
    if !parked.is_empty() {
        // At the next frame, not here: this runs inside the socket's callback.
        next_frame(move || parked.into_iter().for_each(|job| job()));
    }
}

/// Whether redraws should wait: a reply is owed, and not yet for [`HOLD_MS`].
pub fn holding() -> bool {
    AWAITING.with(|a| {
        a.get()
            .is_some_and(|since| util::now_ms() - since < HOLD_MS)
    })
}

/// A job that runs once, from whichever of its triggers fires first.
type Once = Rc<Cell<Option<Box<dyn FnOnce()>>>>;

fn once(f: impl FnOnce() + 'static) -> Once {
    Rc::new(Cell::new(Some(Box::new(f))))
}

fn run(job: &Once) {
    if let Some(f) = job.take() {
        f();
    }
}

/// Runs `f` now, or, while a reply is owed ([`holding`]), at the frame after it came (or when
/// the hold ends): parked, not polled, so waiting costs no frames.
pub fn after_reply(f: impl FnOnce() + 'static) {
    let Some(since) = AWAITING.with(Cell::get).filter(|_| holding()) else {
        f();
        return;
    };
    PARKED.with(|p| p.borrow_mut().push(Box::new(f)));
    HOLD_TIMER.with(|t| {
        let mut t = t.borrow_mut();
        if t.is_none() {
            // Every job parked during one wait has the same deadline: the wait's start + hold.
            let left = (HOLD_MS - (util::now_ms() - since)).max(0.0);
            *t = Some(Timeout::new(left.ceil() as u32, hold_ended));
        }
    });
}

/// The hold ran out before the reply came: the parked jobs go now.
fn hold_ended() {
    // Let go of the timer without dropping the closure that is running: `forget` leaves it
    // allocated, as for every `Timeout` forgotten here (this one only when a reply is late).
    if let Some(fired) = HOLD_TIMER.with(|t| t.borrow_mut().take()) {
        fired.forget();
    }
    for job in PARKED.with(|p| std::mem::take(&mut *p.borrow_mut())) {
        job();
    }
}

/// Runs `f` once, at the next animation frame, or (a hidden tab gets none) at the latest
/// after [`FALLBACK_MS`] from a timer shared by everything waiting.
pub fn next_frame(f: impl FnOnce() + 'static) {
    let job = once(f);
    let Some(window) = web_sys::window() else {
        run(&job);
        return;
    };
    let frame = {
        let job = job.clone();
        Closure::once_into_js(move || run(&job))
    };
    let _ = window.request_animation_frame(frame.unchecked_ref());
    FALLBACK.with(|w| w.borrow_mut().push(job));
    if !FALLBACK_ARMED.with(|a| a.replace(true)) {
        Timeout::new(FALLBACK_MS, || {
            FALLBACK_ARMED.with(|a| a.set(false));
            for job in FALLBACK.with(|w| std::mem::take(&mut *w.borrow_mut())) {
                run(&job);
            }
        })
        .forget();
    }
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

    /// Delivers what is queued, unless a reply is owed ([`holding`]): then at the frame after
    /// it came.
    fn flush(&self) {
        if holding() {
            let weak = Rc::downgrade(&self.0);
            after_reply(move || {
                if let Some(rc) = weak.upgrade() {
                    FrameQueue(rc).flush();
                }
            });
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
