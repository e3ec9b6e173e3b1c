//! Where a node keeps events. The core defines the trait; `InMemoryStore` serves the
//! simulator and tests, the SQLite store in `meshlog-backend` serves production.

use std::collections::BTreeMap;

use thiserror::Error;

use crate::blob::{BlobStore, InMemoryBlobs};
use crate::event::OpenedEvent;
use crate::id::EventId;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("storage backend failed: {0}")]
    Backend(String),
    #[error("stored event {id} is corrupt: {detail}")]
    Corrupt { id: String, detail: String },
    /// A blob store declined a request it is entitled to decline (a file over its size
    /// limit, too many partial files): not a failure of the store.
    #[error("refused: {0}")]
    Refused(String),
}

/// Event storage. `insert` must be idempotent on the event id. An event this device appends
/// must be durable before `insert` returns `Ok`: the node acknowledges an append only after
/// that. A received event may be committed less strictly (the SQLite store skips the fsync),
/// since the peer that sent it still holds it and the next anti-entropy round restores it.
pub trait Store {
    /// Stores a verified event with the time it arrived. `Ok(false)` if it was already there.
    fn insert(&mut self, event: &OpenedEvent, received_at_us: u64) -> Result<bool, StoreError>;
    /// The sealed bytes of an event.
    fn get(&self, id: &EventId) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every id held, for the node to rebuild its index on start.
    fn ids(&self) -> Result<Vec<EventId>, StoreError>;
    fn len(&self) -> Result<u64, StoreError>;
    /// The newest `created_at` (µs) among the events held, 0 if none: the floor of the
    /// node's hybrid clock after a restart (`clock.rs`), so its next event sorts after them.
    fn created_at_max(&self) -> Result<u64, StoreError>;
    fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }
    /// Stores this device's new events (a message and its file's chunks) all or none, durable
    /// when it returns `Ok`. The default suits a store whose `insert` cannot fail halfway.
    fn insert_all(
        &mut self,
        events: &[OpenedEvent],
        received_at_us: u64,
    ) -> Result<(), StoreError> {
        for event in events {
            self.insert(event, received_at_us)?;
        }
        Ok(())
    }
    /// Ends a batch of inputs (the driver calls it after each): a store may hold received
    /// events in one open transaction until here (group commit). A no-op by default.
    fn commit(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
    /// This device's epoch for a new run: `max(last epoch recorded + 1, floor)`, recorded
    /// durably before it returns, so no two runs of a device share an epoch and its peers'
    /// replay windows accept the new run (see `packet::replay`). `floor` is the caller's
    /// wall-clock floor (Unix seconds in production, 0 in the simulator): it keeps a device
    /// that lost its store above the epochs its peers saw, as long as its clock did not go
    /// back. A store that cannot record it must fail, not guess.
    fn next_epoch(&mut self, floor: u64) -> Result<u64, StoreError>;
    /// The membership events held (id and sealed bytes), for the node to settle its roster
    /// on start. The default reads every event, which is right but slow for a large store:
    /// a store that knows its events' kinds answers from them.
    /// This device's receive-key secrets (`node/membership.rs`), an opaque blob the node
    /// writes whole; `None` if never written.
    fn secrets(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(None)
    }
    /// Replaces the blob, durably. The default keeps nothing and says so (`Ok(false)`): the
    /// node then seals no epoch key to a receive key, since it could not open it after a
    /// restart (it falls back to its device key, without forward secrecy).
    fn set_secrets(&mut self, _secrets: &[u8]) -> Result<bool, StoreError> {
        Ok(false)
    }
    /// The device's files, for the blob transfer (`crate::blob`); `None` (the default) for a
    /// store without them: the node then neither fetches nor serves files.
    fn blobs(&mut self) -> Option<&mut dyn BlobStore> {
        None
    }
    fn membership_events(&self) -> Result<Vec<(EventId, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        for id in self.ids()? {
            if let Some(sealed) = self.get(&id)? {
                out.push((id, sealed));
            }
        }
        Ok(out)
    }
}

/// A store in memory, ordered by id so iteration is deterministic.
#[derive(Clone, Debug, Default)]
pub struct InMemoryStore {
    events: BTreeMap<EventId, StoredEntry>,
    /// The last epoch handed out: kept across the simulator's crash and restart, which reuse
    /// the store.
    epoch: u64,
    created_at_max_us: u64,
    /// Receive-key secrets: kept across the simulator's crash and restart, like the events.
    secrets: Option<Vec<u8>>,
    /// Files (the blob transfer's), kept across a crash like the events.
    blobs: InMemoryBlobs,
}

#[derive(Clone, Debug)]
pub struct StoredEntry {
    pub sealed: Vec<u8>,
    pub received_at_us: u64,
    pub event: crate::event::Event,
}

impl InMemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn entries(&self) -> impl Iterator<Item = (&EventId, &StoredEntry)> {
        self.events.iter()
    }
    /// The last epoch handed out (0: none yet).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }
    pub fn files(&self) -> &InMemoryBlobs {
        &self.blobs
    }
    pub fn files_mut(&mut self) -> &mut InMemoryBlobs {
        &mut self.blobs
    }
}

