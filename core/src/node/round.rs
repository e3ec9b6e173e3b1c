//! Anti-entropy rounds: every `sync_interval` (less jitter), a summary to `sync_fanout`
//! random peers, a fresh filter-answer set and follow-up count for every peer.

use rand_core::RngCore;

use super::Node;
use crate::id::DeviceId;
use crate::packet::Payload;
use crate::store::Store;
use crate::sync::prefix::Prefix;
use crate::time::{Duration, Instant};

impl<S: Store> Node<S> {
    pub(super) fn start_round(&mut self, now: Instant) {
        let jitter = self.config.sync_jitter.as_micros();
        let early = if jitter == 0 {
            0
        } else {
            self.rng.next_u64() % jitter
        };
        self.next_round_at = now + Duration(self.config.sync_interval.as_micros() - early);
        self.join_gate.start_round();
        self.expire_keys(now);
        self.records_round(now);
        if !self.online || !self.config.anti_entropy {
            return;
        }
        self.stats.rounds += 1;
        self.followups_this_round = 0;
        for link in self.links.values_mut() {
            link.budget.start_round();
            link.followup.start_round();
            link.check.start_round();
        }
        let summary = self.index.summary(Prefix::ROOT);
        for peer in self.pick_round_peers() {
            self.send(
                &peer,
                Payload::Summary {
                    prefix: Prefix::ROOT,
                    summary,
                },
            );
            self.note_summary_sent(&peer);
            self.send_records(&peer);
            // A peer last seen different gets follow-ups without waiting to hear from it: at
            // heavy loss its answer to this summary is likely lost, and a try per round is
            // what made 50% loss take minutes.
            let differs = self.peers[&peer].advertised.is_some() && !self.believed_matched(&peer);
            if differs {
                self.want_followup(&peer);
            }
        }
    }

    /// `sync_fanout` distinct peers at random (all of them if there are no more), in roster
    /// order so the output does not depend on the draw order.
    pub(super) fn pick_round_peers(&mut self) -> Vec<DeviceId> {
        let mut peers: Vec<DeviceId> = self.peers.keys().cloned().collect();
        let fanout = self.config.sync_fanout.min(peers.len());
        // A partial Fisher-Yates shuffle: the first `fanout` slots end up a uniform pick.
        for slot in 0..fanout {
            let remaining = (peers.len() - slot) as u64;
            let pick = slot + (self.rng.next_u64() % remaining) as usize;
            peers.swap(slot, pick);
        }
        peers.truncate(fanout);
        peers.sort();
        peers
    }
}
