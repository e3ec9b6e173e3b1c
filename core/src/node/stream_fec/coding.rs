//! The coding of event streams, apart from the node: a sender's open group of EVENT payloads
//! to one peer, a receiver's window of that peer's recent payloads and recovery shards, and
//! the loss a link shows. Pure state, so the tests drive it directly.

use std::collections::BTreeMap;

use crate::packet::{RecoveryShard, RECOVERY_ORIGINALS_MAX, RECOVERY_SHARDS_MAX};
use crate::time::Instant;

/// Payloads of a peer's EVENT packets kept to rebuild a group: four full groups. A group's
/// recovery shards go out within `GROUP_WAIT` of its first packet, so its originals are among
/// the last few dozen packets; 64 × 1.2 KB is 77 KB per peer, 5 MB for 64 peers.
pub(super) const PAYLOADS_KEPT_MAX: usize = 4 * RECOVERY_ORIGINALS_MAX;
/// Groups of a peer's waiting for more shards: a group either completes within a round trip of
/// its shards or never does (they were lost), so a few suffice. Each holds at most
/// `RECOVERY_ORIGINALS_MAX` shards of at most a datagram: 8 × 16 × 1.2 KB = 154 KB per peer.
pub(super) const GROUPS_KEPT_MAX: usize = 8;
/// Fixed point of the loss estimate: parts of 65,536.
pub(super) const LOSS_ONE: u32 = 1 << 16;
/// The estimate moves a thirty-second of the way per packet: about a hundred packets to
/// follow a change, and steady (±6% at 20% loss) so that a link below `CODING_LOSS_MIN` is
/// seldom coded by a run of bad luck.
const LOSS_GAIN_SHIFT: u32 = 5;
/// Gaps longer than this count as no loss at all: a long silence is a cut, an offline spell
/// or a restart, not random loss (at 70% loss, 9 losses in a row happen 4% of the time), and
/// a member that skips counters on purpose must not make us code for it.
const GAP_COUNTED_MAX: u64 = 8;
/// Below this loss (30%) a link is not coded. Measured over the suite: coding at 5–20% loss
/// (a shard or two per lone push) took `ten-devices-10k` from about 390 to 670 bytes per
/// event and `random-3` past its bound, while anti-entropy alone converges such links within
/// their bounds; heavy loss is what the coding is for (issue 26, item 6).
pub(super) const CODING_LOSS_MIN: u32 = LOSS_ONE / 10 * 3;

/// Recovery shards for a group of `originals` at `loss` (parts of `LOSS_ONE`): the blob
/// transfer's rule, `⌈k · p/(1−p) · 1.5⌉ + 1`, so a group usually arrives whole in one trip;
/// none on a clean link, at most four per original and `RECOVERY_SHARDS_MAX`.
pub(super) fn recovery_for(originals: usize, loss: u32) -> usize {
    if loss < CODING_LOSS_MIN || originals == 0 {
        return 0;
    }
    // At most 90%: past it the rate caps below decide anyway.
    let p = u64::from(loss.min(LOSS_ONE / 10 * 9));
    let k = originals as u64;
    let q = u64::from(LOSS_ONE) - p;
    let m = (k * p * 3).div_ceil(2 * q) + 1;
    (m as usize).min(4 * originals).min(RECOVERY_SHARDS_MAX)
}

/// The loss of packets from one peer, judged from the gaps in their counters.
#[derive(Debug, Default, Clone)]
pub(super) struct LossEstimate {
    epoch: u64,
    highest: Option<u64>,
    /// Parts of `LOSS_ONE`.
    pub(super) loss: u32,
}

