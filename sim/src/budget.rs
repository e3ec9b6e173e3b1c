//! The world's own per-link accounting for the amplification checker (QUIC's rule, RFC 9000
//! §8, as issue 9 states it for meshlog).
//!
//! For a device `d` with round length `I` (its `sync_interval`) and a peer `p`, virtual time
//! is cut into windows `W_k = [k·I, (k+1)·I)` counted from the start of the run. Then
//!
//! ```text
//! answered(d→p, W_k) ≤ AMPLIFICATION_MAX × (received(p→d, W_k−1) + received(p→d, W_k))
//!                      + ROUND_ALLOWANCE_BYTES
//! ```
//!
//! - `answered(d→p, W)`: bytes of the `DIGEST`, `FILTER` and `SKETCH` datagrams `d` sent to
//!   `p` during `W`. A node sends those only in answer to what that peer sent (its summary,
//!   sketch, digests, filters); they are what an attacker can make a node send.
//! - `received(p→d, W)`: bytes of every datagram claiming to come from `p` that reached `d`'s
//!   running node during `W` (honest or hostile; replays excluded: a replay is not what `p`
//!   sent). The window before counts too, as a node's rounds are jittered and do not line up
//!   with the world's windows: an answer may fall just past a window edge.
//! - What a device sends on its own initiative is not counted: its `SUMMARY` datagrams and
//!   its `EVENT` pushes, which the core streams at a rate it bounds itself.
//! - `ROUND_ALLOWANCE_BYTES`: the core grants each peer 16 datagrams of answers per round on
//!   top of 3× (`core/src/node/budget.rs`: one descent step of 16 child digests). A node's
//!   rounds are jittered, up to `sync_jitter` short, so one window overlaps parts of at most
//!   three of them: three allowances.

use std::collections::BTreeMap;

use meshlog_core::{Duration, Instant, PacketKind, DATAGRAM_SIZE_MAX};

/// The multiple of what a peer sent that a node may answer with (QUIC's limit is 3).
pub const AMPLIFICATION_MAX: u64 = 3;
/// Datagrams of answers the core allows a peer per round besides 3× what it sent.
pub const CORE_ALLOWANCE_DATAGRAMS: u64 = 16;
/// Slack per window: the allowances of the three node rounds a window may overlap.
pub const ROUND_ALLOWANCE_BYTES: u64 = 3 * CORE_ALLOWANCE_DATAGRAMS * DATAGRAM_SIZE_MAX as u64;

/// One direction of accounting: `d`'s answers to `p` and what `p` sent `d`.
#[derive(Clone, Copy, Debug, Default)]
struct Book {
    window: u64,
    answered: u64,
    received_before: u64,
    received: u64,
    over_this_window: bool,
}

impl Book {
    /// Moves the book on to window `k`.
    fn roll(&mut self, k: u64) {
        if k == self.window {
            return;
        }
        self.received_before = if k == self.window + 1 {
            self.received
        } else {
            0
        };
        *self = Book {
            window: k,
            received_before: self.received_before,
            ..Book::default()
        };
    }

    fn bound(&self) -> u64 {
        AMPLIFICATION_MAX * (self.received_before + self.received) + ROUND_ALLOWANCE_BYTES
    }
}

/// Windows over budget for one (device, peer), with the worst one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Overrun {
    pub(crate) windows: u64,
    pub(crate) worst_window_start_us: u64,
    pub(crate) worst_answered: u64,
    pub(crate) worst_bound: u64,
}

#[derive(Debug)]
pub(crate) struct Ledger {
    window_us: Vec<u64>,
    devices: usize,
    /// `books[d * devices + p]`.
    books: Vec<Book>,
    pub(crate) overruns: BTreeMap<(usize, usize), Overrun>,
    /// Over all windows and links: the largest answered / bound seen.
    pub(crate) worst_share_ppm: u64,
}

