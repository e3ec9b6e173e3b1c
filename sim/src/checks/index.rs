//! Index equals store: a node keeps its id index in memory beside its store, and rebuilds it
//! from the store when it starts. After every restart and at the end of the run, both must
//! hold the same ids on every running device; a restart that forgets part of its index (or
//! an insert that reaches one and not the other) shows here even when a later round repairs
//! the difference.

use meshlog_core::{EventId, Store};

use super::verdict::{Checker, Failure};
use crate::kernel::{Happening, View};

/// Ids listed per side in a failure; the counts say how many there were.
const IDS_LISTED_MAX: usize = 5;

#[derive(Clone, Debug, PartialEq, Eq)]
struct IndexBreak {
    device: usize,
    /// `restart` or `end`.
    when: &'static str,
    at_us: u64,
    /// Ids the index holds and the store does not, and the other way round.
    index_only: Vec<EventId>,
    index_only_count: usize,
    store_only: Vec<EventId>,
    store_only_count: usize,
}

/// Devices whose node's index differed from its store.
#[derive(Debug, Default)]
pub(super) struct IndexCheck {
    breaks: Vec<IndexBreak>,
}

impl Checker for IndexCheck {
    fn observe(&mut self, view: &View<'_>, happening: &Happening<'_>) {
        match *happening {
            Happening::Restarted { device } => self.check(view, device, "restart"),
            Happening::End => {
                for device in 0..view.device_count() {
                    self.check(view, device, "end");
                }
            }
            _ => {}
        }
    }

    fn verdict(&self, view: &View<'_>, failures: &mut Vec<Failure>) {
        for b in &self.breaks {
            failures.push(Failure::IndexDiffers {
                device: view.name(b.device).to_string(),
                when: b.when.to_owned(),
                at_us: b.at_us,
                index_only: b.index_only_count,
                store_only: b.store_only_count,
                ids: b
                    .index_only
                    .iter()
                    .chain(&b.store_only)
                    .map(EventId::to_string)
                    .collect(),
            });
        }
    }
}

impl IndexCheck {
    /// Compares the running node of `device` with its store; a difference is kept (the first
    /// per device and occasion is enough to point at the bug).
    fn check(&mut self, world: &View<'_>, device: usize, when: &'static str) {
        let d = &world.devices[device];
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
            .breaks
            .iter()
            .any(|b| b.device == device && b.when == when);
        if !seen {
            self.breaks.push(IndexBreak {
                device,
                when,
                at_us: world.now.as_micros(),
                index_only_count,
                index_only,
                store_only_count: store_only.len(),
                store_only: store_only.into_iter().take(IDS_LISTED_MAX).collect(),
            });
        }
    }
}
