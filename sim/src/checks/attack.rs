//! Attacks on the protocol and what they achieved: replays recorded off a link and re-sent,
//! hostile members' packets, corrupted and forged datagrams (the attackers live in `faults/`
//! and the network). Every delivery is watched: whether the receiver accepted it, dropped it
//! (and why), and how many bytes it sent in answer. The node is sans-IO and answers an input
//! before it returns, so the bytes it transmits while handling one datagram are exactly that
//! datagram's answer.
//!
//! Failures: a corrupted or forged datagram that got past the packet layer, and a replay that
//! was not refused as `replayed`.

use std::collections::BTreeMap;

use meshlog_core::{Instant, NodeEvent, Origin};

use super::budget::is_answer;
use super::verdict::{AttackCounters, Checker, Failure, Figures};
use crate::kernel::{Happening, Via, View};

/// Drop codes that refuse a replay properly: seen before, or the receiver is offline.
const REPLAY_REFUSALS: [&str; 2] = ["replayed", "offline"];
/// The same across the receiver's restart: its windows are new, and what refuses a datagram
/// recorded in its earlier life is that it echoes the old epoch (`packet.rs`).
const RESTART_REPLAY_REFUSALS: [&str; 3] = ["replayed", "stale_echo", "offline"];

/// Replays a receiver took in, per (receiver, claimed sender).
#[derive(Clone, Debug, PartialEq, Eq)]
struct ReplayBreach {
    count: u64,
    first_at_us: u64,
    /// What the first one did: `accepted`, `answered 233 B`, `dropped as bad_signature`.
    first: String,
}

impl Watch {
    fn what_it_did(&self) -> String {
        if let Some(code) = self.rejected {
            format!("reached event decoding, refused there as {code}")
        } else if self.accepted {
            "accepted".to_owned()
        } else if self.answer_bytes > 0 {
            format!("answered {} B", self.answer_bytes)
        } else {
            format!("dropped as {}", self.dropped.unwrap_or("nothing"))
        }
    }
}

fn note_breach<K: Ord>(
    breaches: &mut BTreeMap<K, ReplayBreach>,
    key: K,
    now: Instant,
    first: String,
) {
    breaches
        .entry(key)
        .and_modify(|b| b.count += 1)
        .or_insert(ReplayBreach {
            count: 1,
            first_at_us: now.as_micros(),
            first,
        });
}

/// What one delivery did to its receiver.
#[derive(Debug, Default)]
struct Watch {
    /// Who the datagram claims to be from: answers go back to it (for a replay, the device
    /// whose datagram was copied, which an attacker would aim the answers at).
    sender: usize,
    accepted: bool,
    dropped: Option<&'static str>,
    /// An event it carried was opened and refused.
    rejected: Option<&'static str>,
    answer_bytes: u64,
    answer_reconcile_bytes: u64,
}

#[derive(Debug, Default)]
pub(super) struct Attack {
    /// The delivery being handled, if any.
    watch: Option<Watch>,
    /// Replays a receiver took in, per (receiver, claimed sender).
    breaches: BTreeMap<(usize, usize), ReplayBreach>,
    /// Corrupted or forged datagrams that got past the packet layer, per (receiver, claimed
    /// sender, `corrupted` or `forged`).
    past_the_door: BTreeMap<(usize, usize, &'static str), ReplayBreach>,
    /// Replays across the receiver's restart it took in, per (receiver, claimed sender).
    after_restart: BTreeMap<(usize, usize), ReplayBreach>,
    counters: AttackCounters,
}

impl Attack {
    /// A corrupted or forged datagram must die at the packet layer: dropped with a reason,
    /// never accepted, no event of it opened, nothing sent in answer.
    fn judge_door(
        &mut self,
        now: Instant,
        to: usize,
        from: usize,
        cause: &'static str,
        watch: &Watch,
    ) {
        self.counters.door_judged += 1;
        let refused = watch.dropped.is_some()
            && !watch.accepted
            && watch.rejected.is_none()
            && watch.answer_bytes == 0;
        if refused {
            self.counters.door_refused += 1;
        } else {
            note_breach(
                &mut self.past_the_door,
                (to, from, cause),
                now,
                watch.what_it_did(),
            );
        }
    }

