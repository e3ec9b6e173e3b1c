//! A sorted set of event ids in about 36 bytes each, for the id index.
//!
//! A `BTreeSet<EventId>` filled in random order (ids are hashes) keeps its nodes about
//! two-thirds full: some 50 bytes per 32-byte id, and the index holds every id a node has.
//! Here most ids sit in one sorted vector and the newest in a small B-tree; when the B-tree
//! reaches an eighth of the vector, it is merged in place from the back (the vector grows
//! once, nothing is copied twice), so an insert moves about eight ids on average.

use std::collections::BTreeSet;
use std::iter::Peekable;

use crate::id::EventId;

/// The B-tree may always hold this many before a merge. Below 8 × this many ids a merge
/// moves at most that many, so an insert still moves about eight ids on average. Kept small
/// because every lookup that misses the vector searches the tree, and a deep tree misses the
/// cache at every level: in a 300-device world each node's 4,096-id tree (the old bound) was
/// a twentieth of the processor time, in sketch answers and `contains`.
const RECENT_MIN: usize = 512;
/// Ids per bucket of `SortedIds::starts` (about): a lookup searches one bucket, a cache line
/// or two, instead of the whole vector (a binary search over a million ids missed the cache
/// twenty times). The table costs 4 bytes per this many ids.
const BUCKET_IDS: usize = 16;

#[derive(Clone, Debug, Default)]
pub struct SortedIds {
    /// Sorted, no duplicates, none also in `recent`.
    main: Vec<EventId>,
    /// `starts[b]..starts[b + 1]`: where in `main` the ids whose first four bytes, shifted
    /// right by `shift`, are `b` lie (ids are hashes, so buckets fill evenly).
    starts: Vec<u32>,
    shift: u32,
    recent: BTreeSet<EventId>,
}

impl SortedIds {
    pub fn contains(&self, id: &EventId) -> bool {
        // The vector first: it holds most ids, and its bucket is a line or two to read.
        self.in_main(id) || self.recent.contains(id)
    }

    fn in_main(&self, id: &EventId) -> bool {
        let (lo, hi) = self.bucket_of(id);
        self.main[lo..hi].binary_search(id).is_ok()
    }

    /// Where in `main` the ids sorting with `id` lie: its bucket, or all of `main` before the
    /// first merge indexes it. Every id of an earlier bucket sorts before `id`, of a later one
    /// after it.
    fn bucket_of(&self, id: &EventId) -> (usize, usize) {
        if self.starts.is_empty() {
            return (0, self.main.len());
        }
        let bucket = (head(id) >> self.shift) as usize;
        (
            self.starts[bucket] as usize,
            self.starts[bucket + 1] as usize,
        )
    }

    /// The first place in `main` whose id is not below `id` (`below`: `<`, or `<=` for the
    /// first place after it), searched within its bucket.
    fn place(&self, id: &EventId, below: impl Fn(&EventId, &EventId) -> bool) -> usize {
        let (lo, hi) = self.bucket_of(id);
        lo + self.main[lo..hi].partition_point(|other| below(other, id))
    }

    /// Adds `id`; false if it was already there.
    pub fn insert(&mut self, id: EventId) -> bool {
        if self.in_main(&id) || !self.recent.insert(id) {
            return false;
        }
        if self.recent.len() > RECENT_MIN.max(self.main.len() / 8) {
            self.merge();
        }
        true
    }

    fn merge(&mut self) {
        let recent = std::mem::take(&mut self.recent);
        let old_len = self.main.len();
        self.main.reserve_exact(recent.len());
        // Placeholders at the end, then fill from the back: the largest of what is left of
        // either side goes last.
        self.main.resize(old_len + recent.len(), EventId([0; 32]));
        let mut write = self.main.len();
        let mut read = old_len;
        for id in recent.into_iter().rev() {
            while read > 0 && self.main[read - 1] > id {
                write -= 1;
                read -= 1;
                self.main[write] = self.main[read];
            }
            write -= 1;
            self.main[write] = id;
        }
        debug_assert_eq!(
            write, read,
            "the old ids left in place are already where they go"
        );
        debug_assert!(self.main.windows(2).all(|w| w[0] < w[1]));
        self.index_buckets();
    }

