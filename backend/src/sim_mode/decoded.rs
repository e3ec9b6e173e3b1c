//! The page's view of each simulated device's store, decoded once per event.
//!
//! The world keeps sealed bytes only (`meshlog_sim::shelf`); the message views need decoded
//! events. Decoding a whole store per request or per stored event made a 100× run quadratic
//! (requests timed out after a few thousand messages), so each device's decoded copy is kept
//! here and grows by the events the trace announces. A copy that disagrees with the store's
//! size (a power cut took events, or an event came in unannounced) is brought up to date.

use meshlog_core::{EventId, InMemoryStore, Store};
use meshlog_sim::World;

pub(crate) struct Decoded {
    stores: Vec<InMemoryStore>,
}

impl Decoded {
    pub(crate) fn new(devices: usize) -> Self {
        Decoded {
            stores: (0..devices).map(|_| InMemoryStore::new()).collect(),
        }
    }

    /// `device` stored the event whose id starts with `prefix`: decode it alone. Its id.
    pub(crate) fn stored(
        &mut self,
        world: &World,
        device: usize,
        prefix: &[u8],
    ) -> Option<EventId> {
        let disk = world.store(device).borrow();
        let id = disk.events().find_by_prefix(prefix)?;
        let copy = self.stores.get_mut(device)?;
        if copy.get(&id).ok().flatten().is_none() {
            let opened = disk.events().opened(&id, world.community())?;
            let at = disk.events().received_at_us(&id).unwrap_or(0);
            copy.insert(&opened, at).expect("in memory");
        }
        Some(id)
    }

    /// `device`'s store, decoded and up to date.
    pub(crate) fn store(&mut self, world: &World, device: usize) -> &InMemoryStore {
        let disk = world.store(device).borrow();
        let held = disk.len().unwrap_or(0);
        let copy = &mut self.stores[device];
        let have = copy.len().unwrap_or(0);
        if have > held {
            *copy = disk.events().snapshot(world.community());
        } else if have < held {
            disk.events().for_each(|id, sealed, received_at_us| {
                if copy.get(id).ok().flatten().is_none() {
                    if let Ok(mut opened) = meshlog_core::event::open(sealed, world.community()) {
                        opened.id = *id;
                        copy.insert(&opened, received_at_us).expect("in memory");
                    }
                }
            });
        }
        &self.stores[device]
    }
}
