//! Each device's store in the world, and a disk that can fill up.
//!
//! By default a device's events are references into the world's shelf (`shelf.rs`). A
//! scenario with `[world] store = "sqlite"` runs the store the devices ship instead: the
//! world asks a [`StoreProvider`] (the `meshlog` binary supplies one, a SQLite file per device
//! in a temporary directory) to open each device's store, and again at every restart after
//! dropping the old handle, so what the device sees after a crash is what the store kept.
//! The shelf copy is then a mirror of what the provided store accepted, for the checkers and
//! the record of appended events; it is rebuilt from the provided store at every reopen and
//! at the end of the run, and the node itself reads only the provided store.
//!
//! `disk_full` makes every insert fail as a full disk makes SQLite's fail, until `disk_freed`
//! or a heal: the node must keep working (a refused append is an error to its caller; a
//! refused received event is dropped as `store_failed` and fetched again later) and catch up
//! once there is room.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

use meshlog_core::blob::{BlobStore, InMemoryBlobs};
use meshlog_core::event::open;
use meshlog_core::{Community, EventId, Instant, OpenedEvent, Store, StoreError};

use super::shelf::{SharedShelf, SimStore};

pub type SharedStore = Rc<RefCell<WorldStore>>;

/// Opens device stores for worlds whose scenario asks for a real one.
pub trait StoreProvider: std::fmt::Debug {
    /// The store of `device`: called when the world is built, and again at each restart
    /// after the previous handle was dropped, as a restarted process opens its file again.
    fn open(&self, device: &str) -> Result<Box<dyn Store>, StoreError>;
}

/// A store a provider opened, and how to open it again.
struct Provided {
    provider: Rc<dyn StoreProvider>,
    device: String,
    store: Box<dyn Store>,
}

impl std::fmt::Debug for Provided {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provided")
            .field("provider", &self.provider)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub struct WorldStore {
    /// The store itself, or (with a provided store) its mirror.
    events: SimStore,
    provided: Option<Provided>,
    /// Inserts fail while set.
    pub(crate) full: bool,
    /// Inserts refused for a full disk, over the run.
    pub(crate) refused: u64,
    /// Each event of the last `insert_all` (a node's append: its author's sealing) with its
    /// time: the clock checker reads it here rather than decrypting the bytes again, which
    /// cost a twentieth of a million-event run. Bounded by one append's events.
    pub(crate) last_appended: Vec<(EventId, Instant)>,
    /// Files (the blob transfer's), in memory even beside a provided store; complete files'
    /// bytes are shared by every device (`InMemoryBlobs`). Kept across crashes.
    pub(crate) files: InMemoryBlobs,
}

impl WorldStore {
    pub fn new(shelf: SharedShelf) -> Self {
        WorldStore {
            events: SimStore::new(shelf),
            provided: None,
            full: false,
            refused: 0,
            last_appended: Vec::new(),
            files: InMemoryBlobs::new(),
        }
    }

    /// The store `provider` opens for `device` (empty at the start of a run).
    pub fn provided(
        shelf: SharedShelf,
        provider: Rc<dyn StoreProvider>,
        device: &str,
    ) -> Result<Self, StoreError> {
        let store = provider.open(device)?;
        Ok(WorldStore {
            provided: Some(Provided {
                provider,
                device: device.to_owned(),
                store,
            }),
            ..WorldStore::new(shelf)
        })
    }

    /// The events held, as the shelf keeps them (with a provided store, its mirror).
    pub fn events(&self) -> &SimStore {
        &self.events
    }
    /// For a power cut, which drops what was not yet durable.
    pub(crate) fn events_mut(&mut self) -> &mut SimStore {
        &mut self.events
    }
    pub fn is_provided(&self) -> bool {
        self.provided.is_some()
    }
    fn refuse_if_full(&mut self) -> Result<(), StoreError> {
        if self.full {
            self.refused += 1;
            return Err(StoreError::Backend("disk full (simulated)".into()));
        }
        Ok(())
    }

