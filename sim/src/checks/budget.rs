//! The world's own per-link accounting for the amplification checker (QUIC's rule, RFC 9000
//! §8, as issue 9 states it for meshlog).
//!
//! For a device `d` and a peer `p`, over each life of `d`'s node (from its start or restart):
//!
//! ```text
//! answered(d→p) ≤ REPLY_FACTOR × received(p→d) + CREDIT_INITIAL_BYTES
//! ```
//!
//! at every moment, summed from the node's start.
//!
//! - `answered(d→p)`: bytes of the `DIGEST`, `FILTER` and `SKETCH` datagrams `d` sent to `p`.
//!   A node sends those only in answer to what that peer sent (its summary, sketch, digests,
//!   filters); they are what an attacker can make a node send.
//! - `received(p→d)`: bytes of every datagram claiming to come from `p` that reached `d`'s
//!   running node (honest or hostile; replays excluded: a replay is not what `p` sent), and
//!   of each of `p`'s datagrams a relay forwarded that `d`'s node opened as `p`'s (at its
//!   inner size, as the core credits it: `core/src/node/relay.rs`).
//! - What a device sends on its own initiative is not counted: its `SUMMARY` datagrams and
//!   its `EVENT` pushes, which the core streams at a rate it bounds itself.
//! - `CREDIT_INITIAL_BYTES`: the credit the core grants each peer once when a node starts
//!   (`core/src/node/budget.rs`), so that a first summary can be answered.
//!
//! The core keeps the bound with credit earned per byte received, so no timing of what a peer
//! sends (a flood, one datagram a round) moves it; a world whose node answers beyond it fails.

use std::collections::BTreeMap;

use meshlog_core::{Instant, NodeEvent, PacketKind, CREDIT_INITIAL_BYTES, REPLY_FACTOR};

use super::verdict::{Checker, Failure, Figures};
use crate::kernel::{Happening, Via, View};

/// One direction of accounting over one node life: `d`'s answers to `p` and what `p` sent `d`.
#[derive(Clone, Copy, Debug, Default)]
struct Book {
    answered: u64,
    received: u64,
}

impl Book {
    fn bound(&self) -> u64 {
        REPLY_FACTOR * self.received + CREDIT_INITIAL_BYTES
    }
}

/// Answers over the bound for one (device, peer), with the worst moment.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Overrun {
    /// Answer datagrams sent while over the bound.
    sends: u64,
    first_at_us: u64,
    worst_answered: u64,
    worst_bound: u64,
}

#[derive(Debug)]
pub(super) struct Ledger {
    /// `books[d][p]`: only the pairs that exchanged datagrams, so a world of N devices with
    /// k peers each keeps N × k books, not N² (40 MB at 1,000 devices, dense).
    books: Vec<BTreeMap<usize, Book>>,
    overruns: BTreeMap<(usize, usize), Overrun>,
    /// Over all links and moments: the largest answered / bound seen.
    worst_share_ppm: u64,
    /// The datagram being handled now, (from, to): a packet its receiver opens as another
    /// device's came through a relay.
    handling: Option<(usize, usize)>,
}

impl Ledger {
    pub(super) fn new(devices: usize) -> Ledger {
        Ledger {
            books: vec![BTreeMap::new(); devices],
            overruns: BTreeMap::new(),
            worst_share_ppm: 0,
            handling: None,
        }
    }

    fn book(&mut self, d: usize, p: usize) -> &mut Book {
        self.books[d].entry(p).or_default()
    }

    /// `device`'s node (re)started: a new life, with fresh credit toward every peer.
    fn started(&mut self, device: usize) {
        self.books[device].clear();
    }

    /// `to`'s running node received `bytes` from `from`.
    fn received(&mut self, from: usize, to: usize, bytes: usize) {
        self.book(to, from).received += bytes as u64;
    }

    /// `from`'s node sent `to` a datagram.
    fn sent(&mut self, now: Instant, from: usize, to: usize, kind: PacketKind, bytes: usize) {
        if !is_answer(kind) {
            return;
        }
        let book = self.book(from, to);
        book.answered += bytes as u64;
        let (answered, bound) = (book.answered, book.bound());
        self.worst_share_ppm = self
            .worst_share_ppm
            .max(answered * 1_000_000 / bound.max(1));
        if answered <= bound {
            return;
        }
        let overrun = self.overruns.entry((from, to)).or_insert(Overrun {
            sends: 0,
            first_at_us: now.as_micros(),
            worst_answered: answered,
            worst_bound: bound,
        });
        overrun.sends += 1;
        if answered * overrun.worst_bound > overrun.worst_answered * bound {
            overrun.worst_answered = answered;
            overrun.worst_bound = bound;
        }
    }
}

