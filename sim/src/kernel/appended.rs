//! Every event appended in a run, as the shelf slots its authors' stores took: what the
//! checkers trust. A bit per slot of the shelf, not a map by id: the shelf already maps each
//! id to its first (the author's) slot, and a second map cost about 56 bytes per event.

use meshlog_core::EventId;

use super::shelf::SharedShelf;

/// An event as its author appended it: the shelf slot of the bytes its author's store took
/// (`World::appended_event` decodes it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    pub(crate) slot: u32,
}

#[derive(Debug)]
pub struct AppendedEvents {
    shelf: SharedShelf,
    /// Bit `slot % 64` of word `slot / 64`: the slot holds an appended event.
    bits: Vec<u64>,
    len: usize,
}

impl AppendedEvents {
    pub(crate) fn new(shelf: SharedShelf) -> Self {
        AppendedEvents {
            shelf,
            bits: Vec::new(),
            len: 0,
        }
    }

    /// Records `id`, which its author's store took as `appended.slot`: the first bytes filed
    /// under the id, so the shelf finds it by id.
    pub(crate) fn insert(&mut self, id: EventId, appended: Appended) {
        assert_eq!(
            self.shelf.borrow().canonical_slot(&id),
            Some(appended.slot),
            "an author's store is the first to take its event"
        );
        let (word, bit) = (appended.slot as usize / 64, appended.slot % 64);
        if word >= self.bits.len() {
            self.bits.resize(word + 1, 0);
        }
        if self.bits[word] & (1 << bit) == 0 {
            self.bits[word] |= 1 << bit;
            self.len += 1;
        }
    }

    fn has_slot(&self, slot: u32) -> bool {
        self.bits
            .get(slot as usize / 64)
            .is_some_and(|w| w & (1 << (slot % 64)) != 0)
    }

    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where the author's bytes of `id` are, if `id` was appended.
    pub fn get(&self, id: &EventId) -> Option<Appended> {
        let slot = self.shelf.borrow().canonical_slot(id)?;
        self.has_slot(slot).then_some(Appended { slot })
    }
    pub fn contains_key(&self, id: &EventId) -> bool {
        self.get(id).is_some()
    }

    /// Whether `pred` holds for every appended id (in id order, stopping at the first no),
    /// without copying the ids.
    pub fn all(&self, mut pred: impl FnMut(&EventId) -> bool) -> bool {
        let shelf = self.shelf.borrow();
        let all = shelf
            .canonical()
            .filter(|(_, slot)| self.has_slot(*slot))
            .all(|(id, _)| pred(id));
        all
    }

    /// The appended ids with their slots, in id order: a copy, for listings and tests (the
    /// world's checkers use `all`).
    pub fn iter(&self) -> std::vec::IntoIter<(EventId, Appended)> {
        let shelf = self.shelf.borrow();
        let listed: Vec<(EventId, Appended)> = shelf
            .canonical()
            .filter(|(_, slot)| self.has_slot(*slot))
            .map(|(id, slot)| (*id, Appended { slot }))
            .collect();
        listed.into_iter()
    }

    /// The appended ids, in id order (a copy, as `iter`).
    pub fn keys(&self) -> std::vec::IntoIter<EventId> {
        self.iter()
            .map(|(id, _)| id)
            .collect::<Vec<_>>()
            .into_iter()
    }

    /// The slots of every appended event, in slot order.
    pub fn slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.bits.iter().enumerate().flat_map(|(word, &bits)| {
            (0..64)
                .filter(move |bit| bits & (1 << bit) != 0)
                .map(move |bit| (word * 64 + bit) as u32)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::shelf::{Shelf, SimStore};
    use meshlog_core::event::{seal, Event, EventBody};
    use meshlog_core::testing::{community_of, keys};
    use meshlog_core::{DeviceId, Instant, Store};

    #[test]
    fn holds_what_was_appended_by_id_and_slot() {
        let community = community_of(&["alice"], 1);
        let shelf = Shelf::shared();
        let mut store = SimStore::new(shelf.clone());
        let mut appended = AppendedEvents::new(shelf.clone());
        let mut ids = Vec::new();
        for i in 0..70u8 {
            let event = Event {
                author: DeviceId::new("alice").unwrap(),
                created_at: Instant::from_millis(u64::from(i)),
                body: EventBody::Message {
                    text: format!("m{i}"),
                    attachment: None,
                    auto: false,
                },
            };
            let opened = seal(&event, &keys("alice", 1), &community, [i; 24]).unwrap();
            store.insert(&opened, 1).unwrap();
            if i % 2 == 0 {
                let slot = shelf.borrow().canonical_slot(&opened.id).unwrap();
                appended.insert(opened.id, Appended { slot });
                appended.insert(opened.id, Appended { slot }); // counted once
                ids.push(opened.id);
            } else {
                assert!(!appended.contains_key(&opened.id));
            }
        }
        ids.sort();
        assert_eq!(appended.len(), 35);
        assert_eq!(appended.keys().collect::<Vec<_>>(), ids);
        assert!(ids.iter().all(|id| appended.contains_key(id)));
        assert!(appended.all(|id| ids.binary_search(id).is_ok()));
        assert!(!appended.all(|id| *id != ids[3]));
        let slots: Vec<u32> = appended.slots().collect();
        assert_eq!(slots, (0..70).step_by(2).collect::<Vec<u32>>());
    }
}
