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

use crate::world::World;

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
pub(crate) struct Lateness {
    pub(crate) count: u64,
    pub(crate) first_id: EventId,
    pub(crate) first_sent_at_us: u64,
    pub(crate) first_due_us: u64,
    /// When the first late one arrived; `None` if it had not by its deadline's next check.
    pub(crate) first_arrived_us: Option<u64>,
}

#[derive(Debug, Default)]
pub(crate) struct Prompt {
    /// Keyed by (receiver, id): what is awaited.
    pending: BTreeMap<(usize, EventId), Pending>,
    /// The same, by deadline, to find the overdue ones.
    by_due: BTreeSet<(Instant, usize, EventId)>,
    pub(crate) late: BTreeMap<(usize, usize), Lateness>,
    /// Pushes judged, and of those on time.
    pub(crate) judged: u64,
    pub(crate) on_time: u64,
}

impl Prompt {
    pub(crate) fn expect(
        &mut self,
        from: usize,
        to: usize,
        id: EventId,
        now: Instant,
        due: Instant,
    ) {
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
    pub(crate) fn excuse_all(&mut self) {
        self.pending.clear();
        self.by_due.clear();
    }

    /// `to` now holds `id`.
    pub(crate) fn arrived(&mut self, to: usize, id: EventId, now: Instant) {
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
    pub(crate) fn overdue(&mut self, now: Instant) {
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

impl World {
    /// `device` just appended `id` and pushed it: every direct peer over a clean link must
    /// hold it soon.
    pub(crate) fn expect_pushes(&mut self, device: usize, id: EventId) {
        let now = self.now;
        let sender = &self.devices[device];
        if !(sender.online && sender.config.eager_push) {
            return;
        }
        for to in 0..self.devices.len() {
            let receiver = &self.devices[to];
            // A full disk refuses the push; the receiver fetches it once there is room.
            let up = receiver.node.is_some()
                && receiver.online
                && !receiver.attacker_only
                && !receiver.store.borrow().full;
            if to == device || !up || !self.is_peer(device, to) {
                continue;
            }
            let Some(out_us) = self.network.sure_latency_us(device, to) else {
                continue;
            };
            let heard = self.devices[device]
                .node
                .as_ref()
                .is_some_and(|node| node.knows_epoch_of(&self.devices[to].name));
            let latency_us = if heard {
                out_us
            } else {
                // Greeting out, greeting back, push out.
                let Some(back_us) = self.network.sure_latency_us(to, device) else {
                    continue;
                };
                2 * out_us + back_us
            };
            let due = now + Duration::from_micros(latency_us + PROMPT_SLACK_US);
            self.prompt.expect(device, to, id, now, due);
        }
    }

    fn is_peer(&self, from: usize, to: usize) -> bool {
        let to = &self.devices[to].name;
        self.devices[from].config.peers.iter().any(|p| p == to)
    }
}
