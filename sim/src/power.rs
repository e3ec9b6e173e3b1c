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
//! A world running provided stores (`[world] store = "sqlite"`, `store.rs`) has no power cuts
//! (a process cannot cut its own power); there a crash drops the store's connection and the
//! restart opens the file again, and the same checker reads what the reopened store holds.
//!
//! Checker: no event a device appended (and was told was stored) is ever lost to a power
//! cut or a reopened store; the world still converges after.

use std::collections::BTreeSet;

use meshlog_core::{EventId, Store};

use crate::world::World;

/// Ids listed in a failure; the count says how many there were.
const IDS_LISTED_MAX: usize = 5;

/// A power cut took events the device itself had appended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OwnLoss {
    pub(crate) device: usize,
    /// `power cut` or `reopened store`.
    pub(crate) cause: &'static str,
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
                cause: "power cut",
                at_us: now.as_micros(),
                count: own.len(),
                ids: own.into_iter().take(IDS_LISTED_MAX).collect(),
            });
        }
    }
}

impl World {
    /// A restart of a device whose store a provider opened: the old handle is dropped and the
    /// store opened again; every event the device appended must be there.
    pub(crate) fn reopen_store(&mut self, device: usize) {
        let now = self.now;
        let d = &self.devices[device];
        let reopened = d.store.borrow_mut().reopen(&self.community);
        match reopened {
            Ok(false) => return,
            Ok(true) => {}
            // The disk under the world failed, not the protocol: nothing to judge.
            Err(err) => panic!("{}: reopening its store failed: {err}", d.name),
        }
        let name = d.name.clone();
        let store = d.store.borrow();
        let mut own: Vec<EventId> = self
            .appended
            .keys()
            .filter(|id| !matches!(store.get(id), Ok(Some(_))))
            .filter(|id| {
                self.appended_event(id)
                    .is_some_and(|a| a.event.author == name)
            })
            .collect();
        // In id order, as the world listed them before `appended` kept shelf slots.
        own.sort_unstable();
        let held = store.len().unwrap_or(0);
        drop(store);
        self.trace.line(format_args!(
            "{now} reopen {name} held {held} lost-own {}",
            own.len()
        ));
        if !own.is_empty() {
            self.own_losses.push(OwnLoss {
                device,
                cause: "reopened store",
                at_us: now.as_micros(),
                count: own.len(),
                ids: own.into_iter().take(IDS_LISTED_MAX).collect(),
            });
        }
    }

    /// Ends the device's batch of inputs at its store, as the real driver does after each. A
    /// failed commit took the batch back: the mirror follows what the store holds.
    pub(crate) fn commit_store(&mut self, device: usize) {
        let mut store = self.devices[device].store.borrow_mut();
        if store.commit().is_err() {
            store
                .resync(&self.community)
                .expect("the store reads back after a failed commit");
        }
    }

    /// Before the final checks: every mirror holds exactly what its provided store holds.
    pub(crate) fn resync_provided_stores(&mut self) {
        for d in &self.devices {
            let mut store = d.store.borrow_mut();
            if let Err(err) = store.resync(&self.community) {
                panic!("{}: reading its store at the end failed: {err}", d.name);
            }
        }
    }
}
