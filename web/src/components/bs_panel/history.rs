//! ↑/↓ recall of sent messages in the composer, as a hook.

use std::cell::RefCell;
use std::rc::Rc;

use yew::prelude::*;

#[derive(Default)]
struct Inner {
    /// Sent messages, oldest first, without repeats in a row.
    items: Vec<String>,
    /// Where ↑/↓ are: `items.len()` is "past the newest" (an empty input).
    pos: usize,
}

/// Sent messages and where the recall is in them; clones share one history.
#[derive(Clone, Default)]
pub struct History(Rc<RefCell<Inner>>);

impl History {
    /// Remembers a sent message and moves the recall past it.
    pub fn push(&self, text: String) {
        let mut h = self.0.borrow_mut();
        if h.items.last() != Some(&text) {
            h.items.push(text);
        }
        h.pos = h.items.len();
    }

    /// ↑: the message before the current one, if there is one.
    pub fn back(&self) -> Option<String> {
        let mut h = self.0.borrow_mut();
        h.pos = h.pos.checked_sub(1)?;
        h.items.get(h.pos).cloned()
    }

    /// ↓: the message after the current one (empty past the newest), if not already there.
    pub fn forward(&self) -> Option<String> {
        let mut h = self.0.borrow_mut();
        if h.pos >= h.items.len() {
            return None;
        }
        h.pos += 1;
        Some(h.items.get(h.pos).cloned().unwrap_or_default())
    }
}

/// The composer's history; it lives as long as the component.
#[hook]
pub fn use_history() -> History {
    (*use_memo((), |_| History::default())).clone()
}

#[cfg(test)]
mod tests {
    use super::History;

    #[test]
    fn up_and_down_walk_the_sent_messages() {
        let h = History::default();
        assert_eq!(h.back(), None);
        h.push("a".into());
        h.push("b".into());
        h.push("b".into());
        assert_eq!(h.back().as_deref(), Some("b"));
        assert_eq!(h.back().as_deref(), Some("a"));
        assert_eq!(h.back(), None);
        assert_eq!(h.forward().as_deref(), Some("b"));
        assert_eq!(h.forward().as_deref(), Some(""));
        assert_eq!(h.forward(), None);
    }
}