impl LossEstimate {
    /// A packet of the peer's `epoch` with `counter` arrived (authentic, not replayed).
    pub(super) fn note(&mut self, epoch: u64, counter: u64) {
        if epoch != self.epoch {
            self.epoch = epoch;
            self.highest = None;
        }
        match self.highest {
            Some(highest) if counter <= highest => {
                // Late, not lost: take back one loss counted at its gap.
                self.loss = self.loss.saturating_sub(LOSS_ONE >> LOSS_GAIN_SHIFT);
                return;
            }
            Some(highest) if counter - highest - 1 <= GAP_COUNTED_MAX => {
                for _ in 0..counter - highest - 1 {
                    self.loss += (LOSS_ONE - self.loss) >> LOSS_GAIN_SHIFT;
                }
            }
            // No earlier packet, or a silence too long to be loss.
            _ => {}
        }
        self.highest = Some(counter);
        self.loss -= self.loss >> LOSS_GAIN_SHIFT;
        debug_assert!(self.loss <= LOSS_ONE);
    }
}

/// The group being filled for one peer: EVENT payloads as sealed, with their counters.
#[derive(Debug, Default)]
pub(super) struct OpenGroup {
    originals: Vec<(u64, Vec<u8>)>,
    pub(super) started_at: Option<Instant>,
}

impl OpenGroup {
    pub(super) fn len(&self) -> usize {
        self.originals.len()
    }
    /// Whether a payload of `len` joins this group and its recovery shards still fit
    /// `room` bytes of payload.
    pub(super) fn fits(&self, counter: u64, len: usize, room: usize) -> bool {
        let longest = self
            .originals
            .iter()
            .map(|(_, p)| p.len())
            .max()
            .unwrap_or(0);
        let shard_len = even(longest.max(len));
        let gap_fits = self
            .originals
            .last()
            .is_none_or(|(last, _)| counter > *last && counter - last <= u64::from(u16::MAX));
        self.originals.len() < RECOVERY_ORIGINALS_MAX
            && gap_fits
            && RecoveryShard::header_len(self.originals.len() + 1) + shard_len <= room
    }
    pub(super) fn push(&mut self, now: Instant, counter: u64, payload: Vec<u8>) {
        assert!(payload.len() <= usize::from(u16::MAX) && !payload.is_empty());
        self.started_at.get_or_insert(now);
        self.originals.push((counter, payload));
    }
    /// Closes the group: its `recovery` shards (none for 0), and an empty group after.
    pub(super) fn close(&mut self, recovery: usize) -> Vec<RecoveryShard> {
        let originals = std::mem::take(&mut self.originals);
        self.started_at = None;
        if recovery == 0 || originals.is_empty() {
            return Vec::new();
        }
        assert!(recovery <= RECOVERY_SHARDS_MAX && originals.len() <= RECOVERY_ORIGINALS_MAX);
        let shard_len = even(originals.iter().map(|(_, p)| p.len()).max().unwrap_or(0));
        let padded = originals.iter().map(|(_, p)| padded(p, shard_len));
        let shards = reed_solomon_simd::encode(originals.len(), recovery, padded)
            .expect("at most 16 originals and 64 recovery shards of an even length");
        let named: Vec<(u64, u16)> = originals
            .iter()
            .map(|(c, p)| (*c, p.len() as u16))
            .collect();
        shards
            .into_iter()
            .enumerate()
            .map(|(index, shard)| RecoveryShard {
                originals: named.clone(),
                recovery: recovery as u8,
                index: index as u8,
                shard,
            })
            .collect()
    }
}

/// What a recovery shard came to.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// The payloads of the group's lost packets, rebuilt (not yet verified: they are events
    /// like any other, checked by the node).
    Rebuilt(Vec<Vec<u8>>),
    /// Kept until more shards come.
    Waiting,
    /// Nothing was lost, or the group was rebuilt already.
    Unneeded,
    /// Refused, with the reason counted.
    Refused(&'static str),
}

/// One peer's recent EVENT payloads and the recovery shards of its groups still short.
#[derive(Debug, Default)]
pub(super) struct Window {
    epoch: u64,
    payloads: BTreeMap<u64, Vec<u8>>,
    groups: BTreeMap<u64, Group>,
}

#[derive(Debug)]
struct Group {
    originals: Vec<(u64, u16)>,
    recovery: u8,
    shard_len: usize,
    shards: BTreeMap<u8, Vec<u8>>,
    done: bool,
}

