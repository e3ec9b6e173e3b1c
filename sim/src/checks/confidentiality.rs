//! Confidentiality after a removal: a removed device never holds the plaintext of an event
//! sealed by a member that already knew of its removal.
//!
//! A removed device keeps its node (`faults/member.rs`), so it keeps sending and listening.
//! This checker listens with it (`overheard.rs`: every sealed event on a link it is an end
//! of). At the end each is opened with the removed device's own
//! community (the keys its node holds), and so is everything its store holds. An event opens
//! as a failure if its author is another device that, when it sealed it, already knew of the
//! removal (its node had said so: `member ... removed`).
//!
//! Why "knew", not "after the removal": a member that has not yet heard of it cannot help
//! sealing under the old key, and a partition can keep it unheard for minutes; what the
//! protocol promises is that a device which knows seals where the removed one cannot read.
//! Membership events are left out: the removal itself must reach the removed device, and a
//! key share carries keys sealed to each recipient's own key, nothing it can open.
//!
//! Watches the devices a scenario's `[[member]] remove` names; judges those removed at the end.

use std::collections::BTreeMap;

use meshlog_core::member::Status;
use meshlog_core::{Community, EventBody, EventId, NodeEvent};

use super::overheard::Overheard;
use super::verdict::{Checker, Failure};
use crate::kernel::{Happening, View};
use crate::scenario::MemberAction;

#[derive(Debug, Default)]
pub(super) struct Confidentiality {
    /// The links of the devices `[[member]] remove` names (set at the start).
    links: Overheard,
    /// (member, removed device) → when the member's node first said the device was removed.
    knew: BTreeMap<(usize, usize), (u64, u64)>,
    /// When each appended event was sealed (the happening's order and its time).
    sealed_at: BTreeMap<EventId, (u64, u64)>,
    /// Happenings so far: orders what is known against what is sealed within an instant.
    step: u64,
    /// The last fault applied, or heal after one, in world time (µs).
    last_fault_us: u64,
    faulted: bool,
}

/// One readable event, the first of its kind.
#[derive(Debug)]
struct Breach {
    id: EventId,
    author: usize,
    sealed_at_us: u64,
    knew_at_us: u64,
}

impl Confidentiality {
    /// The events `removed` can open with `community` that their authors sealed knowing of
    /// its removal: how many, and the first (in id order), from what it heard and from what
    /// its store holds.
    fn breaches(
        &self,
        view: &View<'_>,
        removed: usize,
        community: &Community,
    ) -> Vec<(&'static str, usize, Breach)> {
        let judge = |id: &EventId, bytes: &[u8]| -> Option<Breach> {
            let opened = meshlog_core::open(bytes, community).ok()?;
            if matches!(opened.event.body, EventBody::Membership { .. }) {
                return None;
            }
            let author = view.index_of(&opened.event.author)?;
            if author == removed {
                return None;
            }
            let (knew_step, knew_at_us) = *self.knew.get(&(author, removed))?;
            let (sealed_step, sealed_at_us) = *self.sealed_at.get(id)?;
            (sealed_step > knew_step).then_some(Breach {
                id: *id,
                author,
                sealed_at_us,
                knew_at_us,
            })
        };
        let mut found = Vec::new();
        let heard: Vec<Breach> = self
            .links
            .of(removed)
            .filter_map(|(id, bytes)| judge(id, bytes))
            .collect();
        let mut stored: Vec<Breach> = Vec::new();
        let shelf = view.shelf.borrow();
        view.devices[removed]
            .store
            .borrow()
            .events()
            .for_each_in_slot_order(|id, slot, _| stored.extend(judge(id, shelf.bytes(slot))));
        for (source, mut list) in [("link", heard), ("store", stored)] {
            list.sort_by_key(|b| b.id);
            let count = list.len();
            if let Some(first) = list.into_iter().next() {
                found.push((source, count, first));
            }
        }
        found
    }
}

impl Checker for Confidentiality {
    fn observe(&mut self, view: &View<'_>, happening: &Happening<'_>) {
        self.step += 1;
        /// The devices watched: those removed.
        fn removed(action: &MemberAction) -> Option<&String> {
            match action {
                MemberAction::Remove(name) => Some(name),
                _ => None,
            }
        }
        if !self.links.observe(view, happening, removed) {
            return;
        }
        match *happening {
            Happening::Fault { applied: true, .. } => {
                self.faulted = true;
                self.last_fault_us = view.now.as_micros();
            }
            Happening::Heal { done: true } if self.faulted => {
                self.last_fault_us = view.now.as_micros();
            }
            Happening::Made { id, .. } => {
                self.sealed_at.insert(id, (self.step, view.now.as_micros()));
            }
            Happening::Node {
                device,
                event:
                    NodeEvent::MemberChanged {
                        device: removed,
                        status: Status::Removed,
                        ..
                    },
            } => {
                if let Some(removed) = view.index_of(removed) {
                    self.knew
                        .entry((device, removed))
                        .or_insert((self.step, view.now.as_micros()));
                }
            }
            _ => {}
        }
    }

    fn verdict(&self, view: &View<'_>, failures: &mut Vec<Failure>) {
        for &removed in &self.links.watched {
            if !view.is_removed(removed) {
                continue;
            }
            // Its node's keys; a node down at the end holds what its store's node would.
            let community = match view.node(removed) {
                Some(node) => node.config().community.clone(),
                None => view.community().clone(),
            };
            self.judge(view, removed, &community, failures);
        }
    }
}

