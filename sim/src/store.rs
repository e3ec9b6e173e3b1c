//! Each device's store in the world: references into the world's shelf (`shelf.rs`), and a
//! disk that can fill up.
//!
//! `disk_full` makes every insert fail as a full disk makes SQLite's fail, until `disk_freed`
//! or a heal: the node must keep working (a refused append is an error to its caller; a
//! refused received event is dropped as `store_failed` and fetched again later) and catch up
//! once there is room.

use std::cell::RefCell;
use std::rc::Rc;

use meshlog_core::{EventId, OpenedEvent, Store, StoreError};

use crate::shelf::{SharedShelf, SimStore};

pub type SharedStore = Rc<RefCell<WorldStore>>;

#[derive(Debug)]
pub struct WorldStore {
    events: SimStore,
    /// Inserts fail while set.
    pub(crate) full: bool,
    /// Inserts refused for a full disk, over the run.
    pub(crate) refused: u64,
}

impl WorldStore {
    pub fn new(shelf: SharedShelf) -> Self {
        WorldStore {
            events: SimStore::new(shelf),
            full: false,
            refused: 0,
        }
    }
    pub fn events(&self) -> &SimStore {
        &self.events
    }
    /// For a power cut, which drops what was not yet durable.
    pub(crate) fn events_mut(&mut self) -> &mut SimStore {
        &mut self.events
    }
    fn refuse_if_full(&mut self) -> Result<(), StoreError> {
        if self.full {
            self.refused += 1;
            return Err(StoreError::Backend("disk full (simulated)".into()));
        }
        Ok(())
    }
}

impl Store for WorldStore {
    fn insert(&mut self, event: &OpenedEvent, received_at_us: u64) -> Result<bool, StoreError> {
        if self.events.get(&event.id)?.is_some() {
            return Ok(false); // a duplicate writes nothing, full disk or not
        }
        self.refuse_if_full()?;
        self.events.insert(event, received_at_us)
    }
    fn insert_all(
        &mut self,
        events: &[OpenedEvent],
        received_at_us: u64,
    ) -> Result<(), StoreError> {
        self.refuse_if_full()?; // all or none: nothing is written
        self.events.insert_all(events, received_at_us)
    }
    fn get(&self, id: &EventId) -> Result<Option<Vec<u8>>, StoreError> {
        self.events.get(id)
    }
    fn ids(&self) -> Result<Vec<EventId>, StoreError> {
        self.events.ids()
    }
    fn len(&self) -> Result<u64, StoreError> {
        self.events.len()
    }
    fn created_at_max(&self) -> Result<u64, StoreError> {
        self.events.created_at_max()
    }
    /// The epoch is a small row SQLite rewrites in place: a full disk does not stop a start.
    fn next_epoch(&mut self, floor: u64) -> Result<u64, StoreError> {
        self.events.next_epoch(floor)
    }
}
