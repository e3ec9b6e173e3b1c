//! Power cuts: a crash that also takes back what the device's store had not made durable.
//!
//! The device server's store (`backend/src/store/schema.rs`, `Durability::FullForOwn`)
//! commits the device's own events with `synchronous = FULL` and received ones with NORMAL:
//! a received event survives a killed process but not a power cut, until a later FULL commit
//! (the next own append) fsyncs the write-ahead log, which holds commits in order. The world
//! keeps, per device, the received events since its last own append; a power cut removes
//! them from its store. (A checkpoint would make them durable too, but one comes only every
//! ~40 MB of log: assuming none is the harsher world.)
//!
//! Checker: no event a device appended (and was told was stored) is ever lost to a power
//! cut; the world still converges after.

use std::collections::BTreeSet;

use meshlog_core::EventId;

use crate::world::World;

/// Ids listed in a failure; the count says how many there were.
const IDS_LISTED_MAX: usize = 5;

/// A power cut took events the device itself had appended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OwnLoss {
    pub(crate) device: usize,
    pub(crate) at_us: u64,
    pub(crate) count: usize,
    pub(crate) ids: Vec<EventId>,
}

impl World {
    /// `device` stored `id`: its own (`local`) append makes everything before it durable.
    pub(crate) fn note_stored(&mut self, device: usize, id: EventId, local: bool) {
        // Only a power cut reads it: without one in the scenario, a device that never appends
        // would keep every id it received.
        if !self.scenario.faults.iter().any(|f| f.power_cut.is_some()) {
            return;
        }
        let unsynced = &mut self.devices[device].unsynced;
        if local && !self.options.power_cut_loses_own {
            unsynced.clear();
        } else {
            unsynced.insert(id);
        }
    }

    /// The device's node dies, and its store loses every event not yet durable.
    pub(crate) fn power_cut(&mut self, device: usize) {
        let now = self.now;
        let d = &mut self.devices[device];
        d.node = None;
        d.wake_at = None;
        let lost = std::mem::take(&mut d.unsynced);
        d.store
            .borrow_mut()
            .events_mut()
            .retain(|id| !lost.contains(id), &self.community);
        self.trace.line(format_args!(
            "{now} power_cut {} lost {}",
            d.name,
            lost.len()
        ));
        self.counters.lost_to_power_cuts += lost.len() as u64;
        let name = d.name.clone();
        let own: BTreeSet<EventId> = lost
            .into_iter()
            .filter(|id| {
                self.appended_event(id)
                    .is_some_and(|a| a.event.author == name)
            })
            .collect();
        if !own.is_empty() {
            self.own_losses.push(OwnLoss {
                device,
                at_us: now.as_micros(),
                count: own.len(),
                ids: own.into_iter().take(IDS_LISTED_MAX).collect(),
            });
        }
    }
}
