//! The world's shelf: every device of a world shares one copy of each sealed event.
//!
//! Events are content-addressed, so every device holds the same bytes for an id. The shelf
//! keeps each sealed event once, packed into large chunks, with a count of the stores holding
//! it; a device's store keeps only which shelf slots it holds and when each arrived (16 bytes
//! per copy in a B-tree). Decoded bodies are not kept: `opened` and `snapshot` decode on demand.
//! The production `InMemoryStore` stays the simple one.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use meshlog_core::event::open;
use meshlog_core::store::epoch_after;
use meshlog_core::{Community, EventId, InMemoryStore, OpenedEvent, Store, StoreError};

/// Bytes per arena chunk: large, so a chunk's header costs nothing per event, and never
/// moved once filled (a growing `Vec` would copy everything and double the peak).
const CHUNK_BYTES: usize = 1 << 20;

/// Every sealed event some store of the world holds, once.
#[derive(Debug, Default)]
pub struct Shelf {
    /// The canonical slot of each id: the first bytes stored under it. Bytes that hash to
    /// nothing else can differ only if a test tampered with a store; those get their own slot.
    by_id: BTreeMap<EventId, u32>,
    slots: Vec<Slot>,
    chunks: Vec<Vec<u8>>,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    chunk: u32,
    offset: u32,
    len: u32,
    /// Stores holding it. A slot no store holds keeps its bytes (the arena never reuses
    /// space: only power cuts and tampering drop copies, and they drop few).
    copies: u32,
}

pub type SharedShelf = Rc<RefCell<Shelf>>;

impl Shelf {
    pub fn shared() -> SharedShelf {
        Rc::new(RefCell::new(Shelf::default()))
    }

    /// The slot holding exactly `sealed` under `id`, made if new.
    fn slot_for(&mut self, id: &EventId, sealed: &[u8]) -> u32 {
        if let Some(&slot) = self.by_id.get(id) {
            if self.bytes(slot) == sealed {
                return slot;
            }
            return self.push(sealed); // tampered: its own slot, never canonical
        }
        let slot = self.push(sealed);
        self.by_id.insert(*id, slot);
        slot
    }

    fn push(&mut self, sealed: &[u8]) -> u32 {
        assert!(sealed.len() <= CHUNK_BYTES, "an event fits a chunk");
        let fits = self
            .chunks
            .last()
            .is_some_and(|c| c.capacity() - c.len() >= sealed.len());
        if !fits {
            self.chunks.push(Vec::with_capacity(CHUNK_BYTES));
        }
        let chunk = self.chunks.len() - 1;
        let data = &mut self.chunks[chunk];
        let offset = data.len();
        data.extend_from_slice(sealed);
        let slot = u32::try_from(self.slots.len()).expect("fewer than 2^32 events");
        self.slots.push(Slot {
            chunk: chunk as u32,
            offset: offset as u32,
            len: sealed.len() as u32,
            copies: 0,
        });
        slot
    }

    /// The first slot filed under `id` (its author's, for an appended event).
    pub(crate) fn canonical_slot(&self, id: &EventId) -> Option<u32> {
        self.by_id.get(id).copied()
    }

    /// Every id with its first slot, in id order.
    pub(crate) fn canonical(&self) -> impl Iterator<Item = (&EventId, u32)> {
        self.by_id.iter().map(|(id, &slot)| (id, slot))
    }

    pub(crate) fn bytes(&self, slot: u32) -> &[u8] {
        let s = self.slots[slot as usize];
        &self.chunks[s.chunk as usize][s.offset as usize..(s.offset + s.len) as usize]
    }

    /// Distinct sealed events kept, and their bytes.
    pub fn usage(&self) -> (usize, usize) {
        let bytes = self.slots.iter().map(|s| s.len as usize).sum();
        (self.slots.len(), bytes)
    }
}

/// `SimStore::arrived_us` of a slot the store does not hold.
const NOT_HELD: u64 = u64::MAX;

