//! Replay protection for one peer's packets, after RFC 6479 (the window WireGuard keeps).
//!
//! Every packet carries its sender's epoch (bumped and persisted at each start, see
//! `Store::next_epoch`) and a counter that starts at 0 in each epoch and grows by one per packet
//! sent to that receiver (counters are per pair, so a burst to many peers does not skip ahead
//! in any one window). The receiver keeps, per peer, the newest epoch seen, the highest
//! counter seen in it, and a bitmap of the [`WINDOW_LEN`] counters below that. A packet is
//! accepted once: a newer epoch resets the window; an older epoch, a counter older than the
//! window, or a counter already marked is `replayed`. The counters between hold datagrams the
//! network reordered or delayed, each accepted once.
//!
//! The check runs after the tag verifies (so a forger cannot move the window) and before any
//! payload is decoded (so a replay costs one MAC and nothing else).
//!
//! The bitmap is a ring of 64-bit blocks; moving the top only clears the blocks skipped, so a
//! check is O(1) however far the counter jumps (RFC 6479, section 2).

/// Bits in the ring. One block is kept as slack for the block the top is in, so the window
/// proper is one block shorter.
const RING_BITS: u64 = 2048;
const BLOCK_BITS: u64 = 64;
const BLOCKS: usize = (RING_BITS / BLOCK_BITS) as usize;
/// Counters below the newest that are still accepted once (if not seen): 1,984. A datagram
/// delayed behind that many newer ones from the same sender is dropped as a replay.
pub const WINDOW_LEN: u64 = RING_BITS - BLOCK_BITS;

const _: () = assert!(
    WINDOW_LEN >= 1024,
    "the issue asks for at least 1,024 counters"
);

/// What one receiver knows of one sender's counters. 272 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayWindow {
    /// `None` until the first packet from the peer.
    newest: Option<(u64, u64)>,
    bitmap: [u64; BLOCKS],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        ReplayWindow {
            newest: None,
            bitmap: [0; BLOCKS],
        }
    }
}

impl ReplayWindow {
    /// Whether (epoch, counter) is past everything accepted so far: the newest packet yet. A
    /// peer's address follows only its newest authentic packet, so a delayed or replayed old
    /// one, from wherever it is sent, moves nothing.
    pub fn is_newest(&self, epoch: u64, counter: u64) -> bool {
        self.newest.is_none_or(|newest| (epoch, counter) > newest)
    }

    /// Marks (epoch, counter) as seen and says whether it was new. Only for packets whose tag
    /// verified.
    pub fn accept(&mut self, epoch: u64, counter: u64) -> bool {
        let (newest_epoch, top) = match self.newest {
            Some((e, _)) if epoch < e => return false,
            Some((e, top)) if epoch == e => (e, top),
            // First packet, or the sender restarted: a fresh window.
            _ => {
                self.bitmap = [0; BLOCKS];
                self.newest = Some((epoch, counter));
                self.mark(counter);
                return true;
            }
        };
        if counter <= top && top - counter >= WINDOW_LEN {
            return false;
        }
        if counter > top {
            // Clear the blocks the top skips over: they hold counters now out of the window.
            let skipped = (counter / BLOCK_BITS - top / BLOCK_BITS).min(BLOCKS as u64);
            for step in 1..=skipped {
                self.bitmap[Self::block(top / BLOCK_BITS + step)] = 0;
            }
            self.newest = Some((newest_epoch, counter));
        }
        let (block, bit) = (Self::block(counter / BLOCK_BITS), counter % BLOCK_BITS);
        if self.bitmap[block] & (1 << bit) != 0 {
            return false;
        }
        self.mark(counter);
        true
    }

    /// The newest (epoch, counter) accepted (for tests).
    #[cfg(any(test, feature = "testing"))]
    pub fn newest(&self) -> Option<(u64, u64)> {
        self.newest
    }

    fn block(index: u64) -> usize {
        (index % BLOCKS as u64) as usize
    }

    fn mark(&mut self, counter: u64) {
        self.bitmap[Self::block(counter / BLOCK_BITS)] |= 1 << (counter % BLOCK_BITS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_counter_is_accepted_once_in_any_order() {
        let mut w = ReplayWindow::default();
        for counter in [5, 3, 4, 0, 1, 2, 9, 6, 8, 7] {
            assert!(w.accept(1, counter), "{counter} first time");
        }
        for counter in 0..10 {
            assert!(!w.accept(1, counter), "{counter} again");
        }
        assert_eq!(w.newest(), Some((1, 9)));
    }

    #[test]
    fn the_window_edge_is_exact() {
        let mut w = ReplayWindow::default();
        let top = 10_000;
        assert!(w.accept(1, top));
        assert!(!w.accept(1, top - WINDOW_LEN), "just outside");
        assert!(w.accept(1, top - WINDOW_LEN + 1), "just inside");
        assert!(!w.accept(1, top - WINDOW_LEN + 1));
        assert!(!w.accept(1, 0));
    }

    #[test]
    fn a_long_jump_forgets_what_fell_out_and_keeps_what_is_in() {
        let mut w = ReplayWindow::default();
        for counter in 0..3_000 {
            assert!(w.accept(1, counter));
        }
        // Far ahead: every block is cleared, the old ones are too old anyway.
        assert!(w.accept(1, 1_000_000));
        assert!(!w.accept(1, 2_999));
        assert!(w.accept(1, 999_999));
        assert!(w.accept(1, 1_000_000 - WINDOW_LEN + 1));
        // A jump by less than the ring keeps the blocks still in the window.
        assert!(w.accept(1, 1_000_100));
        assert!(!w.accept(1, 999_999));
        assert!(!w.accept(1, 1_000_000));
        assert!(w.accept(1, 1_000_050));
    }

    #[test]
    fn a_newer_epoch_resets_and_an_older_one_is_refused() {
        let mut w = ReplayWindow::default();
        assert!(w.accept(7, 500));
        assert!(!w.accept(6, 501), "older epoch, however new the counter");
        assert!(w.accept(8, 0), "the sender restarted");
        assert!(!w.accept(7, 501), "its old epoch is over");
        assert!(!w.accept(8, 0));
        assert!(w.accept(8, 1));
    }

    #[test]
    fn counters_near_the_top_of_the_range_do_not_overflow() {
        let mut w = ReplayWindow::default();
        assert!(w.accept(1, u64::MAX - 1));
        assert!(w.accept(1, u64::MAX));
        assert!(!w.accept(1, u64::MAX));
        assert!(w.accept(1, u64::MAX - 5));
        assert!(!w.accept(1, 0));
    }

    /// Against a plain set of everything seen: the window accepts exactly the unseen counters
    /// within `WINDOW_LEN` of the newest.
    #[test]
    fn agrees_with_a_set_on_a_random_walk() {
        use rand_chacha::ChaCha20Rng;
        use rand_core::{RngCore, SeedableRng};
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let mut w = ReplayWindow::default();
        let mut seen = std::collections::BTreeSet::new();
        let mut top = 0u64;
        for _ in 0..50_000 {
            let step = rng.next_u64() % 4_500;
            let counter = (top + 300).saturating_sub(step);
            let fresh = seen.is_empty() || (top - counter.min(top) < WINDOW_LEN);
            let expected = fresh && !seen.contains(&counter);
            assert_eq!(
                w.accept(1, counter),
                expected,
                "counter {counter}, top {top}"
            );
            if expected {
                seen.insert(counter);
                top = top.max(counter);
            }
        }
    }
}
