//! Reconciliation steps: descend into differing buckets, settle small ones with Bloom
//! filters, push what a peer lacks within the round's budget.

use rand_core::RngCore;

use super::{Node, NodeEvent};
use crate::id::{DeviceId, EventId};
use crate::packet::{overhead, BucketFilter, Digest, DATAGRAM_SIZE_MAX};
use crate::store::Store;
use crate::sync::filter::{bitmap_len, WireFilter};
use crate::sync::index::BucketSummary;
use crate::sync::prefix::Prefix;

/// Bytes a `Filter` payload takes besides its bitmap: prefix, reply flag, nonce, item count, k, length.
const FILTER_FRAMING_MAX: usize = 9 + 1 + 8 + 5 + 1 + 2;

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
        self.push(peer, &missing);
        if reply {
            self.send_filters(peer, prefix, false);
        }
        Ok(())
    }

    /// Our bucket `prefix` differs from the peer's `theirs`: take the next step toward the difference.
    pub(super) fn reconcile(&mut self, peer: &DeviceId, prefix: Prefix, theirs: BucketSummary) {
        let mine = self.index.summary(prefix);
        if mine == theirs {
            return;
        }
        if theirs.count == 0 {
            // They hold nothing here: everything we have is missing there.
            let ids: Vec<EventId> = self.index.in_bucket(prefix).copied().collect();
            return self.push(peer, &ids);
        }
        if mine.count == 0 {
            // An empty filter asks for everything; our own filter back would be empty too.
            return self.send_filters(peer, prefix, false);
        }
        let leaf = self.config.leaf_items_max;
        if prefix.is_leaf_depth() || mine.count <= leaf || theirs.count <= leaf {
            return self.send_filters(peer, prefix, true);
        }
        let children = self.index.child_summaries(prefix);
        self.queue_digest(peer, Digest { prefix, children });
    }

    /// Our ids under `prefix` as Bloom filters, each fitting one datagram: a bucket too full
    /// for one is sent as its children's filters.
    pub(super) fn send_filters(&mut self, peer: &DeviceId, prefix: Prefix, reply: bool) {
        let count = self.index.summary(prefix).count as usize;
        let bitmap_room = DATAGRAM_SIZE_MAX - overhead(self.device(), peer) - FILTER_FRAMING_MAX;
        if bitmap_len(count, self.config.filter_fp_rate) > bitmap_room && !prefix.is_leaf_depth() {
            for child in prefix.children().collect::<Vec<_>>() {
                self.send_filters(peer, child, reply);
            }
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

    /// Sends the peer these events, within this round's pacing budget.
    pub(super) fn push(&mut self, peer: &DeviceId, ids: &[EventId]) {
        for id in ids {
            if !self.config.relay && !self.own.contains(id) {
                continue;
            }
            let state = self.peers.get_mut(peer).expect("known peer");
            if state.pushed_this_round >= self.config.events_per_round_max {
                self.stats.pushes_deferred += 1;
                continue;
            }
            state.pushed_this_round += 1;
            match self.store.get(id) {
                Ok(Some(sealed)) => self.queue_event(peer, sealed),
                Ok(None) => panic!("index holds {id} but the store does not"),
                Err(err) => {
                    self.stats.drop("store_failed");
                    self.emit(NodeEvent::StoreFailed {
                        detail: err.to_string(),
                    });
                }
            }
        }
    }
}