impl Checker for Ledger {
    fn observe(&mut self, view: &View<'_>, happening: &Happening<'_>) {
        match *happening {
            Happening::Transmit { from, to, transmit } => {
                self.sent(view.now, from, to, transmit.kind, transmit.bytes.len());
            }
            // A replay is not what the peer sent: it earns no budget.
            Happening::Delivered {
                from,
                to,
                bytes,
                via,
                ..
            } if via != Via::Replay => {
                self.handling = Some((from, to));
                self.received(from, to, bytes);
            }
            Happening::Handled { .. } => self.handling = None,
            Happening::Node {
                device,
                event: NodeEvent::PacketReceived { from, size, .. },
            } => {
                let sender = view.index_of(from);
                if let (Some((relay, to)), Some(sender)) = (self.handling, sender) {
                    if to == device && sender != relay {
                        self.received(sender, device, *size);
                    }
                }
            }
            Happening::Restarted { device } => self.started(device),
            _ => {}
        }
    }

    fn verdict(&self, view: &View<'_>, failures: &mut Vec<Failure>) {
        for ((device, peer), overrun) in &self.overruns {
            failures.push(Failure::OverBudget {
                device: view.name(*device).to_string(),
                peer: view.name(*peer).to_string(),
                sends: overrun.sends,
                first_at_us: overrun.first_at_us,
                answered: overrun.worst_answered,
                bound: overrun.worst_bound,
            });
        }
    }

    fn figures(&self, _: &View<'_>, figures: &mut Figures) {
        figures.budget_worst_share = self.worst_share_ppm as f64 / 1e6;
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
        let c = CREDIT_INITIAL_BYTES as usize;
        let mut ledger = Ledger::new(2);
        ledger.received(1, 0, 1_000);
        ledger.sent(at(200), 0, 1, PacketKind::Filter, 3_000 + c);
        assert!(ledger.overruns.is_empty());
        // Summaries and events are the device's own initiative.
        ledger.sent(at(300), 0, 1, PacketKind::Event, 100_000);
        ledger.sent(at(300), 0, 1, PacketKind::Summary, 100_000);
        assert!(ledger.overruns.is_empty());
        // However long ago it arrived, what was received counts once.
        ledger.received(1, 0, 100);
        ledger.sent(at(60_000), 0, 1, PacketKind::Sketch, 300);
        assert!(ledger.overruns.is_empty());
        ledger.sent(at(60_001), 0, 1, PacketKind::Digest, 1);
        assert_eq!(ledger.overruns[&(0, 1)].sends, 1);
        assert_eq!(ledger.overruns[&(0, 1)].first_at_us, 60_001_000);
    }

    #[test]
    fn a_restart_starts_a_new_life_with_fresh_credit() {
        let c = CREDIT_INITIAL_BYTES as usize;
        let mut ledger = Ledger::new(2);
        ledger.sent(at(1), 0, 1, PacketKind::Digest, c);
        ledger.started(0);
        ledger.sent(at(2), 0, 1, PacketKind::Digest, c);
        assert!(ledger.overruns.is_empty());
        ledger.sent(at(3), 0, 1, PacketKind::Digest, 1);
        assert!(ledger.overruns.contains_key(&(0, 1)));
    }

    #[test]
    fn an_overrun_counts_its_sends_and_keeps_the_worst() {
        let c = CREDIT_INITIAL_BYTES;
        let mut ledger = Ledger::new(2);
        ledger.received(1, 0, 100);
        for _ in 0..3 {
            ledger.sent(at(1), 0, 1, PacketKind::Digest, c as usize);
        }
        let overrun = &ledger.overruns[&(0, 1)];
        assert_eq!(overrun.sends, 2);
        assert_eq!(
            (overrun.worst_answered, overrun.worst_bound),
            (3 * c, 300 + c)
        );
        // The other direction is its own book.
        assert!(!ledger.overruns.contains_key(&(1, 0)));
    }
}
