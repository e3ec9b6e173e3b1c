//! The ids a node holds, with per-bucket counts and fingerprints kept current on insert.
//!
//! A bucket's summary is `(count, XOR of the ids' last 8 bytes)`. Two sets with equal
//! summaries are equal except with probability about 2^-64. Summaries for the top
//! `CACHED_DEPTH` levels are maintained incrementally (O(levels) per insert), so a round's
//! summary costs nothing however many events are held; deeper buckets are scanned.

use super::ids::SortedIds;
use super::prefix::{Prefix, FANOUT};
use super::sketch::Sketch;
use crate::id::EventId;

/// Levels 0..=3: 1 + 16 + 256 + 4096 cached buckets.
const CACHED_DEPTH: u8 = 3;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BucketSummary {
    pub count: u32,
    pub fingerprint: u64,
}

impl BucketSummary {
    fn add(&mut self, id: &EventId) {
        self.count += 1;
        self.fingerprint ^= id.fingerprint_part();
    }
}

#[derive(Clone, Debug)]
pub struct IdIndex {
    ids: SortedIds,
    /// `levels[d][value]` for each cached depth `d`.
    levels: Vec<Vec<BucketSummary>>,
    /// The whole set as an IBLT, for settling a small difference in one round trip.
    sketch: Sketch,
}

impl Default for IdIndex {
    fn default() -> Self {
        let levels = (0..=CACHED_DEPTH)
            .map(|d| vec![BucketSummary::default(); FANOUT.pow(d as u32)])
            .collect();
        IdIndex {
            ids: SortedIds::default(),
            levels,
            sketch: Sketch::new(),
        }
    }
}

impl IdIndex {
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds `id`; false if it was already there.
    pub fn insert(&mut self, id: EventId) -> bool {
        if !self.ids.insert(id) {
            return false;
        }
        for depth in 0..=CACHED_DEPTH {
            let value = bucket_value(&id, depth);
            self.levels[depth as usize][value].add(&id);
        }
        self.sketch.insert(&id);
        true
    }
    pub fn sketch(&self) -> &Sketch {
        &self.sketch
    }
    /// The ids whose 8-byte head is `head` (almost always one; a decoded sketch names heads).
    pub fn with_head(&self, head: u64) -> impl Iterator<Item = &EventId> {
        self.in_bucket(Prefix::new(16, head).expect("a 16-nibble prefix holds any u64"))
    }
    pub fn contains(&self, id: &EventId) -> bool {
        self.ids.contains(id)
    }
    pub fn len(&self) -> usize {
        self.ids.len()
    }
    pub fn iter(&self) -> impl Iterator<Item = &EventId> {
        self.ids.iter()
    }
    /// Ids in the bucket, in order.
    pub fn in_bucket(&self, prefix: Prefix) -> impl Iterator<Item = &EventId> {
        let (lo, hi) = prefix.bounds();
        self.ids.range(lo, hi)
    }
    pub fn summary(&self, prefix: Prefix) -> BucketSummary {
        if prefix.depth() <= CACHED_DEPTH {
            let (lo, _) = prefix.bounds();
            return self.levels[prefix.depth() as usize][bucket_value(&lo, prefix.depth())];
        }
        let mut summary = BucketSummary::default();
        self.in_bucket(prefix).for_each(|id| summary.add(id));
        summary
    }
    pub fn child_summaries(&self, prefix: Prefix) -> [BucketSummary; FANOUT] {
        let mut out = [BucketSummary::default(); FANOUT];
        for (slot, child) in out.iter_mut().zip(prefix.children()) {
            *slot = self.summary(child);
        }
        out
    }
}

fn bucket_value(id: &EventId, depth: u8) -> usize {
    if depth == 0 {
        return 0;
    }
    let head = u16::from_be_bytes([id.0[0], id.0[1]]);
    (head >> (16 - 4 * depth as u32)) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u32, salt: u8) -> Vec<EventId> {
        (0..n)
            .map(|i| EventId::of_bytes(&[&i.to_le_bytes()[..], &[salt]].concat()))
            .collect()
    }

    #[test]
    fn cached_and_scanned_summaries_agree() {
        let mut index = IdIndex::new();
        for id in ids(3000, 0) {
            index.insert(id);
        }
        let probe = ids(1, 9)[0];
        for depth in 0..=6 {
            let prefix = Prefix::of(&probe, depth);
            let mut scanned = BucketSummary::default();
            index
                .iter()
                .filter(|id| prefix.contains(id))
                .for_each(|id| scanned.add(id));
            assert_eq!(index.summary(prefix), scanned, "depth {depth}");
        }
        assert_eq!(index.summary(Prefix::ROOT).count, 3000);
    }

    #[test]
    fn insert_is_idempotent_and_order_free() {
        let all = ids(500, 1);
        let mut a = IdIndex::new();
        let mut b = IdIndex::new();
        for id in &all {
            assert!(a.insert(*id));
            assert!(!a.insert(*id));
        }
        for id in all.iter().rev() {
            b.insert(*id);
        }
        assert_eq!(a.summary(Prefix::ROOT), b.summary(Prefix::ROOT));
        assert_eq!(
            a.child_summaries(Prefix::ROOT),
            b.child_summaries(Prefix::ROOT)
        );
    }
}
