//! Delivery latency per hop (the core's eager forwarding, `node/forward.rs`): with
//! `[expect] hop_latency_slack` set, every event appended while the world is clean reaches
//! every device within `hops × link latency + slack`, where `hops` is the shortest path to it
//! over clean links (no loss, burst, corruption, partition or cut) between peers that are up
//! (its node's peers, configured or discovered, whose address its driver holds rightly),
//! and the link latency is the worst such link's (its maximum plus any reorder delay). Only
//! that scenario setting turns it on: over lossy links a lost forward is repaired by
//! anti-entropy rounds later, on purpose.
//!
//! Judged only when the append happens with every up device knowing the epoch of every up
//! peer (a forward to a peer not yet heard waits for the first round, on purpose), and like
//! the prompt checker, any fault, heal or membership change excuses every event in flight.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use meshlog_core::{Duration, EventId, Instant};

use super::verdict::{Checker, Failure, Figures};
use crate::kernel::{Happening, View};

#[derive(Clone, Copy, Debug)]
struct Pending {
    from: usize,
    hops: u32,
    sent_at: Instant,
    due: Instant,
}

/// Events that arrived late or never, per (author, receiver).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Lateness {
    count: u64,
    hops: u32,
    first_id: EventId,
    first_sent_at_us: u64,
    first_due_us: u64,
    first_arrived_us: Option<u64>,
}

#[derive(Debug, Default)]
pub(super) struct HopLatency {
    /// Keyed by (receiver, id): what is awaited.
    pending: BTreeMap<(usize, EventId), Pending>,
    /// The same, by deadline, to find the overdue ones.
    by_due: BTreeSet<(Instant, usize, EventId)>,
    late: BTreeMap<(usize, usize), Lateness>,
    judged: u64,
    on_time: u64,
    /// The longest judged delivery that arrived, per hop, over the hops it crossed.
    worst_per_hop_us: u64,
}

impl HopLatency {
    fn excuse_all(&mut self) {
        self.pending.clear();
        self.by_due.clear();
    }

    fn arrived(&mut self, to: usize, id: EventId, now: Instant) {
        let Some(pending) = self.pending.remove(&(to, id)) else {
            return;
        };
        self.by_due.remove(&(pending.due, to, id));
        self.judged += 1;
        let took_us = now.saturating_since(pending.sent_at).as_micros();
        self.worst_per_hop_us = self
            .worst_per_hop_us
            .max(took_us / u64::from(pending.hops.max(1)));
        if now <= pending.due {
            self.on_time += 1;
        } else {
            self.note_late(to, id, pending, Some(now));
        }
    }

    fn overdue(&mut self, now: Instant) {
        while let Some(&(due, to, id)) = self.by_due.first() {
            if due >= now {
                return;
            }
            self.by_due.pop_first();
            let pending = self.pending.remove(&(to, id)).expect("indexed twice");
            self.judged += 1;
            self.note_late(to, id, pending, None);
        }
    }

    fn note_late(&mut self, to: usize, id: EventId, pending: Pending, arrived: Option<Instant>) {
        self.late
            .entry((pending.from, to))
            .and_modify(|l| l.count += 1)
            .or_insert(Lateness {
                count: 1,
                hops: pending.hops,
                first_id: id,
                first_sent_at_us: pending.sent_at.as_micros(),
                first_due_us: pending.due.as_micros(),
                first_arrived_us: arrived.map(Instant::as_micros),
            });
    }

    /// `device` appended `id`: every device reachable over clean links must hold it within
    /// its hop count times the worst clean link's latency, plus the slack.
    fn expect_delivery(&mut self, view: &View<'_>, device: usize, id: EventId, slack: Duration) {
        let up = |d: usize| {
            let dev = &view.devices[d];
            dev.node.is_some()
                && dev.online
                && !dev.attacker_only
                && !dev.removed
                && !dev.store.borrow().full
        };
        if !up(device) {
            return;
        }
        let n = view.devices.len();
        // Clean directed links between up peers, and whether each end has heard the other.
        let mut edges: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut latency_max_us = 0;
        for a in (0..n).filter(|&a| up(a)) {
            // Its node's peers, configured or found (a LAN, an address record), that its
            // driver reaches where they are now.
            let peers: BTreeSet<_> = view
                .node(a)
                .map(|node| node.peers().into_iter().map(|p| p.device).collect())
                .unwrap_or_default();
            for b in (0..n).filter(|&b| b != a && up(b)) {
                if !peers.contains(&view.devices[b].name) || !view.reaches(a, b) {
                    continue;
                }
                let Some(latency_us) = view.network.sure_latency_us(a, b) else {
                    continue;
                };
                let heard = view
                    .node(a)
                    .is_some_and(|node| node.knows_epoch_of(&view.devices[b].name));
                if !heard {
                    // Too early to judge anything: the first round has not taught every epoch.
                    return;
                }
                latency_max_us = latency_max_us.max(latency_us);
                edges[a].push(b);
            }
        }
        // Shortest paths from the author, in hops.
        let mut hops: Vec<Option<u32>> = vec![None; n];
        hops[device] = Some(0);
        let mut queue = VecDeque::from([device]);
        while let Some(a) = queue.pop_front() {
            let next = hops[a].expect("queued with a distance") + 1;
            for &b in &edges[a] {
                if hops[b].is_none() {
                    hops[b] = Some(next);
                    queue.push_back(b);
                }
            }
        }
        let now = view.now;
        for (to, distance) in hops.iter().enumerate() {
            let Some(distance) = *distance else { continue };
            if to == device {
                continue;
            }
            let due = now
                + Duration::from_micros(u64::from(distance) * latency_max_us + slack.as_micros());
            let pending = Pending {
                from: device,
                hops: distance,
                sent_at: now,
                due,
            };
            if self.pending.insert((to, id), pending).is_none() {
                self.by_due.insert((due, to, id));
            }
        }
    }
}

impl Checker for HopLatency {
    fn observe(&mut self, view: &View<'_>, happening: &Happening<'_>) {
        let Some(slack) = view.scenario.expect.hop_latency_slack else {
            return;
        };
        match *happening {
            Happening::Advance { at } => self.overdue(at),
            Happening::Made {
                device,
                id,
                pushes_refused: false,
                ..
            } => self.expect_delivery(view, device, id, slack.0),
            Happening::Node { .. } => {
                if let Some((device, id)) = happening.inserted() {
                    self.arrived(device, id, view.now);
                }
            }
            Happening::Fault { applied: false, .. }
            | Happening::Member { outcome: None, .. }
            | Happening::Heal { done: false } => self.excuse_all(),
            _ => {}
        }
    }

    fn verdict(&self, view: &View<'_>, failures: &mut Vec<Failure>) {
        for ((from, to), late) in &self.late {
            failures.push(Failure::HopLate {
                from: view.name(*from).to_string(),
                to: view.name(*to).to_string(),
                hops: late.hops,
                count: late.count,
                first: late.first_id.to_string(),
                first_sent_at_us: late.first_sent_at_us,
                first_due_us: late.first_due_us,
                first_arrived_us: late.first_arrived_us,
            });
        }
    }

    fn figures(&self, view: &View<'_>, figures: &mut Figures) {
        if view.scenario.expect.hop_latency_slack.is_some() {
            figures.hops_judged = self.judged;
            figures.hops_on_time = self.on_time;
            figures.hop_latency_worst_us = Some(self.worst_per_hop_us);
        }
    }
}
