//! Joined: a device that joins with an invite (`[[member]] join`, expected to be welcomed)
//! is welcomed, and within `expect.joined_within` of its welcome holds every event appended
//! before it by a device still in the community; at the end it opens every event it holds
//! with its own node's keys. The welcome carries the keys and the membership events; the
//! history comes by sync from the inviter. A welcome missing its keys leaves the device
//! holding nothing it can open of the epochs before it (shown in the test below).

use std::collections::{BTreeMap, BTreeSet};

use meshlog_core::{EventId, NodeEvent};

use super::verdict::{Checker, Failure, Figures};
use crate::kernel::{Happening, View};
use crate::scenario::MemberAction;

/// One welcomed device's catch-up.
#[derive(Debug, Default)]
struct CatchUp {
    welcomed_at_us: u64,
    /// Appended before its welcome, not yet held.
    pending: BTreeSet<EventId>,
    /// When `pending` emptied.
    caught_up_at_us: Option<u64>,
    /// The history is known (its node started).
    started: bool,
}

#[derive(Debug, Default)]
pub(super) struct Joined {
    /// Devices whose join the scenario expects to be welcomed (set at the first happening).
    expected: Option<BTreeSet<usize>>,
    catch_ups: BTreeMap<usize, CatchUp>,
    /// Why a join ended without a welcome, per device.
    ended: BTreeMap<usize, String>,
}

impl Joined {
    fn expected(view: &View<'_>) -> BTreeSet<usize> {
        view.scenario
            .members
            .iter()
            .filter_map(|c| match &c.action {
                MemberAction::Join(j) if j.refusal().is_none() => {
                    view.index_of(&crate::kernel::device_id(&j.device))
                }
                _ => None,
            })
            .collect()
    }

    /// Its node started from the welcome: what it must catch up on is everything appended
    /// so far by a device still in the community, less what the welcome gave it.
    fn started(&mut self, view: &View<'_>, device: usize) {
        let Some(catch_up) = self.catch_ups.get_mut(&device).filter(|c| !c.started) else {
            return;
        };
        catch_up.started = true;
        let Some(node) = view.node(device) else {
            return;
        };
        catch_up.pending = view
            .members
            .authors()
            .filter(|(id, author)| !view.is_removed(**author) && !node.contains(id))
            .map(|(id, _)| *id)
            .collect();
        if catch_up.pending.is_empty() {
            catch_up.caught_up_at_us = Some(catch_up.welcomed_at_us);
        }
    }

    fn bound_us(view: &View<'_>) -> u64 {
        let expect = &view.scenario.expect;
        expect
            .joined_within
            .unwrap_or(expect.converged_within)
            .as_micros()
    }

    /// How long each welcomed device took to catch up (`None` if one never did).
    fn took_us(&self) -> impl Iterator<Item = (usize, Option<u64>)> + '_ {
        self.catch_ups.iter().map(|(&device, c)| {
            let took = c
                .caught_up_at_us
                .filter(|_| c.pending.is_empty())
                .map(|at| at - c.welcomed_at_us);
            (device, took)
        })
    }
}

impl Checker for Joined {
    fn observe(&mut self, view: &View<'_>, happening: &Happening<'_>) {
        let expected = self.expected.get_or_insert_with(|| Joined::expected(view));
        if expected.is_empty() {
            return;
        }
        match *happening {
            Happening::JoinEnded {
                device,
                welcomed: true,
                ..
            } => {
                self.catch_ups.entry(device).or_insert(CatchUp {
                    welcomed_at_us: view.now.as_micros(),
                    ..CatchUp::default()
                });
            }
            Happening::JoinEnded {
                device, outcome, ..
            } => {
                self.ended.insert(device, outcome.to_owned());
            }
            Happening::Restarted { device } => self.started(view, device),
            Happening::Node {
                device,
                event: NodeEvent::EventStored { id, .. },
            } => {
                if let Some(c) = self.catch_ups.get_mut(&device) {
                    if c.pending.remove(id) && c.pending.is_empty() {
                        c.caught_up_at_us = Some(view.now.as_micros());
                    }
                }
            }
            _ => {}
        }
    }

