//! Attacks on the protocol and what they achieved: replays recorded off a link and re-sent,
//! and hostile members' packets (built in `hostile.rs`). Every delivery is watched: whether
//! the receiver accepted it, dropped it (and why), and how many bytes it sent in answer. The
//! node is sans-IO and answers an input before it returns, so the bytes it transmits while
//! handling one datagram are exactly that datagram's answer.

use std::collections::BTreeMap;

use meshlog_core::{Community, DeviceId, Input, PacketKind};
use serde::Serialize;

use crate::hostile::Hostile;
use crate::network::Recorded;
use crate::report::{Entry, Via};
use crate::scenario::Scenario;
use crate::world::{Sender, World};

/// Drop codes that refuse a replay properly: seen before, or the receiver is offline.
const REPLAY_REFUSALS: [&str; 2] = ["replayed", "offline"];

/// What attacks did, over the run (shown by `meshlog run`, in its JSON too).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AttackCounters {
    /// Replays put on their links.
    pub replays_injected: u64,
    /// Replays that reached a running node which had accepted the original.
    pub replays_judged: u64,
    /// Of those, refused as the checker wants (dropped as `replayed`, no answer).
    pub replays_refused: u64,
    /// Replays that reached a node restarted since it accepted the original (not judged:
    /// that incarnation never saw it).
    pub replays_after_restart: u64,
    pub replay_bytes: u64,
    /// Bytes receivers sent while handling replays.
    pub replay_answer_bytes: u64,
    pub hostile_sent_packets: u64,
    pub hostile_sent_bytes: u64,
    /// Hostile bytes that reached a running node.
    pub hostile_delivered_bytes: u64,
    /// Bytes receivers sent while handling hostile packets, all kinds.
    pub hostile_answer_bytes: u64,
    /// Of those, answers proper: digests, filters, sketches (events are streamed at the
    /// node's own bounded rate).
    pub hostile_answer_reconcile_bytes: u64,
    /// Forgeries sent by an attacker outside the community (`forge.rs`).
    pub forged_sent: u64,
    pub forged_bytes: u64,
    /// Corrupted or forged datagrams that reached a running node, and of those the ones it
    /// dropped at the packet layer.
    pub door_judged: u64,
    pub door_refused: u64,
}

impl AttackCounters {
    pub fn any(&self) -> bool {
        self.replays_injected > 0 || self.hostile_sent_packets > 0 || self.forged_sent > 0
    }
    /// Bytes answered per byte replayed.
    pub fn replay_amplification(&self) -> f64 {
        ratio(self.replay_answer_bytes, self.replay_bytes)
    }
    /// Bytes answered per hostile byte delivered.
    pub fn hostile_amplification(&self) -> f64 {
        ratio(self.hostile_answer_bytes, self.hostile_delivered_bytes)
    }
}

fn ratio(out: u64, into: u64) -> f64 {
    if into == 0 {
        0.0
    } else {
        out as f64 / into as f64
    }
}

/// Replays a receiver took in, per (receiver, claimed sender).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ReplayBreach {
    pub(crate) count: u64,
    pub(crate) first_at_us: u64,
    /// What the first one did: `accepted`, `answered 233 B`, `dropped as bad_signature`.
    pub(crate) first: String,
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
    now: meshlog_core::Instant,
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
pub(crate) struct Attack {
    pub(crate) hostiles: Vec<Hostile>,
    watch: Option<Watch>,
    pub(crate) breaches: BTreeMap<(usize, usize), ReplayBreach>,
    /// Corrupted or forged datagrams that got past the packet layer, per (receiver, claimed
    /// sender, `corrupted` or `forged`).
    pub(crate) past_the_door: BTreeMap<(usize, usize, &'static str), ReplayBreach>,
    pub(crate) counters: AttackCounters,
}

impl Attack {
    pub(crate) fn new(
        scenario: &Scenario,
        seed: u64,
        community: &Community,
        index: &BTreeMap<DeviceId, usize>,
        peer_lists: &[Vec<usize>],
    ) -> Attack {
        Attack {
            hostiles: scenario
                .hostiles
                .iter()
                .map(|spec| Hostile::new(spec, seed, community, index, peer_lists))
                .collect(),
            ..Attack::default()
        }
    }

