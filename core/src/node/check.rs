//! Forward checks: a summary soon after forwarding events to a peer, so that a forward lost on
//! the way is settled a round trip later instead of at the next round.
//!
//! Plumtree's eager pushes ride reliable links; ours are datagrams, and a lost forward waited
//! for anti-entropy's next round (`sync_interval`). Along a path of many hops one forward is
//! usually lost (fifteen hops at 10% loss lose one 79% of the time), so each such loss cost a
//! round: the 30-device ring took up to 17.5 s to converge after its heal. The check is the
//! acknowledgement, with no new packet kind: an ordinary root summary, which the peer answers
//! (with a sketch) only if its set differs, and a missing event is then streamed at once.
//!
//! Bounded, because in a busy mesh summaries nearly always differ by events in flight and
//! every check would start a reconciliation (measured on `ten-devices-10k`: a check after every
//! forward burst took the cost from under 400 to 465 bytes per event):
//!
//! - One check per peer per round at most, the same as one more peer in the round's fanout.
//! - It waits until forwards to the peer pause for a round trip and a half (each forward
//!   pushes it back, up to `CHECK_WAIT_MAX_ROUND_TRIPS` of them after the first), so a
//!   burst is covered by one check taken after its end.
//! - None when a summary of the peer's came after our last forward could have reached it:
//!   it was compared with ours on arrival and any difference is being settled already.

use super::Node;
use crate::id::DeviceId;
use crate::store::Store;
use crate::time::{Duration, Instant};

/// The longest a check is pushed back by further forwards, in follow-up delays (a round trip
/// and a half each) after the first: a steady flow of forwards is still checked within about
/// a second on the wide internet.
const CHECK_WAIT_MAX_ROUND_TRIPS: u64 = 4;

#[derive(Debug, Default)]
pub(super) struct ForwardCheck {
    /// When the check is due, if forwards went out since the last one.
    pub(super) at: Option<Instant>,
    /// The first forward not yet checked: the check is due at most
    /// `CHECK_WAIT_MAX_ROUND_TRIPS` follow-up delays after it.
    first_forward: Option<Instant>,
    /// The latest forward: a peer summary newer than this plus half a round trip shows it.
    last_forward: Option<Instant>,
    /// A check went out this round: the next waits for the next round.
    sent_this_round: bool,
}

impl ForwardCheck {
    pub(super) fn start_round(&mut self) {
        self.sent_this_round = false;
    }
}

impl<S: Store> Node<S> {
    /// Events were just forwarded to `peer`: schedule (or push back) its check.
    pub(super) fn want_forward_check(&mut self, peer: &DeviceId) {
        let now = self.now;
        let delay_us = self.followup_delay(peer).as_micros();
        let check = &mut self.links.get_mut(peer).expect("known peer").check;
        if check.sent_this_round {
            return;
        }
        let first = *check.first_forward.get_or_insert(now);
        let latest = Instant(first.as_micros() + delay_us * CHECK_WAIT_MAX_ROUND_TRIPS);
        check.at = Some((now + Duration(delay_us)).min(latest));
        check.last_forward = Some(now);
    }

    /// Sends the checks that are due.
    pub(super) fn forward_checks_due(&mut self) {
        let due = self.links_due(|l| l.check.at);
        let ours = self.summary();
        for peer in due {
            let half_rtt_us = self.peers[&peer].rtt_estimate_us / 2;
            let link = self.links.get_mut(&peer).expect("known peer");
            let check = std::mem::take(&mut link.check);
            link.check.sent_this_round = check.sent_this_round;
            // A summary of the peer's, sent after our last forward reached it, was compared with
            // ours on arrival; a stream to it is acknowledged by its summaries anyway.
            let answered = link
                .summary_at
                .zip(check.last_forward)
                .is_some_and(|(heard, sent)| heard.as_micros() >= sent.as_micros() + half_rtt_us);
            if answered || link.stream.is_flowing() || self.peers[&peer].advertised == Some(ours) {
                continue;
            }
            link.check.sent_this_round = true;
            self.stats.forward_checks += 1;
            self.send_root_summary(&peer, ours);
        }
    }
}