    fn verdict(&self, view: &View<'_>, failures: &mut Vec<Failure>) {
        let bound_us = Joined::bound_us(view);
        let took: BTreeMap<usize, Option<u64>> = self.took_us().collect();
        for &device in self.expected.iter().flatten() {
            let name = view.name(device).to_string();
            let Some(catch_up) = self.catch_ups.get(&device) else {
                let why = self
                    .ended
                    .get(&device)
                    .map_or("never ended", String::as_str);
                failures.push(Failure::Joined {
                    device: name,
                    what: format!("was not welcomed ({why})"),
                    caught_up_after_us: None,
                    bound_us,
                });
                continue;
            };
            let took = took.get(&device).copied().flatten();
            if took.is_none_or(|t| t > bound_us) {
                failures.push(Failure::Joined {
                    device: name.clone(),
                    what: format!(
                        "lacks {} of the events appended before its welcome",
                        catch_up.pending.len()
                    ),
                    caught_up_after_us: took,
                    bound_us,
                });
            }
            // Everything it holds opens with its own keys: nothing is held it cannot read.
            if let Some(node) = view.node(device) {
                let community = &node.config().community;
                let shelf = view.shelf.borrow();
                let mut sealed = 0usize;
                view.devices[device]
                    .store
                    .borrow()
                    .events()
                    .for_each_in_slot_order(|_, slot, _| {
                        if meshlog_core::open(shelf.bytes(slot), community).is_err() {
                            sealed += 1;
                        }
                    });
                if sealed > 0 {
                    failures.push(Failure::Joined {
                        device: name,
                        what: format!("holds {sealed} events its keys do not open"),
                        caught_up_after_us: took,
                        bound_us,
                    });
                }
            }
        }
    }

    fn figures(&self, _: &View<'_>, figures: &mut Figures) {
        figures.join_catch_up_us_max = self.took_us().filter_map(|(_, t)| t).max();
    }
}

#[cfg(test)]
mod tests {
    use crate::checks::verdict::Failure;
    use crate::kernel::{World, WorldOptions};

    /// Alice rotates before she invites dave: her welcome must carry the epoch-1 key. With
    /// it, dave catches up and opens everything; a driver that drops the welcome's keys
    /// leaves him unable to open what was sealed under epoch 1, and the checker names him.
    #[test]
    fn a_welcome_without_its_keys_fails() {
        let text = "name = \"j\"\nduration = \"2m\"\ndevices = [\"alice\", \"bob\", \"dave\"]\n\
                    [workload]\nmessages_per_hour = 600\ndevices = [\"alice\", \"bob\"]\n\
                    [[member]]\nat = \"10s\"\nrotate = true\n\
                    [[member]]\nat = \"30s\"\ninvite = { name = \"one\" }\n\
                    [[member]]\nat = \"40s\"\njoin = { device = \"dave\", invite = \"one\" }\n\
                    [expect]\njoined_within = \"10s\"\n";
        let outcome = World::outcome_of(text, 3, WorldOptions::default());
        assert!(outcome.passed(), "{:?}", outcome.failures);
        assert!(outcome.figures.join_catch_up_us_max.is_some());

        let options = WorldOptions {
            welcome_without_keys: true,
            ..WorldOptions::default()
        };
        let outcome = World::outcome_of(text, 3, options);
        let joined: Vec<&str> = outcome
            .failures
            .iter()
            .filter_map(|f| match f {
                Failure::Joined { device, what, .. } if device == "dave" => Some(what.as_str()),
                _ => None,
            })
            .collect();
        assert!(
            joined.iter().any(|w| w.starts_with("lacks")),
            "{:?}",
            outcome.failures
        );
    }
}
