//! Which join requests get their signature checks this round (`admit.rs`): a bounded number
//! per round, shared fairly between the addresses they come from.
//!
//! Join requests come from strangers, so first come first served would let one sender that
//! floods bad requests take every check of every round and keep an honest joiner out. Three
//! limits instead:
//! - at most `JOIN_CHECKS_PER_ROUND_MAX` checks a round in all (the work stays bounded);
//! - at most `JOIN_CHECKS_PER_SOURCE_PER_ROUND_MAX` of them for one source address, so the
//!   rest of the round is left to others;
//! - a source whose request was refused (forged, bad proof, expired, ...) is not checked again
//!   for `JOIN_REFUSED_BACKOFF_ROUNDS` rounds.
//!
//! A source is the datagram's address (IP and port) as the driver saw it. An attacker who
//! sends from many addresses (or forges them) still shares the round's checks with honest
//! joiners; what it cannot do from one address is take them all.

use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Join requests checked (two signatures each) per sync round; more are dropped and counted.
pub const JOIN_CHECKS_PER_ROUND_MAX: u32 = 8;
/// Of those, at most this many for one source address (`join_source_limited` beyond): one
/// flooding address takes a quarter of the round, not all of it. Two, not one, so a joiner
/// whose first welcome was lost and who asks again soon is not made to wait a round.
pub const JOIN_CHECKS_PER_SOURCE_PER_ROUND_MAX: u32 = 2;
/// Rounds a source whose request was refused waits before its requests are checked again
/// (`join_backed_off` meanwhile): about 40 s at the default 5 s rounds, against a joiner's
/// one request a second for a minute.
pub const JOIN_REFUSED_BACKOFF_ROUNDS: u64 = 8;
/// Sources remembered as refused. Every entry costs a check and a round has at most
/// `JOIN_CHECKS_PER_ROUND_MAX` checks, so at most 8 × 8 = 64 are live at once; the bound only
/// guards that arithmetic (past it the entry that ends soonest goes).
const REFUSED_SOURCES_MAX: usize =
    (JOIN_CHECKS_PER_ROUND_MAX as usize) * (JOIN_REFUSED_BACKOFF_ROUNDS as usize);

#[derive(Debug, Default)]
pub(super) struct JoinGate {
    /// Rounds started (the backoff's clock).
    round: u64,
    checks_this_round: u32,
    /// Checks granted to each source this round. An entry is made only with a check granted,
    /// so it holds at most `JOIN_CHECKS_PER_ROUND_MAX` entries; emptied every round.
    per_source: BTreeMap<SocketAddr, u32>,
    /// Refused sources and the round from which they are checked again; at most
    /// `REFUSED_SOURCES_MAX` entries.
    refused: BTreeMap<SocketAddr, u64>,
}

impl JoinGate {
    pub(super) fn start_round(&mut self) {
        self.round += 1;
        self.checks_this_round = 0;
        self.per_source.clear();
        let round = self.round;
        self.refused.retain(|_, until| *until > round);
    }

    /// Whether a request from `source` may be checked now; if so the check is counted.
    /// `Err` is the drop code.
    pub(super) fn admit(&mut self, source: SocketAddr) -> Result<(), &'static str> {
        if self.refused.contains_key(&source) {
            return Err("join_backed_off");
        }
        let used = self.per_source.get(&source).copied().unwrap_or(0);
        if used >= JOIN_CHECKS_PER_SOURCE_PER_ROUND_MAX {
            return Err("join_source_limited");
        }
        if self.checks_this_round >= JOIN_CHECKS_PER_ROUND_MAX {
            return Err("join_rate_limited");
        }
        self.checks_this_round += 1;
        self.per_source.insert(source, used + 1);
        Ok(())
    }

    /// A request from `source` was checked and refused: its next ones wait.
    pub(super) fn refused(&mut self, source: SocketAddr) {
        if self.refused.len() >= REFUSED_SOURCES_MAX && !self.refused.contains_key(&source) {
            // The smallest end round, then the lowest address: deterministic.
            let soonest = self
                .refused
                .iter()
                .min_by_key(|(addr, until)| (**until, **addr))
                .map(|(addr, _)| *addr);
            if let Some(addr) = soonest {
                self.refused.remove(&addr);
            }
        }
        self.refused
            .insert(source, self.round + 1 + JOIN_REFUSED_BACKOFF_ROUNDS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(last: u8) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, last], 9))
    }

    #[test]
    fn one_source_takes_its_share_and_leaves_the_rest() {
        let mut gate = JoinGate::default();
        gate.start_round();
        let flood: Vec<_> = (0..20).map(|_| gate.admit(addr(1))).collect();
        assert_eq!(
            flood.iter().filter(|r| r.is_ok()).count(),
            JOIN_CHECKS_PER_SOURCE_PER_ROUND_MAX as usize
        );
        assert_eq!(flood[2], Err("join_source_limited"));
        assert_eq!(gate.admit(addr(2)), Ok(()));
    }

    #[test]
    fn the_round_total_stays_bounded_over_many_sources() {
        let mut gate = JoinGate::default();
        gate.start_round();
        let granted = (0..=255u8).filter(|i| gate.admit(addr(*i)).is_ok()).count();
        assert_eq!(granted, JOIN_CHECKS_PER_ROUND_MAX as usize);
        assert_eq!(gate.admit(addr(0)), Err("join_rate_limited"));
        gate.start_round();
        assert_eq!(gate.admit(addr(200)), Ok(()));
    }

    #[test]
    fn a_refused_source_waits_its_backoff_rounds() {
        let mut gate = JoinGate::default();
        gate.start_round();
        assert_eq!(gate.admit(addr(1)), Ok(()));
        gate.refused(addr(1));
        assert_eq!(gate.admit(addr(1)), Err("join_backed_off"));
        for _ in 0..JOIN_REFUSED_BACKOFF_ROUNDS {
            gate.start_round();
            assert_eq!(gate.admit(addr(1)), Err("join_backed_off"));
        }
        gate.start_round();
        assert_eq!(gate.admit(addr(1)), Ok(()));
    }

    #[test]
    fn refused_sources_are_bounded() {
        let mut gate = JoinGate::default();
        for round in 0..40u8 {
            gate.start_round();
            for i in 0..8u8 {
                gate.refused(SocketAddr::from(([10, 0, round, i], 9)));
            }
            assert!(gate.refused.len() <= REFUSED_SOURCES_MAX);
        }
        gate.refused(addr(7));
        assert!(gate.refused.len() <= REFUSED_SOURCES_MAX);
        assert_eq!(gate.admit(addr(7)), Err("join_backed_off"));
    }
}