impl Confidentiality {
    fn judge(
        &self,
        view: &View<'_>,
        removed: usize,
        community: &Community,
        failures: &mut Vec<Failure>,
    ) {
        self.held_late(view, removed, failures);
        for (source, count, first) in self.breaches(view, removed, community) {
            failures.push(Failure::Readable {
                device: view.name(removed).to_string(),
                count,
                source: source.to_owned(),
                first: first.id.to_string(),
                first_author: view.name(first.author).to_string(),
                first_sealed_at_us: first.sealed_at_us,
                removal_known_at_us: first.knew_at_us,
            });
        }
    }
}

impl Confidentiality {
    /// The end-to-end bound: past the removal (or the last fault or heal, if later) and
    /// `expect.roster_within`, nothing another device creates reaches the removed device's
    /// store, whoever knew what.
    fn held_late(&self, view: &View<'_>, removed: usize, failures: &mut Vec<Failure>) {
        let name = view.name(removed);
        let Some((_, removed_at)) = view
            .members
            .settled()
            .members
            .get(name)
            .and_then(|m| m.removed.clone())
        else {
            return;
        };
        let grace = view
            .scenario
            .expect
            .roster_within
            .unwrap_or(view.scenario.expect.converged_within);
        let bound_us = removed_at.as_micros().max(self.last_fault_us) + grace.as_micros();
        let shelf = view.shelf.borrow();
        let mut late: Vec<(EventId, usize, u64)> = Vec::new();
        view.devices[removed]
            .store
            .borrow()
            .events()
            .for_each_in_slot_order(|id, slot, _| {
                let Some(opened) = view.opened_slot(slot).or_else(|| {
                    let community = view.node(removed)?.config().community.clone();
                    meshlog_core::open(shelf.bytes(slot), &community).ok()
                }) else {
                    return;
                };
                let created = opened.event.created_at.as_micros();
                if opened.event.author != *name && created > bound_us {
                    if let Some(author) = view.index_of(&opened.event.author) {
                        late.push((*id, author, created));
                    }
                }
            });
        late.sort_unstable();
        if let Some(&(first, author, created)) = late.first() {
            failures.push(Failure::HeldAfterRemoval {
                device: name.to_string(),
                count: late.len(),
                first: first.to_string(),
                first_author: view.name(author).to_string(),
                first_created_at_us: created,
                bound_us,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::World;
    use crate::scenario::Scenario;

    /// A real removal passes: carol, removed at 20s and writing and listening to the end,
    /// opens nothing sealed by a member that knew. The same world judged with carol holding
    /// the new epoch's key (a removal that does not rotate, faked by handing her alice's
    /// keys) fails, from her links and her store alike.
    #[test]
    fn a_removed_device_with_the_new_key_fails() {
        let text = "name = \"c\"\nduration = \"1m\"\ndevices = [\"alice\", \"bob\", \"carol\"]\n\
                    [workload]\nmessages_per_hour = 600\n\
                    [[member]]\nat = \"20s\"\nremove = \"carol\"\n";
        let scenario = Scenario::parse(text, "c.toml").unwrap();
        let mut world = World::new(&scenario, 5, None).unwrap();
        let mut checker = Confidentiality::default();
        world.observe_with(Box::new(Listener(std::mem::take(&mut checker))));
        world.run();
        let checker = world.take_observer::<Listener>().unwrap().0;
        let view = world.view();
        let carol = view.index_of(&crate::kernel::device_id("carol")).unwrap();
        assert!(view.is_removed(carol));
        let mut failures = Vec::new();
        checker.verdict(&view, &mut failures);
        assert!(failures.is_empty(), "{failures:?}");
        assert!(
            checker.links.of(carol).next().is_some(),
            "carol heard events on her links"
        );

        // Carol overhears everything alice sealed after she knew (as she would if alice still
        // sent to her): her own keys open none of it; with alice's, every one opens.
        let mut checker = checker;
        let alice_knew = checker.knew[&(0, carol)].0;
        let shelf = view.shelf.borrow();
        let alices_keys = view.node(0).unwrap().config().community.clone();
        let mut overheard = 0;
        view.devices[0]
            .store
            .borrow()
            .events()
            .for_each_in_slot_order(|id, slot, _| {
                let later = checker.sealed_at.get(id).is_some_and(|s| s.0 > alice_knew);
                let opened = meshlog_core::open(shelf.bytes(slot), &alices_keys);
                let alices = opened.is_ok_and(|o| {
                    o.event.author.as_str() == "alice"
                        && !matches!(o.event.body, EventBody::Membership { .. })
                });
                if later && alices {
                    overheard += 1;
                    let heard = checker.links.heard.get_mut(&carol).unwrap();
                    heard.insert(*id, shelf.bytes(slot).to_vec());
                }
            });
        drop(shelf);
        assert!(overheard > 0, "alice sealed events after the removal");
        let mut failures = Vec::new();
        checker.verdict(&view, &mut failures);
        assert!(failures.is_empty(), "{failures:?}");
        let alice = view.node(0).unwrap().epoch_keys().clone();
        let leaky = view
            .node(carol)
            .unwrap()
            .config()
            .community
            .clone()
            .with_epoch_keys(alice);
        checker.judge(&view, carol, &leaky, &mut failures);
        assert!(
            matches!(failures.as_slice(), [Failure::Readable { device, source, count, first_author, .. }]
                if device == "carol" && source == "link" && *count == overheard && first_author == "alice"),
            "{failures:?}"
        );
        assert!(world.finish().passed());
    }

    /// The checker as an observer of its own, to read it back after the run.
    #[derive(Debug)]
    struct Listener(Confidentiality);

    impl crate::kernel::Observer for Listener {
        fn observe(&mut self, view: &View<'_>, happening: &Happening<'_>) {
            self.0.observe(view, happening);
        }
    }
}
