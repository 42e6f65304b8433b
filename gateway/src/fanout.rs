//! Identical subscriptions share one feed: the first starts it (one subscription to the
//! subgraph, one run of the plan per event) and later ones join it, each with its own place in
//! a broadcast; the feed ends when its last subscriber leaves. Subscriptions are identical when
//! their operation, variables and caller (claims, but those that change with each token) are,
//! compared whole: a hash collision never shares a feed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OnceCell, broadcast};

/// Where a feed's events go, once it has started.
pub type Slot<T> = Arc<OnceCell<broadcast::Sender<T>>>;

/// The feeds running, by what makes subscriptions identical (compared whole).
pub struct Fanout<T> {
    slots: Mutex<HashMap<Vec<u8>, Slot<T>>>,
}

impl<T> Default for Fanout<T> {
    fn default() -> Self {
        Self {
            slots: Mutex::default(),
        }
    }
}

impl<T> std::fmt::Debug for Fanout<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fanout").finish_non_exhaustive()
    }
}

impl<T> Fanout<T> {
    /// The feed for `key`: running, starting, or to be started by the caller.
    pub fn slot(&self, key: &[u8]) -> Slot<T> {
        let mut slots = self.slots.lock().expect("not poisoned");
        if let Some(slot) = slots.get(key) {
            return slot.clone();
        }
        slots.entry(key.to_vec()).or_default().clone()
    }

    /// Forgets `slot`'s feed (it ended, or did not start), unless another has taken its key.
    pub fn forget(&self, key: &[u8], slot: &Slot<T>) {
        let mut slots = self.slots.lock().expect("not poisoned");
        if slots.get(key).is_some_and(|held| Arc::ptr_eq(held, slot)) {
            slots.remove(key);
        }
    }

    /// Feeds running or starting.
    pub fn len(&self) -> usize {
        self.slots.lock().expect("not poisoned").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_has_one_slot_until_it_is_forgotten() {
        let fanout: Fanout<u32> = Fanout::default();
        let first = fanout.slot(b"a");
        assert!(Arc::ptr_eq(&first, &fanout.slot(b"a")));
        assert!(!Arc::ptr_eq(&first, &fanout.slot(b"b")));
        fanout.forget(b"a", &first);
        let again = fanout.slot(b"a");
        assert!(!Arc::ptr_eq(&first, &again));
        // Forgetting a slot that was replaced leaves the new one.
        fanout.forget(b"a", &first);
        assert!(Arc::ptr_eq(&again, &fanout.slot(b"a")));
        assert_eq!(fanout.len(), 2);
    }
}
