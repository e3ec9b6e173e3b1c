//! Reconciliation steps: settle a small whole-set difference from a sketch, otherwise
//! descend into differing buckets and settle small ones with Bloom filters; what a peer
//! lacks becomes owed to it (`owed.rs`).

use rand_core::RngCore;

use super::Node;
use crate::id::{DeviceId, EventId};
use crate::packet::{overhead, BucketFilter, Digest, RootSketch, DATAGRAM_SIZE_MAX};
use crate::store::Store;
use crate::sync::filter::{bitmap_len, WireFilter};
use crate::sync::index::BucketSummary;
use crate::sync::prefix::Prefix;
use crate::sync::sketch::{width_for, Difference};

/// The whole summary a digest's children add up to.
pub(super) fn digest_total(digest: &Digest) -> BucketSummary {
    digest
        .children
        .iter()
        .fold(BucketSummary::default(), |acc, c| BucketSummary {
            count: acc.count.wrapping_add(c.count),
            fingerprint: acc.fingerprint ^ c.fingerprint,
        })
}

impl<S: Store> Node<S> {
    /// The peer's children summaries under a bucket that differed: follow each that differs.
    pub(super) fn on_digest(&mut self, peer: &DeviceId, digest: Digest) {
        let Digest { prefix, children } = digest;
        let mine = self.index.child_summaries(prefix);
        for ((child, theirs), ours) in prefix.children().zip(children).zip(mine) {
            if theirs != ours {
                self.reconcile(peer, child, theirs);
            }
        }
    }

    /// The peer's ids under a bucket: push what it lacks, and answer with our own filter if
    /// it asked. `Err` if the filter's bitmap is unusable.
    pub(super) fn on_filter(&mut self, peer: &DeviceId, filter: BucketFilter) -> Result<(), ()> {
        let BucketFilter {
            prefix,
            reply,
            filter,
        } = filter;
        let bloom = filter.open(prefix).map_err(|_| ())?;
        let missing: Vec<EventId> = self
            .index
            .in_bucket(prefix)
            .filter(|id| !bloom.check(id))
            .copied()
            .collect();
        self.owe(peer, &missing);
        if reply {
            let enforced = self.config.amplification_budget;
            if self
                .links
                .get_mut(peer)
                .expect("known peer")
                .budget
                .first_filter_reply(prefix, enforced)
            {
                self.send_filters(peer, prefix, false);
            } else {
                self.stats.drop("budget");
            }
        }
        Ok(())
    }

    /// The peer's whole set as a sketch: decode the difference, owe it what it lacks, and
    /// send our own sketch back if it asked and we lack something. When the table does not
    /// decode, the prefix descent takes over from its summary.
    pub(super) fn on_sketch(&mut self, peer: &DeviceId, sketch: RootSketch) {
        let RootSketch {
            reply,
            summary,
            sketch,
        } = sketch;
        self.note_peer_summary(peer, summary);
        if summary == self.summary() {
            return;
        }
        match self.index.sketch().difference(&sketch) {
            Some(Difference { ours, theirs }) if !ours.is_empty() || !theirs.is_empty() => {
                self.stats.sketches_decoded += 1;
                let lacking: Vec<EventId> = ours
                    .iter()
                    .flat_map(|head| self.index.with_head(*head))
                    .copied()
                    .collect();
                self.owe(peer, &lacking);
                if reply && !theirs.is_empty() {
                    self.send_sketch(peer, sketch.width(), false);
                }
            }
            _ => {
                self.stats.sketches_failed += 1;
                if !self.settling_with(peer) {
                    self.descend(peer, Prefix::ROOT, summary);
                }
            }
        }
    }

    /// Our root sketch at `width`, beside our summary.
    fn send_sketch(&mut self, peer: &DeviceId, width: usize, reply: bool) {
        let sketch = RootSketch {
            reply,
            summary: self.summary(),
            sketch: self.index.sketch().folded(width),
        };
        if self.reserve_reply(peer, RootSketch::encoded_len_max(width)) {
            self.queue_sketch(peer, sketch);
        }
    }

    /// Reserves room in the peer's budget for an answer item of at most `item_len_max`
    /// bytes, before the work of building it; counts `budget` when there is none. Each item
    /// reserves a whole datagram's header too: packed with others it takes less, never more,
    /// so what the flush sends always fits what was reserved (`Budget::spend` asserts it).
    fn reserve_reply(&mut self, peer: &DeviceId, item_len_max: usize) -> bool {
        let enforced = self.config.amplification_budget;
        let bytes = overhead(self.device(), peer) + item_len_max;
        let reserved = self
            .links
            .get_mut(peer)
            .expect("known peer")
            .budget
            .reserve(bytes, enforced);
        if !reserved {
            self.stats.drop("budget");
        }
        reserved
    }

    /// Our bucket `prefix` differs from the peer's `theirs`: take the next step toward the
    /// difference. At the root, a small count difference is settled with a sketch instead
    /// (one round trip, and fewer bytes than the descent: see the core bench).
    pub(super) fn reconcile(&mut self, peer: &DeviceId, prefix: Prefix, theirs: BucketSummary) {
        let mine = self.index.summary(prefix);
        if mine == theirs {
            return;
        }
        if prefix == Prefix::ROOT && mine.count > 0 && theirs.count > 0 {
            if let Some(width) = width_for(mine.count.abs_diff(theirs.count)) {
                return self.send_sketch(peer, width, true);
            }
        }
        self.descend(peer, prefix, theirs);
    }

    /// The prefix descent: push all, ask for all, settle with filters, or go one level down.
    fn descend(&mut self, peer: &DeviceId, prefix: Prefix, theirs: BucketSummary) {
        let mine = self.index.summary(prefix);
        if mine == theirs {
            return;
        }
        if theirs.count == 0 {
            // They hold nothing here: everything we have is missing there.
            let ids: Vec<EventId> = self.index.in_bucket(prefix).copied().collect();
            return self.owe(peer, &ids);
        }
        if mine.count == 0 {
            // An empty filter asks for everything; our own filter back would be empty too.
            return self.send_filters(peer, prefix, false);
        }
        let leaf = self.config.leaf_items_max;
        if prefix.is_leaf_depth() || mine.count <= leaf || theirs.count <= leaf {
            return self.send_filters(peer, prefix, true);
        }
        if self.reserve_reply(peer, Digest::ENCODED_LEN_MAX) {
            let children = self.index.child_summaries(prefix);
            self.queue_digest(peer, Digest { prefix, children });
        }
    }

    /// Our ids under `prefix` as Bloom filters, each fitting one datagram: a bucket too full
    /// for one is sent as its children's filters.
    pub(super) fn send_filters(&mut self, peer: &DeviceId, prefix: Prefix, reply: bool) {
        let count = self.index.summary(prefix).count as usize;
        let bitmap = bitmap_len(count, self.config.filter_fp_rate);
        let room = DATAGRAM_SIZE_MAX - overhead(self.device(), peer);
        if BucketFilter::encoded_len_max(bitmap) > room && !prefix.is_leaf_depth() {
            for child in prefix.children().collect::<Vec<_>>() {
                self.send_filters(peer, child, reply);
            }
            return;
        }
        if !self.reserve_reply(peer, BucketFilter::encoded_len_max(bitmap)) {
            return;
        }
        let nonce = self.rng.next_u64();
        let filter = WireFilter::build(
            self.index.in_bucket(prefix),
            count,
            self.config.filter_fp_rate,
            nonce,
            prefix,
        );
        self.queue_filter(
            peer,
            BucketFilter {
                prefix,
                reply,
                filter,
            },
        );
    }
}
