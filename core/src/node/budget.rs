//! The amplification budget, after QUIC (RFC 9000 §8): per peer and per round, the bytes a
//! node sends in answer to a peer (digests, filters, sketches) stay within the larger of
//! `REPLY_FACTOR` × the bytes it received from that peer in the round and the node's own
//! round allowance. The larger, not the sum: an honest descent that received little still has
//! the allowance to finish its step, while a peer that sends much gets at most 3× back, however
//! fast it sends. A node answers at most one filter per bucket per peer per round.
//!
//! Events are not answers: they go out from the owed stream (`owed.rs`), at a rate the node
//! chooses and bounds itself, so a small datagram can at most add ids to what is owed.
//! Work over budget is skipped, not queued, and counted as the drop `budget`: a hostile or
//! replayed datagram then costs the node a bounded amount of sending, and an honest peer's
//! skipped work is found again by the next follow-up or round.

use std::collections::BTreeSet;

use crate::packet::DATAGRAM_SIZE_MAX;
use crate::stats::BudgetTotals;
use crate::sync::prefix::Prefix;

/// QUIC's bound on what an unvalidated peer can make a node send.
pub(super) const REPLY_FACTOR: u64 = 3;
/// Datagrams a node may answer a peer with per round besides `REPLY_FACTOR` × what it got: the
/// answer to a 90-byte summary is a ~300-byte digest or sketch, and one descent step is up to
/// 16 child digests (FANOUT), about 3 KB in reply to one ~300-byte digest. 16 datagrams lets
/// an honest descent finish its widest step within a round; a hostile member that sends less
/// than a third of it per round gets at most these 19 KB a round, one that sends more gets 3×.
pub(super) const ALLOWANCE_DATAGRAMS: u64 = 16;
pub(super) const ALLOWANCE_BYTES: u64 = ALLOWANCE_DATAGRAMS * DATAGRAM_SIZE_MAX as u64;

/// One peer's budget in the current round.
#[derive(Debug, Default)]
pub(super) struct Budget {
    received: u64,
    replied: u64,
    /// Reserved by items queued during this input, not yet sent.
    pending: u64,
    /// Buckets whose filter we already answered this round.
    filter_replies: BTreeSet<Prefix>,
}

impl Budget {
    /// A new round: a fresh allowance, counted into the peer's running totals.
    pub(super) fn start_round(&mut self, totals: &mut BudgetTotals) {
        *self = Budget::default();
        totals.allowance_bytes += ALLOWANCE_BYTES;
    }

    pub(super) fn credit(&mut self, bytes: usize, totals: &mut BudgetTotals) {
        self.received += bytes as u64;
        totals.received_bytes += bytes as u64;
    }

    fn limit(&self) -> u64 {
        (REPLY_FACTOR * self.received).max(ALLOWANCE_BYTES)
    }

    /// Reserves room for an answer of about `bytes` before the work of building it.
    pub(super) fn reserve(&mut self, bytes: usize, enforced: bool) -> bool {
        let wanted = self.replied + self.pending + bytes as u64;
        if enforced && wanted > self.limit() {
            return false;
        }
        self.pending += bytes as u64;
        true
    }

    /// The first filter answer for `prefix` this round; false for any further one.
    pub(super) fn first_filter_reply(&mut self, prefix: Prefix, enforced: bool) -> bool {
        self.filter_replies.insert(prefix) || !enforced
    }

    /// Whether an answer datagram of `bytes` may go out now.
    pub(super) fn allows(&self, bytes: usize, enforced: bool) -> bool {
        !enforced || self.replied + bytes as u64 <= self.limit()
    }

    /// Counts a sent answer datagram.
    pub(super) fn spend(&mut self, bytes: usize, enforced: bool, totals: &mut BudgetTotals) {
        self.replied += bytes as u64;
        totals.replied_bytes += bytes as u64;
        assert!(
            !enforced || self.replied <= self.limit(),
            "answered {} bytes for {} received",
            self.replied,
            self.received
        );
    }

    /// The queued items went out (or were skipped): their reservations end.
    pub(super) fn settle(&mut self) {
        self.pending = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_stay_within_the_allowance_while_little_was_received() {
        let mut totals = BudgetTotals::default();
        let mut b = Budget::default();
        b.start_round(&mut totals);
        b.credit(100, &mut totals);
        let limit = ALLOWANCE_BYTES as usize;
        assert!(b.reserve(limit, true));
        assert!(!b.reserve(1, true), "nothing past the limit");
        assert!(b.reserve(1, false), "unless the budget is off");
        b.settle();
        assert!(b.allows(limit, true));
        b.spend(limit, true, &mut totals);
        assert!(!b.allows(1, true));
        assert_eq!(totals.replied_bytes, limit as u64);
        assert!(totals.within());
    }

    #[test]
    fn answers_stay_within_three_times_what_a_flood_sent() {
        let mut totals = BudgetTotals::default();
        let mut b = Budget::default();
        b.start_round(&mut totals);
        let received = 4 * ALLOWANCE_BYTES as usize;
        b.credit(received, &mut totals);
        assert!(b.reserve(3 * received, true));
        assert!(!b.reserve(1, true), "3x, with no allowance on top");
        b.settle();
        b.spend(3 * received, true, &mut totals);
        assert!(!b.allows(1, true));
        assert_eq!(totals.replied_bytes, 3 * totals.received_bytes);
    }

    #[test]
    fn one_filter_answer_per_bucket_per_round() {
        let mut totals = BudgetTotals::default();
        let mut b = Budget::default();
        assert!(b.first_filter_reply(Prefix::ROOT, true));
        assert!(!b.first_filter_reply(Prefix::ROOT, true));
        assert!(b.first_filter_reply(Prefix::new(1, 3).unwrap(), true));
        b.start_round(&mut totals);
        assert!(b.first_filter_reply(Prefix::ROOT, true));
    }
}
