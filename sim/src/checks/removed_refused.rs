//! Refused after removal: once a member's node knows a device was removed (it said
//! `member ... removed`), it stores no event that device wrote and sent it itself. The core
//! drops a removed device's packets at the door (`unknown_source`); an event of its relayed
//! by a member that had not yet heard is another matter, and not judged here.

use std::collections::BTreeMap;

use meshlog_core::member::Status;
use meshlog_core::{EventId, NodeEvent, Origin};

use super::verdict::{Checker, Failure};
use crate::kernel::{Happening, View};

#[derive(Debug, Default)]
pub(super) struct RemovedRefused {
    /// (member, removed device): the member's node has said the device is removed.
    knows: BTreeMap<(usize, usize), ()>,
    /// (member, removed device) → stored events it sent: how many, the first and when.
    accepted: BTreeMap<(usize, usize), (u64, EventId, u64)>,
}

impl Checker for RemovedRefused {
    fn observe(&mut self, view: &View<'_>, happening: &Happening<'_>) {
        let Happening::Node { device, event } = *happening else {
            return;
        };
        match event {
            NodeEvent::MemberChanged {
                device: other,
                status,
                ..
            } => {
                let Some(other) = view.index_of(other) else {
                    return;
                };
                // A removal voided by the merge rule makes the device a member again.
                match status {
                    Status::Removed => self.knows.insert((device, other), ()),
                    Status::Active => self.knows.remove(&(device, other)),
                };
            }
            NodeEvent::EventStored {
                id,
                origin: Origin::Peer,
                from: Some(from),
                event,
                ..
            } if event.author == *from => {
                let Some(sender) = view.index_of(from) else {
                    return;
                };
                if self.knows.contains_key(&(device, sender)) {
                    self.accepted
                        .entry((device, sender))
                        .and_modify(|a| a.0 += 1)
                        .or_insert((1, *id, view.now.as_micros()));
                }
            }
            _ => {}
        }
    }

    fn verdict(&self, view: &View<'_>, failures: &mut Vec<Failure>) {
        for (&(device, from), &(count, first, first_at_us)) in &self.accepted {
            failures.push(Failure::RemovedAccepted {
                device: view.name(device).to_string(),
                from: view.name(from).to_string(),
                count,
                first: first.to_string(),
                first_at_us,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use meshlog_core::member::Role;
    use meshlog_core::{DeviceId, Event, EventBody, Instant};

    use super::*;
    use crate::kernel::World;
    use crate::scenario::Scenario;

    /// A real removal passes (carol keeps sending; alice and bob drop her at the door). A
    /// broken member that stores what carol sends after knowing she was removed fails,
    /// naming it; the same event before it knew, or relayed by bob, does not count.
    #[test]
    fn a_member_storing_what_the_removed_sends_fails() {
        let text = "name = \"x\"\nduration = \"1m\"\ndevices = [\"alice\", \"bob\", \"carol\"]\n\
                    [workload]\nmessages_per_hour = 600\n\
                    [[member]]\nat = \"20s\"\nremove = \"carol\"\n";
        let scenario = Scenario::parse(text, "x.toml").unwrap();
        let mut world = World::new(&scenario, 2, None).unwrap();
        world.run();
        let view = world.view();
        let carol = DeviceId::new("carol").unwrap();
        let bob = DeviceId::new("bob").unwrap();
        let stored = |from: &DeviceId| NodeEvent::EventStored {
            id: EventId([7; 32]),
            origin: Origin::Peer,
            from: Some(from.clone()),
            event: Event {
                author: carol.clone(),
                created_at: Instant::from_micros(1),
                body: EventBody::Message {
                    text: "still here".into(),
                    attachment: None,
                    auto: false,
                },
            },
            size: 100,
        };
        let removed = NodeEvent::MemberChanged {
            device: carol.clone(),
            status: Status::Removed,
            role: Role::Member,
        };
        let mut checker = RemovedRefused::default();
        let alice_hears = |checker: &mut RemovedRefused, event: &NodeEvent| {
            checker.observe(&view, &Happening::Node { device: 0, event });
        };
        alice_hears(&mut checker, &stored(&carol)); // before alice knew: fine
        alice_hears(&mut checker, &removed);
        alice_hears(&mut checker, &stored(&bob)); // relayed: not judged
        let mut failures = Vec::new();
        checker.verdict(&view, &mut failures);
        assert!(failures.is_empty(), "{failures:?}");
        alice_hears(&mut checker, &stored(&carol));
        alice_hears(&mut checker, &stored(&carol));
        checker.verdict(&view, &mut failures);
        let [Failure::RemovedAccepted {
            device,
            from,
            count,
            ..
        }] = failures.as_slice()
        else {
            panic!("one failure: {failures:?}");
        };
        assert_eq!(
            (device.as_str(), from.as_str(), *count),
            ("alice", "carol", 2)
        );
        assert!(world.finish().passed(), "the real world passes");
    }
}
