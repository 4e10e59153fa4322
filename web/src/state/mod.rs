//! Pure state: reducers that turn what happened into what the page shows. No I/O, no clock
//! (times are passed in), so the rules are easy to read and to test.

pub mod bridge;
pub mod monitor;
pub mod packets;
pub mod transcript;
pub mod udp;

use std::ops::Deref;
use std::rc::Rc;

/// Shared data compared by identity: a component that gets one re-renders when it gets a new
/// one, without comparing the contents (a log of 500 entries, say). Changing it
/// ([`Shared::make_mut`]) makes a new one unless nothing else holds the old.
#[derive(Debug, Default)]
pub struct Shared<T>(Rc<T>);

impl<T: Clone> Shared<T> {
    /// The value, to change.
    pub fn make_mut(&mut self) -> &mut T {
        Rc::make_mut(&mut self.0)
    }
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared(self.0.clone())
    }
}

impl<T> PartialEq for Shared<T> {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

impl<T> Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}
