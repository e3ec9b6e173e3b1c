//! Discovery within a bound (`[expect] discovered_within`): every member that shares a local
//! link (`[[lan]]`) or a path of known addresses with other members has each of them as a
//! peer within the bound of the start.
//!
//! Whom a device must find is fixed at the start, from the scenario's shape: members (not
//! strangers, hostile members or devices yet to join) linked by a shared local link or a
//! configured address (either end knowing the other's: the first packet teaches the other
//! end). With `[world] peer_exchange` address records travel along every path, so a device
//! must find its whole connected group; without, only its direct neighbours. A device's
//! peers only grow by its node learning an address (`NodeEvent::PeerAddress`), so it is
//! judged at the start, at each such event and at each restart: the moment it first has them
//! all is exact.

use std::collections::BTreeSet;

use meshlog_core::{Instant, NodeEvent};

use super::verdict::{Checker, Failure, Figures};
use crate::kernel::{Happening, View};

#[derive(Debug, Default)]
pub(super) struct Discovery {
    /// Per device: the members it must find (empty: nothing to judge).
    required: Vec<BTreeSet<usize>>,
    /// Per device: when it first had every one of them as a peer.
    found_at: Vec<Option<Instant>>,
}

impl Discovery {
    fn start(&mut self, view: &View<'_>) {
        let n = view.device_count();
        let member = |d: usize| {
            let dev = &view.devices[d];
            !dev.stranger && !dev.attacker_only && !dev.outsider
        };
        let mut links: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); n];
        for lan in view.lans() {
            for &a in lan.iter().filter(|&&a| member(a)) {
                links[a].extend(lan.iter().copied().filter(|&b| b != a && member(b)));
            }
        }
        for a in (0..n).filter(|&a| member(a)) {
            for b in (0..n).filter(|&b| b != a && member(b)) {
                if view.devices[a].configured.contains_key(view.name(b)) {
                    links[a].insert(b);
                    links[b].insert(a);
                }
            }
        }
        self.required = if view.scenario.world.peer_exchange {
            (0..n)
                .map(|a| {
                    let mut group = BTreeSet::from([a]);
                    let mut todo = vec![a];
                    while let Some(d) = todo.pop() {
                        for &b in &links[d] {
                            if group.insert(b) {
                                todo.push(b);
                            }
                        }
                    }
                    group.remove(&a);
                    group
                })
                .collect()
        } else {
            links
        };
        self.found_at = vec![None; n];
        for device in 0..n {
            self.judge(view, device);
        }
    }

    fn judge(&mut self, view: &View<'_>, device: usize) {
        if self.found_at[device].is_some() || self.required[device].is_empty() {
            return;
        }
        let Some(node) = view.node(device) else {
            return;
        };
        let peers: BTreeSet<_> = node.peers().into_iter().map(|p| p.device).collect();
        if self.required[device]
            .iter()
            .all(|&m| peers.contains(view.name(m)))
        {
            self.found_at[device] = Some(view.now);
        }
    }

    /// Members `device` must find that its node lacks as peers now.
    fn missing(&self, view: &View<'_>, device: usize) -> Vec<String> {
        let peers: BTreeSet<_> = view
            .node(device)
            .map(|node| node.peers().into_iter().map(|p| p.device).collect())
            .unwrap_or_default();
        self.required[device]
            .iter()
            .map(|&m| view.name(m))
            .filter(|name| !peers.contains(*name))
            .map(ToString::to_string)
            .collect()
    }
}

impl Checker for Discovery {
    fn observe(&mut self, view: &View<'_>, happening: &Happening<'_>) {
        match *happening {
            Happening::Start => self.start(view),
            Happening::Node {
                device,
                event: NodeEvent::PeerAddress { .. },
            }
            | Happening::Restarted { device } => self.judge(view, device),
            _ => {}
        }
    }

    fn verdict(&self, view: &View<'_>, failures: &mut Vec<Failure>) {
        let Some(bound) = view.scenario.expect.discovered_within else {
            return;
        };
        let bound_at = Instant::ZERO + bound.0;
        for (device, required) in self.required.iter().enumerate() {
            // Removed, or kept down by a permanent fault: excused, as from converging.
            if required.is_empty() || view.is_removed(device) || view.is_down_for_good(device) {
                continue;
            }
            let found = self.found_at[device];
            if found.is_some_and(|at| at <= bound_at) {
                continue;
            }
            failures.push(Failure::NotDiscovered {
                device: view.name(device).to_string(),
                missing: self.missing(view, device),
                found_after_us: found.map(Instant::as_micros),
                bound_us: bound.0.as_micros(),
            });
        }
    }

    fn figures(&self, view: &View<'_>, figures: &mut Figures) {
        if view.scenario.expect.discovered_within.is_none() {
            return;
        }
        let judged: Vec<Option<Instant>> = (0..self.required.len())
            .filter(|&d| !self.required[d].is_empty() && !view.is_down_for_good(d))
            .map(|d| self.found_at[d])
            .collect();
        figures.discovered_worst_us = if judged.iter().all(Option::is_some) {
            judged.into_iter().flatten().max().map(Instant::as_micros)
        } else {
            None
        };
    }
}
