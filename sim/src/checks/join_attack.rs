//! Attacks on joining must be refused at the member's door, with their own drop code, and
//! leave nothing behind: a forged invite (`join_forged`), an expired one (`join_expired`), a
//! one-use invite tried again (`join_used_up`), a join request sent again by an eavesdropper
//! (`join_repeat`: answered with the welcome it already had, sealed to the real device).
//!
//! The checker watches every JOIN datagram that reaches a running node and counts the
//! `join_*` drops the node's stats gained while handling it. At the end, for each attack the
//! scenario makes: its code was counted on a datagram from the attacking device; a refused
//! device was never welcomed; and no event it authored, nor any admission of it, was
//! appended anywhere (a replayed request: exactly the one admission of its honest join).
//! A node stores only what it appended or received, and every append is in the world's
//! books, so "appended" covers "stored anywhere".

use std::collections::{BTreeMap, BTreeSet};

use meshlog_core::member::MemberOp;
use meshlog_core::PacketKind;

use super::verdict::{Checker, Failure};
use crate::kernel::{Happening, View};
use crate::scenario::{JoinRefusal, MemberAction};

#[derive(Debug, Default)]
pub(super) struct JoinAttack {
    /// The receiver's `join_*` drop counts before the JOIN datagram being handled.
    before: Option<(usize, BTreeMap<&'static str, u64>)>,
    /// `join_*` drops counted, per (claimed sender, receiver, code).
    drops: BTreeMap<(usize, usize, &'static str), u64>,
    welcomed: BTreeSet<usize>,
}

fn join_drops(view: &View<'_>, device: usize) -> BTreeMap<&'static str, u64> {
    view.node(device)
        .map(|node| {
            node.stats()
                .drops
                .iter()
                .filter(|(code, _)| code.starts_with("join_"))
                .map(|(code, n)| (*code, *n))
                .collect()
        })
        .unwrap_or_default()
}

impl Checker for JoinAttack {
    fn observe(&mut self, view: &View<'_>, happening: &Happening<'_>) {
        match *happening {
            Happening::Delivered {
                to,
                kind: PacketKind::Join,
                ..
            } if view.node(to).is_some() => {
                self.before = Some((to, join_drops(view, to)));
            }
            Happening::Handled { from, to, .. } => {
                let Some((device, before)) = self.before.take().filter(|(d, _)| *d == to) else {
                    return;
                };
                for (code, n) in join_drops(view, device) {
                    let gained = n - before.get(code).copied().unwrap_or(0);
                    if gained > 0 {
                        *self.drops.entry((from, to, code)).or_default() += gained;
                    }
                }
            }
            Happening::JoinEnded {
                device,
                welcomed: true,
                ..
            } => {
                self.welcomed.insert(device);
            }
            _ => {}
        }
    }

    fn verdict(&self, view: &View<'_>, failures: &mut Vec<Failure>) {
        for change in &view.scenario.members {
            let (name, refusal, to) = match &change.action {
                MemberAction::Join(join) => match join.refusal() {
                    Some(refusal) => (&join.device, refusal, None),
                    None => continue,
                },
                MemberAction::ReplayJoin(replay) => {
                    (&replay.device, JoinRefusal::Repeat, Some(&replay.to))
                }
                _ => continue,
            };
            let device = view
                .index_of(&crate::kernel::device_id(name))
                .expect("validated");
            let to = to.map(|t| {
                view.index_of(&crate::kernel::device_id(t))
                    .expect("validated")
            });
            let mut fail = |what: String| {
                failures.push(Failure::JoinAttack {
                    device: name.clone(),
                    attack: refusal.code().trim_start_matches("join_").to_owned(),
                    what,
                });
            };
            let counted: u64 = self
                .drops
                .iter()
                .filter(|((from, at, code), _)| {
                    *from == device && *code == refusal.code() && to.is_none_or(|t| t == *at)
                })
                .map(|(_, n)| n)
                .sum();
            if counted == 0 {
                let seen: Vec<String> = self
                    .drops
                    .iter()
                    .filter(|((from, _, _), _)| *from == device)
                    .map(|((_, at, code), n)| format!("{code} {n} at {}", view.name(*at)))
                    .collect();
                fail(format!(
                    "never dropped as {} (its join drops: {})",
                    refusal.code(),
                    if seen.is_empty() {
                        "none".to_owned()
                    } else {
                        seen.join(", ")
                    }
                ));
            }
            let admissions = admissions_of(view, name);
            let authored = view
                .members
                .authors()
                .filter(|(_, author)| **author == device)
                .count();
            if refusal == JoinRefusal::Repeat {
                if admissions != 1 {
                    fail(format!("admitted {admissions} times, once expected"));
                }
                continue;
            }
            if self.welcomed.contains(&device) {
                fail("was welcomed".to_owned());
            }
            if admissions > 0 || authored > 0 {
                fail(format!(
                    "{admissions} admissions of it and {authored} events by it appended"
                ));
            }
        }
    }
}

/// Admission events of `device` appended in the run.
fn admissions_of(view: &View<'_>, device: &str) -> usize {
    view.members
        .ops()
        .values()
        .filter(|record| matches!(&record.op, MemberOp::Admit(a) if a.device.as_str() == device))
        .count()
}

#[cfg(test)]
mod tests {
    use crate::checks::verdict::Failure;
    use crate::kernel::{World, WorldOptions};

    /// Mallory joins with a tampered invite: refused as `join_forged`, nothing stored. An
    /// attacker holding alice's signing key (a world broken on purpose) gets in, and the
    /// checker says so: no such drop, welcomed, an admission appended.
    #[test]
    fn a_forged_invite_that_gets_in_fails() {
        let text = "name = \"f\"\nduration = \"1m\"\ndevices = [\"alice\", \"bob\", \"mallory\"]\n\
                    [workload]\nmessages_per_hour = 600\n\
                    [[member]]\nat = \"5s\"\ninvite = { name = \"one\" }\n\
                    [[member]]\nat = \"10s\"\njoin = { device = \"mallory\", invite = \"one\", forge = true }\n";
        let outcome = World::outcome_of(text, 1, WorldOptions::default());
        assert!(outcome.passed(), "{:?}", outcome.failures);

        let options = WorldOptions {
            forge_invites_with_admin_key: true,
            ..WorldOptions::default()
        };
        let outcome = World::outcome_of(text, 1, options);
        let what: Vec<&str> = outcome
            .failures
            .iter()
            .filter_map(|f| match f {
                Failure::JoinAttack { device, what, .. } if device == "mallory" => {
                    Some(what.as_str())
                }
                _ => None,
            })
            .collect();
        assert_eq!(what.len(), 3, "{:?}", outcome.failures);
        assert!(
            what[0].starts_with("never dropped as join_forged"),
            "{what:?}"
        );
        assert_eq!(what[1], "was welcomed");
        assert!(what[2].starts_with("1 admissions of it"), "{what:?}");
    }
}