impl Window {
    /// Shards and payloads held (for the bounds' tests).
    #[cfg(test)]
    fn held(&self) -> (usize, usize) {
        let shards = self.groups.values().map(|g| g.shards.len()).sum();
        (self.payloads.len(), shards)
    }

    fn enter_epoch(&mut self, epoch: u64) -> bool {
        if epoch < self.epoch {
            return false;
        }
        if epoch > self.epoch {
            *self = Window {
                epoch,
                ..Window::default()
            };
        }
        true
    }

    /// An EVENT packet's payload arrived, authentic and not replayed.
    pub(super) fn note_payload(&mut self, epoch: u64, counter: u64, payload: Vec<u8>) {
        if !self.enter_epoch(epoch) {
            return;
        }
        self.payloads.insert(counter, payload);
        while self.payloads.len() > PAYLOADS_KEPT_MAX {
            self.payloads.pop_first();
        }
    }

    /// A recovery shard arrived. Work: a decode only once per group, and only when as many
    /// shards of it are here as it has originals, every one of which the peer sent.
    pub(super) fn note_shard(&mut self, epoch: u64, shard: RecoveryShard) -> Outcome {
        if !self.enter_epoch(epoch) {
            return Outcome::Refused("recovery_stale");
        }
        let first = shard.originals[0].0;
        if let Some(group) = self.groups.get(&first) {
            if group.done {
                return Outcome::Unneeded;
            }
            if group.originals != shard.originals
                || group.recovery != shard.recovery
                || group.shard_len != shard.shard.len()
            {
                return Outcome::Refused("recovery_mismatch");
            }
        } else {
            let oldest_kept = self.payloads.first_key_value().map_or(0, |(c, _)| *c);
            if first < oldest_kept {
                // Its originals may have left the window: what is missing cannot be told.
                return Outcome::Refused("recovery_late");
            }
            self.groups.insert(
                first,
                Group {
                    originals: shard.originals.clone(),
                    recovery: shard.recovery,
                    shard_len: shard.shard.len(),
                    shards: BTreeMap::new(),
                    done: false,
                },
            );
            while self.groups.len() > GROUPS_KEPT_MAX {
                self.groups.pop_first();
            }
        }
        let Some(group) = self.groups.get_mut(&first) else {
            // The oldest, pushed out at once by newer groups.
            return Outcome::Refused("recovery_late");
        };
        let mut present = Vec::new();
        let mut missing = Vec::new();
        for (i, (counter, len)) in group.originals.iter().enumerate() {
            match self.payloads.get(counter) {
                Some(p) if p.len() == usize::from(*len) => present.push((i, p)),
                Some(_) => return Outcome::Refused("recovery_mismatch"),
                None => missing.push(i),
            }
        }
        if missing.is_empty() {
            group.done = true;
            group.shards.clear();
            return Outcome::Unneeded;
        }
        group.shards.insert(shard.index, shard.shard);
        if present.len() + group.shards.len() < group.originals.len() {
            return Outcome::Waiting;
        }
        group.done = true;
        let shards = std::mem::take(&mut group.shards);
        let shard_len = group.shard_len;
        let k = group.originals.len();
        let originals = present.iter().map(|(i, p)| (*i, padded(p, shard_len)));
        let restored = reed_solomon_simd::decode(
            k,
            usize::from(group.recovery),
            originals,
            shards.iter().map(|(i, s)| (usize::from(*i), s)),
        );
        let Ok(mut restored) = restored else {
            return Outcome::Refused("recovery_garbled");
        };
        let mut rebuilt = Vec::new();
        for i in missing {
            let (counter, len) = group.originals[i];
            let Some(mut payload) = restored.remove(&i) else {
                return Outcome::Refused("recovery_garbled");
            };
            payload.truncate(usize::from(len));
            self.payloads.insert(counter, payload.clone());
            rebuilt.push(payload);
        }
        while self.payloads.len() > PAYLOADS_KEPT_MAX {
            self.payloads.pop_first();
        }
        Outcome::Rebuilt(rebuilt)
    }
}

