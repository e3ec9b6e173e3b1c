//! Forged authorship: a member gone bad (`[[hostile]]` with `kinds = ["forged_author"]`)
//! seals a real packet, with its real pairwise key and a counter its peer accepts, around a
//! message that claims another member wrote it, signed with a key that is not that member's.
//! The packet layer lets it in (it is a member's packet); the author signature must not. No
//! device may store it: the checker reads every store at the end, and watches every store
//! on the way (a device that stored and then lost it stored it all the same).

use std::collections::{BTreeMap, BTreeSet};

use meshlog_core::{EventId, NodeEvent};

use super::verdict::{Checker, Failure};
use crate::kernel::{Happening, View};

#[derive(Debug, Default)]
pub(super) struct ForgedAuthor {
    /// Every forged event made, and who made it.
    forged: BTreeMap<EventId, usize>,
    /// Forged events a device's node said it stored, per device.
    stored: BTreeMap<usize, BTreeSet<EventId>>,
}

impl Checker for ForgedAuthor {
    fn observe(&mut self, _: &View<'_>, happening: &Happening<'_>) {
        match *happening {
            Happening::ForgedEvent { from, id, .. } => {
                self.forged.insert(id, from);
            }
            Happening::Node {
                device,
                event: NodeEvent::EventStored { id, .. },
            } if self.forged.contains_key(id) => {
                self.stored.entry(device).or_default().insert(*id);
            }
            _ => {}
        }
    }

    fn verdict(&self, view: &View<'_>, failures: &mut Vec<Failure>) {
        if self.forged.is_empty() {
            return;
        }
        for device in 0..view.device_count() {
            let mut held: BTreeSet<EventId> = self.stored.get(&device).cloned().unwrap_or_default();
            let store = view.devices[device].store.borrow();
            held.extend(
                self.forged
                    .keys()
                    .filter(|id| store.events().slot_of(id).is_some()),
            );
            if let Some(first) = held.first() {
                failures.push(Failure::ForgedStored {
                    device: view.name(device).to_string(),
                    count: held.len(),
                    first: first.to_string(),
                    forger: view.name(self.forged[first]).to_string(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::checks::verdict::Failure;
    use crate::kernel::{World, WorldOptions};

    /// Mallory, a member gone bad, sends alice and bob messages in each other's name: both
    /// refuse them. A world whose nodes skipped the author-signature check (faked: the kernel
    /// stores each forgery straight into its target's store) fails, naming each device.
    #[test]
    fn a_stored_forgery_fails() {
        let text = "name = \"a\"\nduration = \"1m\"\ndevices = [\"alice\", \"bob\", \"mallory\"]\n\
                    [workload]\nmessages_per_hour = 600\n\
                    [[hostile]]\ndevice = \"mallory\"\nevery = \"5s\"\nkinds = [\"forged_author\"]\n";
        let outcome = World::outcome_of(text, 2, WorldOptions::default());
        assert!(outcome.passed(), "{:?}", outcome.failures);

        let options = WorldOptions {
            store_forged_events: true,
            ..WorldOptions::default()
        };
        let outcome = World::outcome_of(text, 2, options);
        let stored: Vec<&str> = outcome
            .failures
            .iter()
            .filter_map(|f| match f {
                Failure::ForgedStored { device, forger, .. } if forger == "mallory" => {
                    Some(device.as_str())
                }
                _ => None,
            })
            .collect();
        assert_eq!(stored, ["alice", "bob"], "{:?}", outcome.failures);
    }
}