    /// The receiver has handled a watched datagram: judge what it did.
    fn handled(
        &mut self,
        now: Instant,
        (from, to): (usize, usize),
        bytes: usize,
        via: Via,
        corrupted: bool,
        earlier_life: bool,
    ) {
        let watch = self
            .watch
            .take()
            .expect("a delivery is handled after it is delivered");
        if corrupted || via == Via::Forged {
            let cause = if corrupted { "corrupted" } else { "forged" };
            self.judge_door(now, to, from, cause, &watch);
        }
        let c = &mut self.counters;
        match via {
            Via::Node | Via::Forged => {}
            Via::Hostile => {
                c.hostile_delivered_bytes += bytes as u64;
                c.hostile_answer_bytes += watch.answer_bytes;
                c.hostile_answer_reconcile_bytes += watch.answer_reconcile_bytes;
            }
            Via::Replay => {
                c.replay_bytes += bytes as u64;
                c.replay_answer_bytes += watch.answer_bytes;
                if earlier_life {
                    c.replays_after_restart += 1;
                    let dropped = watch
                        .dropped
                        .is_some_and(|code| RESTART_REPLAY_REFUSALS.contains(&code));
                    // What it answers is not judged here: a new life answers a peer's first
                    // packet of an epoch with its summary (`packet.rs`), and the budget
                    // checker bounds every answer.
                    if !watch.accepted && dropped {
                        c.replays_after_restart_refused += 1;
                    } else {
                        let what = format!("after a restart: {}", watch.what_it_did());
                        note_breach(&mut self.after_restart, (to, from), now, what);
                    }
                    return;
                }
                c.replays_judged += 1;
                let refused = !watch.accepted
                    && watch.answer_bytes == 0
                    && watch
                        .dropped
                        .is_some_and(|code| REPLAY_REFUSALS.contains(&code));
                if refused {
                    c.replays_refused += 1;
                    return;
                }
                note_breach(&mut self.breaches, (to, from), now, watch.what_it_did());
            }
        }
    }
}

impl Checker for Attack {
    fn observe(&mut self, view: &View<'_>, happening: &Happening<'_>) {
        match *happening {
            Happening::Delivered { from, .. } => {
                self.watch = Some(Watch {
                    sender: from,
                    ..Watch::default()
                });
            }
            Happening::Handled {
                from,
                to,
                bytes,
                via,
                corrupted,
                earlier_life,
            } => self.handled(view.now, (from, to), bytes, via, corrupted, earlier_life),
            Happening::Node { event, .. } => {
                let Some(watch) = &mut self.watch else {
                    return;
                };
                match event {
                    NodeEvent::EventStored {
                        origin: Origin::Peer,
                        ..
                    }
                    | NodeEvent::PacketReceived { .. } => watch.accepted = true,
                    NodeEvent::PacketDropped { reason, .. } => {
                        watch.dropped.get_or_insert(reason.code());
                    }
                    NodeEvent::EventRejected { reason, .. } => {
                        watch.rejected.get_or_insert(reason.code());
                    }
                    _ => {}
                }
            }
            // Only what goes back to the watched datagram's sender is an answer to it (a node
            // also flushes what it had for other peers).
            Happening::Transmit { to, transmit, .. } => {
                if let Some(watch) = self.watch.as_mut().filter(|w| w.sender == to) {
                    let bytes = transmit.bytes.len() as u64;
                    watch.answer_bytes += bytes;
                    if is_answer(transmit.kind) {
                        watch.answer_reconcile_bytes += bytes;
                    }
                }
            }
            Happening::Replayed { .. } => self.counters.replays_injected += 1,
            Happening::HostileSent { bytes, .. } => {
                self.counters.hostile_sent_packets += 1;
                self.counters.hostile_sent_bytes += bytes as u64;
            }
            Happening::Forged { bytes, .. } => {
                self.counters.forged_sent += 1;
                self.counters.forged_bytes += bytes as u64;
            }
            _ => {}
        }
    }

    fn verdict(&self, view: &View<'_>, failures: &mut Vec<Failure>) {
        let name = |i: usize| view.name(i).to_string();
        for ((to, from, cause), breach) in &self.past_the_door {
            failures.push(Failure::PastTheDoor {
                device: name(*to),
                from: name(*from),
                cause: (*cause).to_owned(),
                count: breach.count,
                first_at_us: breach.first_at_us,
                first: breach.first.clone(),
            });
        }
        for ((to, from), breach) in self.breaches.iter().chain(&self.after_restart) {
            failures.push(Failure::ReplayAccepted {
                device: name(*to),
                from: name(*from),
                count: breach.count,
                first_at_us: breach.first_at_us,
                first: breach.first.clone(),
            });
        }
    }

    fn figures(&self, _: &View<'_>, figures: &mut Figures) {
        figures.attacks = self.counters.clone();
    }
}

#[cfg(test)]
mod tests {
    use crate::checks::verdict::Failure;
    use crate::kernel::{World, WorldOptions};

    /// Datagrams recorded before bob's restart and replayed after it are refused by his new
    /// life (its epoch is new; nothing recorded echoes it). With replay protection off, some
    /// are taken in, and the checker names them as after a restart.
    #[test]
    fn a_replay_taken_in_after_a_restart_fails() {
        let text = |protection: bool| {
            format!(
                "name = \"r\"\nduration = \"1m\"\ndevices = [\"alice\", \"bob\"]\n\
                 [sync]\nreplay_protection = {protection}\n\
                 [network]\nreplay = 0.5\nreplay_delay = \"5s\"\n\
                 [workload]\nmessages_per_hour = 1200\n\
                 [[fault]]\nat = \"20s\"\ncrash = \"bob\"\n\
                 [[fault]]\nat = \"21s\"\nrestart = \"bob\"\n"
            )
        };
        let run = |protection| World::outcome_of(&text(protection), 4, WorldOptions::default());
        let outcome = run(true);
        assert!(outcome.passed(), "{:?}", outcome.failures);
        let a = &outcome.figures.attacks;
        assert!(a.replays_after_restart > 0);
        assert_eq!(a.replays_after_restart_refused, a.replays_after_restart);

        let outcome = run(false);
        let after_restart = outcome.failures.iter().any(|f| {
            matches!(f, Failure::ReplayAccepted { device, first, .. }
                if device == "bob" && first.starts_with("after a restart"))
        });
        assert!(after_restart, "{:?}", outcome.failures);
    }
}
