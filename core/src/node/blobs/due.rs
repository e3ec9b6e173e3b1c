//! The fetches' clock: asks whose deadline passed are judged (the loss they saw measured,
//! what did not arrive retried), sources silent with asks unanswered are probed, sources
//! that held none of a file are asked again, and a fetch stalled too long gives its place
//! to a waiting one.

use crate::id::{DeviceId, FileId};
use crate::packet::Payload;
use crate::store::Store;
use crate::time::{Duration, Instant};

use super::super::Node;
use super::fetch::Outboard;
use super::source::loss_ppm;

/// A source that said it holds none of a file is asked again after this long.
const NOT_HELD_RETRY: Duration = Duration::from_secs(10);
/// A fetch without progress for this long gives its place to a waiting one.
const STALL_FOR: Duration = Duration::from_secs(30);

impl<S: Store> Node<S> {
    /// Asks whose time ran out: measure the loss they saw, retry what did not arrive.
    pub(super) fn fetches_due(&mut self, now: Instant) {
        let files: Vec<FileId> = self.blobs.fetches.keys().copied().collect();
        for file in files {
            let fetch = self.blobs.fetches.get_mut(&file).expect("listed");
            let due: Vec<u64> = fetch
                .pending
                .iter()
                .filter(|(_, p)| p.deadline.is_some_and(|d| d <= now))
                .map(|(g, _)| *g)
                .collect();
            for group in due {
                let pending = fetch.pending.get_mut(&group).expect("listed");
                let done = pending.done;
                let name = pending.source.clone();
                // Judged at its deadline, when every shard sent has arrived or is lost (not at
                // completion: shards reorder, so which arrived first says nothing). Shards
                // that came after the group was complete count. An ask that got no shard at
                // all was not served (a peer that restarted, a full queue), which says
                // nothing of the link's loss.
                let sample =
                    (pending.arrived > 0).then(|| loss_ppm(pending.arrived, pending.requested));
                if let Some(source) = fetch.sources.get_mut(&name) {
                    if !done {
                        source.asked = source.asked.saturating_sub(1);
                    }
                    if let Some(sample) = sample {
                        source.note_loss(sample);
                    }
                }
                if done {
                    fetch.pending.remove(&group);
                } else {
                    // Kept (with its originals) until asked again.
                    pending.deadline = None;
                    fetch.retry.insert(group);
                }
            }
            for source in fetch.sources.values_mut() {
                if source
                    .not_held_at
                    .is_some_and(|at| at + NOT_HELD_RETRY <= now)
                {
                    source.not_held_at = None;
                }
            }
            let stalled = fetch.progress_at + STALL_FOR <= now && !self.blobs.waiting.is_empty();
            if stalled {
                let size = fetch.size;
                self.blobs.fetches.remove(&file);
                self.blobs.waiting.push_back((file, size));
                self.start_waiting(now);
                continue;
            }
            self.pump_fetch(now, file);
            self.probe_silent_sources(now, file);
        }
    }

    /// Sends again the unanswered asks of every source silent past its `probe_at`.
    fn probe_silent_sources(&mut self, now: Instant, file: FileId) {
        let Some(fetch) = self.blobs.fetches.get_mut(&file) else {
            return;
        };
        let mut sends = Vec::new();
        let names: Vec<DeviceId> = fetch.sources.keys().cloned().collect();
        for name in names {
            if fetch.sources[&name].probe_at().is_none_or(|at| at > now) {
                continue;
            }
            let items = fetch.unanswered_wants(&name);
            if items.is_empty() {
                continue;
            }
            let source = fetch.sources.get_mut(&name).expect("listed");
            source.silent_since = now;
            source.probes += 1;
            sends.push((name, items));
        }
        for (name, items) in sends {
            self.stats.blobs.wants_sent += 1;
            self.send(&name, Payload::Blob(items));
        }
    }

    pub(super) fn fetch_next_at(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        for fetch in self.blobs.fetches.values() {
            let mut at = fetch.pending.values().filter_map(|p| p.deadline).min();
            if let Outboard::Fetching { deadline, .. } = &fetch.outboard {
                at = Some(at.map_or(*deadline, |a| a.min(*deadline)));
            }
            let retry = fetch
                .sources
                .values()
                .filter_map(|s| s.not_held_at.map(|t| t + NOT_HELD_RETRY))
                .min();
            let probe = fetch
                .sources
                .iter()
                .filter_map(|(name, s)| s.probe_at().filter(|_| fetch.has_unanswered_wants(name)))
                .min();
            for candidate in [at, retry, probe, Some(fetch.progress_at + STALL_FOR)]
                .into_iter()
                .flatten()
            {
                next = Some(next.map_or(candidate, |n| n.min(candidate)));
            }
        }
        next
    }
}