impl Ledger {
    pub(crate) fn new(sync_intervals: Vec<Duration>) -> Ledger {
        let devices = sync_intervals.len();
        Ledger {
            window_us: sync_intervals
                .iter()
                .map(|i| i.as_micros().max(1))
                .collect(),
            devices,
            books: vec![Book::default(); devices * devices],
            overruns: BTreeMap::new(),
            worst_share_ppm: 0,
        }
    }

    fn book(&mut self, now: Instant, d: usize, p: usize) -> &mut Book {
        let k = now.as_micros() / self.window_us[d];
        let book = &mut self.books[d * self.devices + p];
        book.roll(k);
        book
    }

    /// `to`'s running node received `bytes` from `from`.
    pub(crate) fn received(&mut self, now: Instant, from: usize, to: usize, bytes: usize) {
        self.book(now, to, from).received += bytes as u64;
    }

    /// `from`'s node sent `to` a datagram.
    pub(crate) fn sent(
        &mut self,
        now: Instant,
        from: usize,
        to: usize,
        kind: PacketKind,
        bytes: usize,
    ) {
        if !is_answer(kind) {
            return;
        }
        let window_us = self.window_us[from];
        let book = self.book(now, from, to);
        book.answered += bytes as u64;
        let (answered, bound) = (book.answered, book.bound());
        let first_in_window = answered > bound && !book.over_this_window;
        book.over_this_window |= answered > bound;
        let window_start_us = book.window * window_us;
        let share_ppm = answered * 1_000_000 / bound;
        self.worst_share_ppm = self.worst_share_ppm.max(share_ppm);
        if answered <= bound {
            return;
        }
        let overrun = self.overruns.entry((from, to)).or_insert(Overrun {
            windows: 0,
            worst_window_start_us: window_start_us,
            worst_answered: answered,
            worst_bound: bound,
        });
        overrun.windows += u64::from(first_in_window);
        if answered * overrun.worst_bound > overrun.worst_answered * bound {
            overrun.worst_window_start_us = window_start_us;
            overrun.worst_answered = answered;
            overrun.worst_bound = bound;
        }
    }
}

/// Kinds a node sends only in answer to a peer.
pub(crate) fn is_answer(kind: PacketKind) -> bool {
    matches!(
        kind,
        PacketKind::Digest | PacketKind::Filter | PacketKind::Sketch
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn answers_within_three_times_what_was_received_pass() {
        let a = ROUND_ALLOWANCE_BYTES;
        let mut ledger = Ledger::new(vec![Duration::from_secs(5); 2]);
        ledger.received(at(100), 1, 0, 1_000);
        ledger.sent(at(200), 0, 1, PacketKind::Filter, (3_000 + a) as usize);
        assert!(ledger.overruns.is_empty());
        // Summaries and events are the device's own allowance.
        ledger.sent(at(300), 0, 1, PacketKind::Event, 100_000);
        ledger.sent(at(300), 0, 1, PacketKind::Summary, 100_000);
        assert!(ledger.overruns.is_empty());
        // What arrived in the window before still counts, two windows back no longer.
        ledger.sent(at(5_100), 0, 1, PacketKind::Sketch, (3_000 + a) as usize);
        assert!(ledger.overruns.is_empty());
        ledger.sent(at(10_100), 0, 1, PacketKind::Digest, (a + 1) as usize);
        assert_eq!(ledger.overruns[&(0, 1)].windows, 1);
    }

    #[test]
    fn an_overrun_is_counted_once_per_window_and_keeps_the_worst() {
        let a = ROUND_ALLOWANCE_BYTES;
        let mut ledger = Ledger::new(vec![Duration::from_secs(5); 2]);
        ledger.received(at(0), 1, 0, 100);
        for _ in 0..3 {
            ledger.sent(at(1), 0, 1, PacketKind::Digest, (a / 2) as usize);
        }
        let overrun = &ledger.overruns[&(0, 1)];
        assert_eq!(overrun.windows, 1);
        assert_eq!(
            (overrun.worst_answered, overrun.worst_bound),
            (3 * (a / 2), 300 + a)
        );
        // The other direction is its own book.
        assert!(!ledger.overruns.contains_key(&(1, 0)));
    }
}
