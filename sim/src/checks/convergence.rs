//! Convergence, nothing invented or altered, and liveness, read off the finished world: every
//! device that is up holds every appended event (naming what is missing and who holds it),
//! every stored event is byte-equal to what its author appended, and each device converged
//! within `expect.converged_within` of the heal.

use meshlog_core::Prefix;
use meshlog_core::{EventId, Store};

use super::verdict::{Checker, Failure, Missing};
use crate::kernel::{Happening, View};

/// Most invented or altered ids listed per device; the count says how many there were.
const IDS_LISTED_MAX: usize = 3;
/// Most missing ids listed per device that did not converge.
const MISSING_LISTED_MAX: usize = 10;
/// Nibbles of the bucket shown with a missing id (`3f*`): a bug in one branch of the descent
/// shows as missing ids sharing a prefix.
const BUCKET_DEPTH_SHOWN: u8 = 2;

#[derive(Debug)]
pub(super) struct Convergence;

impl Checker for Convergence {
    fn observe(&mut self, _: &View<'_>, _: &Happening<'_>) {}

    fn verdict(&self, world: &View<'_>, failures: &mut Vec<Failure>) {
        let total = world.appended.len();
        let heal_at = world.heal_at.map_or(u64::MAX, |t| t.as_micros());
        let bound_us = world.scenario.expect.converged_within.as_micros();
        for (device, d) in world.devices.iter().enumerate() {
            let name = d.name.to_string();
            let store = d.store.borrow();
            let mut invented = Vec::new();
            let mut altered = Vec::new();
            let mut held = 0;
            let shelf = world.shelf.borrow();
            // Same bytes open to the same event: comparing them compares the decoded bodies
            // too. Slot order, no copy of the store's ids; the few listed are sorted after.
            store
                .events()
                .for_each_in_slot_order(|id, slot, _| match world.appended.get(id) {
                    None => invented.push(*id),
                    Some(original) => {
                        held += 1;
                        if shelf.bytes(original.slot) != shelf.bytes(slot) {
                            altered.push(*id);
                        }
                    }
                });
            if !invented.is_empty() {
                failures.push(Failure::Invented {
                    device: name.clone(),
                    count: invented.len(),
                    ids: first_few_in_order(invented),
                });
            }
            if !altered.is_empty() {
                failures.push(Failure::Altered {
                    device: name.clone(),
                    count: altered.len(),
                    ids: first_few_in_order(altered),
                });
            }
            if d.down_for_good {
                continue;
            }
            if held != total {
                failures.push(Failure::NotConverged {
                    device: name.clone(),
                    missing: total - held,
                    total,
                    ids: missing(world, device),
                });
            }
            let converged_at_us = d.converged_at.map(|at| at.as_micros());
            let after = converged_at_us.map(|at| at.saturating_sub(heal_at));
            if after.is_none_or(|after| after > bound_us) {
                failures.push(Failure::Liveness {
                    device: name,
                    converged_after_us: after,
                    bound_us,
                });
            }
        }
    }
}

/// The first `MISSING_LISTED_MAX` ids `device` lacks, each with its bucket and holders.
fn missing(world: &View<'_>, device: usize) -> Vec<Missing> {
    let store = world.devices[device].store.borrow();
    world
        .appended
        .keys()
        .filter(|id| !matches!(store.get(id), Ok(Some(_))))
        .take(MISSING_LISTED_MAX)
        .map(|id| Missing {
            id: id.to_string(),
            bucket: Prefix::of(&id, BUCKET_DEPTH_SHOWN).to_string(),
            held_by: world
                .devices
                .iter()
                .filter(|d| matches!(d.store.borrow().get(&id), Ok(Some(_))))
                .map(|d| d.name.to_string())
                .collect(),
        })
        .collect()
}

/// The first `IDS_LISTED_MAX` of `ids` in id order.
fn first_few_in_order(mut ids: Vec<EventId>) -> Vec<String> {
    ids.sort_unstable();
    ids.iter()
        .take(IDS_LISTED_MAX)
        .map(ToString::to_string)
        .collect()
}
