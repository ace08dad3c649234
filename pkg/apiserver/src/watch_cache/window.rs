//! The window of recent events a resource's cache keeps, by revision, so that a watch
//! can start from any revision still inside it. Pure: no I/O, no locking.
//!
//! The window knows every event after its *floor*: at first the revision the cache was
//! built at; each event pushed out of a full window raises the floor to that event's
//! revision. A watch from `rv` (every change after `rv`) can be served iff `rv >= floor`.

use std::collections::VecDeque;

/// Something with the revision it happened at.
pub trait Revisioned {
    fn revision(&self) -> i64;
}

#[derive(Debug)]
pub struct Window<E> {
    events: VecDeque<E>,
    capacity: usize,
    floor: i64,
}

impl<E: Revisioned> Window<E> {
    /// An empty window that knows everything after `floor` (there is nothing yet) and
    /// holds at most `capacity` events (at least one).
    pub fn new(capacity: usize, floor: i64) -> Self {
        Self {
            events: VecDeque::new(),
            capacity: capacity.max(1),
            floor,
        }
    }

    /// Appends an event (revisions must not decrease), dropping the oldest when full.
    pub fn push(&mut self, event: E) {
        debug_assert!(
            self.events
                .back()
                .is_none_or(|last| last.revision() <= event.revision()),
            "events are pushed in revision order"
        );
        if self.events.len() == self.capacity {
            if let Some(old) = self.events.pop_front() {
                // Other events of the same revision may stay: only a watch from that
                // revision or later is served from here, and it skips them.
                self.floor = self.floor.max(old.revision());
            }
        }
        self.events.push_back(event);
    }

    /// The events after `rv`, oldest first; `None` when some of them left the window.
    pub fn since(&self, rv: i64) -> Option<impl Iterator<Item = &E>> {
        if rv < self.floor {
            return None;
        }
        let start = self.events.partition_point(|e| e.revision() <= rv);
        Some(self.events.range(start..))
    }

    /// The oldest revision a watch can start after.
    pub fn floor(&self) -> i64 {
        self.floor
    }
}
