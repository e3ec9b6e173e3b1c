//! Follow-ups: when a peer's summary differs, try again after about a round trip instead of a
//! whole `sync_interval`.
//!
//! A round needs SUMMARY → DIGEST → FILTER → FILTER → EVENTS (or SUMMARY → SKETCH → EVENTS)
//! to survive in a row; at 50% loss that is rare, and waiting 5 s between tries made heavy
//! loss take minutes. A follow-up is just another summary, so nothing waits for an answer:
//! each one starts over from the top. They stop when the peer's latest summary matches ours
//! or after `followups_per_round_max` in a round without progress (per peer and over all
//! peers together); a summary sent while the
//! peer is streaming events to us is an acknowledgement (`owed.rs`) and does not count.

use super::{Node, NodeEvent};
use crate::id::DeviceId;
use crate::packet::Payload;
use crate::store::Store;
use crate::sync::index::BucketSummary;
use crate::sync::prefix::Prefix;
use crate::time::{Duration, Instant};

/// The shortest wait before a follow-up, whatever the round trip: below it a follow-up would
/// mostly overtake the answers to the previous one.
pub(super) const FOLLOWUP_DELAY_MIN: Duration = Duration::from_millis(100);
/// The wait before acknowledging streamed events, whatever the round trip: the sender's slow
/// start grows once per acknowledgement, and at the follow-up delay (1.5 round trips, at least
/// 100 ms, with an estimate that starts at 100 ms) a catch-up on a short path spent half a
/// second ramping up. Acknowledging faster than the round trip on a long path is safe: the
/// sender's window grows only by what the acknowledgements show (`owed.rs`). One 65-byte
/// summary per 10 ms while a stream arrives.
pub(super) const ACK_DELAY: Duration = Duration::from_millis(10);
/// The estimate before any sample: the floor.
pub(super) const RTT_INITIAL_US: u64 = 100_000;

#[derive(Debug, Default)]
pub(super) struct FollowUp {
    pub(super) at: Option<Instant>,
    /// Follow-ups sent this round without progress.
    this_round: u32,
    /// When our latest unanswered summary went out, to time the answer.
    summary_sent_at: Option<Instant>,
    /// Events arrived from the peer since our last summary to it.
    events_since: bool,
}

impl FollowUp {
    pub(super) fn start_round(&mut self) {
        self.this_round = 0;
    }
}

impl<S: Store> Node<S> {
    pub(super) fn followup_delay(&self, peer: &DeviceId) -> Duration {
        let rtt = self.peers[peer].rtt_estimate_us;
        Duration(rtt + rtt / 2).max(FOLLOWUP_DELAY_MIN)
    }

    /// Schedules a follow-up to the peer, unless one is pending or we are streaming to it
    /// (its own summaries are the acknowledgements then).
    pub(super) fn want_followup(&mut self, peer: &DeviceId) {
        let at = self.now + self.followup_delay(peer);
        let link = self.links.get_mut(peer).expect("known peer");
        if link.followup.at.is_none() && !link.stream.is_flowing() {
            link.followup.at = Some(at);
        }
    }

    /// Sends our root summary to `peer` and times its answer.
    pub(super) fn send_root_summary(&mut self, peer: &DeviceId, summary: BucketSummary) {
        self.send(
            peer,
            Payload::Summary {
                prefix: Prefix::ROOT,
                summary,
            },
        );
        self.note_summary_sent(peer);
    }

    pub(super) fn note_summary_sent(&mut self, peer: &DeviceId) {
        let now = self.now;
        let followup = &mut self.links.get_mut(peer).expect("known peer").followup;
        // The latest summary: an answer to an earlier one then reads short, and the floor
        // covers that; timing from the oldest would inflate the estimate at every loss.
        followup.summary_sent_at = Some(now);
        followup.events_since = false;
    }

