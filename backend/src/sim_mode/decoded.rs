//! The page's view of each simulated device's store: an index ([`DeviceIndex`]) per device,
//! grown by the events the trace announces, each decoded once.
//!
//! The world keeps sealed bytes only (`meshlog_sim::shelf`). A store that disagrees with
//! its index's size after the announcements (a power cut took events, the tap dropped some
//! in one huge advance) is caught up by one pass over it. That pass hashes every event
//! (`SimStore::for_each`), so it must stay rare: it used to run whenever one drain held more
//! than one stored event, which at 100× was every drain, and took 80% of the world thread
//! (issue 24: blake3 46%, copies 19% under `perf`).

use meshlog_core::{EventId, FileId, Store};
use meshlog_sim::World;

use super::entries::{self, Changed, DeviceIndex};
use crate::store::FileContent;

pub(crate) struct Decoded {
    devices: Vec<DeviceIndex>,
}

impl Decoded {
    pub(crate) fn new(names: &[String]) -> Self {
        Decoded {
            devices: names.iter().map(|name| DeviceIndex::new(name)).collect(),
        }
    }

    /// `device` stored the event whose id starts with `prefix`: decode and index it alone.
    /// Its id and what it changed.
    pub(crate) fn stored(
        &mut self,
        world: &World,
        device: usize,
        prefix: &[u8],
    ) -> Option<(EventId, Changed)> {
        let disk = world.store(device).borrow();
        let id = disk.events().find_by_prefix(prefix)?;
        let index = self.devices.get_mut(device)?;
        if index.contains(&id) {
            return Some((id, Changed::Nothing));
        }
        let opened = disk.events().opened(&id, world.community());
        Some((id, index.insert(id, opened.as_ref().map(|o| &o.event))))
    }

    /// Brings `device`'s index level with its store if the announcements missed something;
    /// O(1) when they did not.
    pub(crate) fn catch_up(&mut self, world: &World, device: usize) {
        let Some(index) = self.devices.get_mut(device) else {
            return;
        };
        let disk = world.store(device).borrow();
        let held = disk.len().unwrap_or(0);
        let have = index.len() as u64;
        if have == held {
            return;
        }
        if have > held {
            *index = DeviceIndex::new(&world.device_names()[device]);
        }
        disk.events().for_each(|id, sealed, _| {
            if !index.contains(id) {
                let opened = meshlog_core::event::open(sealed, world.community()).ok();
                index.insert(*id, opened.as_ref().map(|o| &o.event));
            }
        });
    }

    pub(crate) fn index(&self, device: usize) -> Option<&DeviceIndex> {
        self.devices.get(device)
    }

    /// The file's bytes, each chunk decoded from the store now (the index keeps only ids).
    pub(crate) fn file(&self, world: &World, device: usize, file: &FileId) -> Option<FileContent> {
        let index = self.devices.get(device)?;
        let disk = world.store(device).borrow();
        index.file(file, |id| {
            let opened = disk.events().opened(id, world.community())?;
            entries::chunk_bytes(&opened.event)
        })
    }
}