/// `max(last + 1, floor)`: the rule every store applies in `next_epoch`.
pub fn epoch_after(last: u64, floor: u64) -> u64 {
    last.saturating_add(1).max(floor)
}

impl Store for InMemoryStore {
    fn insert(&mut self, event: &OpenedEvent, received_at_us: u64) -> Result<bool, StoreError> {
        if self.events.contains_key(&event.id) {
            return Ok(false);
        }
        let entry = StoredEntry {
            sealed: event.sealed.clone(),
            received_at_us,
            event: event.event.clone(),
        };
        self.events.insert(event.id, entry);
        let created_at_us = event.event.created_at.as_micros();
        self.created_at_max_us = self.created_at_max_us.max(created_at_us);
        Ok(true)
    }
    fn get(&self, id: &EventId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.events.get(id).map(|e| e.sealed.clone()))
    }
    fn secrets(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.secrets.clone())
    }
    fn set_secrets(&mut self, secrets: &[u8]) -> Result<bool, StoreError> {
        self.secrets = Some(secrets.to_vec());
        Ok(true)
    }
    fn membership_events(&self) -> Result<Vec<(EventId, Vec<u8>)>, StoreError> {
        Ok(self
            .events
            .iter()
            .filter(|(_, e)| matches!(e.event.body, crate::event::EventBody::Membership { .. }))
            .map(|(id, e)| (*id, e.sealed.clone()))
            .collect())
    }
    fn ids(&self) -> Result<Vec<EventId>, StoreError> {
        Ok(self.events.keys().copied().collect())
    }
    fn len(&self) -> Result<u64, StoreError> {
        Ok(self.events.len() as u64)
    }
    fn created_at_max(&self) -> Result<u64, StoreError> {
        Ok(self.created_at_max_us)
    }
    fn blobs(&mut self) -> Option<&mut dyn BlobStore> {
        Some(&mut self.blobs)
    }
    fn next_epoch(&mut self, floor: u64) -> Result<u64, StoreError> {
        self.epoch = epoch_after(self.epoch, floor);
        Ok(self.epoch)
    }
}

/// A shared handle lets a caller read the store while the node owns it for writing
/// (the simulator's checkers; the device server's queries).
impl<S: Store> Store for std::rc::Rc<std::cell::RefCell<S>> {
    fn insert(&mut self, event: &OpenedEvent, received_at_us: u64) -> Result<bool, StoreError> {
        self.borrow_mut().insert(event, received_at_us)
    }
    fn get(&self, id: &EventId) -> Result<Option<Vec<u8>>, StoreError> {
        self.borrow().get(id)
    }
    fn ids(&self) -> Result<Vec<EventId>, StoreError> {
        self.borrow().ids()
    }
    fn len(&self) -> Result<u64, StoreError> {
        self.borrow().len()
    }
    fn created_at_max(&self) -> Result<u64, StoreError> {
        self.borrow().created_at_max()
    }
    fn insert_all(
        &mut self,
        events: &[OpenedEvent],
        received_at_us: u64,
    ) -> Result<(), StoreError> {
        self.borrow_mut().insert_all(events, received_at_us)
    }
    fn commit(&mut self) -> Result<(), StoreError> {
        self.borrow_mut().commit()
    }
    fn next_epoch(&mut self, floor: u64) -> Result<u64, StoreError> {
        self.borrow_mut().next_epoch(floor)
    }
    fn secrets(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.borrow().secrets()
    }
    fn set_secrets(&mut self, secrets: &[u8]) -> Result<bool, StoreError> {
        self.borrow_mut().set_secrets(secrets)
    }
    fn membership_events(&self) -> Result<Vec<(EventId, Vec<u8>)>, StoreError> {
        self.borrow().membership_events()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{seal, Event, EventBody};
    use crate::id::DeviceId;
    use crate::testing::{community_of, keys};
    use crate::time::Instant;

    #[test]
    fn insert_is_idempotent() {
        let community = community_of(&["alice"], 1);
        let event = Event {
            author: DeviceId::new("alice").unwrap(),
            created_at: Instant::ZERO,
            body: EventBody::DeviceStatus { online: true },
        };
        let opened = seal(&event, &keys("alice", 1), &community, [0; 24]).unwrap();
        let mut store = InMemoryStore::new();
        assert!(store.insert(&opened, 1).unwrap());
        assert!(!store.insert(&opened, 2).unwrap());
        assert_eq!(store.len().unwrap(), 1);
        assert_eq!(store.get(&opened.id).unwrap(), Some(opened.sealed.clone()));
        assert_eq!(store.ids().unwrap(), vec![opened.id]);
    }

    #[test]
    fn each_epoch_is_above_the_last_and_the_floor() {
        let mut store = InMemoryStore::new();
        assert_eq!(store.next_epoch(0).unwrap(), 1);
        assert_eq!(store.next_epoch(0).unwrap(), 2);
        assert_eq!(store.next_epoch(1_000).unwrap(), 1_000, "the floor wins");
        assert_eq!(
            store.next_epoch(1_000).unwrap(),
            1_001,
            "same second, still new"
        );
        assert_eq!(
            store.next_epoch(5).unwrap(),
            1_002,
            "a clock gone back changes nothing"
        );
        assert_eq!(store.epoch(), 1_002);
    }
}