    /// What the node reads and writes: the provided store if there is one.
    fn backing(&self) -> &dyn Store {
        match &self.provided {
            Some(p) => p.store.as_ref(),
            None => &self.events,
        }
    }
    fn backing_mut(&mut self) -> &mut dyn Store {
        match &mut self.provided {
            Some(p) => p.store.as_mut(),
            None => &mut self.events,
        }
    }

    /// A restart: the provided store's handle is dropped and opened again, and the mirror
    /// made what it holds now. `false` without a provided store (nothing to reopen).
    pub(crate) fn reopen(&mut self, community: &Community) -> Result<bool, StoreError> {
        let Some(p) = self.provided.as_mut() else {
            return Ok(false);
        };
        // Drop first: a process that died holds no connection when its next one opens.
        let placeholder: Box<dyn Store> = Box::new(meshlog_core::InMemoryStore::new());
        drop(std::mem::replace(&mut p.store, placeholder));
        p.store = p.provider.open(&p.device)?;
        self.resync(community)?;
        Ok(true)
    }

    /// Makes the mirror hold exactly what the provided store holds.
    pub(crate) fn resync(&mut self, community: &Community) -> Result<(), StoreError> {
        let Some(p) = self.provided.as_ref() else {
            return Ok(());
        };
        let held: BTreeSet<EventId> = p.store.ids()?.into_iter().collect();
        self.events.retain(|id| held.contains(id), community);
        for id in &held {
            if self.events.slot_of(id).is_some() {
                continue;
            }
            // Not accepted through this world's inserts: mirrored as it is, for the checkers
            // to judge (bytes that do not open cannot be mirrored; they show as missing).
            let Some(sealed) = p.store.get(id)? else {
                continue;
            };
            if let Ok(mut opened) = open(&sealed, community) {
                opened.id = *id;
                self.events.insert(&opened, 0)?;
            }
        }
        Ok(())
    }
}

impl Store for WorldStore {
    fn insert(&mut self, event: &OpenedEvent, received_at_us: u64) -> Result<bool, StoreError> {
        if self.backing().get(&event.id)?.is_some() {
            return Ok(false); // a duplicate writes nothing, full disk or not
        }
        self.refuse_if_full()?;
        let fresh = self.backing_mut().insert(event, received_at_us)?;
        if fresh && self.provided.is_some() {
            self.events.insert(event, received_at_us)?;
        }
        Ok(fresh)
    }
    fn insert_all(
        &mut self,
        events: &[OpenedEvent],
        received_at_us: u64,
    ) -> Result<(), StoreError> {
        self.refuse_if_full()?; // all or none: nothing is written
        self.backing_mut().insert_all(events, received_at_us)?;
        if self.provided.is_some() {
            self.events.insert_all(events, received_at_us)?;
        }
        self.last_appended.clear();
        self.last_appended
            .extend(events.iter().map(|e| (e.id, e.event.created_at)));
        Ok(())
    }
    fn commit(&mut self) -> Result<(), StoreError> {
        self.backing_mut().commit()
    }
    fn blobs(&mut self) -> Option<&mut dyn BlobStore> {
        Some(&mut self.files)
    }
    fn get(&self, id: &EventId) -> Result<Option<Vec<u8>>, StoreError> {
        self.backing().get(id)
    }
    fn ids(&self) -> Result<Vec<EventId>, StoreError> {
        self.backing().ids()
    }
    fn len(&self) -> Result<u64, StoreError> {
        self.backing().len()
    }
    fn created_at_max(&self) -> Result<u64, StoreError> {
        self.backing().created_at_max()
    }
    /// The epoch is a small row SQLite rewrites in place: a full disk does not stop a start.
    fn next_epoch(&mut self, floor: u64) -> Result<u64, StoreError> {
        self.backing_mut().next_epoch(floor)
    }
    fn membership_events(&self) -> Result<Vec<(EventId, Vec<u8>)>, StoreError> {
        self.backing().membership_events()
    }
    fn secrets(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.backing().secrets()
    }
    fn set_secrets(&mut self, secrets: &[u8]) -> Result<bool, StoreError> {
        self.backing_mut().set_secrets(secrets)
    }
}
