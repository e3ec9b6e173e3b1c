//! Forward secrecy: the keys a thief takes from a device at T (`[[member]] steal_keys`) open
//! nothing sealed under an epoch the device had replaced more than `[sync] key_retention`
//! before T, though the thief recorded every datagram on the device's links since the start.
//!
//! At the theft the checker takes what `Node::stolen_keys` hands over (the device key, the
//! epoch keys it keeps, its receive secrets) and does what a thief would: opens every
//! membership event it recorded or finds in the device's store, and unwraps any epoch key
//! those keys reach (`member::unwrap_key`), until no new key turns up. Then it opens each
//! sealed event with all of them. An event opens as a failure if its epoch (read from its
//! key id, as the device's node knew it) was replaced on the device, by a newer epoch's key
//! reaching it, more than the retention plus one sync round before T: the node forgets on
//! its round, so a key may outlive the retention by a round and no more.
//!
//! Left out, as `docs/PROTOCOL.md` states: epoch 0, the community's pre-shared key, which
//! every device holding the community file reads for ever.
//!
//! A theft that finds nothing to judge (no recorded event under an epoch due to be gone)
//! fails too: the scenario would then prove nothing.

use std::collections::BTreeMap;

use meshlog_core::member::{unwrap_key, EpochKeys, KeyId};
use meshlog_core::{EventBody, EventId, NodeEvent};

use super::overheard::Overheard;
use super::verdict::{Checker, Failure};
use crate::kernel::{Happening, View};
use crate::scenario::MemberAction;

/// Key-recovery passes at a theft: each finds at least one new key or ends the search, and
/// a community rotates a few times in a run, not more often than this.
const RECOVERY_PASSES_MAX: usize = 64;

#[derive(Debug, Default)]
pub(super) struct ForwardSecrecy {
    /// The links of the devices `[[member]] steal_keys` names (set at the start).
    links: Overheard,
    /// (device, epoch) → when the device's node first held a key of that epoch (µs).
    got_at_us: BTreeMap<(usize, u32), u64>,
    /// Every epoch key id a watched device's node held, and its epoch: how the checker
    /// reads an event's epoch from its header, even after every node forgot the key.
    epoch_of: BTreeMap<KeyId, u32>,
    thefts: Vec<Theft>,
}

/// What one theft found.
#[derive(Debug)]
struct Theft {
    device: usize,
    at_us: u64,
    /// Recorded events sealed under an epoch due to be gone: they must stay sealed.
    protected: usize,
    /// Of those, how many the thief opened, and the first in id order.
    opened: usize,
    first: Option<Opened>,
}

#[derive(Debug)]
struct Opened {
    id: EventId,
    epoch: u32,
    source: &'static str,
    replaced_at_us: u64,
}

impl ForwardSecrecy {
    /// When `device` replaced `epoch`: the later of its getting that epoch's key and its
    /// first getting a newer one (a key that arrives after a newer one is replaced on
    /// arrival). `None`: it never held the epoch, or holds nothing newer.
    fn replaced_at_us(&self, device: usize, epoch: u32) -> Option<u64> {
        let got = *self.got_at_us.get(&(device, epoch))?;
        let newer = self
            .got_at_us
            .range((device, epoch + 1)..=(device, u32::MAX))
            .map(|(_, at)| *at)
            .min()?;
        Some(got.max(newer))
    }