    fn index_buckets(&mut self) {
        let bits = (self.main.len() / BUCKET_IDS).max(1).ilog2().min(24);
        self.shift = 32 - bits;
        let buckets = 1usize << bits;
        self.starts.clear();
        self.starts.reserve_exact(buckets + 1);
        let mut at = 0;
        for bucket in 0..buckets {
            self.starts.push(at as u32);
            while at < self.main.len() && (head(&self.main[at]) >> self.shift) as usize == bucket {
                at += 1;
            }
        }
        self.starts.push(at as u32);
        debug_assert_eq!(at, self.main.len());
    }

    pub fn len(&self) -> usize {
        self.main.len() + self.recent.len()
    }

    /// Every id, in order.
    pub fn iter(&self) -> impl Iterator<Item = &EventId> {
        Merged {
            a: self.main.iter().peekable(),
            b: self.recent.iter().peekable(),
        }
    }

    /// The ids in `lo..=hi`, in order.
    pub fn range(&self, lo: EventId, hi: EventId) -> impl Iterator<Item = &EventId> {
        let start = self.place(&lo, |id, lo| id < lo);
        let end = self.place(&hi, |id, hi| id <= hi);
        Merged {
            a: self.main[start..end.max(start)].iter().peekable(),
            b: self.recent.range(lo..=hi).peekable(),
        }
    }
}

/// The first four bytes of `id`, big-endian: its place in id order, roughly.
fn head(id: &EventId) -> u32 {
    u32::from_be_bytes([id.0[0], id.0[1], id.0[2], id.0[3]])
}

/// Two sorted iterators without common items, as one sorted iterator.
struct Merged<'a, A: Iterator<Item = &'a EventId>, B: Iterator<Item = &'a EventId>> {
    a: Peekable<A>,
    b: Peekable<B>,
}

impl<'a, A: Iterator<Item = &'a EventId>, B: Iterator<Item = &'a EventId>> Iterator
    for Merged<'a, A, B>
{
    type Item = &'a EventId;
    fn next(&mut self) -> Option<&'a EventId> {
        match (self.a.peek(), self.b.peek()) {
            (Some(a), Some(b)) if b < a => self.b.next(),
            (Some(_), _) => self.a.next(),
            (None, _) => self.b.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(i: u32) -> EventId {
        EventId::of_bytes(&i.to_le_bytes())
    }

    #[test]
    fn agrees_with_a_btree_set_through_many_merges() {
        let mut ids = SortedIds::default();
        let mut model = BTreeSet::new();
        for i in 0..40_000u32 {
            // Every tenth insert repeats an earlier id: refused as the model refuses it.
            let next = if i % 10 == 9 { id(i / 3) } else { id(i) };
            assert_eq!(ids.insert(next), model.insert(next), "insert {i}");
        }
        assert!(ids.main.len() > RECENT_MIN, "merges happened");
        assert_eq!(ids.len(), model.len());
        assert!(ids.iter().eq(model.iter()));
        for i in (0..45_000u32).step_by(7) {
            assert_eq!(ids.contains(&id(i)), model.contains(&id(i)));
        }
        // Bounds absent from the set, and bounds that are ids of it (kept at both ends).
        let held: Vec<EventId> = model.iter().copied().collect();
        for i in 0..300u32 {
            let (a, b) = (id(i * 131 + 50_000), id(i * 71 + 60_000));
            let (c, d) = (held[i as usize * 97], held[i as usize * 113]);
            for (lo, hi) in [(a.min(b), a.max(b)), (c.min(d), c.max(d)), (c, c)] {
                assert!(ids.range(lo, hi).eq(model.range(lo..=hi)), "range {i}");
            }
        }
        let mut empty_lo = [0x80; 32];
        empty_lo[31] = 0;
        let empty = (EventId(empty_lo), EventId(empty_lo));
        assert!(ids
            .range(empty.0, empty.1)
            .eq(model.range(empty.0..=empty.1)));
    }
}
