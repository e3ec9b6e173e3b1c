//! Index equals store: a node keeps its id index in memory beside its store, and rebuilds it
//! from the store when it starts. After every restart and at the end of the run, both must
//! hold the same ids on every running device; a restart that forgets part of its index (or
//! an insert that reaches one and not the other) shows here even when a later round repairs
//! the difference.

use meshlog_core::{EventId, Store};

use crate::world::World;

/// Ids listed per side in a failure; the counts say how many there were.
const IDS_LISTED_MAX: usize = 5;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IndexBreak {
    pub(crate) device: usize,
    /// `restart` or `end`.
    pub(crate) when: &'static str,
    pub(crate) at_us: u64,
    /// Ids the index holds and the store does not, and the other way round.
    pub(crate) index_only: Vec<EventId>,
    pub(crate) index_only_count: usize,
    pub(crate) store_only: Vec<EventId>,
    pub(crate) store_only_count: usize,
}

impl World {
    /// Compares the running node of `device` with its store; a difference is kept for the
    /// checker (the first per device and occasion is enough to point at the bug).
    pub(crate) fn check_index(&mut self, device: usize, when: &'static str) {
        let d = &self.devices[device];
        let Some(node) = d.node.as_ref() else {
            return;
        };
        // One pass over the index looking each id up in the store, no copy of either: a copy
        // of a million-event index and store was the largest allocation of a run's end.
        let store = d.store.borrow();
        let mut index_only = Vec::new();
        let mut index_only_count = 0;
        let mut both = 0;
        for id in node.ids() {
            if store.events().holds_id(id) {
                both += 1;
            } else {
                index_only_count += 1;
                if index_only.len() < IDS_LISTED_MAX {
                    index_only.push(*id);
                }
            }
        }
        let store_len = store.len().expect("in-memory store") as usize;
        if index_only_count == 0 && store_len == both {
            return;
        }
        // A break: rare, so the store's side may be listed the slow way.
        let store_only: Vec<EventId> = store
            .ids()
            .expect("in-memory store")
            .into_iter()
            .filter(|id| !node.contains(id))
            .collect();
        drop(store);
        let seen = self
            .index_breaks
            .iter()
            .any(|b| b.device == device && b.when == when);
        if !seen {
            self.index_breaks.push(IndexBreak {
                device,
                when,
                at_us: self.now.as_micros(),
                index_only_count,
                index_only,
                store_only_count: store_only.len(),
                store_only: store_only.into_iter().take(IDS_LISTED_MAX).collect(),
            });
        }
    }

    pub(crate) fn check_index_all(&mut self, when: &'static str) {
        for device in 0..self.devices.len() {
            self.check_index(device, when);
        }
    }
}