    /// Events arrived from the peer: acknowledge soon, whatever the count this round.
    pub(super) fn note_events_from(&mut self, peer: &DeviceId) {
        let ack_at = self.now + ACK_DELAY;
        let link = self.links.get_mut(peer).expect("known peer");
        link.followup.events_since = true;
        if !link.stream.is_flowing() {
            link.followup.at = Some(link.followup.at.map_or(ack_at, |at| at.min(ack_at)));
        }
    }

    /// An answer to our summary arrived: one round-trip sample (smoothed as TCP does, 1/8).
    pub(super) fn note_answer(&mut self, peer: &DeviceId) {
        let now = self.now;
        let followup = &mut self.links.get_mut(peer).expect("known peer").followup;
        let Some(sent) = followup.summary_sent_at.take() else {
            return;
        };
        let state = self.state_mut(peer);
        // Any answer counts, and the peer may answer its own round rather than our summary:
        // one back from an outage answers a summary sent seconds ago. Unclamped, such samples
        // took the estimate from 10 ms to 700 ms, and the stream judged its acks against
        // what it sent 700 ms before (halving the rate on the first one). A real rise still
        // lifts the estimate, by at most an eighth of twice it per sample.
        let ceiling = state.rtt_estimate_us * 2 + FOLLOWUP_DELAY_MIN.as_micros();
        let sample = now.saturating_since(sent).as_micros().min(ceiling);
        state.rtt_estimate_us = (state.rtt_estimate_us * 7 + sample) / 8;
    }

    /// Sends the follow-ups that are due.
    pub(super) fn followups_due(&mut self) {
        let due = self.links_due(|l| l.followup.at);
        let ours = self.summary();
        for peer in due {
            let bound = self.config.followups_per_round_max;
            let matched = self.believed_matched(&peer);
            let link = self.links.get_mut(&peer).expect("known peer");
            link.followup.at = None;
            let progress = link.followup.events_since;
            // The bound holds per peer and over all peers together: in a busy mesh summaries
            // nearly always differ by events in flight, and follow-ups to every peer would
            // double the traffic (measured on ten-devices-10k) for no faster convergence.
            let spent = link.followup.this_round.max(self.followups_this_round);
            // Events streamed to us are acknowledged whatever we believe: the belief may
            // rest on the peer's summary from before it had them.
            if !progress && (matched || spent >= bound) {
                continue;
            }
            if !progress {
                link.followup.this_round += 1;
                self.followups_this_round += 1;
            }
            self.stats.followups += 1;
            self.send_root_summary(&peer, ours);
            self.want_followup(&peer);
        }
    }

    /// A difference with the peer is already being settled: we are streaming it what it
    /// lacks. It is not reconciled again meanwhile; the stream's end or stall lets the next
    /// summary do it.
    pub(super) fn settling_with(&self, peer: &DeviceId) -> bool {
        self.links[peer].stream.is_flowing()
    }

    /// Whether the peer's set is believed equal to ours: its latest summary matches, or the
    /// events that crossed between us since explain the whole count difference.
    pub(super) fn believed_matched(&self, peer: &DeviceId) -> bool {
        let state = &self.peers[peer];
        let ours = self.summary();
        state.advertised.is_some_and(|theirs| {
            theirs == ours
                || state.crossed_since_summary > 0
                    && u64::from(theirs.count) + u64::from(state.crossed_since_summary)
                        == u64::from(ours.count)
        })
    }

    /// The peer's root summary, from a summary, a root digest or a sketch: also its
    /// acknowledgement of what we streamed.
    pub(super) fn note_peer_summary(&mut self, from: &DeviceId, summary: BucketSummary) {
        self.on_ack(from, summary.count);
        self.links.get_mut(from).expect("checked peer").summary_at = Some(self.now);
        let in_sync = summary == self.index.summary(Prefix::ROOT);
        let state = self.peers.get_mut(from).expect("checked peer");
        let changed = state.in_sync != in_sync || state.advertised.is_none();
        state.advertised = Some(summary);
        state.crossed_since_summary = 0;
        state.in_sync = in_sync;
        if changed {
            self.emit(NodeEvent::PeerSync {
                peer: from.clone(),
                in_sync,
            });
        }
    }
}
