//! The amplification budget, after QUIC (RFC 9000 §8): the bytes a node sends a peer in
//! answer (digests, filters, sketches) never exceed `REPLY_FACTOR` × the bytes it received
//! from that peer, plus a small credit granted once when the node starts. Each byte received
//! earns three bytes of credit; each answer spends its bytes; what is not spent is kept for
//! later, up to `CREDIT_MAX_BYTES`. So over any stretch of a node's life
//! `replied ≤ 3 × received + CREDIT_INITIAL_BYTES`, however the peer times what it sends: a
//! hostile member that sends little, slowly, gets as little back as one that floods.
//!
//! Why credit is kept across rounds: an honest peer's summaries (65 bytes, every round) earn
//! it, and the answer to a summary that differs is a sketch or a digest of a few hundred
//! bytes, more than 3 × 65. The credit banked by quiet rounds, or the initial credit on first
//! contact, pays for it; every later step of a descent answers what the peer sent in the step
//! before, at 3× (a 16-child digest step grows the conversation by at most that factor per
//! exchange, so a wide step takes an exchange or two more, never a round).
//!
//! A node answers at most one filter per bucket per peer per round.
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
pub const REPLY_FACTOR: u64 = 3;
/// Credit a peer starts with when this node starts: one datagram, the answer to a first
/// summary (a sketch or a digest, at most a datagram); every later answer answers something
/// the peer sent. Granted once per node life, not per round, so it adds a constant to the
/// bound, not a rate.
pub const CREDIT_INITIAL_BYTES: u64 = DATAGRAM_SIZE_MAX as u64;
/// Credit kept at most: one widest descent step (16 child digests, ~3 KB, with room). Bounds
/// the burst a peer can save up for by sending while the node had nothing to answer.
pub const CREDIT_MAX_BYTES: u64 = 16 * DATAGRAM_SIZE_MAX as u64;

/// One peer's budget.
#[derive(Debug)]
pub(super) struct Budget {
    /// Bytes of answers the node may still send this peer.
    credit: u64,
    /// Reserved by items queued during this input, not yet sent.
    pending: u64,
    /// Buckets whose filter we already answered this round.
    filter_replies: BTreeSet<Prefix>,
}

impl Budget {
    /// A peer's budget when the node starts: the initial credit, counted into its totals.
    pub(super) fn new(totals: &mut BudgetTotals) -> Budget {
        totals.credit_initial_bytes += CREDIT_INITIAL_BYTES;
        Budget {
            credit: CREDIT_INITIAL_BYTES,
            pending: 0,
            filter_replies: BTreeSet::new(),
        }
    }

    /// A new round: every bucket's filter may be answered once again. Credit carries over.
    pub(super) fn start_round(&mut self) {
        self.filter_replies.clear();
    }

    pub(super) fn credit(&mut self, bytes: usize, totals: &mut BudgetTotals) {
        self.credit = (self.credit + REPLY_FACTOR * bytes as u64).min(CREDIT_MAX_BYTES);
        totals.received_bytes += bytes as u64;
    }

    /// Reserves room for an answer of at most `bytes` (header included) before the work of
    /// building it. Reservations are counted even when the budget is off, so `spend` can
    /// check that every answer was reserved either way.
    pub(super) fn reserve(&mut self, bytes: usize, enforced: bool) -> bool {
        let wanted = self.pending + bytes as u64;
        if enforced && wanted > self.credit {
            return false;
        }
        self.pending = wanted;
        true
    }

    /// The first filter answer for `prefix` this round; false for any further one.
    pub(super) fn first_filter_reply(&mut self, prefix: Prefix, enforced: bool) -> bool {
        self.filter_replies.insert(prefix) || !enforced
    }

    /// Counts a sent answer datagram against what was reserved for it and the credit.
    pub(super) fn spend(&mut self, bytes: usize, enforced: bool, totals: &mut BudgetTotals) {
        let bytes = bytes as u64;
        assert!(
            bytes <= self.pending,
            "an answer of {bytes} bytes where {} were reserved",
            self.pending
        );
        assert!(
            !enforced || bytes <= self.credit,
            "an answer of {bytes} bytes with {} bytes of credit",
            self.credit
        );
        self.pending -= bytes;
        self.credit = self.credit.saturating_sub(bytes);
        totals.replied_bytes += bytes;
        assert!(!enforced || totals.within(), "{totals:?}");
    }