/// One device's store: references into the world's shelf.
#[derive(Debug)]
pub struct SimStore {
    shelf: SharedShelf,
    /// By slot: when it arrived (µs), or `NOT_HELD`. Dense, 8 bytes per slot of the world
    /// whether held or not: in a world that converges every store holds nearly every slot,
    /// and a B-tree entry cost three times that.
    arrived_us: Vec<u64>,
    /// Slots held (entries of `arrived_us` not `NOT_HELD`).
    held_count: usize,
    /// Ids this store holds under a non-canonical slot (tampered copies; empty in a run).
    odd: BTreeMap<EventId, u32>,
    epoch: u64,
    created_at_max_us: u64,
    /// Membership events held: read whole when the node starts (a handful per world).
    membership: BTreeSet<EventId>,
    /// The node's receive-key secrets, kept across a crash and restart like the events.
    secrets: Option<Vec<u8>>,
}

impl SimStore {
    pub fn new(shelf: SharedShelf) -> Self {
        SimStore {
            shelf,
            arrived_us: Vec::new(),
            held_count: 0,
            odd: BTreeMap::new(),
            epoch: 0,
            created_at_max_us: 0,
            membership: BTreeSet::new(),
            secrets: None,
        }
    }

    pub(crate) fn slot_of(&self, id: &EventId) -> Option<u32> {
        if let Some(&slot) = self.odd.get(id) {
            return Some(slot);
        }
        let slot = *self.shelf.borrow().by_id.get(id)?;
        self.holds(slot).then_some(slot)
    }

    /// Whether an event is stored under `id` (nothing copied or decoded).
    pub fn holds_id(&self, id: &EventId) -> bool {
        self.slot_of(id).is_some()
    }

    fn holds(&self, slot: u32) -> bool {
        self.arrival(slot).is_some()
    }

    fn arrival(&self, slot: u32) -> Option<u64> {
        self.arrived_us
            .get(slot as usize)
            .copied()
            .filter(|&at| at != NOT_HELD)
    }

    /// The slots held, in slot order, with when each arrived.
    fn held(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.arrived_us
            .iter()
            .enumerate()
            .filter(|(_, &at)| at != NOT_HELD)
            .map(|(slot, &at)| (slot as u32, at))
    }

    /// Records `slot` as held since `received_at_us`; false if it already was.
    fn hold(&mut self, slot: u32, received_at_us: u64) -> bool {
        assert_ne!(received_at_us, NOT_HELD, "a time before the end of time");
        let index = slot as usize;
        if index >= self.arrived_us.len() {
            self.arrived_us.resize(index + 1, NOT_HELD);
        }
        if self.arrived_us[index] != NOT_HELD {
            return false;
        }
        self.arrived_us[index] = received_at_us;
        self.held_count += 1;
        true
    }

    fn release(&mut self, slot: u32) {
        if let Some(at) = self.arrived_us.get_mut(slot as usize) {
            if *at != NOT_HELD {
                *at = NOT_HELD;
                self.held_count -= 1;
            }
        }
    }

    /// Calls `visit(id, sealed, received_at_us)` for every event held, in id order.
    pub fn for_each(&self, mut visit: impl FnMut(&EventId, &[u8], u64)) {
        let mut ids: Vec<(EventId, u32)> = Vec::with_capacity(self.held_count);
        self.for_each_in_slot_order(|id, slot, _| ids.push((*id, slot)));
        ids.sort_unstable();
        let shelf = self.shelf.borrow();
        for (id, slot) in ids {
            visit(&id, shelf.bytes(slot), self.arrived_us[slot as usize]);
        }
    }

    /// Calls `visit(id, slot, received_at_us)` for every event held, in slot order: no copy
    /// of the ids, for checks over a whole store that need no order.
    pub(crate) fn for_each_in_slot_order(&self, mut visit: impl FnMut(&EventId, u32, u64)) {
        let shelf = self.shelf.borrow();
        // Filed under the id it was inserted with, not its hash (tampered copies only).
        let odd: BTreeMap<u32, EventId> = self.odd.iter().map(|(id, &s)| (s, *id)).collect();
        for (slot, at) in self.held() {
            let id = odd
                .get(&slot)
                .copied()
                .unwrap_or_else(|| EventId::of_bytes(shelf.bytes(slot)));
            visit(&id, slot, at);
        }
    }