    pub(crate) fn note_accepted(&mut self) {
        if let Some(watch) = &mut self.watch {
            watch.accepted = true;
        }
    }
    pub(crate) fn note_dropped(&mut self, code: &'static str) {
        if let Some(watch) = &mut self.watch {
            watch.dropped.get_or_insert(code);
        }
    }
    /// A corrupted or forged datagram must die at the packet layer: dropped with a reason,
    /// never accepted, no event of it opened, nothing sent in answer.
    fn judge_door(
        &mut self,
        now: meshlog_core::Instant,
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

    pub(crate) fn note_rejected(&mut self, code: &'static str) {
        if let Some(watch) = &mut self.watch {
            watch.rejected.get_or_insert(code);
        }
    }
    /// A transmit while a watched datagram is handled; only what goes back to its sender is
    /// an answer to it (a node also flushes what it had for other peers).
    pub(crate) fn note_answer(&mut self, to: usize, kind: PacketKind, bytes: usize) {
        if let Some(watch) = self.watch.as_mut().filter(|w| w.sender == to) {
            watch.answer_bytes += bytes as u64;
            if crate::budget::is_answer(kind) {
                watch.answer_reconcile_bytes += bytes as u64;
            }
        }
    }
}

impl World {
    /// A datagram arrives: the node handles it, watched; an accepted one may be recorded by
    /// an attacker for replay; a replay is judged.
    pub(crate) fn deliver(
        &mut self,
        from: usize,
        to: usize,
        kind: PacketKind,
        bytes: Vec<u8>,
        origin: Sender,
        corrupted: bool,
    ) {
        let now = self.now;
        let len = bytes.len();
        let (sender, receiver) = (&self.devices[from].name, &self.devices[to].name);
        let tag = match origin {
            Sender::Node => "",
            Sender::Replay { .. } => " replayed",
            Sender::Hostile => " hostile",
            Sender::Forged => " forged",
        };
        if self.devices[to].node.is_none() {
            let code = if self.devices[to].attacker_only {
                "not_running"
            } else {
                "crashed"
            };
            self.trace.line(format_args!(
                "{now} drop {sender}>{receiver} {kind} {len} {code}{tag}"
            ));
            self.counters.drop(code);
            self.report
                .note(|| Entry::crashed(now, (from, to), kind, code));
            return;
        }
        self.trace.line(format_args!(
            "{now} deliver {sender}>{receiver} {kind} {len}{tag}"
        ));
        self.counters.delivered(kind, len);
        let via = origin.via();
        self.report
            .note(|| Entry::delivered(now, (from, to), kind, len, via));
        // A replay is not what the peer sent: it earns no budget.
        if !matches!(origin, Sender::Replay { .. }) {
            self.ledger.received(from, to, len);
        }
        self.attack.watch = Some(Watch {
            sender: from,
            ..Watch::default()
        });
        let device_now = self.devices[to].clock.read(now);
        let node = self.devices[to].node.as_mut().expect("checked above");
        node.handle_input(Input::Datagram {
            now: device_now,
            bytes: &bytes,
        });
        self.drain(to);
        let watch = self.attack.watch.take().expect("set above");
        let incarnation = self.devices[to].incarnation;
        if corrupted || origin == Sender::Forged {
            let cause = if corrupted { "corrupted" } else { "forged" };
            self.attack.judge_door(now, to, from, cause, &watch);
        }
        let c = &mut self.attack.counters;
        match origin {
            Sender::Forged => {}
            Sender::Node => {
                if watch.accepted {
                    let datagram = Recorded {
                        kind,
                        bytes,
                        incarnation,
                    };
                    if let Some(replay) = self.network.accepted(now, from, to, datagram) {
                        self.inject(from, to, replay);
                    }
                }
            }
            Sender::Hostile => {
                c.hostile_delivered_bytes += len as u64;
                c.hostile_answer_bytes += watch.answer_bytes;
                c.hostile_answer_reconcile_bytes += watch.answer_reconcile_bytes;
            }
            Sender::Replay {
                incarnation: recorded_by,
            } => {
                c.replay_bytes += len as u64;
                c.replay_answer_bytes += watch.answer_bytes;
                if recorded_by != incarnation {
                    c.replays_after_restart += 1;
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
                let first = watch.what_it_did();
                note_breach(&mut self.attack.breaches, (to, from), now, first);
            }
        }
    }

    /// Puts a recorded datagram back on its link. The attacker sends it from its own socket,
    /// so the link's loss, partitions and cuts do not stop it.
    fn inject(&mut self, from: usize, to: usize, replay: crate::network::Replay) {
        let now = self.now;
        let datagram = replay.datagram;
        let (sender, receiver) = (&self.devices[from].name, &self.devices[to].name);
        self.trace.line(format_args!(
            "{now} replay {sender}>{receiver} {} {} at {}",
            datagram.kind,
            datagram.bytes.len(),
            replay.at
        ));
        self.attack.counters.replays_injected += 1;
        let (kind, len) = (datagram.kind, datagram.bytes.len());
        self.report
            .note(|| Entry::on_wire(now, (from, to), kind, len, replay.at, Via::Replay));
        self.schedule(
            replay.at,
            crate::world::Item::Deliver {
                from,
                to,
                kind: datagram.kind,
                bytes: datagram.bytes,
                origin: Sender::Replay {
                    incarnation: datagram.incarnation,
                },
                corrupted: false,
            },
        );
    }
}