    /// The thief's haul from `device` now, judged.
    fn steal(&mut self, view: &View<'_>, device: usize) {
        let at_us = view.now.as_micros();
        let mut theft = Theft {
            device,
            at_us,
            protected: 0,
            opened: 0,
            first: None,
        };
        let (Some(node), Some(retention)) = (view.node(device), view.scenario.sync.key_retention)
        else {
            // Nothing to take (its node is down): judged as finding nothing.
            self.thefts.push(theft);
            return;
        };
        let config = node.config();
        let grace_us = retention.0.as_micros()
            + config.sync_interval.as_micros()
            + config.sync_jitter.as_micros();
        let (device_keys, community, receive) = node.stolen_keys();

        // Everything recorded: its links first, then what its store holds besides.
        let mut recorded: BTreeMap<EventId, (&'static str, Vec<u8>)> = self
            .links
            .of(device)
            .map(|(id, bytes)| (*id, ("link", bytes.clone())))
            .collect();
        {
            let shelf = view.shelf.borrow();
            view.devices[device]
                .store
                .borrow()
                .events()
                .for_each_in_slot_order(|id, slot, _| {
                    recorded
                        .entry(*id)
                        .or_insert_with(|| ("store", shelf.bytes(slot).to_vec()));
                });
        }

        // Every key the stolen ones reach through the log.
        let mut keys: EpochKeys = community.epoch_keys().clone();
        for _ in 0..RECOVERY_PASSES_MAX {
            let thief = community.clone().with_epoch_keys(keys.clone());
            let mut found = false;
            for (_, bytes) in recorded.values() {
                let Ok(opened) = meshlog_core::open(bytes, &thief) else {
                    continue;
                };
                if let EventBody::Membership { op, .. } = &opened.event.body {
                    if let Some(key) = unwrap_key(&device_keys, &receive, op) {
                        found |= keys.insert(key);
                    }
                }
            }
            if !found {
                break;
            }
        }
        let thief = community.with_epoch_keys(keys);

        for (id, (source, bytes)) in &recorded {
            let Some(epoch) = key_id(bytes).and_then(|k| self.epoch_of.get(&k).copied()) else {
                continue; // epoch 0, or an epoch this device never held
            };
            let Some(replaced_at_us) = self.replaced_at_us(device, epoch) else {
                continue;
            };
            if replaced_at_us + grace_us > at_us {
                continue; // still within the retention: the device may hold it
            }
            theft.protected += 1;
            if meshlog_core::open(bytes, &thief).is_ok() {
                theft.opened += 1;
                if theft.first.is_none() {
                    theft.first = Some(Opened {
                        id: *id,
                        epoch,
                        source,
                        replaced_at_us,
                    });
                }
            }
        }
        self.thefts.push(theft);
    }
}

/// The key id a sealed event names (format 2), if any.
fn key_id(sealed: &[u8]) -> Option<KeyId> {
    match sealed {
        [meshlog_core::event::EVENT_FORMAT_EPOCH, rest @ ..] => {
            Some(KeyId(rest.get(..8)?.try_into().ok()?))
        }
        _ => None,
    }
}

impl Checker for ForwardSecrecy {
    fn observe(&mut self, view: &View<'_>, happening: &Happening<'_>) {
        /// The devices watched: those whose keys are stolen.
        fn stolen(action: &MemberAction) -> Option<&String> {
            match action {
                MemberAction::StealKeys(name) => Some(name),
                _ => None,
            }
        }
        if !self.links.observe(view, happening, stolen) {
            return;
        }
        match *happening {
            Happening::Node {
                device,
                event: NodeEvent::KeyEpoch { epoch },
            } if self.links.watched.contains(&device) => {
                self.got_at_us
                    .entry((device, *epoch))
                    .or_insert(view.now.as_micros());
                if let Some(node) = view.node(device) {
                    for (id, key) in node.epoch_keys().iter() {
                        self.epoch_of.insert(*id, key.epoch);
                    }
                }
            }
            Happening::Member {
                change:
                    crate::scenario::MemberChange {
                        action: MemberAction::StealKeys(name),
                        ..
                    },
                outcome: Some(_),
            } => {
                if let Some(device) = view.index_of(&crate::kernel::device_id(name)) {
                    self.steal(view, device);
                }
            }
            _ => {}
        }
    }

