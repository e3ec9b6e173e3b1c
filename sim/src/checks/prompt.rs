//! The prompt-delivery checker's bookkeeping. Anti-entropy repairs a skipped eager push within
//! a round or two, so convergence alone never shows one; this checker does. When a device
//! appends while a link to a direct peer is clean (no loss, burst, corruption, partition or
//! cut) and both ends are up, the peer must hold the event within the link's latency (plus its
//! reorder delay, if it reorders) and `PROMPT_SLACK_US`, long before any round could carry it.
//!
//! A sender that has not yet heard the receiver's epoch holds the push for one greeting round
//! trip (the core's `node/greeting.rs`), so that push is due after three crossings instead
//! of one, and only if the way back is clean too.
//!
//! Any fault, heal or change of a device's state excuses every push still in flight: the world
//! changed under it. Pushes the sender's full output queue refused are excused too (the core
//! bounds that queue on purpose; a round finds them).

use std::collections::{BTreeMap, BTreeSet};

use meshlog_core::{Duration, EventId, Instant};

use super::verdict::{Checker, Failure, Figures};
use crate::kernel::{Happening, View};

/// Time past the link's worst latency a push may take: the world hands a datagram over at
/// once, so this only absorbs rounding, not waiting.
pub const PROMPT_SLACK_US: u64 = 1_000;

#[derive(Clone, Copy, Debug)]
struct Pending {
    from: usize,
    sent_at: Instant,
    due: Instant,
}

/// Pushes that arrived late or never, per (sender, receiver).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Lateness {
    count: u64,
    first_id: EventId,
    first_sent_at_us: u64,
    first_due_us: u64,
    /// When the first late one arrived; `None` if it had not by its deadline's next check.
    first_arrived_us: Option<u64>,
}

#[derive(Debug, Default)]
pub(super) struct Prompt {
    /// Keyed by (receiver, id): what is awaited.
    pending: BTreeMap<(usize, EventId), Pending>,
    /// The same, by deadline, to find the overdue ones.
    by_due: BTreeSet<(Instant, usize, EventId)>,
    late: BTreeMap<(usize, usize), Lateness>,
    /// Pushes judged, and of those on time.
    judged: u64,
    on_time: u64,
}

impl Prompt {
    fn expect(&mut self, from: usize, to: usize, id: EventId, now: Instant, due: Instant) {
        let pending = Pending {
            from,
            sent_at: now,
            due,
        };
        if self.pending.insert((to, id), pending).is_none() {
            self.by_due.insert((due, to, id));
        }
    }

    /// The world changed (a fault, a heal): nothing in flight is judged.
    fn excuse_all(&mut self) {
        self.pending.clear();
        self.by_due.clear();
    }

    /// `to` now holds `id`.
    fn arrived(&mut self, to: usize, id: EventId, now: Instant) {
        let Some(pending) = self.pending.remove(&(to, id)) else {
            return;
        };
        self.by_due.remove(&(pending.due, to, id));
        self.judged += 1;
        if now <= pending.due {
            self.on_time += 1;
        } else {
            self.note_late(to, id, pending, Some(now));
        }
    }

    /// Every push due before `now` that has not arrived is late.
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
                first_id: id,
                first_sent_at_us: pending.sent_at.as_micros(),
                first_due_us: pending.due.as_micros(),
                first_arrived_us: arrived.map(Instant::as_micros),
            });
    }
}

impl Checker for Prompt {
    fn observe(&mut self, view: &View<'_>, happening: &Happening<'_>) {
        match *happening {
            Happening::Advance { at } => self.overdue(at),
            Happening::Made {
                device,
                id,
                pushes_refused: false,
                ..
            } => self.expect_pushes(view, device, id),
            Happening::Node { .. } => {
                if let Some((device, id)) = happening.inserted() {
                    self.arrived(device, id, view.now);
                }
            }
            // The world changes under every push in flight: none of them is judged.
            Happening::Fault { applied: false, .. }
            | Happening::Member { outcome: None, .. }
            | Happening::Heal { done: false } => {
                self.excuse_all();
            }
            _ => {}
        }
    }

    fn verdict(&self, view: &View<'_>, failures: &mut Vec<Failure>) {
        for ((from, to), late) in &self.late {
            failures.push(Failure::PushLate {
                from: view.name(*from).to_string(),
                to: view.name(*to).to_string(),
                count: late.count,
                first: late.first_id.to_string(),
                first_sent_at_us: late.first_sent_at_us,
                first_due_us: late.first_due_us,
                first_arrived_us: late.first_arrived_us,
            });
        }
    }

    fn figures(&self, _: &View<'_>, figures: &mut Figures) {
        figures.pushes_judged = self.judged;
        figures.pushes_on_time = self.on_time;
    }
}

impl Prompt {
    /// `device` just appended `id` and pushed it: every direct peer over a clean link must
    /// hold it soon.
    fn expect_pushes(&mut self, world: &View<'_>, device: usize, id: EventId) {
        let now = world.now;
        let sender = &world.devices[device];
        // A removed device's pushes are refused at the door, and none goes to it.
        if !(sender.online && sender.config.eager_push) || sender.removed {
            return;
        }
        for to in 0..world.devices.len() {
            let receiver = &world.devices[to];
            // A full disk refuses the push; the receiver fetches it once there is room.
            let up = receiver.node.is_some()
                && receiver.online
                && !receiver.attacker_only
                && !receiver.removed
                && !receiver.store.borrow().full;
            if to == device || !up || !sender.config.peers.contains(&receiver.name) {
                continue;
            }
            // A peer that moved is not reached until its packets say where: no clean link.
            if !world.reaches(device, to) {
                continue;
            }
            let Some(out_us) = world.network.sure_latency_us(device, to) else {
                continue;
            };
            let heard = sender
                .node
                .as_ref()
                .is_some_and(|node| node.knows_epoch_of(&receiver.name));
            let latency_us = if heard {
                out_us
            } else {
                // Greeting out, greeting back, push out.
                let Some(back_us) = world.network.sure_latency_us(to, device) else {
                    continue;
                };
                2 * out_us + back_us
            };
            let due = now + Duration::from_micros(latency_us + PROMPT_SLACK_US);
            self.expect(device, to, id, now, due);
        }
    }
}
