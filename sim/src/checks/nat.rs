//! NAT traversal (`[[nat]]`): which pairs of members with a box between them end up talking
//! directly and which through a relay, and, with `[expect] direct_within`, that every pair
//! the boxes let go direct does so within the bound of the start.
//!
//! A pair can go direct unless both ends are behind different boxes and one of them is
//! symmetric: its mapping toward the introducer is not the port its punch leaves from, and
//! the other box lets in only the ports its own flows sent to (`kernel/nat.rs`). Direct means
//! datagrams routed from each end to the other (not through a third device); at the end of
//! the run a pair counts as direct if both ways carried one within the last
//! `PEER_ACTIVE_FOR`, relayed if either end reaches the other through a relay, and unlinked
//! otherwise.

use std::collections::BTreeMap;

use meshlog_core::node::PEER_ACTIVE_FOR;
use meshlog_core::Instant;

use super::verdict::{Checker, Failure, Figures, NatPair, NatPath};
use crate::kernel::{Happening, Via, View};
use crate::scenario::NatKind;

#[derive(Debug, Default)]
pub(super) struct Nat {
    /// Per ordered pair of devices: the first and the last datagram routed directly from the
    /// first to the second. At most one entry per ordered pair of devices.
    direct: BTreeMap<(usize, usize), (Instant, Instant)>,
}

impl Nat {
    /// The pairs judged: members, a box between them (not both behind the same one).
    fn pairs(view: &View<'_>) -> Vec<(usize, usize, bool)> {
        let n = view.device_count();
        let member = |d: usize| {
            let dev = &view.devices[d];
            !dev.stranger && !dev.attacker_only && !dev.outsider
        };
        let boxes = view.scenario.nat_of();
        let mut pairs = Vec::new();
        for a in (0..n).filter(|&a| member(a)) {
            for b in (a + 1..n).filter(|&b| member(b)) {
                let (box_a, box_b) = (boxes[a], boxes[b]);
                if (box_a.is_none() && box_b.is_none()) || box_a == box_b {
                    continue;
                }
                let symmetric = |d: usize| view.nat_kind(d) == Some(NatKind::Symmetric);
                let can = box_a.is_none() || box_b.is_none() || !(symmetric(a) || symmetric(b));
                pairs.push((a, b, can));
            }
        }
        pairs
    }

    fn direct_both_ways(
        &self,
        a: usize,
        b: usize,
    ) -> Option<((Instant, Instant), (Instant, Instant))> {
        Some((*self.direct.get(&(a, b))?, *self.direct.get(&(b, a))?))
    }

    fn judge(&self, view: &View<'_>, a: usize, b: usize, can: bool) -> NatPair {
        let both = self.direct_both_ways(a, b);
        let recent =
            |(_, last): (Instant, Instant)| view.now.saturating_since(last) <= PEER_ACTIVE_FOR;
        let relayed = |from: usize, to: usize| {
            view.node(from).is_some_and(|node| {
                node.peers()
                    .iter()
                    .any(|p| &p.device == view.name(to) && p.relayed_via.is_some())
            })
        };
        let path = match both {
            Some((ab, ba)) if recent(ab) && recent(ba) => NatPath::Direct,
            _ if relayed(a, b) || relayed(b, a) => NatPath::Relayed,
            _ => NatPath::Unlinked,
        };
        NatPair {
            a: view.name(a).to_string(),
            b: view.name(b).to_string(),
            can_go_direct: can,
            path,
            direct_after_us: both.map(|((ab, _), (ba, _))| ab.max(ba).as_micros()),
        }
    }
}

impl Checker for Nat {
    fn observe(&mut self, view: &View<'_>, happening: &Happening<'_>) {
        if let Happening::Delivered {
            from,
            to,
            via: Via::Node,
            ..
        } = *happening
        {
            if view.scenario.nats.is_empty() {
                return;
            }
            let now = view.now;
            self.direct
                .entry((from, to))
                .and_modify(|(_, last)| *last = now)
                .or_insert((now, now));
        }
    }

    fn verdict(&self, view: &View<'_>, failures: &mut Vec<Failure>) {
        let Some(bound) = view.scenario.expect.direct_within else {
            return;
        };
        for (a, b, can) in Self::pairs(view) {
            let excused =
                |d: usize| view.node(d).is_none() || view.is_down_for_good(d) || view.is_removed(d);
            if !can || excused(a) || excused(b) {
                continue;
            }
            let pair = self.judge(view, a, b, can);
            let late = pair
                .direct_after_us
                .is_none_or(|us| us > bound.0.as_micros());
            if late || pair.path != NatPath::Direct {
                failures.push(Failure::NotDirect {
                    pair: format!("{}-{}", pair.a, pair.b),
                    path: pair.path,
                    direct_after_us: pair.direct_after_us,
                    bound_us: bound.0.as_micros(),
                });
            }
        }
    }

    fn figures(&self, view: &View<'_>, figures: &mut Figures) {
        figures.nat_pairs = Self::pairs(view)
            .into_iter()
            .map(|(a, b, can)| self.judge(view, a, b, can))
            .collect();
    }
}