/// `n` rounded up to even: the code works on 16-bit words.
fn even(n: usize) -> usize {
    n + n % 2
}

fn padded(payload: &[u8], len: usize) -> Vec<u8> {
    let mut shard = payload.to_vec();
    shard.resize(len, 0);
    shard
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(seed: usize, len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + seed * 13) as u8).collect()
    }

    /// A group of `k` payloads at counters 10, 12, 14, ... and its `m` shards.
    fn group(k: usize, m: usize) -> (Vec<(u64, Vec<u8>)>, Vec<RecoveryShard>) {
        let mut open = OpenGroup::default();
        let sent: Vec<(u64, Vec<u8>)> = (0..k)
            .map(|i| (10 + 2 * i as u64, payload(i, 100 + 37 * i)))
            .collect();
        for (c, p) in &sent {
            assert!(open.fits(*c, p.len(), 1_100));
            open.push(Instant::from_micros(0), *c, p.clone());
        }
        (sent, open.close(m))
    }

    #[test]
    fn a_group_with_losses_is_rebuilt_from_any_k_shards() {
        let (sent, shards) = group(5, 3);
        let mut window = Window::default();
        // Originals 1 and 3 lost.
        for (i, (c, p)) in sent.iter().enumerate() {
            if i != 1 && i != 3 {
                window.note_payload(1, *c, p.clone());
            }
        }
        assert_eq!(window.note_shard(1, shards[2].clone()), Outcome::Waiting);
        let Outcome::Rebuilt(rebuilt) = window.note_shard(1, shards[0].clone()) else {
            panic!("two shards rebuild two losses");
        };
        assert_eq!(rebuilt, vec![sent[1].1.clone(), sent[3].1.clone()]);
        // Once rebuilt, the last shard is not decoded again.
        assert_eq!(window.note_shard(1, shards[1].clone()), Outcome::Unneeded);
    }

    #[test]
    fn a_group_that_lost_nothing_decodes_nothing() {
        let (sent, shards) = group(3, 2);
        let mut window = Window::default();
        for (c, p) in &sent {
            window.note_payload(1, *c, p.clone());
        }
        assert_eq!(window.note_shard(1, shards[0].clone()), Outcome::Unneeded);
        assert_eq!(window.held().1, 0);
    }

    #[test]
    fn a_garbled_or_inconsistent_shard_is_refused_and_never_rebuilds_the_truth() {
        let (sent, shards) = group(2, 2);
        let mut window = Window::default();
        window.note_payload(1, sent[0].0, sent[0].1.clone());
        let mut garbled = shards[0].clone();
        garbled.shard[3] ^= 0xff;
        // A garbled shard rebuilds wrong bytes: the node checks them as events (ids,
        // signatures) and refuses them; here they simply differ from what was sent.
        match window.note_shard(1, garbled) {
            Outcome::Rebuilt(rebuilt) => assert_ne!(rebuilt[0], sent[1].1),
            other => panic!("{other:?}"),
        }
        let mut window = Window::default();
        window.note_payload(1, sent[0].0, sent[0].1.clone());
        let mut lying = shards[1].clone();
        lying.originals[1].1 += 2;
        assert_eq!(
            window.note_shard(1, shards[0].clone()),
            Outcome::Rebuilt(vec![sent[1].1.clone()])
        );
        assert_eq!(window.note_shard(1, lying), Outcome::Unneeded);
        // A shard whose group disagrees with the first one seen is refused.
        let mut window = Window::default();
        window.note_payload(1, sent[0].0, sent[0].1.clone());
        window.note_payload(1, 99, vec![1; 10]);
        let (_, wide) = group(3, 2);
        assert_eq!(window.note_shard(1, wide[0].clone()), Outcome::Waiting);
        let mut other = wide[1].clone();
        other.recovery = 3;
        assert_eq!(
            window.note_shard(1, other),
            Outcome::Refused("recovery_mismatch")
        );
        // A shard of an older epoch, or one whose originals left the window.
        assert_eq!(
            window.note_shard(0, wide[1].clone()),
            Outcome::Refused("recovery_stale")
        );
    }

    #[test]
    fn the_window_holds_at_most_its_bounds() {
        let mut window = Window::default();
        for c in 0..1_000u64 {
            window.note_payload(1, c, vec![1; 8]);
        }
        assert_eq!(window.held().0, PAYLOADS_KEPT_MAX);
        // Groups that each lost two of three: every one waits, and only the newest are kept.
        for g in 0..100u64 {
            let first = 2_000 + 10 * g;
            let shard = RecoveryShard {
                originals: vec![(first, 8), (first + 1, 8), (first + 2, 8)],
                recovery: 3,
                index: 0,
                shard: vec![0; 8],
            };
            window.note_payload(1, first, vec![1; 8]);
            assert_eq!(window.note_shard(1, shard), Outcome::Waiting);
        }
        assert!(window.groups.len() <= GROUPS_KEPT_MAX);
        assert!(window.held().1 <= GROUPS_KEPT_MAX * RECOVERY_ORIGINALS_MAX);
        // An old group whose originals left the window is refused, not guessed at.
        let old = RecoveryShard {
            originals: vec![(5, 8)],
            recovery: 1,
            index: 0,
            shard: vec![0; 8],
        };
        assert_eq!(window.note_shard(1, old), Outcome::Refused("recovery_late"));
    }

    #[test]
    fn a_group_closes_before_its_shard_would_overflow_a_datagram() {
        let mut open = OpenGroup::default();
        open.push(Instant::from_micros(0), 1, vec![0; 900]);
        assert!(!open.fits(2, 1_100, 1_100));
        assert!(open.fits(2, 500, 1_100));
        assert!(!open.fits(1, 500, 1_100), "counters rise");
        for c in 2..=RECOVERY_ORIGINALS_MAX as u64 {
            open.push(Instant::from_micros(0), c, vec![0; 10]);
        }
        assert!(!open.fits(100, 10, 1_100), "at most 16 originals");
        assert_eq!(open.close(0), vec![]);
        assert!(open.len() == 0 && open.started_at.is_none());
    }

    #[test]
    fn the_code_rate_follows_the_loss() {
        assert_eq!(recovery_for(8, 0), 0);
        assert_eq!(recovery_for(8, LOSS_ONE / 50), 0);
        assert_eq!(recovery_for(8, LOSS_ONE / 5), 0);
        // 40%: ⌈8 · 0.67 · 1.5⌉ + 1 = 9.
        assert_eq!(recovery_for(8, LOSS_ONE / 10 * 4), 9);
        // 70%, one original: capped at four.
        assert_eq!(recovery_for(1, LOSS_ONE / 10 * 7), 4);
        assert_eq!(recovery_for(16, LOSS_ONE), RECOVERY_SHARDS_MAX);
    }

    #[test]
    fn the_loss_estimate_follows_counter_gaps() {
        let mut estimate = LossEstimate::default();
        // Every other packet lost, for long: about half.
        for c in 0..400u64 {
            estimate.note(1, 2 * c);
        }
        let half = estimate.loss;
        assert!(
            (LOSS_ONE * 4 / 10..LOSS_ONE * 6 / 10).contains(&half),
            "{half}"
        );
        // Then none lost.
        for c in 800..1_600u64 {
            estimate.note(1, c);
        }
        assert!(estimate.loss < LOSS_ONE / 100);
        // A long silence is not loss.
        let before = estimate.loss;
        estimate.note(1, 1_000_000);
        assert!(estimate.loss <= before);
        // Nine in a row lost is, though.
        estimate.note(1, 1_000_009);
        assert!(estimate.loss > before);
        // A new epoch starts its counters afresh.
        estimate.note(2, 0);
        assert!(estimate.loss < LOSS_ONE / 2);
    }
}