    /// The id held that starts with `prefix` (the first of them, in id order), without
    /// hashing or decoding anything: the demo page learns stored events by their trace prefix.
    pub fn find_by_prefix(&self, prefix: &[u8]) -> Option<EventId> {
        let mut start = [0u8; 32];
        let len = prefix.len().min(32);
        start[..len].copy_from_slice(&prefix[..len]);
        let shelf = self.shelf.borrow();
        shelf
            .by_id
            .range(EventId(start)..)
            .take_while(|(id, _)| id.0.starts_with(&prefix[..len]))
            .find(|(_, &slot)| self.holds(slot))
            .map(|(id, _)| *id)
    }

    /// When the event stored under `id` arrived (µs).
    pub fn received_at_us(&self, id: &EventId) -> Option<u64> {
        self.slot_of(id).and_then(|slot| self.arrival(slot))
    }

    /// The event stored under `id`, decoded now.
    pub fn opened(&self, id: &EventId, community: &Community) -> Option<OpenedEvent> {
        let slot = self.slot_of(id)?;
        let shelf = self.shelf.borrow();
        let mut opened = open(shelf.bytes(slot), community).ok()?;
        opened.id = *id;
        Some(opened)
    }

    /// Every event decoded into a plain store (for the demo page, whose worlds are small).
    pub fn snapshot(&self, community: &Community) -> InMemoryStore {
        let mut copy = InMemoryStore::new();
        self.for_each(|id, sealed, received_at_us| {
            if let Ok(mut opened) = open(sealed, community) {
                opened.id = *id;
                copy.insert(&opened, received_at_us).expect("in memory");
            }
        });
        copy
    }

    /// Drops every copy `keep` refuses (a power cut's lost events); the newest `created_at`
    /// is the kept events' again (decoded with `community`).
    pub fn retain(&mut self, mut keep: impl FnMut(&EventId) -> bool, community: &Community) {
        let mut shelf = self.shelf.borrow_mut();
        let mut dropped = Vec::new();
        for (slot, _) in self.held() {
            let id = self
                .odd
                .iter()
                .find(|(_, &s)| s == slot)
                .map_or_else(|| EventId::of_bytes(shelf.bytes(slot)), |(id, _)| *id);
            if !keep(&id) {
                dropped.push((id, slot));
            }
        }
        for &(_, slot) in &dropped {
            shelf.slots[slot as usize].copies -= 1;
        }
        drop(shelf);
        for (id, slot) in dropped {
            self.release(slot);
            self.odd.remove(&id);
        }
        let mut created_at_max_us = 0;
        self.for_each(|_, sealed, _| {
            if let Ok(opened) = open(sealed, community) {
                created_at_max_us = created_at_max_us.max(opened.event.created_at.as_micros());
            }
        });
        self.created_at_max_us = created_at_max_us;
    }

    /// The last epoch handed out (0: none yet).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }
}

