//! One roster: at the end, every device still in the community (running, not kept down by a
//! permanent fault) holds the roster every membership event appended settles to (each
//! member's status and role) and seals under that roster's newest key epoch; and its roster
//! and key epoch last changed within `expect.roster_within` of the run's last membership
//! change, fault or heal. The merge rule is a pure function of the set of events, so devices that
//! hold the same events agree; a device that lacks one, or settles differently, fails here.
//!
//! Judged only in a world with `[[member]]` changes.

use std::collections::BTreeMap;

use meshlog_core::member::{Role, Roster, Status};
use meshlog_core::{DeviceId, Instant, NodeEvent};

use super::verdict::{Checker, Failure};
use crate::kernel::{Happening, View};

#[derive(Debug, Default)]
pub(super) struct RosterCheck {
    /// The last membership change made, fault applied, or heal after a fault.
    last_cause: Option<Instant>,
    /// A fault was applied: the end-of-workload heal is a cause too.
    faulted: bool,
    /// Per device, the last change to its roster or key epoch.
    last_change: BTreeMap<usize, Instant>,
}

/// Members' status and role: what devices must agree on.
fn shape(roster: &Roster) -> BTreeMap<&DeviceId, (Status, Role)> {
    roster
        .members
        .iter()
        .map(|(d, m)| (d, (m.status, m.role)))
        .collect()
}

/// The first difference between two shapes, said of `have`.
fn first_difference(
    have: &BTreeMap<&DeviceId, (Status, Role)>,
    want: &BTreeMap<&DeviceId, (Status, Role)>,
) -> Option<String> {
    for (device, want) in want {
        match have.get(device) {
            None => return Some(format!("does not know {device}")),
            Some(have) if have != want => {
                return Some(format!(
                    "has {device} {} {}, expected {} {}",
                    have.0.name(),
                    have.1.name(),
                    want.0.name(),
                    want.1.name()
                ))
            }
            Some(_) => {}
        }
    }
    have.keys()
        .find(|d| !want.contains_key(*d))
        .map(|d| format!("has {d}, expected no such member"))
}

impl Checker for RosterCheck {
    fn observe(&mut self, view: &View<'_>, happening: &Happening<'_>) {
        match *happening {
            Happening::Member {
                outcome: Some(_), ..
            }
            | Happening::Fault { applied: true, .. } => {
                self.faulted |= matches!(happening, Happening::Fault { .. });
                self.last_cause = Some(view.now);
            }
            // It lifts what faults did: news held back by a partition travels from here.
            Happening::Heal { done: true } if self.faulted => self.last_cause = Some(view.now),
            Happening::Node {
                device,
                event: NodeEvent::MemberChanged { .. } | NodeEvent::KeyEpoch { .. },
            } => {
                self.last_change.insert(device, view.now);
            }
            _ => {}
        }
    }

    fn verdict(&self, view: &View<'_>, failures: &mut Vec<Failure>) {
        if !view.members.kept {
            return;
        }
        let settled = view.members.settled();
        let want = shape(settled);
        let epoch = settled.epoch_max();
        let bound = view
            .scenario
            .expect
            .roster_within
            .unwrap_or(view.scenario.expect.converged_within);
        for device in 0..view.device_count() {
            if view.is_removed(device) || view.is_down_for_good(device) {
                continue;
            }
            let Some(node) = view.node(device) else {
                continue;
            };
            let late = match (self.last_change.get(&device), self.last_cause) {
                (Some(changed), Some(cause)) => {
                    let after = changed.saturating_since(cause);
                    (after > bound.0).then_some(after.as_micros())
                }
                _ => None,
            };
            let what = first_difference(&shape(node.roster()), &want);
            if what.is_none() && node.key_epoch() == epoch && late.is_none() {
                continue;
            }
            let what = what.unwrap_or_else(|| {
                if node.key_epoch() != epoch {
                    "seals under another key epoch".to_owned()
                } else {
                    "settled late".to_owned()
                }
            });
            failures.push(Failure::RosterDiffers {
                device: view.name(device).to_string(),
                what,
                key_epoch: node.key_epoch(),
                key_epoch_expected: epoch,
                settled_after_us: late,
                bound_us: bound.as_micros(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::World;
    use crate::scenario::Scenario;

    fn world() -> World {
        let text = "name = \"r\"\nduration = \"1m\"\ndevices = [\"alice\", \"bob\", \"carol\"]\n\
                    [network]\nlatency = { min = \"20ms\", max = \"40ms\" }\n\
                    [[member]]\nat = \"10s\"\nremove = \"carol\"\n\
                    [expect]\nroster_within = \"5s\"\n";
        World::new(&Scenario::parse(text, "r.toml").unwrap(), 3, None).unwrap()
    }

    fn verdict(world: &World, checker: &RosterCheck) -> Vec<Failure> {
        let mut failures = Vec::new();
        checker.verdict(&world.view(), &mut failures);
        failures
    }

    /// The finished world passes. The same world stopped the instant after alice removed
    /// carol (bob has not heard yet) fails, naming bob and what he lacks; so does a world
    /// whose bob settles after the bound.
    #[test]
    fn a_member_that_has_not_settled_fails() {
        let mut finished = world();
        finished.run();
        assert!(finished.finish().passed(), "the whole world passes");

        let mut stopped = world();
        stopped.run_until(Instant::from_micros(10_000_001));
        let mut checker = RosterCheck::default();
        let view = stopped.view();
        checker.observe(&view, &Happening::Start);
        let failures = verdict(&stopped, &checker);
        let [Failure::RosterDiffers {
            device,
            what,
            key_epoch,
            key_epoch_expected,
            ..
        }] = failures.as_slice()
        else {
            panic!("bob alone fails: {failures:?}");
        };
        assert_eq!(device, "bob");
        assert!(what.contains("carol active member"), "{what}");
        assert_eq!((*key_epoch, *key_epoch_expected), (0, 1));

        // A change at bob long after the last membership change: settled late.
        let mut late = RosterCheck::default();
        let mut world = world();
        world.run();
        let view = world.view();
        late.last_cause = Some(Instant::from_micros(10_000_000));
        late.last_change.insert(1, Instant::from_micros(16_000_000));
        let failures = verdict(&world, &late);
        assert!(
            matches!(failures.as_slice(), [Failure::RosterDiffers { device, settled_after_us: Some(6_000_000), .. }] if device == "bob"),
            "{failures:?} at {:?}",
            view.now
        );
    }
}