    fn verdict(&self, view: &View<'_>, failures: &mut Vec<Failure>) {
        for theft in &self.thefts {
            let device = view.name(theft.device).to_string();
            if let Some(first) = &theft.first {
                failures.push(Failure::OpenedPastRetention {
                    device,
                    stolen_at_us: theft.at_us,
                    count: theft.opened,
                    of: theft.protected,
                    first: first.id.to_string(),
                    first_epoch: first.epoch,
                    first_source: first.source.to_owned(),
                    replaced_at_us: first.replaced_at_us,
                });
            } else if theft.protected == 0 {
                failures.push(Failure::NothingPastRetention {
                    device,
                    stolen_at_us: theft.at_us,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{World, WorldOptions};
    use crate::scenario::Scenario;

    /// Rotations at 1m and 2m with a 1m retention; the thief takes bob's keys at 5m and
    /// alice's at 1m30s (nothing is due to be gone then).
    const WORLD: &str = "name = \"f\"\nduration = \"6m\"\n\
        devices = [\"alice\", \"bob\", \"carol\"]\n\
        [network]\nloss = 0.1\n\
        [workload]\nmessages_per_hour = 1200\n\
        [sync]\nkey_retention = \"1m\"\n\
        [[member]]\nat = \"1m\"\nrotate = true\n\
        [[member]]\nat = \"1m30s\"\nsteal_keys = \"alice\"\n\
        [[member]]\nat = \"2m\"\nrotate = true\n\
        [[member]]\nat = \"5m\"\nsteal_keys = \"bob\"\n";

    fn run(options: WorldOptions) -> (ForwardSecrecy, Vec<Failure>) {
        let scenario = Scenario::parse(WORLD, "f.toml").unwrap();
        let mut world = World::with_options(&scenario, 3, None, options).unwrap();
        world.observe_with(Box::new(Listener(ForwardSecrecy::default())));
        world.run();
        let checker = world.take_observer::<Listener>().unwrap().0;
        let mut failures = Vec::new();
        checker.verdict(&world.view(), &mut failures);
        (checker, failures)
    }

    /// Nodes that forget: bob's keys at 5m open none of the epoch-1 events
    /// recorded (epoch 1 was replaced at about 2m), though there are some; alice's at 1m30s
    /// had nothing due to be gone, which fails as a theft that judged nothing. Nodes that
    /// keep every key (the retention ignored): bob's keys open every one of them.
    #[test]
    fn keys_kept_past_the_retention_fail_and_forgotten_ones_pass() {
        let (checker, failures) = run(WorldOptions::default());
        let bob = &checker.thefts[1];
        assert!(bob.protected > 0, "{bob:?}");
        assert_eq!(bob.opened, 0, "{bob:?}");
        assert!(
            matches!(failures.as_slice(), [Failure::NothingPastRetention { device, .. }]
                if device == "alice"),
            "{failures:?}"
        );

        let broken = WorldOptions {
            ignore_key_retention: true,
            ..WorldOptions::default()
        };
        let (checker, failures) = run(broken);
        let bob = &checker.thefts[1];
        assert!(bob.protected > 0 && bob.opened == bob.protected, "{bob:?}");
        assert!(
            failures.iter().any(|f| matches!(f,
                Failure::OpenedPastRetention { device, first_epoch: 1, count, of, .. }
                    if device == "bob" && count == of)),
            "{failures:?}"
        );
    }

    #[test]
    fn epochs_are_replaced_by_the_first_newer_key_or_on_arrival() {
        let mut checker = ForwardSecrecy::default();
        checker.got_at_us.insert((0, 1), 10);
        checker.got_at_us.insert((0, 3), 30);
        checker.got_at_us.insert((0, 2), 40); // arrived after epoch 3's key
        assert_eq!(checker.replaced_at_us(0, 1), Some(30));
        assert_eq!(checker.replaced_at_us(0, 2), Some(40));
        assert_eq!(checker.replaced_at_us(0, 3), None);
        assert_eq!(checker.replaced_at_us(1, 1), None);
    }

    /// The checker as an observer of its own, to read it back after the run.
    #[derive(Debug)]
    struct Listener(ForwardSecrecy);

    impl crate::kernel::Observer for Listener {
        fn observe(&mut self, view: &View<'_>, happening: &Happening<'_>) {
            self.0.observe(view, happening);
        }
    }
}