impl Store for SimStore {
    fn insert(&mut self, event: &OpenedEvent, received_at_us: u64) -> Result<bool, StoreError> {
        if self.slot_of(&event.id).is_some() {
            return Ok(false);
        }
        let mut shelf = self.shelf.borrow_mut();
        let slot = shelf.slot_for(&event.id, &event.sealed);
        if shelf.by_id.get(&event.id) != Some(&slot) {
            self.odd.insert(event.id, slot);
        }
        shelf.slots[slot as usize].copies += 1;
        drop(shelf);
        let fresh = self.hold(slot, received_at_us);
        assert!(fresh, "a slot is held once");
        let created_at_us = event.event.created_at.as_micros();
        self.created_at_max_us = self.created_at_max_us.max(created_at_us);
        if matches!(event.event.body, meshlog_core::EventBody::Membership { .. }) {
            self.membership.insert(event.id);
        }
        Ok(true)
    }
    fn membership_events(&self) -> Result<Vec<(EventId, Vec<u8>)>, StoreError> {
        let mut out = Vec::with_capacity(self.membership.len());
        for id in &self.membership {
            if let Some(bytes) = self.get(id)? {
                out.push((*id, bytes));
            }
        }
        Ok(out)
    }
    fn secrets(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.secrets.clone())
    }
    fn set_secrets(&mut self, secrets: &[u8]) -> Result<bool, StoreError> {
        self.secrets = Some(secrets.to_vec());
        Ok(true)
    }
    fn get(&self, id: &EventId) -> Result<Option<Vec<u8>>, StoreError> {
        let shelf = self.shelf.borrow();
        Ok(self.slot_of(id).map(|slot| shelf.bytes(slot).to_vec()))
    }
    fn ids(&self) -> Result<Vec<EventId>, StoreError> {
        let mut ids = Vec::with_capacity(self.held_count);
        self.for_each(|id, _, _| ids.push(*id));
        Ok(ids)
    }
    fn len(&self) -> Result<u64, StoreError> {
        Ok(self.held_count as u64)
    }
    fn created_at_max(&self) -> Result<u64, StoreError> {
        Ok(self.created_at_max_us)
    }
    fn next_epoch(&mut self, floor: u64) -> Result<u64, StoreError> {
        self.epoch = epoch_after(self.epoch, floor);
        Ok(self.epoch)
    }
}

#[cfg(test)]
mod tests {
    use meshlog_core::event::{seal, Event, EventBody};
    use meshlog_core::testing::{community_of, keys};
    use meshlog_core::{DeviceId, Instant};

    use super::*;

    fn event(text: &str, community: &Community) -> OpenedEvent {
        let event = Event {
            author: DeviceId::new("alice").unwrap(),
            created_at: Instant::from_millis(5),
            body: EventBody::Message {
                text: text.into(),
                attachment: None,
                auto: false,
            },
        };
        seal(&event, &keys("alice", 1), community, [3; 24]).unwrap()
    }

    #[test]
    fn devices_share_one_copy_of_the_bytes() {
        let community = community_of(&["alice", "bob"], 1);
        let shelf = Shelf::shared();
        let (mut a, mut b) = (SimStore::new(shelf.clone()), SimStore::new(shelf.clone()));
        let e = event("hello", &community);
        assert!(a.insert(&e, 1).unwrap());
        assert!(!a.insert(&e, 2).unwrap(), "idempotent");
        assert!(b.insert(&e, 3).unwrap());
        assert_eq!(shelf.borrow().usage(), (1, e.sealed.len()));
        assert_eq!(shelf.borrow().slots[0].copies, 2);
        assert_eq!(b.get(&e.id).unwrap(), Some(e.sealed.clone()));
        assert_eq!(b.opened(&e.id, &community), Some(e.clone()));
        assert_eq!(a.ids().unwrap(), vec![e.id]);
        assert_eq!(a.created_at_max().unwrap(), 5_000);
        b.retain(|_| false, &community);
        assert_eq!(b.len().unwrap(), 0);
        assert_eq!(b.created_at_max().unwrap(), 0);
        assert_eq!(shelf.borrow().slots[0].copies, 1);
        assert_eq!(a.snapshot(&community).get(&e.id).unwrap(), Some(e.sealed));
    }

    #[test]
    fn tampered_bytes_stay_with_the_store_that_took_them() {
        let community = community_of(&["alice", "bob"], 1);
        let shelf = Shelf::shared();
        let (mut a, mut b) = (SimStore::new(shelf.clone()), SimStore::new(shelf.clone()));
        let e = event("hello", &community);
        a.insert(&e, 1).unwrap();
        let mut altered = e.clone();
        altered.sealed[30] ^= 1;
        assert!(b.insert(&altered, 1).unwrap());
        assert_eq!(b.get(&e.id).unwrap(), Some(altered.sealed.clone()));
        assert_eq!(a.get(&e.id).unwrap(), Some(e.sealed.clone()));
        let mut seen = Vec::new();
        b.for_each(|id, sealed, _| seen.push((*id, sealed.to_vec())));
        assert_eq!(seen, vec![(e.id, altered.sealed)]);
        assert_eq!(b.opened(&e.id, &community), None, "it no longer opens");
    }
}