    /// The queued items went out: what they reserved and did not use is free again.
    pub(super) fn settle(&mut self) {
        self.pending = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether an answer of `bytes` may be reserved now (and lets the reservation go).
    fn room_for(b: &mut Budget, bytes: usize) -> bool {
        let reserved = b.reserve(bytes, true);
        b.settle();
        reserved
    }

    /// Reserves and sends an answer of `bytes`.
    fn answer(b: &mut Budget, bytes: usize, totals: &mut BudgetTotals) {
        assert!(b.reserve(bytes, true));
        b.spend(bytes, true, totals);
        b.settle();
    }

    #[test]
    fn a_new_peer_may_be_answered_with_the_initial_credit_only() {
        let mut totals = BudgetTotals::default();
        let mut b = Budget::new(&mut totals);
        let limit = CREDIT_INITIAL_BYTES as usize;
        assert!(b.reserve(limit, true));
        assert!(!b.reserve(1, true), "nothing past the credit");
        assert!(b.reserve(1, false), "unless the budget is off");
        b.settle();
        answer(&mut b, limit, &mut totals);
        assert!(!room_for(&mut b, 1));
        assert_eq!(totals.replied_bytes, limit as u64);
        assert!(totals.within());
    }

    #[test]
    fn each_byte_received_earns_three_and_rounds_add_nothing() {
        let mut totals = BudgetTotals::default();
        let mut b = Budget::new(&mut totals);
        answer(&mut b, CREDIT_INITIAL_BYTES as usize, &mut totals);
        for _ in 0..10 {
            b.start_round();
        }
        assert!(
            !room_for(&mut b, 1),
            "a quiet peer earns nothing by waiting"
        );
        b.credit(65, &mut totals);
        assert!(!room_for(&mut b, 196));
        answer(&mut b, 195, &mut totals);
        assert_eq!(
            totals.replied_bytes,
            3 * totals.received_bytes + totals.credit_initial_bytes
        );
    }

    #[test]
    fn credit_banks_across_rounds_up_to_its_cap() {
        let mut totals = BudgetTotals::default();
        let mut b = Budget::new(&mut totals);
        for _ in 0..3 {
            b.credit(100, &mut totals);
            b.start_round();
        }
        assert!(room_for(&mut b, CREDIT_INITIAL_BYTES as usize + 900));
        assert!(!room_for(&mut b, CREDIT_INITIAL_BYTES as usize + 901));
        let flood = 10 * CREDIT_MAX_BYTES as usize;
        b.credit(flood, &mut totals);
        assert!(room_for(&mut b, CREDIT_MAX_BYTES as usize));
        assert!(!room_for(&mut b, CREDIT_MAX_BYTES as usize + 1), "capped");
    }

    #[test]
    fn a_packed_answer_spends_less_than_its_items_reserved() {
        let mut totals = BudgetTotals::default();
        let mut b = Budget::new(&mut totals);
        assert!(b.reserve(300, true) && b.reserve(300, true));
        b.spend(350, true, &mut totals);
        b.settle();
        assert!(room_for(&mut b, CREDIT_INITIAL_BYTES as usize - 350));
    }

    #[test]
    #[should_panic(expected = "were reserved")]
    fn an_answer_never_reserved_is_a_bug() {
        let mut totals = BudgetTotals::default();
        let mut b = Budget::new(&mut totals);
        b.spend(1, false, &mut totals);
    }

    #[test]
    #[should_panic(expected = "bytes of credit")]
    fn an_answer_past_the_credit_is_a_bug() {
        let mut totals = BudgetTotals::default();
        let mut b = Budget::new(&mut totals);
        let over = CREDIT_INITIAL_BYTES as usize + 1;
        assert!(b.reserve(over, false), "reserved with the budget off");
        b.spend(over, true, &mut totals);
    }

    #[test]
    fn one_filter_answer_per_bucket_per_round() {
        let mut totals = BudgetTotals::default();
        let mut b = Budget::new(&mut totals);
        assert!(b.first_filter_reply(Prefix::ROOT, true));
        assert!(!b.first_filter_reply(Prefix::ROOT, true));
        assert!(b.first_filter_reply(Prefix::new(1, 3).unwrap(), true));
        assert!(!b.first_filter_reply(Prefix::ROOT, true));
        b.start_round();
        assert!(b.first_filter_reply(Prefix::ROOT, true));
    }
}
